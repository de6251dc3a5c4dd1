//! `wadash simulate`: inbound WhatsApp traffic for a running instance's `/wa`, signed like
//! Twilio's, at a steady rate. Customers send text, images, locations and now and then `STOP`
//! or `START`, from a pool of numbers with profile names, as the Twilio sandbox delivers them.
//!
//! The mix is a fixed cycle (see [`KIND_CYCLE`]) rather than a random draw, so a run of any
//! length carries every kind in known proportions; who sends and what they say vary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::twilio::signature;

/// What a simulated customer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    Image,
    Location,
    Stop,
    Start,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Image => "image",
            Kind::Location => "location",
            Kind::Stop => "STOP",
            Kind::Start => "START",
        }
    }
}

/// Twenty messages: 13 text, 3 images, 2 locations, one STOP, one START.
pub const KIND_CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Text, Text, Image, Text, Location, Text, Text, Image, Text, Stop, Text, Text, Location,
        Text, Image, Text, Text, Start, Text, Text,
    ]
};

const TEXTS: &[&str] = &[
    "hi",
    "Is my order on its way?",
    "What time do you open tomorrow?",
    "Thanks! 👍",
    "Can I change my delivery address?",
    "I did not get the OTP",
    "Please call me back",
    "Where is the nearest store?",
    "Payment done. Reference 4471",
    "<b>not html</b> & \"quotes\"",
];
const NAMES: &[&str] = &[
    "Ranjit Sankar",
    "Ada",
    "Priya N",
    "José",
    "Mei Lin",
    "Olu",
    "Fatima",
    "Sam",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("12.9716", "77.5946", "MG Road, Bengaluru"),
    ("19.0760", "72.8777", "Bandra West, Mumbai"),
    ("28.6139", "77.2090", "Connaught Place, New Delhi"),
];

/// How to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The instance's public base URL (what Twilio would call), without a trailing slash.
    pub url: String,
    /// The auth token the instance validates webhooks with.
    pub token: SecretString,
    /// The account the messages claim to come through.
    pub account_sid: String,
    /// The business's WhatsApp number the customers write to.
    pub to: String,
    /// Messages per second.
    pub rate: f64,
    pub duration: Duration,
    /// Distinct customers.
    pub customers: u32,
    /// Requests in flight at most.
    pub concurrency: usize,
}

impl Plan {
    pub fn total(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round().max(1.0) as u64
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub sent: u64,
    pub accepted: u64,
    /// Answered with a non-2xx status: (status, count).
    pub refused: Vec<(u16, u64)>,
    /// Not answered at all.
    pub failed: u64,
    pub by_kind: Vec<(Kind, u64)>,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.sent > 0 && self.accepted == self.sent
    }
}

/// The parameters of the `n`-th simulated message, as Twilio sends an inbound WhatsApp
/// message to `/wa`.
pub fn message(plan: &Plan, n: u64, salt: u64) -> (Kind, Vec<(String, String)>) {
    let kind = KIND_CYCLE[(n % KIND_CYCLE.len() as u64) as usize];
    let mix = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    let customer = mix % u64::from(plan.customers.max(1));
    // Fictional numbers in India's +91 99 range, as in the fixtures.
    let wa_id = format!("9199{:08}", customer);
    let name = NAMES[(customer % NAMES.len() as u64) as usize];
    let sid = format!("SM{:016x}{:016x}", salt, n);
    let mut p: Vec<(String, String)> = Vec::with_capacity(20);
    let mut push = |k: &str, v: String| p.push((k.to_owned(), v));
    push("SmsMessageSid", sid.clone());
    push("SmsSid", sid.clone());
    push("MessageSid", sid.clone());
    push("AccountSid", plan.account_sid.clone());
    push("From", format!("whatsapp:+{wa_id}"));
    push("To", plan.to.clone());
    push("WaId", wa_id);
    push("ProfileName", name.to_owned());
    push("SmsStatus", "received".into());
    push("NumSegments", "1".into());
    push("ReferralNumMedia", "0".into());
    push("ApiVersion", "2010-04-01".into());
    match kind {
        Kind::Text => {
            push("MessageType", "text".into());
            push(
                "Body",
                TEXTS[((mix >> 8) % TEXTS.len() as u64) as usize].into(),
            );
            push("NumMedia", "0".into());
        }
        Kind::Image => {
            push("MessageType", "image".into());
            push("Body", String::new());
            push("NumMedia", "1".into());
            push(
                "MediaUrl0",
                format!(
                    "https://api.twilio.com/2010-04-01/Accounts/{}/Messages/{sid}/Media/ME{:032x}",
                    plan.account_sid, mix
                ),
            );
            push("MediaContentType0", "image/jpeg".into());
        }
        Kind::Location => {
            let (lat, lon, label) = PLACES[((mix >> 8) % PLACES.len() as u64) as usize];
            push("MessageType", "location".into());
            push("Body", String::new());
            push("NumMedia", "0".into());
            push("Latitude", lat.into());
            push("Longitude", lon.into());
            push("Address", label.into());
            push("Label", label.into());
        }
        Kind::Stop => {
            push("MessageType", "text".into());
            push("Body", "STOP".into());
            push("NumMedia", "0".into());
        }
        Kind::Start => {
            push("MessageType", "text".into());
            push("Body", "START".into());
            push("NumMedia", "0".into());
        }
    }
    (kind, p)
}

