//! `X-Twilio-Signature` validation.
//!
//! Twilio signs each webhook with `base64(HMAC-SHA1(auth_token, url + params))` where `params`
//! is every POST parameter as `name + value`, sorted by name (byte-wise), with repeated names
//! contributing each distinct value in sorted order. Requests with a JSON body instead carry
//! `bodySHA256=<hex sha256 of the body>` in the query string and sign the URL alone.
//! Proxies and load balancers disagree on whether the default port appears in the URL, so —
//! like Twilio's own helper libraries — we accept a signature over the URL with the port
//! removed or with the scheme's default port added.
//! See https://www.twilio.com/docs/usage/security#validating-requests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use sha2::Digest;

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// What was signed besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum SignedBody<'a> {
    /// `application/x-www-form-urlencoded` parameters, in any order.
    Form(&'a [(String, String)]),
    /// A raw (JSON) body whose SHA-256 is carried in the URL's `bodySHA256` parameter.
    Raw(&'a [u8]),
}

/// Computes the signature Twilio would send for `url` and `params` with `auth_token`.
pub fn compute(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac_for(auth_token, url, params).finalize().into_bytes())
}

fn mac_for(auth_token: &[u8], url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(auth_token).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// True when `signature` (the header value) matches `url` and `body` under any of `tokens`.
/// Comparison is constant-time; every variant is tried so timing does not reveal which one
/// matched.
pub fn is_valid(tokens: &[&[u8]], signature: &str, url: &str, body: SignedBody<'_>) -> bool {
    let Ok(given) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let params: &[(String, String)] = match body {
        SignedBody::Form(p) => p,
        SignedBody::Raw(raw) => {
            if !body_hash_matches(url, raw) {
                return false;
            }
            &[]
        }
    };
    let variants = [with_default_port(url), without_port(url)];
    let mut ok = false;
    for token in tokens {
        for variant in &variants {
            ok |= mac_for(token, variant, params).verify_slice(&given).is_ok();
        }
    }
    ok
}

fn body_hash_matches(url: &str, raw: &[u8]) -> bool {
    let Some(query) = url.split_once('?').map(|(_, q)| q) else {
        return false;
    };
    let Some(expected) = url_param(query, "bodySHA256") else {
        return false;
    };
    let actual = crate::domain::hex(&sha2::Sha256::digest(raw));
    // Constant-time: the hash is public, but there is no reason to leak a prefix match.
    let expected = expected.to_ascii_lowercase();
    expected.len() == actual.len()
        && expected
            .bytes()
            .zip(actual.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn url_param(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Splits `scheme://authority/rest` into its parts; `None` when the URL has no scheme.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

/// The authority without its port (IPv6 literals keep their brackets).
fn host_of(authority: &str) -> &str {
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let hostport = &authority[host_start..];
    match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => &authority[..host_start + i],
        _ => authority,
    }
}

fn without_port(url: &str) -> String {
    match split_url(url) {
        Some((scheme, authority, rest)) => format!("{scheme}://{}{rest}", host_of(authority)),
        None => url.to_owned(),
    }
}

fn with_default_port(url: &str) -> String {
    let Some((scheme, authority, rest)) = split_url(url) else {
        return url.to_owned();
    };
    if host_of(authority) != authority {
        return url.to_owned(); // a port is already present
    }
    let port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return url.to_owned(),
    };
    format!("{scheme}://{authority}:{port}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/signature-vectors.json"
        );
        serde_json::from_str(
            &std::fs::read_to_string(path).expect("shared fixtures beside the repo"),
        )
        .unwrap()
    }

    fn params_of(case: &Value, all: &Value) -> Vec<(String, String)> {
        let obj_pairs = |v: &Value| -> Vec<(String, String)> {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        };
        if let Some(list) = case.get("params_list") {
            return list
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
                .collect();
        }
        let mut out = Vec::new();
        match case.get("params").and_then(Value::as_str) {
            Some("common") => out.extend(obj_pairs(&all["common_params"])),
            Some("common+extra") => {
                out.extend(obj_pairs(&all["common_params"]));
                out.extend(obj_pairs(&case["params_extra"]));
            }
            _ => {}
        }
        out
    }

    #[test]
    fn every_shared_vector_validates() {
        let all = vectors();
        let token = all["auth_token"].as_str().unwrap().as_bytes();
        let cases = all["cases"].as_array().unwrap();
        assert!(cases.len() >= 9);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let url = case
                .get("request_url")
                .or_else(|| case.get("url"))
                .and_then(Value::as_str)
                .unwrap();
            let sig = case["signature"].as_str().unwrap();
            let params = params_of(case, &all);
            let body = match case.get("body").and_then(Value::as_str) {
                Some(b) => SignedBody::Raw(b.as_bytes()),
                None => SignedBody::Form(&params),
            };
            assert!(
                is_valid(&[token], sig, url, body),
                "vector {name:?} must validate"
            );
            assert!(
                !is_valid(&[b"54321"], sig, url, body),
                "vector {name:?} with the wrong token"
            );
        }
    }

    #[test]
    fn compute_matches_the_base_vector() {
        let all = vectors();
        let case = &all["cases"][0];
        let params = params_of(case, &all);
        assert_eq!(
            compute(b"12345", case["url"].as_str().unwrap(), &params),
            case["signature"].as_str().unwrap()
        );
    }

    #[test]
    fn tampered_parameter_or_url_fails() {
        let params = vec![("MessageStatus".to_owned(), "sent".to_owned())];
        let url = "https://example.com/sts";
        let sig = compute(b"tok", url, &params);
        assert!(is_valid(&[b"tok"], &sig, url, SignedBody::Form(&params)));
        let tampered = vec![("MessageStatus".to_owned(), "read".to_owned())];
        assert!(!is_valid(&[b"tok"], &sig, url, SignedBody::Form(&tampered)));
        assert!(!is_valid(
            &[b"tok"],
            &sig,
            "https://example.com/wa",
            SignedBody::Form(&params)
        ));
        assert!(!is_valid(
            &[b"tok"],
            "not base64!",
            url,
            SignedBody::Form(&params)
        ));
        assert!(!is_valid(&[b"tok"], "", url, SignedBody::Form(&params)));
    }

    #[test]
    fn secondary_token_is_accepted() {
        let url = "https://example.com/sts";
        let sig = compute(b"second", url, &[]);
        assert!(is_valid(
            &[b"first", b"second"],
            &sig,
            url,
            SignedBody::Form(&[])
        ));
    }

    #[test]
    fn json_body_with_wrong_hash_fails_even_with_a_valid_url_signature() {
        let all = vectors();
        let case = all["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c.get("body").is_some())
            .unwrap();
        let url = case["url"].as_str().unwrap();
        let sig = case["signature"].as_str().unwrap();
        assert!(!is_valid(
            &[b"12345"],
            sig,
            url,
            SignedBody::Raw(b"{\"property\": \"other\"}")
        ));
    }

    #[test]
    fn port_variants() {
        assert_eq!(without_port("https://a.b:8443/x?y=1"), "https://a.b/x?y=1");
        assert_eq!(with_default_port("https://a.b/x"), "https://a.b:443/x");
        assert_eq!(with_default_port("http://a.b"), "http://a.b:80");
        assert_eq!(with_default_port("http://a.b:81/"), "http://a.b:81/");
        assert_eq!(without_port("http://[::1]:8080/sts"), "http://[::1]/sts");
        assert_eq!(with_default_port("http://[::1]/sts"), "http://[::1]:80/sts");
    }
}
