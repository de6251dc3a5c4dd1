//! How the conversation and message pages show an interactive reply: "tapped ‹Yes› (payload
//! confirm) on ‹the message that carried the buttons›", or "chose ‹Tuesday›" from a list.

use crate::domain::MessageSid;
use crate::storage::interactive::InteractiveRow;

/// A tap or list selection, ready for a template (askama escapes every field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapView {
    /// `tapped` (a button) or `chose` (a list item).
    pub verb: &'static str,
    pub title: String,
    pub payload: String,
    pub description: String,
    /// The message that carried the buttons, when its SID is well-formed (a link).
    pub replied_to: Option<String>,
    /// `OriginalRepliedMessageSid` as sent when it is not a SID (shown as text).
    pub replied_to_raw: String,
    pub truncated: bool,
}

impl From<InteractiveRow> for TapView {
    fn from(r: InteractiveRow) -> Self {
        let raw = r.replied_to_sid.unwrap_or_default();
        let replied_to = MessageSid::parse(&raw)
            .ok()
            .map(MessageSid::into_inner)
            .filter(|s| *s == raw);
        Self {
            verb: if r.kind == "list" { "chose" } else { "tapped" },
            title: r.title.unwrap_or_default(),
            payload: r.payload.unwrap_or_default(),
            description: r.description.unwrap_or_default(),
            replied_to_raw: if replied_to.is_some() {
                String::new()
            } else {
                raw
            },
            replied_to,
            truncated: r.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, replied_to: Option<&str>) -> InteractiveRow {
        InteractiveRow {
            message_sid: "SM1".into(),
            kind: kind.into(),
            payload: Some("confirm".into()),
            title: Some("Yes".into()),
            description: None,
            message_type: Some("button".into()),
            replied_to_sid: replied_to.map(str::to_owned),
            replied_to_sender: None,
            truncated: false,
        }
    }

    #[test]
    fn only_a_well_formed_sid_becomes_a_link() {
        let v = TapView::from(row("button", Some("SM0123456789abcdef")));
        assert_eq!(v.verb, "tapped");
        assert_eq!(v.replied_to.as_deref(), Some("SM0123456789abcdef"));
        assert_eq!(v.replied_to_raw, "");
        let v = TapView::from(row("list", Some("../admin?x=<b>")));
        assert_eq!(v.verb, "chose");
        assert_eq!(v.replied_to, None);
        assert_eq!(v.replied_to_raw, "../admin?x=<b>");
        let v = TapView::from(row("button", Some(" SM0123456789abcdef")));
        assert_eq!(v.replied_to, None, "not as sent: shown as text");
        assert_eq!(TapView::from(row("button", None)).replied_to, None);
    }
}
