//! What Twilio accepts as a message's words: at most 1,600 characters of text (error 21617)
//! and of each template variable (error 21658), and no `{{1}}`-style placeholder left without
//! a value.
//!
//! Length is counted in UTF-16 code units, as Twilio counts it (an emoji outside the Basic
//! Multilingual Plane counts twice, as its error 21617 explains) and as a browser counts a
//! textarea's `maxlength` and `value.length`: what the page's counter shows is what the
//! server checks, and a text the page accepts is never refused by Twilio for its length.

use std::collections::BTreeSet;

/// Twilio's limit for a message body and for one template variable's value.
pub const MAX_TEXT: usize = 1600;

/// The length of `text` as Twilio and the browser count it (UTF-16 code units).
pub fn length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` within Twilio's limit, or why not; `what` names the field ("the text").
pub fn check_length(what: &str, text: &str) -> Result<(), String> {
    let n = length(text);
    if n > MAX_TEXT {
        return Err(format!(
            "{what} is {n} characters long and Twilio accepts at most {MAX_TEXT} (error 21617): \
             shorten it by {} (an emoji counts as 2)",
            n - MAX_TEXT
        ));
    }
    Ok(())
}

/// The placeholders (`{{1}}`, `{{ name }}`) in `text`, by name, in order of first appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        let simple = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
        if simple {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
            rest = &after[close + 2..];
        } else {
            // `{{{1}}}`: the placeholder may start one brace later.
            rest = &rest[open + 1..];
        }
    }
    out
}

/// Placeholders written as people read them: `{{1}}, {{2}}`.
fn listed(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message's text: within the limit, and, when it is free-form (no template), without
/// placeholders, which nothing would fill: Twilio fills them only in an approved template.
/// `what` names the field in the refusal ("the text", "reply_body").
pub fn check_body(what: &str, body: &str, template: bool) -> Result<(), String> {
    check_length(what, body)?;
    let found = placeholders(body);
    if !template && !found.is_empty() {
        return Err(format!(
            "{what} has placeholders with no value: {}. Only a template (content SID) has \
             its placeholders filled from variables; free-form text would go out with them as \
             written, so write the words in their place",
            listed(&found)
        ));
    }
    Ok(())
}

/// The template variables that have no value: empty ones, and numbered ones missing below
/// the highest number given (a template numbers its placeholders from `{{1}}` without gaps,
/// so `{"1": …, "3": …}` leaves `{{2}}` unfilled). Sorted, numbers first.
pub fn missing_variables(vars: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut missing: BTreeSet<(u64, String)> = BTreeSet::new();
    let key = |k: &str| (k.parse::<u64>().unwrap_or(u64::MAX), k.to_owned());
    for (k, v) in vars {
        let empty = match v {
            serde_json::Value::Null => true,
            serde_json::Value::String(s) => s.trim().is_empty(),
            _ => false,
        };
        if empty {
            missing.insert(key(k));
        }
    }
    let highest = vars
        .keys()
        .filter_map(|k| k.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    // A number beyond what a template can hold is left to Twilio (and not counted up to).
    if highest <= 100 {
        for n in 1..highest {
            if !vars.contains_key(&n.to_string()) {
                missing.insert((n, n.to_string()));
            }
        }
    }
    missing.into_iter().map(|(_, k)| k).collect()
}

/// Template variables Twilio accepts, every one with a value: each within the limit, none
/// holding a placeholder of its own (it would reach the customer as written), none missing.
pub fn check_variables(vars: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    let missing = missing_variables(vars);
    if !missing.is_empty() {
        return Err(format!(
            "template placeholders with no value: {}. Give each a value (they are numbered \
             from 1 without gaps)",
            listed(&missing)
        ));
    }
    for (k, v) in vars {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if length(&text) > MAX_TEXT {
            return Err(format!(
                "the value of template variable {k} is {} characters long and Twilio accepts at \
                 most {MAX_TEXT} (error 21658)",
                length(&text)
            ));
        }
        let inner = placeholders(&text);
        if !inner.is_empty() {
            return Err(format!(
                "the value of template variable {k} holds the placeholder {}, which nothing \
                 fills: write the words instead",
                listed(&inner)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn length_is_counted_in_utf16_code_units_like_twilio_and_the_browser() {
        assert_eq!(length("hello"), 5);
        assert_eq!(length("नमस्ते"), 6, "Devanagari: one unit per code point");
        assert_eq!(length("🎉"), 2, "outside the BMP: a surrogate pair");
        assert_eq!(length("é"), 1);
        let at_limit = "a".repeat(MAX_TEXT);
        assert_eq!(check_length("the text", &at_limit), Ok(()));
        let over = format!("{}🎉", "a".repeat(MAX_TEXT - 1));
        let e = check_length("the text", &over).unwrap_err();
        assert!(
            e.contains("1601 characters") && e.contains("21617") && e.contains("by 1"),
            "{e}"
        );
    }

    #[test]
    fn placeholders_are_found_by_name_once_each_in_order() {
        assert_eq!(
            placeholders("Hi {{1}}, your {{ 2 }} is ready, {{1}}!"),
            ["1", "2"]
        );
        assert_eq!(
            placeholders("{{first_name}} at {{shop.city}}"),
            ["first_name", "shop.city"]
        );
        assert!(placeholders("no braces { here } or {{ }} or {{a b}}").is_empty());
        assert!(placeholders("{{unclosed").is_empty());
        assert_eq!(placeholders("{{{1}}}"), ["1"]);
    }

    #[test]
    fn free_form_text_with_placeholders_is_refused_but_a_templates_is_not() {
        let e = check_body("the text", "Dear {{1}}, see you {{2}}", false).unwrap_err();
        assert!(e.contains("{{1}}, {{2}}"), "{e}");
        assert_eq!(check_body("the text", "Dear {{1}}", true), Ok(()));
        assert_eq!(check_body("the text", "Dear Ada", false), Ok(()));
        assert!(check_body("the text", &"x".repeat(5000), true).is_err());
    }

    #[test]
    fn empty_and_skipped_variables_are_missing() {
        assert!(missing_variables(&vars(json!({"1": "Ada", "2": "Mon"}))).is_empty());
        assert_eq!(
            missing_variables(&vars(json!({"1": "Ada", "3": "x"}))),
            ["2"]
        );
        assert_eq!(
            missing_variables(&vars(json!({"1": " ", "2": null, "name": ""}))),
            ["1", "2", "name"]
        );
        assert_eq!(missing_variables(&vars(json!({"4": "x"}))), ["1", "2", "3"]);
        assert!(missing_variables(&vars(json!({"1": 5}))).is_empty());
    }

    #[test]
    fn variables_are_checked_for_gaps_length_and_placeholders_of_their_own() {
        assert_eq!(check_variables(&vars(json!({"1": "Ada"}))), Ok(()));
        let e = check_variables(&vars(json!({"1": "Ada", "3": "x"}))).unwrap_err();
        assert!(e.contains("{{2}}"), "{e}");
        let e = check_variables(&vars(json!({"1": "{{2}}"}))).unwrap_err();
        assert!(e.contains("variable 1") && e.contains("{{2}}"), "{e}");
        let e = check_variables(&vars(json!({"1": "y".repeat(1601)}))).unwrap_err();
        assert!(e.contains("21658"), "{e}");
    }
}
