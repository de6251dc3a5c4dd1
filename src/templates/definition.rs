//! A new template as a person or program defines it, checked before anything reaches Twilio:
//! the content type, the lengths WhatsApp allows, buttons and list items within their
//! limits, and placeholders numbered from `{{1}}` with a sample value each (WhatsApp reviews
//! templates with their samples). Each refusal names the field.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::message_text;

/// The content types wadash creates.
pub const TYPES: &[&str] = &[
    "twilio/text",
    "twilio/media",
    "twilio/quick-reply",
    "twilio/call-to-action",
    "twilio/list-picker",
    "twilio/card",
];

/// WhatsApp's limit on a template's body.
pub const MAX_BODY: usize = 1024;
const MAX_NAME: usize = 512;
const MAX_BUTTON_TITLE: usize = 25;
const MAX_QUICK_REPLIES: usize = 10;
const MAX_CALLS_TO_ACTION: usize = 2;
const MAX_LIST_ITEMS: usize = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    pub language: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Placeholder number → sample value.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub media: Vec<String>,
    /// List-picker rows.
    #[serde(default)]
    pub items: Vec<ListItem>,
    /// List-picker button text, or a card's title.
    #[serde(default)]
    pub button: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub subtitle: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub title: String,
    /// Quick replies: the payload the tap sends back.
    #[serde(default)]
    pub id: Option<String>,
    /// Calls to action: `URL` or `PHONE_NUMBER`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListItem {
    pub item: String,
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A refusal naming the field: `actions[2].title: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn within(field: &str, s: &str, max: usize) -> Result<(), Invalid> {
    if s.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let n = message_text::length(s);
    if n > max {
        return Err(invalid(field, format!("is {n} characters; at most {max}")));
    }
    Ok(())
}

/// The numbered placeholders in `text` (found as the message rules find them), or the first
/// one that is not a number from 1 (`{{name}}`, `{{0}}`).
pub fn placeholders(text: &str) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for name in message_text::placeholders(text) {
        match name.parse::<u32>() {
            Ok(n) if n >= 1 => {
                out.insert(n);
            }
            _ => {
                return Err(format!(
                    "{{{{{name}}}}} is not a numbered placeholder ({{{{1}}}}, {{{{2}}}}, …)"
                ));
            }
        }
    }
    Ok(out)
}

fn https(field: &str, url: &str) -> Result<(), Invalid> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(()),
        _ => Err(invalid(field, "must be an https:// URL")),
    }
}

impl Definition {
    /// Checks the definition and builds Twilio's `types` object.
    pub fn check(&self) -> Result<serde_json::Map<String, Value>, Invalid> {
        within("name", &self.name, MAX_NAME)?;
        let lang_ok = {
            let (base, region) = self
                .language
                .split_once('_')
                .map_or((self.language.as_str(), None), |(b, r)| (b, Some(r)));
            (2..=3).contains(&base.len())
                && base.bytes().all(|b| b.is_ascii_lowercase())
                && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
        };
        if !lang_ok {
            return Err(invalid(
                "language",
                format!(
                    "{:?} is not a language code like en, pt_BR or es_MX",
                    self.language
                ),
            ));
        }
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(invalid(
                "type",
                format!("must be one of {}", TYPES.join(", ")),
            ));
        }
        let card = self.kind == "twilio/card";
        let body = self.body.as_deref().unwrap_or_default();
        if card {
            within("title", self.title.as_deref().unwrap_or_default(), MAX_BODY)?;
            if let Some(s) = &self.subtitle {
                within("subtitle", s, 60)?;
            }
        } else {
            within("body", body, MAX_BODY)?;
        }
        // Placeholders: numbered from 1 with no gap, each with a sample, no sample unused.
        let text = format!("{body} {}", self.title.as_deref().unwrap_or_default());
        let used = placeholders(&text).map_err(|e| invalid("body", e))?;
        if let Some(missing) = (1..=used.last().copied().unwrap_or(0)).find(|n| !used.contains(n)) {
            return Err(invalid(
                "body",
                format!(
                    "placeholders must be numbered from {{{{1}}}} without a gap; {{{{{missing}}}}} is missing"
                ),
            ));
        }
        for n in &used {
            match self.variables.get(&n.to_string()) {
                Some(v) if !v.trim().is_empty() => {}
                _ => {
                    return Err(invalid(
                        format!("variables.{n}"),
                        format!(
                            "{{{{{n}}}}} needs a sample value: WhatsApp reviews templates with them"
                        ),
                    ));
                }
            }
        }
        if let Some(extra) = self
            .variables
            .keys()
            .find(|k| k.parse::<u32>().ok().is_none_or(|n| !used.contains(&n)))
        {
            return Err(invalid(
                format!("variables.{extra}"),
                "has no placeholder in the text",
            ));
        }
        for (i, m) in self.media.iter().enumerate() {
            https(&format!("media[{i}]"), m)?;
        }
        let wants_actions = matches!(
            self.kind.as_str(),
            "twilio/quick-reply" | "twilio/call-to-action"
        );
        if !wants_actions && !card && !self.actions.is_empty() {
            return Err(invalid("actions", format!("{} has no buttons", self.kind)));
        }
        let content = match self.kind.as_str() {
            "twilio/text" => json!({"body": body}),
            "twilio/media" => {
                if self.media.len() != 1 {
                    return Err(invalid(
                        "media",
                        "a media template has exactly one https:// URL",
                    ));
                }
                json!({"body": body, "media": self.media})
            }
            "twilio/quick-reply" => {
                if self.actions.is_empty() || self.actions.len() > MAX_QUICK_REPLIES {
                    return Err(invalid(
                        "actions",
                        format!(
                            "a quick reply has 1 to {MAX_QUICK_REPLIES} buttons, not {}",
                            self.actions.len()
                        ),
                    ));
                }
                let mut out = Vec::new();
                for (i, a) in self.actions.iter().enumerate() {
                    within(&format!("actions[{i}].title"), &a.title, MAX_BUTTON_TITLE)?;
                    let id = a.id.clone().unwrap_or_else(|| a.title.clone());
                    within(&format!("actions[{i}].id"), &id, 200)?;
                    out.push(json!({"title": a.title, "id": id}));
                }
                json!({"body": body, "actions": out})
            }
            "twilio/call-to-action" => {
                if self.actions.is_empty() || self.actions.len() > MAX_CALLS_TO_ACTION {
                    return Err(invalid(
                        "actions",
                        format!(
                            "a call to action has 1 or {MAX_CALLS_TO_ACTION} buttons, not {}",
                            self.actions.len()
                        ),
                    ));
                }
                let mut out = Vec::new();
                for (i, a) in self.actions.iter().enumerate() {
                    let f = |x: &str| format!("actions[{i}].{x}");
                    within(&f("title"), &a.title, MAX_BUTTON_TITLE)?;
                    match (a.kind.as_deref(), &a.url, &a.phone) {
                        (Some("URL"), Some(url), None) => {
                            https(&f("url"), url)?;
                            out.push(json!({"type": "URL", "title": a.title, "url": url}));
                        }
                        (Some("PHONE_NUMBER"), None, Some(phone)) => {
                            let p = crate::domain::PhoneNumber::parse(phone)
                                .map_err(|e| invalid(f("phone"), e))?;
                            out.push(json!({"type": "PHONE_NUMBER", "title": a.title, "phone": p.as_str()}));
                        }
                        _ => {
                            return Err(invalid(
                                f("type"),
                                "must be URL with a url, or PHONE_NUMBER with a phone",
                            ));
                        }
                    }
                }
                json!({"body": body, "actions": out})
            }
            "twilio/list-picker" => {
                within("button", self.button.as_deref().unwrap_or_default(), 20)?;
                if self.items.is_empty() || self.items.len() > MAX_LIST_ITEMS {
                    return Err(invalid(
                        "items",
                        format!(
                            "a list has 1 to {MAX_LIST_ITEMS} items, not {}",
                            self.items.len()
                        ),
                    ));
                }
                let mut out = Vec::new();
                for (i, it) in self.items.iter().enumerate() {
                    within(&format!("items[{i}].item"), &it.item, 24)?;
                    within(&format!("items[{i}].id"), &it.id, 200)?;
                    if let Some(d) = &it.description {
                        within(&format!("items[{i}].description"), d, 72)?;
                    }
                    out.push(json!({"item": it.item, "id": it.id, "description": it.description}));
                }
                json!({"body": body, "button": self.button, "items": out})
            }
            _ => {
                if self.media.len() > 1 {
                    return Err(invalid("media", "a card has at most one image"));
                }
                let mut out = Vec::new();
                for (i, a) in self.actions.iter().enumerate().take(MAX_QUICK_REPLIES + 1) {
                    if i == MAX_QUICK_REPLIES {
                        return Err(invalid("actions", "a card has at most 10 buttons"));
                    }
                    within(&format!("actions[{i}].title"), &a.title, MAX_BUTTON_TITLE)?;
                    let id = a.id.clone().unwrap_or_else(|| a.title.clone());
                    out.push(json!({"type": "QUICK_REPLY", "title": a.title, "id": id}));
                }
                json!({"title": self.title, "subtitle": self.subtitle, "media": self.media, "actions": out})
            }
        };
        let mut types = serde_json::Map::new();
        types.insert(self.kind.clone(), content);
        Ok(types)
    }
}

/// A WhatsApp template name for submission: lower-case letters, digits and underscores.
pub fn check_whatsapp_name(name: &str) -> Result<(), Invalid> {
    within("name", name, 512)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(
            "name",
            "WhatsApp template names hold only lower-case letters, digits and underscores",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: Value) -> Definition {
        serde_json::from_value(v).unwrap()
    }

    fn field(v: Value) -> String {
        def(v).check().unwrap_err().field
    }

    #[test]
    fn a_quick_reply_builds_twilios_types() {
        let t = def(
            json!({"name": "order_update", "language": "en", "type": "twilio/quick-reply",
            "body": "Hi {{1}}, is order {{2}} right?", "variables": {"1": "Ada", "2": "A-1"},
            "actions": [{"title": "Yes"}, {"title": "No", "id": "no"}]}),
        )
        .check()
        .unwrap();
        assert_eq!(
            t["twilio/quick-reply"]["actions"],
            json!([{"title": "Yes", "id": "Yes"}, {"title": "No", "id": "no"}])
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        let base = |extra: Value| {
            let mut v = json!({"name": "t", "language": "en", "type": "twilio/text", "body": "Hi {{1}}", "variables": {"1": "Ada"}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        assert_eq!(field(base(json!({"type": "twilio/fax"}))), "type");
        assert_eq!(field(base(json!({"language": "English"}))), "language");
        assert_eq!(field(base(json!({"body": "x".repeat(1025)}))), "body");
        assert_eq!(
            field(base(json!({"body": "Hi {{2}}", "variables": {"2": "x"}}))),
            "body"
        );
        assert_eq!(field(base(json!({"body": "Hi {{name}}"}))), "body");
        assert_eq!(field(base(json!({"variables": {}}))), "variables.1");
        assert_eq!(
            field(base(json!({"variables": {"1": "a", "2": "b"}}))),
            "variables.2"
        );
        assert_eq!(field(base(json!({"actions": [{"title": "x"}]}))), "actions");
        let qr = |n: usize| {
            base(json!({"type": "twilio/quick-reply",
                "actions": (0..n).map(|i| json!({"title": format!("b{i}")})).collect::<Vec<_>>()}))
        };
        assert_eq!(field(qr(11)), "actions");
        assert_eq!(field(qr(0)), "actions");
        assert!(def(qr(10)).check().is_ok());
        assert_eq!(
            field(base(
                json!({"type": "twilio/quick-reply", "actions": [{"title": "x".repeat(26)}]})
            )),
            "actions[0].title"
        );
        assert_eq!(
            field(base(
                json!({"type": "twilio/call-to-action", "actions": [{"title": "Go", "type": "URL", "url": "http://x.example"}]})
            )),
            "actions[0].url"
        );
        assert_eq!(
            field(base(json!({"type": "twilio/media", "media": []}))),
            "media"
        );
        assert_eq!(
            field(base(
                json!({"type": "twilio/list-picker", "button": "Pick", "items": []})
            )),
            "items"
        );
    }

    #[test]
    fn whatsapp_names_are_lower_case_with_underscores() {
        assert!(check_whatsapp_name("order_update_2").is_ok());
        assert!(check_whatsapp_name("Order Update").is_err());
    }

    proptest::proptest! {
        #[test]
        fn placeholders_never_panic_and_find_what_is_there(s in "\\PC{0,60}", n in 1u32..50) {
            let _ = placeholders(&s);
            let text = format!("{s}{{{{{n}}}}}");
            if let Ok(found) = placeholders(&text) {
                proptest::prop_assert!(found.contains(&n));
            }
        }
    }
}
