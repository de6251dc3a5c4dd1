//! `webhook-self-test`: a status callback signed as Twilio signs one, for
//! `WADASH_PUBLIC_URL/sts?wadash_doctor_probe=<nonce>`, sent to that URL — through DNS, TLS
//! and the proxy, as Twilio's would travel. wadash answers the probe after its signature
//! check and stores nothing (`crate::domain::probe`); what it says it saw names what the path
//! changed: the scheme (`X-Forwarded-Proto`), the path or query, the body, or the
//! `X-Twilio-Signature` header itself.

use secrecy::{ExposeSecret as _, SecretString};
use sha2::Digest as _;

use super::{Check, Context};
use crate::domain::probe::{self, ProbeAnswer, SignatureSeen};

const NAME: &str = "webhook-self-test";

/// The probe's form: no `MessageSid`, so no wadash stores it; characters a proxy might
/// re-encode (`+`, spaces, `&`, non-ASCII) so a rewritten body shows.
fn probe_form(account: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", account),
        ("To", "whatsapp:+14155238886"),
        ("WadashProbe", "wadash doctor: a + b & c = ünïcödé"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

pub(super) async fn run(ctx: &Context<'_>, token: Option<&SecretString>) -> Check {
    let Some(public) = &ctx.settings.public_url else {
        return Check::fail(
            NAME,
            "not run: WADASH_PUBLIC_URL is not set, so there is no URL Twilio would call",
            "fix `public-url` first",
        );
    };
    let Some(token) = token else {
        return match ctx.pool {
            None => Check::warn(
                NAME,
                "not run: no auth token to sign the probe with (simulator mode, and the database is unreachable)",
                "fix `database` first",
            ),
            Some(_) => Check::warn(
                NAME,
                "not run: simulator mode, and no `wadash serve` has run on this database yet to make the simulator's auth token",
                "start `wadash serve` once, or configure TWILIO_AUTH_TOKEN",
            ),
        };
    };
    let nonce = crate::domain::random_hex(16);
    let url = format!("{public}/sts?{}={nonce}", probe::PARAM);
    let account = ctx
        .effective
        .set
        .account_sid
        .clone()
        .unwrap_or_else(|| "AC00000000000000000000000000000000".into());
    let form = probe_form(&account);
    let signature =
        crate::twilio::signature::compute(token.expose_secret().as_bytes(), &url, &form);
    let body = serde_urlencoded::to_string(&form).expect("a form of strings encodes");
    let sent_sha = crate::domain::hex(&sha2::Sha256::digest(body.as_bytes()));
    let started = std::time::Instant::now();
    let sent = ctx
        .http
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return unreachable(public, &e),
    };
    let took = started.elapsed().as_millis();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    let answer: Option<ProbeAnswer> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("probe")?.clone()).ok())
        .filter(|a: &ProbeAnswer| a.nonce == nonce);
    judge(
        &Sent {
            public,
            url: &url,
            sha: &sent_sha,
            took,
        },
        status,
        location,
        answer,
        &text,
    )
}

/// What was sent.
struct Sent<'a> {
    public: &'a str,
    url: &'a str,
    sha: &'a str,
    took: u128,
}

fn judge(
    sent: &Sent<'_>,
    status: u16,
    location: Option<String>,
    answer: Option<ProbeAnswer>,
    text: &str,
) -> Check {
    let Sent { public, url, .. } = *sent;
    let sts = format!("{public}/sts");
    match (status, answer) {
        (200, Some(a)) => accepted(sent, &a),
        (403, Some(a)) => rejected(sent, &a),
        (300..=399, _) => Check::fail(
            NAME,
            format!(
                "{sts} answers {status} redirecting to {}: Twilio does not follow a redirect with its POST, and signs the URL it was given",
                location.as_deref().unwrap_or("nowhere")
            ),
            "set WADASH_PUBLIC_URL (and the senders' webhooks) to the final URL, or stop the proxy redirecting /wa and /sts",
        ),
        (404, _) => Check::fail(
            NAME,
            format!("{sts} answers 404: whatever listens there has no /sts"),
            "if WADASH_PUBLIC_URL has a path prefix, make the proxy strip it before passing the request to wadash; otherwise check that the proxy forwards to wadash",
        ),
        (400, None) if text.contains("MessageSid") => Check::warn(
            NAME,
            format!(
                "{sts} accepted the signature, but the wadash behind it is an older version that does not answer probes"
            ),
            "upgrade every instance behind the proxy to this version, then run doctor again",
        ),
        (403, None) => Check::fail(
            NAME,
            format!(
                "{sts} refused the probe with 403, and not as this wadash version would: {}",
                snippet(text)
            ),
            "check that the proxy forwards to this wadash version, and that it does not refuse the request itself (a WAF rule, an allow-list)",
        ),
        (502..=504, _) => Check::fail(
            NAME,
            format!("{sts} answers {status}: the proxy cannot reach wadash"),
            "start wadash (`systemctl status wadash`) and check the proxy's upstream address",
        ),
        (413, _) => Check::fail(
            NAME,
            format!(
                "{sts} answers 413 to a {}-byte body: the proxy's body limit is too small",
                text.len()
            ),
            "allow bodies of at least 64 KiB on /wa and /sts (nginx: client_max_body_size 64k)",
        ),
        _ => Check::fail(
            NAME,
            format!(
                "{url} answered {status}, not wadash's probe answer: {}",
                snippet(text)
            ),
            "check that WADASH_PUBLIC_URL reaches this wadash through the proxy",
        ),
    }
}

