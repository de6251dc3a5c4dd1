//! Phone numbers (E.164) and WhatsApp addresses (`whatsapp:+…`).

use std::fmt;

/// The Twilio WhatsApp sandbox's number, the sender when none is configured.
pub const SANDBOX_SENDER: &str = "whatsapp:+14155238886";

/// A phone number in E.164 form: `+`, a non-zero digit, 7 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `+919900000000`, `whatsapp:+919900000000` and common separators
    /// (spaces, dashes, dots, parentheses); a number without `+` is refused because its
    /// country cannot be known.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let without_channel = trimmed
            .strip_prefix("whatsapp:")
            .or_else(|| trimmed.strip_prefix("WhatsApp:"))
            .unwrap_or(trimmed)
            .trim();
        let Some(rest) = without_channel.strip_prefix('+') else {
            return Err(format!(
                "{raw:?} is not an international number: write it in E.164 form, e.g. +919900000000"
            ));
        };
        let mut digits = String::with_capacity(16);
        digits.push('+');
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(format!(
                        "{raw:?} contains {c:?}, which is not part of a phone number"
                    ));
                }
            }
        }
        let n = digits.len() - 1;
        if !(7..=15).contains(&n) || digits.as_bytes()[1] == b'0' {
            return Err(format!(
                "{raw:?} is not a valid E.164 number (a country code then 7 to 15 digits in all)"
            ));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn whatsapp(&self) -> WhatsAppAddress {
        WhatsAppAddress(format!("whatsapp:{}", self.0))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Twilio WhatsApp channel address, `whatsapp:+<E.164>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WhatsAppAddress(String);

impl WhatsAppAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        PhoneNumber::parse(raw).map(|p| p.whatsapp())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn number(&self) -> &str {
        &self.0["whatsapp:".len()..]
    }
}

impl fmt::Display for WhatsAppAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_accepted_forms() {
        for (raw, want) in [
            ("+919900000000", "+919900000000"),
            ("whatsapp:+14155238886", "+14155238886"),
            (" +1 (415) 523-8886 ", "+14155238886"),
        ] {
            assert_eq!(PhoneNumber::parse(raw).unwrap().as_str(), want);
        }
        assert_eq!(
            WhatsAppAddress::parse("+14155238886").unwrap().as_str(),
            "whatsapp:+14155238886"
        );
    }

    #[test]
    fn refuses_what_is_not_e164() {
        for bad in [
            "919900000000",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+91abc",
            "",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
