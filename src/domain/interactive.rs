//! Interactive replies: a contact tapping a quick-reply button or choosing a list item, as
//! Twilio reports it on `/wa` (`ButtonPayload`, `ButtonText`, `ListId`, `ListTitle`,
//! `ListDescription`, `MessageType`, `OriginalRepliedMessageSid`,
//! `OriginalRepliedMessageSender`).
//!
//! Values are kept as sent, up to [`MAX_VALUE_BYTES`] each: WhatsApp's own limits are far
//! below (256 characters for a button id, 200 for a list id, 24 for a title), so only a
//! malformed or hostile callback is cut, at a character boundary, and flagged `truncated`.
//! The message is never refused for them, and every parameter stays whole in its events.

/// The most bytes of one value stored (an indexed column must stay well under PostgreSQL's
/// B-tree entry limit of about 2.7 kB).
pub const MAX_VALUE_BYTES: usize = 1000;

/// What the contact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractiveKind {
    /// Tapped a quick-reply button.
    Button,
    /// Chose an item of a list picker.
    List,
}

impl InteractiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InteractiveKind::Button => "button",
            InteractiveKind::List => "list",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "button" => Some(Self::Button),
            "list" => Some(Self::List),
            _ => None,
        }
    }
}

/// A tap or selection carried by an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractiveReply {
    pub kind: InteractiveKind,
    /// `ButtonPayload` or `ListId`: the id the template gave the button or item.
    pub payload: Option<String>,
    /// `ButtonText` or `ListTitle`: what the contact saw.
    pub title: Option<String>,
    /// `ListDescription`.
    pub description: Option<String>,
    /// `MessageType` as sent.
    pub message_type: Option<String>,
    /// `OriginalRepliedMessageSid`: the message that carried the buttons.
    pub replied_to_sid: Option<String>,
    /// `OriginalRepliedMessageSender`.
    pub replied_to_sender: Option<String>,
    /// Some value was longer than [`MAX_VALUE_BYTES`] and was cut.
    pub truncated: bool,
}

/// The interactive fields of an inbound webhook, each the first non-empty value of its name.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawInteractive<'a> {
    pub button_payload: Option<&'a str>,
    pub button_text: Option<&'a str>,
    pub list_id: Option<&'a str>,
    pub list_title: Option<&'a str>,
    pub list_description: Option<&'a str>,
    pub message_type: Option<&'a str>,
    pub replied_to_sid: Option<&'a str>,
    pub replied_to_sender: Option<&'a str>,
}

impl RawInteractive<'_> {
    /// The reply these fields describe: a list selection when a list field is present, else a
    /// button tap when a button field is; None for an ordinary message (whatever its
    /// `MessageType`).
    pub fn reply(&self) -> Option<InteractiveReply> {
        let list = self.list_id.is_some() || self.list_title.is_some();
        let button = self.button_payload.is_some() || self.button_text.is_some();
        let (kind, payload, title) = if list {
            (InteractiveKind::List, self.list_id, self.list_title)
        } else if button {
            (
                InteractiveKind::Button,
                self.button_payload,
                self.button_text,
            )
        } else {
            return None;
        };
        let mut truncated = false;
        let mut keep = |v: Option<&str>| {
            v.map(|v| {
                let (kept, cut) = bounded(v);
                truncated |= cut;
                kept.to_owned()
            })
        };
        Some(InteractiveReply {
            kind,
            payload: keep(payload),
            title: keep(title),
            description: keep(if list { self.list_description } else { None }),
            message_type: keep(self.message_type),
            replied_to_sid: keep(self.replied_to_sid),
            replied_to_sender: keep(self.replied_to_sender),
            truncated,
        })
    }
}

/// `v` cut to at most [`MAX_VALUE_BYTES`] at a character boundary, and whether it was cut.
pub fn bounded(v: &str) -> (&str, bool) {
    if v.len() <= MAX_VALUE_BYTES {
        return (v, false);
    }
    let mut end = MAX_VALUE_BYTES;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    (&v[..end], true)
}

/// A button (or list item) a template offers: what a tap on it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedButton {
    pub kind: InteractiveKind,
    /// The id a tap reports as `ButtonPayload` (`ListId` for an item); a quick-reply button
    /// without one reports its title.
    pub payload: String,
    pub title: String,
}

