//! The synthetic traffic: messages, the status callbacks Twilio would send for them, duplicated
//! and reordered the way real callbacks arrive, each one encoded and signed ahead of time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{KeyInit, Mac};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// A small, deterministic PRNG (SplitMix64): the same seed gives the same workload on every
/// machine and for every target, which is what makes the comparison fair.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn hex(&mut self, len: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..len).map(|_| DIGITS[self.below(16)] as char).collect()
    }

    pub fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// Workload shape.
#[derive(Debug, Clone)]
pub struct Spec {
    pub messages: usize,
    /// Share of callbacks sent twice with an identical body.
    pub duplicates: f64,
    /// Share of messages that end `failed` or `undelivered`.
    pub failures: f64,
    /// Share of delivered messages that are also read.
    pub read_share: f64,
    /// Size of the sliding window within which the send order is shuffled.
    pub window: usize,
    pub seed: u64,
}

/// Status ranks as in wadash's state machine (only the statuses this workload sends).
pub fn rank(status: &str) -> i16 {
    match status {
        "queued" => 20,
        "sent" => 40,
        "undelivered" => 51,
        "failed" => 52,
        "delivered" => 60,
        "read" => 70,
        _ => -1,
    }
}

/// Which milestone timestamp a status sets in `messages`.
pub fn milestone(status: &str) -> Option<Milestone> {
    match status {
        "sent" => Some(Milestone::Sent),
        "delivered" => Some(Milestone::Delivered),
        "read" => Some(Milestone::Read),
        "failed" | "undelivered" => Some(Milestone::Failed),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// One outbound message.
#[derive(Debug, Clone)]
pub struct Message {
    pub sid: String,
    pub to: String,
    pub sender: usize,
    /// Index of its first callback in `Workload::callbacks` (they are contiguous).
    pub first_callback: usize,
    pub callbacks: usize,
}

/// One distinct status callback (a duplicate is a second request for the same callback).
#[derive(Debug, Clone)]
pub struct Callback {
    pub message: usize,
    pub status: &'static str,
    pub error_code: Option<u32>,
}

/// One HTTP request, ready to go.
#[derive(Debug, Clone)]
pub struct Request {
    pub callback: usize,
    pub body: Bytes,
    pub signature: Bytes,
}

#[derive(Debug)]
pub struct Workload {
    pub messages: Vec<Message>,
    pub callbacks: Vec<Callback>,
    /// In send order.
    pub requests: Vec<Request>,
    /// Requests that repeat an earlier request's body.
    pub duplicate_requests: usize,
    /// Requests that arrive after a later stage of the same message was already sent.
    pub out_of_order: usize,
}

const ACCOUNT_SID_LEN: usize = 32;
/// WhatsApp senders (the first is Twilio's sandbox number).
const SENDERS: [&str; 3] = ["+14155238886", "+15557654321", "+447700900123"];
/// Real Twilio/WhatsApp error codes: (code, terminal status).
const FAILURES: [(u32, &str); 6] = [
    (63016, "failed"), // outside the 24-hour window, no template
    (63024, "failed"), // invalid message recipient
    (63003, "failed"), // channel could not find the To address
    (30008, "undelivered"),
    (63049, "undelivered"), // Meta chose not to deliver a marketing message
    (63032, "undelivered"), // user's number is part of an experiment
];

impl Workload {
    /// Generates the messages and callbacks, orders them, and encodes and signs every request
    /// for `url` with `token`.
    pub fn generate(spec: &Spec, url: &str, token: &[u8]) -> Self {
        let mut rng = Rng::new(spec.seed);
        let account_sid = format!("AC{}", rng.hex(ACCOUNT_SID_LEN));
        let install_sids: Vec<String> = SENDERS
            .iter()
            .map(|_| format!("XE{}", rng.hex(32)))
            .collect();

        let mut messages = Vec::with_capacity(spec.messages);
        let mut callbacks = Vec::with_capacity(spec.messages * 4);
        // (time, callback) in the order Twilio would emit them. Time is in units of "one new
        // message"; a message's later stages follow it by up to a few hundred messages.
        let mut timeline: Vec<(f64, usize)> = Vec::with_capacity(spec.messages * 5);
        for m in 0..spec.messages {
            let sid = format!("SM{}", rng.hex(32));
            let mobile = format!("+91{}{}", [9, 8, 7][rng.below(3)], rng.digits(9));
            let sender = rng.below(SENDERS.len());
            let mut stages: Vec<(&'static str, Option<u32>)> = vec![("queued", None)];
            if rng.chance(spec.failures) {
                let (code, status) = FAILURES[rng.below(FAILURES.len())];
                if status == "undelivered" {
                    stages.push(("sent", None));
                }
                stages.push((status, Some(code)));
            } else {
                stages.push(("sent", None));
                stages.push(("delivered", None));
                if rng.chance(spec.read_share) {
                    stages.push(("read", None));
                }
            }
            let first = callbacks.len();
            let mut t = m as f64 + rng.unit();
            for (i, (status, error_code)) in stages.iter().enumerate() {
                // queued → sent within a couple of messages, delivery within tens, reading
                // within hundreds.
                t += match i {
                    0 => 0.0,
                    1 => rng.unit() * 3.0,
                    2 => rng.unit() * 40.0,
                    _ => rng.unit() * 300.0,
                };
                timeline.push((t, callbacks.len()));
                callbacks.push(Callback {
                    message: m,
                    status,
                    error_code: *error_code,
                });
            }
            messages.push(Message {
                sid,
                to: mobile,
                sender,
                first_callback: first,
                callbacks: stages.len(),
            });
        }

        // Duplicates: the same callback again, a little later.
        let distinct = timeline.len();
        let mut duplicate_requests = 0;
        for i in 0..distinct {
            if rng.chance(spec.duplicates) {
                let (t, cb) = timeline[i];
                timeline.push((t + rng.unit() * 20.0, cb));
                duplicate_requests += 1;
            }
        }
        timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut order: Vec<usize> = timeline.into_iter().map(|(_, cb)| cb).collect();

        // Shuffle within a sliding window: each position swaps with one up to `window` ahead.
        if spec.window > 1 {
            for i in 0..order.len() {
                let span = spec.window.min(order.len() - i);
                let j = i + rng.below(span);
                order.swap(i, j);
            }
        }

        let out_of_order = count_out_of_order(&callbacks, messages.len(), order.iter().copied());

        // Encode and sign each distinct callback once; duplicates share the bytes.
        let encoded: Vec<(Bytes, Bytes)> = callbacks
            .iter()
            .map(|c| {
                let m = &messages[c.message];
                let params = status_params(
                    m,
                    c,
                    &account_sid,
                    SENDERS[m.sender],
                    &install_sids[m.sender],
                );
                let body = encode_form(&params);
                let sig = sign(token, url, &params);
                (Bytes::from(body), Bytes::from(sig))
            })
            .collect();
        let requests = order
            .into_iter()
            .map(|cb| Request {
                callback: cb,
                body: encoded[cb].0.clone(),
                signature: encoded[cb].1.clone(),
            })
            .collect();

        Self {
            messages,
            callbacks,
            requests,
            duplicate_requests,
            out_of_order,
        }
    }
}

impl Workload {
    /// Keeps only the first `n` requests (an open-loop run needs an exact count) and recounts
    /// the duplicates and out-of-order requests among them. Callbacks that are no longer sent
    /// stay in `callbacks`; verification only looks at what was sent.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.requests.len() {
            return;
        }
        self.requests.truncate(n);
        let mut seen = vec![false; self.callbacks.len()];
        self.duplicate_requests = 0;
        for r in &self.requests {
            if std::mem::replace(&mut seen[r.callback], true) {
                self.duplicate_requests += 1;
            }
        }
        self.out_of_order = count_out_of_order(
            &self.callbacks,
            self.messages.len(),
            self.requests.iter().map(|r| r.callback),
        );
    }

    /// Distinct callbacks among the requests.
    pub fn distinct_sent(&self) -> usize {
        self.requests.len() - self.duplicate_requests
    }
}

/// Requests that arrive after a later stage of the same message was already sent.
fn count_out_of_order(
    callbacks: &[Callback],
    messages: usize,
    order: impl Iterator<Item = usize>,
) -> usize {
    let mut best_rank = vec![i16::MIN; messages];
    let mut out_of_order = 0;
    for cb in order {
        let c = &callbacks[cb];
        let r = rank(c.status);
        if r < best_rank[c.message] {
            out_of_order += 1;
        }
        best_rank[c.message] = best_rank[c.message].max(r);
    }
    out_of_order
}

/// The fields of a WhatsApp status callback, in the order Twilio sends them.
fn status_params(
    m: &Message,
    c: &Callback,
    account_sid: &str,
    sender: &str,
    install_sid: &str,
) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("SmsSid", m.sid.clone()),
        ("SmsStatus", c.status.to_owned()),
        ("MessageStatus", c.status.to_owned()),
        ("ChannelToAddress", m.to.clone()),
        ("To", format!("whatsapp:{}", m.to)),
        ("ChannelPrefix", "whatsapp".to_owned()),
        ("MessageSid", m.sid.clone()),
        ("AccountSid", account_sid.to_owned()),
        ("StructuredMessage", "false".to_owned()),
        ("From", format!("whatsapp:{sender}")),
        ("ApiVersion", "2010-04-01".to_owned()),
        ("ChannelInstallSid", install_sid.to_owned()),
    ];
    if let Some(code) = c.error_code {
        p.push(("ErrorCode", code.to_string()));
    }
    p
}

