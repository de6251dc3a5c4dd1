//! A bot's question with choices as WhatsApp shows it: quick-reply buttons or a list picker
//! where WhatsApp allows them in a session without approval, else numbered text. Pure
//! decisions: the shape, the Content API `types` for it, the cache key of that Content, and
//! the ids its buttons report back when tapped.
//!
//! WhatsApp's limits for an in-session interactive message sent without approval (Twilio's
//! Content types `twilio/quick-reply` and `twilio/list-picker`): at most 3 quick-reply
//! buttons with titles of at most 20 characters; at most 10 list items of at most 24
//! characters, behind a button of at most 20; a body of at most 1,024 characters.

use serde::Serialize;
use sha2::Digest;

use crate::domain::bot::{CHOICE_CONTENT_PREFIX, ChoiceOption, ChoiceSet};

pub const MAX_QUICK_REPLIES: usize = 3;
pub const MAX_QUICK_REPLY_TITLE: usize = 20;
pub const MAX_LIST_ITEMS: usize = 10;
pub const MAX_LIST_ITEM: usize = 24;
pub const MAX_INTERACTIVE_BODY: usize = 1024;
/// The list picker's button (at most 20 characters).
pub const LIST_BUTTON: &str = "Choose";
/// The Content's language (required by Twilio; a session message is not matched by it).
pub const LANGUAGE: &str = "en";
/// Button and item ids are this and the option's number from 1: `bot-choice-2`.
const ID_PREFIX: &str = "bot-choice-";

/// How a question with choices is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `twilio/quick-reply`: one button per option.
    QuickReply,
    /// `twilio/list-picker`: a button opening the options as a list.
    ListPicker,
    /// The question and its options numbered, as text.
    Text,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::QuickReply => "quick_reply",
            Shape::ListPicker => "list_picker",
            Shape::Text => "text",
        }
    }
}

/// The richest shape WhatsApp allows for `set` in a session: quick replies for up to 3 short
/// options, a list for up to 10, numbered text otherwise (also for an empty body, an empty
/// or repeated option, or a body over WhatsApp's limit).
pub fn shape_of(set: &ChoiceSet) -> Shape {
    let body = set.body.trim();
    let titles: Vec<&str> = set.options.iter().map(|o| o.title.trim()).collect();
    let distinct = titles
        .iter()
        .enumerate()
        .all(|(i, t)| !titles[..i].contains(t));
    if body.is_empty()
        || body.chars().count() > MAX_INTERACTIVE_BODY
        || titles.is_empty()
        || titles.iter().any(|t| t.is_empty())
        || !distinct
    {
        return Shape::Text;
    }
    let longest = titles.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    if titles.len() <= MAX_QUICK_REPLIES && longest <= MAX_QUICK_REPLY_TITLE {
        Shape::QuickReply
    } else if titles.len() <= MAX_LIST_ITEMS && longest <= MAX_LIST_ITEM {
        Shape::ListPicker
    } else {
        Shape::Text
    }
}

/// The question and its options numbered from 1, one per line: the text a contact gets when
/// WhatsApp's interactive shapes do not fit (and the Content's `twilio/text` fallback).
pub fn numbered_text(set: &ChoiceSet) -> String {
    let mut text = set.body.trim().to_owned();
    for (i, o) in set.options.iter().enumerate() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{}. {}", i + 1, o.title.trim()));
    }
    text
}

/// The id of option `index` (from 0) on its button or list item.
pub fn option_id(index: usize) -> String {
    format!("{ID_PREFIX}{}", index + 1)
}

/// The option (from 0) a tapped button's payload or a chosen item's id names, if it is one
/// of a bot's choices.
pub fn option_index(payload: &str) -> Option<usize> {
    let n: usize = payload.strip_prefix(ID_PREFIX)?.parse().ok()?;
    n.checked_sub(1)
}

/// The option a contact picked: the one `payload` names in `set`.
pub fn picked<'s>(set: &'s ChoiceSet, payload: &str) -> Option<&'s ChoiceOption> {
    set.options.get(option_index(payload)?)
}

/// The Content for `set` in `shape` (one question is one Content per account, whatever the
/// options send the bot).
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceContent {
    /// Hex SHA-256 of the canonical content with the account: the cache's key.
    pub key: String,
    pub friendly_name: String,
    /// Content API `types`: the interactive type and its `twilio/text` fallback.
    pub types: serde_json::Map<String, serde_json::Value>,
}

/// The canonical form hashed into the key: fixed field order, trimmed texts, the ids sent.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    account: &'a str,
    shape: &'static str,
    language: &'static str,
    body: &'a str,
    options: Vec<(&'a str, String)>,
}

