//! What an admin types to register a WhatsApp number at Twilio (the wizard's forms and
//! `POST /api/v1/senders/register`), checked before anything is sent to Twilio: each refusal
//! names its field.

use serde::{Deserialize, Serialize};

use crate::domain::destination::{AllowList, check_url};
use crate::domain::{PhoneNumber, WhatsAppAddress};
use crate::twilio::messaging::Profile;

/// Meta's business verticals, as Twilio's Senders API lists them (`profile.vertical`).
pub const VERTICALS: [&str; 22] = [
    "Alcohol",
    "Automotive",
    "Beauty, Spa and Salon",
    "Clothing and Apparel",
    "Education",
    "Entertainment",
    "Event Planning and Service",
    "Finance and Banking",
    "Food and Grocery",
    "Hotel and Lodging",
    "Matrimony Service",
    "Medical and Health",
    "Non-profit",
    "Online Gambling",
    "OTC Drugs",
    "Other",
    "Physical Gambling",
    "Professional Services",
    "Public Service",
    "Restaurant",
    "Shopping and Retail",
    "Travel and Transportation",
];

/// How WhatsApp sends the one-time code that proves the number is the business's.
pub const METHODS: [&str; 2] = ["sms", "voice"];

/// WhatsApp's longest "about" text.
pub const ABOUT_MAX: usize = 139;
/// Meta lets a business profile show two websites.
pub const WEBSITES_MAX: usize = 2;

/// A refusal naming the field: `profile.about: is 140 characters; at most 139`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The first step: which number, in which WhatsApp Business Account, verified how.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct NumberInput {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub waba_id: String,
    #[serde(default)]
    pub verification_method: String,
}

/// The WhatsApp Business profile as typed (kept with the registration, to resume it).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub about: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub logo_url: String,
    #[serde(default)]
    pub vertical: String,
    #[serde(default)]
    pub websites: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
}

/// The whole registration at once (the API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub waba_id: String,
    #[serde(default)]
    pub verification_method: String,
    #[serde(default)]
    pub profile: ProfileInput,
}

impl RegisterInput {
    pub fn number_input(&self) -> NumberInput {
        NumberInput {
            number: self.number.clone(),
            waba_id: self.waba_id.clone(),
            verification_method: self.verification_method.clone(),
        }
    }
}

/// The first step, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub number: PhoneNumber,
    pub waba_id: String,
    pub verification_method: &'static str,
}

impl Number {
    pub fn address(&self) -> WhatsAppAddress {
        self.number.whatsapp()
    }
}

/// Checks the number (E.164), the WABA id (Meta's numeric id) and the verification method
/// (`sms` unless `voice` is asked for).
pub fn check_number(i: &NumberInput) -> Result<Number, Invalid> {
    let number = PhoneNumber::parse(&i.number).map_err(|e| invalid("number", e))?;
    let waba = i.waba_id.trim();
    if waba.is_empty() {
        return Err(invalid(
            "waba_id",
            "is required: the WhatsApp Business Account id, as Meta's Business Manager shows it",
        ));
    }
    if !waba.bytes().all(|b| b.is_ascii_digit()) || !(6..=20).contains(&waba.len()) {
        return Err(invalid(
            "waba_id",
            format!(
                "{waba:?} is not a WhatsApp Business Account id: 6 to 20 digits, e.g. 104567891234567"
            ),
        ));
    }
    let method = match i.verification_method.trim() {
        "" | "sms" => "sms",
        "voice" => "voice",
        other => {
            return Err(invalid(
                "verification_method",
                format!("must be sms or voice, not {other:?}"),
            ));
        }
    };
    Ok(Number {
        number,
        waba_id: waba.to_owned(),
        verification_method: method,
    })
}

