//! The `wadash doctor` self-test's probe: a status callback signed exactly as Twilio signs one,
//! sent through the public URL to `/sts?wadash_doctor_probe=<nonce>`. wadash answers it after
//! the signature check and stores nothing; the answer says what wadash saw, so doctor can name
//! what a proxy changed. Also what "public URL on plain http outside loopback" means.
//!
//! A probe is recognised by the query string alone (one prefix comparison, on a string that is
//! empty for Twilio's own callbacks), so the cost of a normal callback does not change. A probe
//! still needs a valid signature to be answered as accepted; what a rejected probe is told is
//! what its sender already has (the URL wadash checked, which is `WADASH_PUBLIC_URL` + the path
//! and query it sent, and the hash of the body it sent). It has no `MessageSid`, so a wadash
//! without probe support answers it 400 and stores nothing either.

use serde::{Deserialize, Serialize};

/// The query parameter that marks a probe (always the first and only one).
pub const PARAM: &str = "wadash_doctor_probe";

/// The probe's nonce when `query` is a probe's (`wadash_doctor_probe=<1–64 letters/digits>`).
pub fn nonce_of(query: &str) -> Option<&str> {
    let nonce = query.strip_prefix(PARAM)?.strip_prefix('=')?;
    (!nonce.is_empty() && nonce.len() <= 64 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(nonce)
}

/// What happened to the probe's `X-Twilio-Signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureSeen {
    /// No header arrived.
    Missing,
    /// It did not match the URL and parameters wadash checked.
    Invalid,
    Valid,
}

/// wadash's answer to a probe (the `probe` member of its JSON answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// The probe's nonce, echoed.
    pub nonce: String,
    pub signature: SignatureSeen,
    /// The URL the signature was checked against: `WADASH_PUBLIC_URL` + path + query.
    pub checked_url: String,
    /// SHA-256 (hex) of the body as it arrived.
    pub body_sha256: String,
    /// Only for a valid signature: the `X-Forwarded-Proto` that arrived (first value), or the
    /// `proto` of a `Forwarded` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_proto: Option<String>,
    /// Only for a valid signature: the `Host` header that arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The host of `url` when it is plain `http://` and the host is not loopback: Twilio's
/// signatures and the dashboard's passwords would cross the network unencrypted.
pub fn plain_http_outside_loopback(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed.host_str()?;
    (!is_loopback(host)).then(|| host.to_owned())
}

/// `localhost` (and names under it), 127.0.0.0/8 and ::1 (with or without brackets), as a
/// URL's host is written.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let d = h.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_first_parameter_is_a_probe() {
        assert_eq!(nonce_of("wadash_doctor_probe=abc123"), Some("abc123"));
        assert_eq!(nonce_of(""), None);
        assert_eq!(nonce_of("reply=5"), None);
        assert_eq!(nonce_of("wadash_doctor_probe="), None);
        assert_eq!(nonce_of("wadash_doctor_probe=a%20b"), None);
        assert_eq!(nonce_of("wadash_doctor_probe=abc&x=1"), None);
        assert_eq!(nonce_of("wadash_doctor_probex=abc"), None);
        assert_eq!(nonce_of(&format!("{PARAM}={}", "a".repeat(65))), None);
    }

    #[test]
    fn plain_http_is_flagged_outside_loopback_only() {
        assert_eq!(
            plain_http_outside_loopback("http://wa.example.com"),
            Some("wa.example.com".into())
        );
        assert_eq!(
            plain_http_outside_loopback("http://10.0.0.5:8080"),
            Some("10.0.0.5".into())
        );
        for fine in [
            "https://wa.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:8080/x",
            "http://[::1]:8080",
            "http://a.localhost",
        ] {
            assert_eq!(plain_http_outside_loopback(fine), None, "{fine}");
        }
    }

    #[test]
    fn the_answer_round_trips_without_the_fields_a_rejected_probe_does_not_get() {
        let a = ProbeAnswer {
            nonce: "n1".into(),
            signature: SignatureSeen::Invalid,
            checked_url: "https://x/sts?wadash_doctor_probe=n1".into(),
            body_sha256: "00".into(),
            forwarded_proto: None,
            host: None,
        };
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["signature"], "invalid");
        assert!(json.get("host").is_none() && json.get("forwarded_proto").is_none());
        assert_eq!(serde_json::from_value::<ProbeAnswer>(json).unwrap(), a);
    }
}