/// The Content `set` becomes for `account`; None when it is sent as text.
pub fn content(account: &str, shape: Shape, set: &ChoiceSet) -> Option<ChoiceContent> {
    let body = set.body.trim();
    let options: Vec<(&str, String)> = set
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| (o.title.trim(), option_id(i)))
        .collect();
    let interactive = match shape {
        Shape::Text => return None,
        Shape::QuickReply => serde_json::json!({"twilio/quick-reply": {
            "body": body,
            "actions": options.iter().map(|(t, id)| serde_json::json!({"title": t, "id": id})).collect::<Vec<_>>(),
        }}),
        Shape::ListPicker => serde_json::json!({"twilio/list-picker": {
            "body": body,
            "button": LIST_BUTTON,
            "items": options.iter().map(|(t, id)| serde_json::json!({"item": t, "id": id})).collect::<Vec<_>>(),
        }}),
    };
    let mut types = match interactive {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    };
    types.insert(
        "twilio/text".into(),
        serde_json::json!({ "body": numbered_text(set) }),
    );
    let canonical = Canonical {
        v: 1,
        account,
        shape: shape.as_str(),
        language: LANGUAGE,
        body,
        options,
    };
    let bytes = serde_json::to_vec(&canonical).expect("the canonical form serializes");
    let key = crate::domain::hex(&sha2::Sha256::digest(&bytes));
    Some(ChoiceContent {
        friendly_name: format!("{CHOICE_CONTENT_PREFIX}{}", &key[..16]),
        key,
        types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(body: &str, options: &[&str]) -> ChoiceSet {
        ChoiceSet {
            body: body.into(),
            options: options.iter().map(|o| (*o).into()).collect(),
        }
    }

    #[test]
    fn up_to_three_short_options_are_quick_replies_up_to_ten_a_list_else_text() {
        let s = |n: usize, len: usize| {
            let options: Vec<String> = (0..n)
                .map(|i| format!("{i}{}", "x".repeat(len - 1)))
                .collect();
            let refs: Vec<&str> = options.iter().map(String::as_str).collect();
            shape_of(&set("Pick one", &refs))
        };
        assert_eq!(s(1, 1), Shape::QuickReply);
        assert_eq!(s(3, 20), Shape::QuickReply);
        assert_eq!(s(3, 21), Shape::ListPicker, "a title over 20 characters");
        assert_eq!(s(4, 5), Shape::ListPicker, "a fourth option");
        assert_eq!(s(10, 24), Shape::ListPicker);
        assert_eq!(s(10, 25), Shape::Text, "an item over 24 characters");
        assert_eq!(s(11, 5), Shape::Text, "an eleventh option");
        // Characters, not bytes: 20 accented letters are 40 bytes.
        assert_eq!(
            shape_of(&set("?", &["é".repeat(20).as_str()])),
            Shape::QuickReply
        );
        assert_eq!(shape_of(&set("", &["A", "B"])), Shape::Text, "no body");
        assert_eq!(shape_of(&set("?", &[])), Shape::Text, "no options");
        assert_eq!(shape_of(&set("?", &["A", " "])), Shape::Text);
        assert_eq!(shape_of(&set("?", &["A", "A "])), Shape::Text, "repeated");
        let long = "b".repeat(MAX_INTERACTIVE_BODY + 1);
        assert_eq!(shape_of(&set(&long, &["A"])), Shape::Text);
    }

    #[test]
    fn the_content_has_the_interactive_type_ids_by_position_and_a_text_fallback() {
        let s = set(" Pick one ", &["Hours", "Orders"]);
        let c = content("AC1", Shape::QuickReply, &s).unwrap();
        assert_eq!(
            serde_json::Value::Object(c.types.clone()),
            serde_json::json!({
                "twilio/quick-reply": {"body": "Pick one", "actions": [
                    {"title": "Hours", "id": "bot-choice-1"}, {"title": "Orders", "id": "bot-choice-2"}]},
                "twilio/text": {"body": "Pick one\n1. Hours\n2. Orders"}
            })
        );
        assert!(c.friendly_name.starts_with(CHOICE_CONTENT_PREFIX));
        let list = content("AC1", Shape::ListPicker, &s).unwrap();
        assert_eq!(
            list.types["twilio/list-picker"],
            serde_json::json!({"body": "Pick one", "button": LIST_BUTTON, "items": [
                {"item": "Hours", "id": "bot-choice-1"}, {"item": "Orders", "id": "bot-choice-2"}]})
        );
        assert!(LIST_BUTTON.chars().count() <= 20);
        assert_eq!(content("AC1", Shape::Text, &s), None);
    }

    #[test]
    fn the_key_is_the_same_for_the_same_question_and_differs_for_any_change() {
        let key =
            |account: &str, shape: Shape, s: &ChoiceSet| content(account, shape, s).unwrap().key;
        let base = set("Pick one", &["Hours", "Orders"]);
        let k = key("AC1", Shape::QuickReply, &base);
        assert_eq!(k.len(), 64);
        assert_eq!(k, key("AC1", Shape::QuickReply, &base), "stable");
        // What the options send the bot is not in the Content: the same Content serves.
        let valued = ChoiceSet {
            body: "Pick one ".into(),
            options: vec![ChoiceOption::with_value("Hours", "hours"), "Orders".into()],
        };
        assert_eq!(k, key("AC1", Shape::QuickReply, &valued));
        for other in [
            key("AC2", Shape::QuickReply, &base),
            key("AC1", Shape::ListPicker, &base),
            key(
                "AC1",
                Shape::QuickReply,
                &set("Pick two", &["Hours", "Orders"]),
            ),
            key(
                "AC1",
                Shape::QuickReply,
                &set("Pick one", &["Orders", "Hours"]),
            ),
            key("AC1", Shape::QuickReply, &set("Pick one", &["Hours"])),
        ] {
            assert_ne!(k, other);
        }
        // Field boundaries are part of the form: moving text between fields changes the key.
        assert_ne!(
            key("AC1", Shape::QuickReply, &set("A", &["B C"])),
            key("AC1", Shape::QuickReply, &set("A B", &["C"]))
        );
    }

    #[test]
    fn ids_name_options_by_position_and_anything_else_is_no_choice() {
        let s = set("?", &["Hours", "Orders"]);
        assert_eq!(option_id(0), "bot-choice-1");
        assert_eq!(option_index("bot-choice-2"), Some(1));
        assert_eq!(
            picked(&s, "bot-choice-2").map(|o| o.title.as_str()),
            Some("Orders")
        );
        for other in [
            "bot-choice-0",
            "bot-choice-3",
            "bot-choice-x",
            "confirm",
            "",
        ] {
            assert_eq!(picked(&s, other), None, "{other}");
        }
        assert_eq!(numbered_text(&set("", &["A"])), "1. A");
    }
}