/// Progress as it happens.
pub trait Progress: Send + Sync {
    fn update(&self, done: u64, total: u64, accepted: u64, elapsed: Duration);
}

/// Sends `plan.total()` messages at `plan.rate` per second and waits for every answer.
pub async fn run(plan: &Plan, progress: &dyn Progress) -> anyhow::Result<Report> {
    anyhow::ensure!(
        plan.rate > 0.0 && plan.rate.is_finite(),
        "--rate must be above zero"
    );
    anyhow::ensure!(
        plan.rate <= 10_000.0,
        "--rate above 10000 per second is a load test; use bench/ for that"
    );
    let url = format!("{}/wa", plan.url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let total = plan.total();
    let salt: u64 = rand::random::<u64>() >> 1;
    let slots = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(Kind, Result<u16, String>, Duration)>();
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / plan.rate);

    let producer = {
        let http = http.clone();
        let plan = plan.clone();
        let slots = slots.clone();
        async move {
            for n in 0..total {
                // Steady pacing against the start time, so slow answers do not slow the rate.
                let due = started + period.mul_f64(n as f64);
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (kind, params) = message(&plan, n, salt);
                let sig = signature::compute(plan.token.expose_secret().as_bytes(), &url, &params);
                let http = http.clone();
                let url = url.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .header("X-Twilio-Signature", sig)
                        .form(&params)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .map_err(|e| error_chain(&e));
                    let _ = tx.send((kind, r, t.elapsed()));
                    drop(permit);
                });
            }
        }
    };
    let producing = tokio::spawn(producer);

    let mut report = Report::default();
    let mut latencies = Vec::with_capacity(total as usize);
    let mut kinds: std::collections::HashMap<Kind, u64> = std::collections::HashMap::new();
    let mut first_error: Option<String> = None;
    let mut last_progress = Instant::now();
    while report.sent < total {
        let Some((kind, result, latency)) = rx.recv().await else {
            break;
        };
        report.sent += 1;
        *kinds.entry(kind).or_default() += 1;
        latencies.push(latency);
        match result {
            Ok(s) if (200..300).contains(&s) => report.accepted += 1,
            Ok(s) => match report.refused.iter_mut().find(|(c, _)| *c == s) {
                Some((_, n)) => *n += 1,
                None => report.refused.push((s, 1)),
            },
            Err(e) => {
                report.failed += 1;
                first_error.get_or_insert(e);
            }
        }
        if last_progress.elapsed() >= Duration::from_millis(200) || report.sent == total {
            progress.update(report.sent, total, report.accepted, started.elapsed());
            last_progress = Instant::now();
        }
    }
    producing.await?;
    report.elapsed = started.elapsed();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    report.p50 = pick(0.5);
    report.p99 = pick(0.99);
    report.by_kind = KIND_ORDER
        .iter()
        .map(|k| (*k, kinds.get(k).copied().unwrap_or(0)))
        .collect();
    if let Some(e) = first_error {
        tracing::warn!(error = %e, "some requests got no answer");
    }
    Ok(report)
}

/// An error with its causes, `outer: inner: root`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

const KIND_ORDER: [Kind; 5] = [
    Kind::Text,
    Kind::Image,
    Kind::Location,
    Kind::Stop,
    Kind::Start,
];

/// Parses a duration such as `60s`, `2m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 60s, 2m or 500ms"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use ms, s, m or h"
            ));
        }
    };
    if !(secs > 0.0 && secs.is_finite() && secs <= 7.0 * 86_400.0) {
        return Err(format!("{s:?} must be above zero and at most a week"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            url: "http://127.0.0.1:8080".into(),
            token: SecretString::from("t".to_owned()),
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            to: "whatsapp:+14155238886".into(),
            rate: 20.0,
            duration: Duration::from_secs(60),
            customers: 50,
            concurrency: 8,
        }
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_kind_appears_in_each_cycle_with_twilios_fields() {
        let plan = plan();
        let mut seen = std::collections::HashSet::new();
        for n in 0..20 {
            let (kind, p) = message(&plan, n, 7);
            seen.insert(kind);
            let sid = get(&p, "MessageSid").unwrap();
            assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
            assert!(get(&p, "From").unwrap().starts_with("whatsapp:+9199"));
            assert_eq!(get(&p, "To"), Some("whatsapp:+14155238886"));
            match kind {
                Kind::Image => {
                    assert_eq!(get(&p, "NumMedia"), Some("1"));
                    assert_eq!(get(&p, "MediaContentType0"), Some("image/jpeg"));
                }
                Kind::Location => assert!(get(&p, "Latitude").is_some()),
                Kind::Stop => assert_eq!(get(&p, "Body"), Some("STOP")),
                Kind::Start => assert_eq!(get(&p, "Body"), Some("START")),
                Kind::Text => assert!(!get(&p, "Body").unwrap().is_empty()),
            }
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(plan.total(), 1200);
        let (_, a) = message(&plan, 3, 1);
        let (_, b) = message(&plan, 3, 2);
        assert_ne!(
            get(&a, "MessageSid"),
            get(&b, "MessageSid"),
            "runs do not collide"
        );
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "0s", "abc", "5 parsecs", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