/// Optional text: trimmed, empty is none, at most `max` characters.
fn text(field: &str, s: &str, max: usize) -> Result<Option<String>, Invalid> {
    let t = s.trim();
    let n = t.chars().count();
    if n > max {
        return Err(invalid(field, format!("is {n} characters; at most {max}")));
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

/// An https URL on a public host (Meta fetches it, not wadash, but a private address could
/// never be fetched).
fn https_url(field: &str, s: &str) -> Result<String, Invalid> {
    let url = check_url(s, &AllowList::default()).map_err(|e| invalid(field, e.to_string()))?;
    if url.scheme() != "https" {
        return Err(invalid(
            field,
            "must be an https:// URL, such as https://example.com/logo.png",
        ));
    }
    if s.trim().len() > 256 {
        return Err(invalid(field, "is longer than 256 characters"));
    }
    Ok(s.trim().to_owned())
}

fn email(field: &str, s: &str) -> Result<String, Invalid> {
    let t = s.trim();
    let ok = t.len() <= 128
        && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        && t.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(t.to_owned())
    } else {
        Err(invalid(
            field,
            format!("{t:?} is not an email address such as help@example.com"),
        ))
    }
}

/// Checks the profile: a display name (Meta reviews it against its guidelines), about text
/// within WhatsApp's 139 characters, a vertical from Meta's list, https URLs for the logo
/// and websites, email addresses.
pub fn check_profile(p: &ProfileInput) -> Result<Profile, Invalid> {
    let name = text("profile.name", &p.name, 100)?.ok_or_else(|| {
        invalid(
            "profile.name",
            "is required: the display name WhatsApp shows, following Meta's display name guidelines",
        )
    })?;
    let about = text("profile.about", &p.about, ABOUT_MAX)?;
    let address = text("profile.address", &p.address, 256)?;
    let description = text("profile.description", &p.description, 512)?;
    let logo_url = match p.logo_url.trim() {
        "" => None,
        u => Some(https_url("profile.logo_url", u)?),
    };
    let vertical = match p.vertical.trim() {
        "" => None,
        v => Some(
            VERTICALS
                .iter()
                .find(|x| x.eq_ignore_ascii_case(v))
                .map(|x| (*x).to_owned())
                .ok_or_else(|| {
                    invalid(
                        "profile.vertical",
                        format!(
                            "{v:?} is not one of Meta's verticals ({})",
                            VERTICALS.join("; ")
                        ),
                    )
                })?,
        ),
    };
    let websites: Vec<&str> = p
        .websites
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .collect();
    if websites.len() > WEBSITES_MAX {
        return Err(invalid(
            "profile.websites",
            format!("at most {WEBSITES_MAX} websites"),
        ));
    }
    let websites = websites
        .iter()
        .enumerate()
        .map(|(i, w)| https_url(&format!("profile.websites[{i}]"), w))
        .collect::<Result<Vec<_>, _>>()?;
    let emails: Vec<&str> = p
        .emails
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if emails.len() > 1 {
        return Err(invalid(
            "profile.emails",
            "a WhatsApp business profile has one email address",
        ));
    }
    let emails = emails
        .iter()
        .enumerate()
        .map(|(i, e)| email(&format!("profile.emails[{i}]"), e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Profile {
        name,
        about,
        address,
        description,
        logo_url,
        vertical,
        websites,
        emails,
    })
}

/// The code WhatsApp sent: six digits (spaces typed between them are ignored).
pub fn check_code(code: &str) -> Result<String, Invalid> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(invalid(
            "code",
            "must be the 6 digits WhatsApp sent by SMS or voice call",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str, waba: &str, method: &str) -> Result<Number, Invalid> {
        check_number(&NumberInput {
            number: n.into(),
            waba_id: waba.into(),
            verification_method: method.into(),
        })
    }

    fn profile(f: impl FnOnce(&mut ProfileInput)) -> Result<Profile, Invalid> {
        let mut p = ProfileInput {
            name: "Owl Air".into(),
            ..Default::default()
        };
        f(&mut p);
        check_profile(&p)
    }

    fn field<T: std::fmt::Debug>(r: Result<T, Invalid>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn the_number_step_takes_e164_a_numeric_waba_id_and_sms_or_voice() {
        let ok = number(" +1 501-712-2661 ", " 104567891234567 ", "").unwrap();
        assert_eq!(ok.address().as_str(), "whatsapp:+15017122661");
        assert_eq!(
            (ok.waba_id.as_str(), ok.verification_method),
            ("104567891234567", "sms")
        );
        assert_eq!(
            number("+15017122661", "123456", "voice")
                .unwrap()
                .verification_method,
            "voice"
        );
        assert_eq!(field(number("15017122661", "123456", "sms")), "number");
        assert_eq!(field(number("+1501", "123456", "sms")), "number");
        assert_eq!(field(number("+15017122661", "", "sms")), "waba_id");
        assert_eq!(field(number("+15017122661", "12345", "sms")), "waba_id");
        assert_eq!(field(number("+15017122661", "12345a789", "sms")), "waba_id");
        assert_eq!(
            field(number("+15017122661", &"1".repeat(21), "sms")),
            "waba_id"
        );
        assert_eq!(
            field(number("+15017122661", "123456", "fax")),
            "verification_method"
        );
    }

    #[test]
    fn the_profile_needs_a_name_and_keeps_to_whatsapps_limits() {
        let p = profile(|p| {
            p.about = "x".repeat(139);
            p.vertical = "travel and transportation".into();
            p.logo_url = "https://owl.example/logo.png".into();
            p.websites = vec!["https://owl.example".into(), " ".into()];
            p.emails = vec!["help@owl.example".into()];
        })
        .unwrap();
        assert_eq!(p.vertical.as_deref(), Some("Travel and Transportation"));
        assert_eq!(p.websites, ["https://owl.example"]);
        assert_eq!(p.about.unwrap().chars().count(), 139);
        assert_eq!(field(profile(|p| p.name = "  ".into())), "profile.name");
        assert_eq!(
            field(profile(|p| p.about = "é".repeat(140))),
            "profile.about"
        );
        assert_eq!(
            field(profile(|p| p.vertical = "Airline".into())),
            "profile.vertical"
        );
        assert_eq!(
            field(profile(|p| p.logo_url = "http://owl.example/l.png".into())),
            "profile.logo_url"
        );
        assert_eq!(
            field(profile(|p| p.logo_url = "https://10.0.0.1/l.png".into())),
            "profile.logo_url"
        );
        assert_eq!(
            field(profile(
                |p| p.websites = vec!["https://a.example".into(), "owl".into()]
            )),
            "profile.websites[1]"
        );
        assert_eq!(
            field(profile(|p| p.websites = vec!["https://a.example".into(); 3])),
            "profile.websites"
        );
        assert_eq!(
            field(profile(|p| p.emails = vec!["help at owl".into()])),
            "profile.emails[0]"
        );
        assert_eq!(
            field(profile(
                |p| p.emails = vec!["a@b.example".into(), "c@d.example".into()]
            )),
            "profile.emails"
        );
    }

    #[test]
    fn a_code_is_six_digits() {
        assert_eq!(check_code(" 123 456 ").unwrap(), "123456");
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(field(check_code(bad)), "code", "{bad:?}");
        }
    }
}
