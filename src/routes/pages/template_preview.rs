//! A template's preview as its page shows it: for each content type of Twilio's `types`
//! object, the texts with their `{{n}}` placeholders filled from the sample variables (the
//! filled parts marked), the media as links, the buttons, the list items and a card's title.
//! Plain data for the template to escape: nothing here is HTML.

use std::collections::BTreeMap;

use serde_json::Value;

/// A piece of a text: as written, or a sample value put in for a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    /// A placeholder filled from the samples.
    pub sample: bool,
}

/// A text with its placeholders filled.
pub type Filled = Vec<Part>;

/// A button: its label and where it leads (a URL, a phone number, a reply's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub title: String,
    /// "reply id confirm", "URL https://…", "phone +1…"; empty when Twilio gives nothing.
    pub detail: String,
}

/// A media URL; only an `http(s)` one is made a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub url: String,
    pub web: bool,
}

impl Media {
    fn new(url: String) -> Self {
        let lower = url.trim_start().to_ascii_lowercase();
        let web = lower.starts_with("https://") || lower.starts_with("http://");
        Self { url, web }
    }
}

/// One item of a list picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub title: String,
    pub description: String,
    pub id: String,
}

/// One content type of a template, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// `twilio/text`, `twilio/quick-reply`, …
    pub kind: String,
    pub title: Option<Filled>,
    pub subtitle: Option<Filled>,
    pub body: Option<Filled>,
    /// Media URLs (shown as links, never loaded by the page).
    pub media: Vec<Media>,
    pub buttons: Vec<Button>,
    /// A list picker's button label.
    pub list_button: Option<String>,
    pub items: Vec<Item>,
    /// A location: "label (latitude, longitude)".
    pub location: Option<String>,
}

/// The previews of every content type in `types`, in Twilio's order of keys.
pub fn previews(types: &Value, samples: &BTreeMap<String, String>) -> Vec<Preview> {
    let Some(types) = types.as_object() else {
        return Vec::new();
    };
    types
        .iter()
        .map(|(kind, def)| preview(kind, def, samples))
        .collect()
}

fn preview(kind: &str, def: &Value, samples: &BTreeMap<String, String>) -> Preview {
    let text = |key: &str| {
        def.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| fill(s, samples))
    };
    let media = match def.get("media") {
        Some(Value::Array(urls)) => urls
            .iter()
            .filter_map(Value::as_str)
            .map(|u| Media::new(flat(&fill(u, samples))))
            .collect(),
        Some(Value::String(u)) => vec![Media::new(flat(&fill(u, samples)))],
        _ => Vec::new(),
    };
    let buttons = def
        .get("actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|b| button(b, samples)).collect())
        .unwrap_or_default();
    let items = def
        .get("items")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| Item {
                    title: str_of(i, "item"),
                    description: str_of(i, "description"),
                    id: str_of(i, "id"),
                })
                .collect()
        })
        .unwrap_or_default();
    let location = match (def.get("latitude"), def.get("longitude")) {
        (Some(lat), Some(lon)) => Some(format!(
            "{} ({lat}, {lon})",
            def.get("label").and_then(Value::as_str).unwrap_or("")
        )),
        _ => None,
    };
    Preview {
        kind: kind.to_owned(),
        title: text("title").or_else(|| text("header_text")),
        subtitle: text("subtitle").or_else(|| text("footer")),
        body: text("body"),
        media,
        buttons,
        list_button: def
            .get("button")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned),
        items,
        location,
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn button(b: &Value, samples: &BTreeMap<String, String>) -> Button {
    let title = str_of(b, "title");
    let detail = if let Some(url) = b.get("url").and_then(Value::as_str) {
        format!("URL {}", flat(&fill(url, samples)))
    } else if let Some(phone) = b.get("phone").and_then(Value::as_str) {
        format!("phone {phone}")
    } else if let Some(id) = b.get("id").and_then(Value::as_str) {
        format!("reply id {id}")
    } else {
        str_of(b, "type").to_lowercase()
    };
    Button { title, detail }
}

