//! Twilio resource identifiers (`SM…`/`MM…` message SIDs, `AC…` account SIDs).

use std::fmt;

/// A message SID: two upper-case letters (`SM`, `MM`, …) then letters and digits.
///
/// Real SIDs are 34 characters of hex after the prefix; we accept any ASCII alphanumerics
/// (up to 64) so that anonymised payloads and test data are not rejected, while still refusing
/// anything that could be confused with a path, a query or markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageSid(String);

impl MessageSid {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let bytes = s.as_bytes();
        let ok = bytes.len() >= 4
            && bytes.len() <= 66
            && bytes[0].is_ascii_uppercase()
            && bytes[1].is_ascii_uppercase()
            && bytes.iter().all(u8::is_ascii_alphanumeric);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not a Twilio message SID (expected two capital letters such as SM followed by letters and digits)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for MessageSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_and_anonymised_sids() {
        for ok in [
            "SM45e9b726c0314a5524c3f3cb4ZZZZZ",
            "MM0123456789abcdef0123456789abcdef",
        ] {
            assert!(MessageSid::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "sm123", "SM", "SM12/../x", "SM1<script>", "SM 12"] {
            assert!(MessageSid::parse(bad).is_err(), "{bad}");
        }
    }
}