/// The buttons of a catalogued template's `types` (Twilio's Content API shape): the
/// `twilio/quick-reply` actions, and the `twilio/list-picker` items, in order.
pub fn offered_buttons(types: &serde_json::Value) -> Vec<OfferedButton> {
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    let list = |t: &str, k: &str| {
        types
            .get(t)
            .and_then(|d| d.get(k))
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for a in list("twilio/quick-reply", "actions") {
        let Some(title) = text(&a, "title") else {
            continue;
        };
        out.push(OfferedButton {
            kind: InteractiveKind::Button,
            payload: text(&a, "id")
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| title.clone()),
            title,
        });
    }
    for i in list("twilio/list-picker", "items") {
        if let (Some(id), Some(title)) = (text(&i, "id"), text(&i, "item")) {
            out.push(OfferedButton {
                kind: InteractiveKind::List,
                payload: id,
                title,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_templates_buttons_and_list_items_are_offered_in_order() {
        let types = serde_json::json!({
            "twilio/quick-reply": {"body": "Come?", "actions": [
                {"title": "Yes", "id": "yes"}, {"title": "Maybe"}, {"id": "no_title"}]},
            "twilio/list-picker": {"body": "Pick", "button": "Days", "items": [
                {"item": "Tuesday", "id": "tue", "description": "10-12"}]},
            "twilio/text": {"body": "fallback"}
        });
        let offered = offered_buttons(&types);
        let short: Vec<(InteractiveKind, &str, &str)> = offered
            .iter()
            .map(|b| (b.kind, b.payload.as_str(), b.title.as_str()))
            .collect();
        assert_eq!(
            short,
            [
                (InteractiveKind::Button, "yes", "Yes"),
                (InteractiveKind::Button, "Maybe", "Maybe"),
                (InteractiveKind::List, "tue", "Tuesday"),
            ]
        );
        assert!(offered_buttons(&serde_json::json!({"twilio/text": {"body": "x"}})).is_empty());
    }

    use super::*;

    #[test]
    fn a_button_tap_keeps_every_value_as_sent() {
        let raw = RawInteractive {
            button_payload: Some(" confirm_yes "),
            button_text: Some("Yes, I'll come"),
            message_type: Some("button"),
            replied_to_sid: Some("SM0123456789abcdef0123456789abcdef"),
            replied_to_sender: Some("whatsapp:+14155238886"),
            ..Default::default()
        };
        let r = raw.reply().unwrap();
        assert_eq!(r.kind, InteractiveKind::Button);
        assert_eq!(r.payload.as_deref(), Some(" confirm_yes "), "verbatim");
        assert_eq!(r.title.as_deref(), Some("Yes, I'll come"));
        assert_eq!(r.description, None);
        assert_eq!(r.message_type.as_deref(), Some("button"));
        assert_eq!(
            r.replied_to_sid.as_deref(),
            Some("SM0123456789abcdef0123456789abcdef")
        );
        assert!(!r.truncated);
    }

    #[test]
    fn a_list_selection_wins_over_button_fields_and_keeps_its_description() {
        let raw = RawInteractive {
            list_id: Some("item_2"),
            list_title: Some("Tuesday"),
            list_description: Some("10:00 to 12:00"),
            message_type: Some("interactive"),
            button_text: Some("stray"),
            ..Default::default()
        };
        let r = raw.reply().unwrap();
        assert_eq!(r.kind, InteractiveKind::List);
        assert_eq!(r.payload.as_deref(), Some("item_2"));
        assert_eq!(r.title.as_deref(), Some("Tuesday"));
        assert_eq!(r.description.as_deref(), Some("10:00 to 12:00"));
    }

    #[test]
    fn ordinary_messages_have_none_whatever_their_type() {
        let raw = RawInteractive {
            message_type: Some("button"),
            replied_to_sid: Some("SM1234"),
            ..Default::default()
        };
        assert_eq!(raw.reply(), None);
        assert_eq!(RawInteractive::default().reply(), None);
    }

    #[test]
    fn oversized_values_are_cut_at_a_character_boundary_and_flagged() {
        // 'é' is two bytes: 999 ASCII bytes then 'é' straddles the limit.
        let long = format!("{}é{}", "a".repeat(999), "b".repeat(5000));
        let raw = RawInteractive {
            button_payload: Some(&long),
            button_text: Some("ok"),
            ..Default::default()
        };
        let r = raw.reply().unwrap();
        assert!(r.truncated);
        assert_eq!(r.payload.as_deref(), Some("a".repeat(999).as_str()));
        assert_eq!(r.title.as_deref(), Some("ok"));
        let exact = "x".repeat(MAX_VALUE_BYTES);
        assert_eq!(bounded(&exact), (exact.as_str(), false));
    }
}