fn accepted(sent: &Sent<'_>, a: &ProbeAnswer) -> Check {
    let public = sent.public;
    let scheme = public.split("://").next().unwrap_or("https");
    let seen_scheme = a.forwarded_proto.as_deref().unwrap_or("http");
    if !seen_scheme.eq_ignore_ascii_case(scheme) {
        let seen = format!(
            "{seen_scheme}://{}/sts",
            a.host.as_deref().unwrap_or("(no Host)")
        );
        let what = match &a.forwarded_proto {
            None => "the proxy drops X-Forwarded-Proto".to_owned(),
            Some(p) => format!("the proxy sends X-Forwarded-Proto: {p}"),
        };
        return Check::fail(
            NAME,
            format!(
                "{what}: wadash saw the request as {seen} while Twilio signs {public}/sts. The signature still matched because wadash checks it against WADASH_PUBLIC_URL, but the proxy does not pass on what Twilio called"
            ),
            format!(
                "make the proxy send X-Forwarded-Proto: {scheme} (nginx: proxy_set_header X-Forwarded-Proto $scheme; Caddy sends it by itself)"
            ),
        );
    }
    Check::ok(
        NAME,
        format!(
            "a probe signed for {public}/sts went through and wadash accepted its signature in {} ms (nothing stored)",
            sent.took
        ),
    )
}

fn rejected(sent: &Sent<'_>, a: &ProbeAnswer) -> Check {
    let Sent {
        public, url, sha, ..
    } = *sent;
    if a.signature == SignatureSeen::Missing {
        return Check::fail(
            NAME,
            format!(
                "X-Twilio-Signature did not reach wadash: the proxy in front of {public} strips the header, so every webhook is refused with 403"
            ),
            "make the proxy pass every request header on to wadash (nginx does by default; look for proxy_set_header X-Twilio-Signature \"\" or a header allow-list)",
        );
    }
    if a.body_sha256 != sha {
        return Check::fail(
            NAME,
            format!(
                "the proxy in front of {public} changed the body (wadash received other bytes than were sent): the signature covers every parameter, so every webhook is refused with 403"
            ),
            "pass the body through unchanged (no re-encoding, no form rewriting or WAF body normalisation on /wa and /sts)",
        );
    }
    if a.checked_url != url {
        return Check::fail(
            NAME,
            format!(
                "wadash checked the signature against {} but Twilio signs {url}: {}",
                a.checked_url,
                difference(url, &a.checked_url)
            ),
            "give every instance the same WADASH_PUBLIC_URL as Twilio's webhooks use, and make the proxy pass path and query through unchanged (strip only the prefix that is in WADASH_PUBLIC_URL)",
        );
    }
    Check::fail(
        NAME,
        format!(
            "wadash received the probe for {url} unchanged, but refused its signature: the instance behind {public} validates with another auth token than this doctor's"
        ),
        "give every instance the same TWILIO_AUTH_TOKEN (or credentials file / stored credentials) as this server, and restart or reload them",
    )
}

/// Which part of the URL differs, in the words an operator uses.
fn difference(signed: &str, checked: &str) -> String {
    let (Ok(s), Ok(c)) = (reqwest::Url::parse(signed), reqwest::Url::parse(checked)) else {
        return "the URLs differ".into();
    };
    if s.scheme() != c.scheme() {
        return format!(
            "the scheme differs ({} instead of {}): that instance's WADASH_PUBLIC_URL says {}",
            c.scheme(),
            s.scheme(),
            c.scheme()
        );
    }
    if s.host_str() != c.host_str() {
        return format!(
            "the host differs ({} instead of {}): that instance has another WADASH_PUBLIC_URL",
            c.host_str().unwrap_or("none"),
            s.host_str().unwrap_or("none")
        );
    }
    if s.port_or_known_default() != c.port_or_known_default() {
        return format!(
            "a port is added ({} instead of {}): that instance's WADASH_PUBLIC_URL names a port Twilio does not call",
            c.port_or_known_default().unwrap_or(0),
            s.port_or_known_default().unwrap_or(0)
        );
    }
    if s.path() != c.path() {
        return format!(
            "the path differs ({} instead of {}): the proxy adds or strips a path prefix that WADASH_PUBLIC_URL does not account for",
            c.path(),
            s.path()
        );
    }
    if s.query() != c.query() {
        return format!(
            "the query string differs ({} instead of {}): the proxy rewrites it",
            c.query().unwrap_or("none"),
            s.query().unwrap_or("none")
        );
    }
    "they differ only in how they are written".into()
}