/// `parts` as one string.
pub fn flat(parts: &[Part]) -> String {
    parts.iter().map(|p| p.text.as_str()).collect()
}

/// `text` with every `{{n}}` (spaces inside allowed) that has a sample replaced by it; a
/// placeholder without a sample stays as written.
pub fn fill(text: &str, samples: &BTreeMap<String, String>) -> Filled {
    let mut out: Filled = Vec::new();
    let mut push = |text: &str, sample: bool| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if !last.sample && !sample => last.text.push_str(text),
            _ => out.push(Part {
                text: text.to_owned(),
                sample,
            }),
        }
    };
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let key = after[..close].trim();
        push(&rest[..open], false);
        match samples.get(key) {
            Some(v) => push(v, true),
            None => push(&rest[open..open + 2 + close + 2], false),
        }
        rest = &after[close + 2..];
    }
    push(rest, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn samples() -> BTreeMap<String, String> {
        [("1", "Asha"), ("2", "A-1042")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_are_filled_from_samples_and_unknown_ones_stay() {
        let f = fill("Hi {{1}}, order {{ 2 }} {{3}} {{", &samples());
        assert_eq!(flat(&f), "Hi Asha, order A-1042 {{3}} {{");
        let marked: Vec<_> = f.iter().filter(|p| p.sample).map(|p| &p.text).collect();
        assert_eq!(marked, ["Asha", "A-1042"]);
        assert_eq!(flat(&fill("", &samples())), "");
    }

    #[test]
    fn each_content_type_gives_its_parts() {
        let types = json!({
            "twilio/quick-reply": {"body": "Come, {{1}}?", "actions": [{"title": "Yes", "id": "yes"}]},
            "twilio/call-to-action": {"body": "Track", "actions": [
                {"type": "URL", "title": "Open", "url": "https://x.test/{{2}}"},
                {"type": "PHONE_NUMBER", "title": "Call", "phone": "+15005550006"}]},
            "twilio/list-picker": {"body": "Pick", "button": "Menu",
                "items": [{"item": "Tea", "id": "tea", "description": "hot"}]},
            "twilio/card": {"title": "Hello {{1}}", "subtitle": "small", "media": ["https://x.test/a.jpg"]},
            "twilio/location": {"latitude": 1.5, "longitude": 2.5, "label": "Shop"}
        });
        let p = previews(&types, &samples());
        let by = |k: &str| p.iter().find(|p| p.kind == k).unwrap();
        assert_eq!(
            flat(by("twilio/quick-reply").body.as_ref().unwrap()),
            "Come, Asha?"
        );
        assert_eq!(
            by("twilio/quick-reply").buttons,
            [Button {
                title: "Yes".into(),
                detail: "reply id yes".into()
            }]
        );
        let cta = &by("twilio/call-to-action").buttons;
        assert_eq!(cta[0].detail, "URL https://x.test/A-1042");
        assert_eq!(cta[1].detail, "phone +15005550006");
        let list = by("twilio/list-picker");
        assert_eq!(list.list_button.as_deref(), Some("Menu"));
        assert_eq!(list.items[0].title, "Tea");
        let card = by("twilio/card");
        assert_eq!(flat(card.title.as_ref().unwrap()), "Hello Asha");
        assert_eq!(card.media[0].url, "https://x.test/a.jpg");
        assert!(card.media[0].web);
        let odd = previews(
            &json!({"twilio/media": {"media": ["javascript:alert(1)"]}}),
            &samples(),
        );
        assert!(!odd[0].media[0].web, "only http(s) is a link");
        assert!(card.body.is_none());
        assert_eq!(
            by("twilio/location").location.as_deref(),
            Some("Shop (1.5, 2.5)")
        );
        assert!(previews(&json!(null), &samples()).is_empty());
    }
}
