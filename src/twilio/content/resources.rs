//! The Content API's request and response shapes, as Twilio's OpenAPI spec
//! (`twilio_content_v1.json`) describes them, decoded leniently: a field Twilio leaves out or
//! sends as `null` is absent, never an error, and unknown statuses and categories are kept
//! verbatim.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One template as Twilio lists it in `ContentAndApprovals` (or fetches it from `Content`):
/// its types are kept as Twilio's JSON (`{"twilio/text": {"body": …}, …}`), since each type
/// has its own fields and Twilio adds types.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Template {
    pub sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub friendly_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub language: String,
    /// Variable number (`"1"`) → sample value.
    #[serde(default, deserialize_with = "samples")]
    pub variables: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub types: serde_json::Map<String, serde_json::Value>,
    /// WhatsApp's approval, when the list included it (`ContentAndApprovals`).
    #[serde(default, rename = "approval_requests")]
    pub whatsapp: Option<Approval>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
}

/// WhatsApp's decision on a template.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Approval {
    /// The name the template was submitted under.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `approved`, `pending`, `received`, `rejected`, `paused`, `disabled`, `unsubmitted` or
    /// anything Twilio adds; lower-cased, otherwise verbatim.
    #[serde(default, deserialize_with = "lower")]
    pub status: String,
    /// `utility`, `marketing`, `authentication` or anything Meta adds; lower-cased (Twilio
    /// answers `UTILITY`).
    #[serde(default, deserialize_with = "lower")]
    pub category: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rejection_reason: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub content_type: String,
}

/// `GET /v1/Content/{Sid}/ApprovalRequests`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApprovalFetch {
    #[serde(default)]
    pub whatsapp: Option<Approval>,
}

/// `POST /v1/Content`.
#[derive(Clone, Debug, Serialize)]
pub struct NewTemplate {
    pub friendly_name: String,
    pub language: String,
    pub variables: BTreeMap<String, String>,
    /// `{"twilio/quick-reply": {"body": …, "actions": […]}}`.
    pub types: serde_json::Map<String, serde_json::Value>,
}

/// Filters of `GET /v2/ContentAndApprovals`.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// A regular expression over the friendly name (Twilio's `ContentName`).
    pub content_name: Option<String>,
    pub languages: Vec<String>,
    /// `twilio/text`, `twilio/quick-reply`, …
    pub content_types: Vec<String>,
}

impl Search {
    /// A filter matching exactly `name` in `language`: the name's characters other than
    /// letters, digits and `_` are escaped, since Twilio reads `ContentName` as a pattern.
    pub fn exact_name(name: &str, language: &str) -> Self {
        let mut pattern = String::from("^");
        for c in name.chars() {
            if !(c.is_alphanumeric() || c == '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('$');
        Self {
            content_name: Some(pattern),
            languages: vec![language.to_owned()],
            content_types: Vec::new(),
        }
    }
}

/// `POST /v1/Content/{Sid}/ApprovalRequests/whatsapp`.
#[derive(Clone, Debug, Serialize)]
pub struct Submission {
    pub name: String,
    pub category: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn lower<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .unwrap_or_default()
        .trim()
        .to_lowercase())
}

/// Sample values are strings in practice; a number or boolean is kept as its JSON text.
fn samples<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_template_keeps_its_types_samples_and_approval() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "sid": "HX0123456789abcdef0123456789abcdef",
            "friendly_name": "flight_replies",
            "language": "en",
            "variables": {"1": "Owl Air", "2": 3},
            "types": {"twilio/quick-reply": {"body": "Hi {{1}}", "actions": [{"title": "Yes", "id": "yes"}]}},
            "approval_requests": {"name": "flight_replies", "category": "UTILITY",
                "content_type": "twilio/quick-reply", "status": "approved", "rejection_reason": "",
                "allow_category_change": true},
            "date_updated": "2026-12-01T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(t.variables["1"], "Owl Air");
        assert_eq!(t.variables["2"], "3");
        assert!(t.types.contains_key("twilio/quick-reply"));
        let w = t.whatsapp.unwrap();
        assert_eq!(
            (w.status.as_str(), w.category.as_str()),
            ("approved", "utility")
        );
    }

    #[test]
    fn an_exact_name_escapes_what_a_pattern_would_read() {
        let s = Search::exact_name("order update (v2).", "en");
        assert_eq!(
            s.content_name.as_deref(),
            Some(r"^order\ update\ \(v2\)\.$")
        );
        assert_eq!(s.languages, ["en"]);
        let re = regex::Regex::new(s.content_name.as_deref().unwrap()).unwrap();
        assert!(re.is_match("order update (v2)."));
        assert!(!re.is_match("order update (v2)x") && !re.is_match("my order update (v2)."));
    }

    #[test]
    fn nulls_and_missing_fields_are_absent_and_new_statuses_are_kept() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "sid": "HX0123456789abcdef0123456789abcdef",
            "friendly_name": null, "language": null, "variables": null, "types": null,
            "approval_requests": {"status": "IN_APPEAL", "category": null}
        }))
        .unwrap();
        assert_eq!(t.friendly_name, "");
        assert!(t.variables.is_empty() && t.types.is_empty());
        let w = t.whatsapp.unwrap();
        assert_eq!(w.status, "in_appeal");
        assert_eq!(w.category, "");
    }
}