/// `application/x-www-form-urlencoded`, as Twilio (and browsers) encode it.
pub fn encode_form(params: &[(&str, String)]) -> String {
    fn push(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
                }
            }
        }
    }
    let mut out = String::with_capacity(512);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push(&mut out, k);
        out.push('=');
        push(&mut out, v);
    }
    out
}

/// `X-Twilio-Signature`: base64(HMAC-SHA1(token, url + each name+value sorted by name)).
/// Written here independently of wadash so that a signing bug in the server is not mirrored.
pub fn sign(token: &[u8], url: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac = HmacSha1::new_from_slice(token).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The example from Twilio's security documentation, also the first shared vector.
        let params: Vec<(&str, String)> = vec![
            ("CallSid", "CA1234567890ABCDE".into()),
            ("Caller", "+14158675309".into()),
            ("Digits", "1234".into()),
            ("From", "+14158675309".into()),
            ("To", "+18005551212".into()),
        ];
        assert_eq!(
            sign(
                b"12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn form_encoding_escapes_like_twilio() {
        let p = vec![("To", "whatsapp:+91 99".to_owned())];
        assert_eq!(encode_form(&p), "To=whatsapp%3A%2B91+99");
    }

    #[test]
    fn workload_has_the_requested_shape() {
        let spec = Spec {
            messages: 2000,
            duplicates: 0.10,
            failures: 0.05,
            read_share: 0.85,
            window: 256,
            seed: 7,
        };
        let w = Workload::generate(&spec, "http://127.0.0.1:1/sts", b"t");
        assert_eq!(w.messages.len(), 2000);
        let n = w.callbacks.len();
        assert_eq!(w.requests.len(), n + w.duplicate_requests);
        let dup = w.duplicate_requests as f64 / n as f64;
        assert!((0.07..0.13).contains(&dup), "duplicates {dup}");
        let failed = w
            .callbacks
            .iter()
            .filter(|c| c.error_code.is_some())
            .count() as f64
            / 2000.0;
        assert!((0.03..0.07).contains(&failed), "failures {failed}");
        assert!(w.out_of_order > n / 20, "out of order {}", w.out_of_order);
        // Every distinct callback is sent at least once.
        let mut seen = vec![false; n];
        w.requests.iter().for_each(|r| seen[r.callback] = true);
        assert!(seen.iter().all(|s| *s));
        // Same seed, same bytes.
        let again = Workload::generate(&spec, "http://127.0.0.1:1/sts", b"t");
        assert_eq!(again.requests[17].body, w.requests[17].body);
    }

    #[test]
    fn truncating_recounts_duplicates_and_order() {
        let spec = Spec {
            messages: 500,
            duplicates: 0.10,
            failures: 0.05,
            read_share: 0.85,
            window: 256,
            seed: 3,
        };
        let full = Workload::generate(&spec, "http://127.0.0.1:1/sts", b"t");
        let mut w = Workload::generate(&spec, "http://127.0.0.1:1/sts", b"t");
        w.truncate(full.requests.len() + 5);
        assert_eq!(w.requests.len(), full.requests.len());
        assert_eq!(w.duplicate_requests, full.duplicate_requests);
        assert_eq!(w.out_of_order, full.out_of_order);
        assert_eq!(w.distinct_sent(), w.callbacks.len());
        w.truncate(1000);
        assert_eq!(w.requests.len(), 1000);
        let mut distinct: Vec<usize> = w.requests.iter().map(|r| r.callback).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(w.distinct_sent(), distinct.len());
        assert!(w.duplicate_requests > 0 && w.duplicate_requests < full.duplicate_requests);
        assert!(w.out_of_order <= full.out_of_order);
        assert_eq!(w.requests[999].body, full.requests[999].body);
    }
}