fn unreachable(public: &str, e: &reqwest::Error) -> Check {
    // The whole chain: reqwest's top-level text hides the TLS or DNS cause.
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    let tls = cause.contains("certificate") || cause.contains("tls") || cause.contains("TLS");
    Check::fail(
        NAME,
        format!("cannot reach {public}/sts: {cause}"),
        if tls {
            "serve a certificate Twilio trusts (a public CA such as Let's Encrypt); for a private CA in tests, SSL_CERT_FILE=/path/to/ca.pem lets doctor trust it"
        } else if e.is_timeout() {
            "open port 443 to the proxy (firewall, security group) and check that the proxy runs"
        } else {
            "check DNS, that the proxy listens on the URL's port, and the firewall"
        },
    )
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(160).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(signature: SignatureSeen, checked_url: &str, sha: &str) -> ProbeAnswer {
        ProbeAnswer {
            nonce: "n".into(),
            signature,
            checked_url: checked_url.into(),
            body_sha256: sha.into(),
            forwarded_proto: None,
            host: None,
        }
    }

    const URL: &str = "https://wa.example.com/sts?wadash_doctor_probe=n";

    fn sent() -> Sent<'static> {
        Sent {
            public: "https://wa.example.com",
            url: URL,
            sha: "aa",
            took: 3,
        }
    }

    #[test]
    fn each_rejection_names_its_cause() {
        let c = rejected(&sent(), &answer(SignatureSeen::Missing, URL, "aa"));
        assert!(
            c.detail.contains("X-Twilio-Signature did not reach"),
            "{}",
            c.detail
        );
        let c = rejected(&sent(), &answer(SignatureSeen::Invalid, URL, "bb"));
        assert!(c.detail.contains("changed the body"), "{}", c.detail);
        let c = rejected(
            &sent(),
            &answer(
                SignatureSeen::Invalid,
                "http://wa.example.com/sts?wadash_doctor_probe=n",
                "aa",
            ),
        );
        assert!(
            c.detail.contains("scheme differs (http instead of https)"),
            "{}",
            c.detail
        );
        let c = rejected(
            &sent(),
            &answer(
                SignatureSeen::Invalid,
                "https://wa.example.com:8443/sts?wadash_doctor_probe=n",
                "aa",
            ),
        );
        assert!(
            c.detail.contains("a port is added (8443 instead of 443)"),
            "{}",
            c.detail
        );
        let c = rejected(
            &sent(),
            &answer(
                SignatureSeen::Invalid,
                "https://wa.example.com/wadash/sts?wadash_doctor_probe=n",
                "aa",
            ),
        );
        assert!(c.detail.contains("path prefix"), "{}", c.detail);
        let c = rejected(&sent(), &answer(SignatureSeen::Invalid, URL, "aa"));
        assert!(c.detail.contains("another auth token"), "{}", c.detail);
    }

    #[test]
    fn an_accepted_probe_still_fails_when_the_scheme_is_lost() {
        let mut a = answer(SignatureSeen::Valid, URL, "aa");
        a.host = Some("wa.example.com".into());
        let c = accepted(&sent(), &a);
        assert_eq!(c.status, super::super::Status::Fail);
        assert!(c.detail.contains("drops X-Forwarded-Proto"), "{}", c.detail);
        assert!(
            c.detail.contains("http://wa.example.com/sts"),
            "{}",
            c.detail
        );
        a.forwarded_proto = Some("https".into());
        assert_eq!(accepted(&sent(), &a).status, super::super::Status::Ok);
    }

    #[test]
    fn other_answers_are_explained() {
        let c = judge(&sent(), 404, None, None, "");
        assert!(c.detail.contains("404"));
        let c = judge(&sent(), 301, Some("https://x/".into()), None, "");
        assert!(c.detail.contains("redirecting to https://x/"));
        let c = judge(&sent(), 502, None, None, "bad gateway");
        assert!(c.detail.contains("cannot reach wadash"));
        let c = judge(
            &sent(),
            400,
            None,
            None,
            r#"{"error":{"code":"invalid_webhook","message":"missing MessageSid (or SmsSid): Twilio always sends one"}}"#,
        );
        assert_eq!(c.status, super::super::Status::Warn);
    }
}
