//! Automatic-reply rules: validating what an admin writes, and finding the rule that answers
//! an inbound message.
//!
//! Order: for a tapped button (or chosen list item), `button` rules first, whose pattern is
//! the payload exactly (case-sensitive, surrounding whitespace ignored); then keyword and
//! regular-expression rules by position, then image-echo rules, then `any` rules (every
//! inbound text no earlier rule matched); the first that matches answers. A rule answers with
//! a fixed reply (`reply_body`, `reply_media`) or hands the message to a bot (`bot`). Keyword rules match the whole message the way consent keywords do (case,
//! surrounding whitespace and punctuation ignored), so they still match a tapped button's
//! text, which Twilio puts in the body; regular expressions search the body as written (use
//! `(?i)` for case-insensitive matching).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::WhatsAppAddress;
use crate::domain::consent::normalize;
use crate::storage::reply_rules::{NewRule, RuleRow};

/// Compiled regular expressions are limited in size so an admin's pattern cannot make
/// every inbound message expensive (the regex crate's matching time is linear anyway).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
pub const MAX_MEDIA: usize = 10;

/// A rule as an admin describes it, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: Option<String>,
    /// `keyword`, `regex`, `image_echo`, `button` or `any`.
    pub kind: Option<String>,
    #[serde(default)]
    pub pattern: String,
    pub sender: Option<String>,
    pub reply_body: Option<String>,
    #[serde(default)]
    pub reply_media: Vec<String>,
    /// The bot that answers instead of a fixed reply (its id).
    pub bot: Option<i64>,
    pub enabled: Option<bool>,
}

pub fn validate(input: &RuleInput) -> Result<NewRule, String> {
    let name = input.name.as_deref().unwrap_or("").trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("name is required (at most 100 characters)".into());
    }
    let kind = input.kind.as_deref().unwrap_or("").trim();
    let pattern = input.pattern.trim().to_owned();
    match kind {
        "keyword" => {
            if keywords(&pattern).is_empty() {
                return Err("a keyword rule needs at least one keyword (comma-separated)".into());
            }
        }
        "regex" => {
            compile(&pattern)
                .map_err(|e| format!("pattern is not a valid regular expression: {e}"))?;
        }
        "button" => {
            if pattern.is_empty() {
                return Err(
                    "a button rule needs the payload (the button's id) it answers as its pattern"
                        .into(),
                );
            }
            if pattern.len() > crate::domain::interactive::MAX_VALUE_BYTES {
                return Err(format!(
                    "a button payload is at most {} bytes",
                    crate::domain::interactive::MAX_VALUE_BYTES
                ));
            }
        }
        "image_echo" => {
            if !pattern.is_empty() {
                return Err(
                    "an image-echo rule has no pattern: it answers any inbound image".into(),
                );
            }
        }
        "any" => {
            if !pattern.is_empty() {
                return Err(
                    "an any rule has no pattern: it matches every inbound text no earlier rule matched"
                        .into(),
                );
            }
        }
        other => {
            return Err(format!(
                "kind must be keyword, regex, image_echo, button or any, got {other:?}"
            ));
        }
    }
    let sender = match input
        .sender
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(
            WhatsAppAddress::parse(s)
                .map_err(|e| format!("sender: {e}"))?
                .as_str()
                .to_owned(),
        ),
    };
    let reply_body = input
        .reply_body
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .map(str::to_owned);
    if let Some(b) = &reply_body {
        crate::domain::message_text::check_body("reply_body", b, false)?;
    }
    let reply_media: Vec<String> = input
        .reply_media
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if reply_media.len() > MAX_MEDIA {
        return Err(format!("at most {MAX_MEDIA} media URLs"));
    }
    if let Some(bad) = reply_media
        .iter()
        .find(|m| !(m.starts_with("https://") || m.starts_with("http://")))
    {
        return Err(format!(
            "media must be http(s) URLs Twilio can fetch, got {bad:?}"
        ));
    }
    if let Some(bot) = input.bot {
        if reply_body.is_some() || !reply_media.is_empty() {
            return Err(
                "a rule hands the message to a bot or replies itself: give bot, or reply_body / reply_media, not both"
                    .into(),
            );
        }
        if kind == "image_echo" {
            return Err("an image-echo rule answers with an image, not a bot".into());
        }
        if bot <= 0 {
            return Err(format!("bot: no bot {bot}"));
        }
    } else if reply_body.is_none() && reply_media.is_empty() {
        return Err("a rule replies with a body, media, or both (or names a bot)".into());
    }
    if kind == "image_echo" && reply_media.is_empty() {
        return Err("an image-echo rule answers with an image: give its URL in reply_media".into());
    }
    Ok(NewRule {
        name,
        kind: kind.to_owned(),
        pattern,
        sender,
        reply_body,
        reply_media,
        bot_id: input.bot,
        enabled: input.enabled.unwrap_or(true),
    })
}

/// Checks that the bot a validated rule names exists; the error is the 400 reason.
pub async fn check_bot(pool: &sqlx::PgPool, rule: &NewRule) -> sqlx::Result<Result<(), String>> {
    let Some(id) = rule.bot_id else {
        return Ok(Ok(()));
    };
    Ok(match crate::storage::bots::get(pool, id).await? {
        Some(_) => Ok(()),
        None => Err(format!("bot: no bot {id} (see /api/v1/bots)")),
    })
}

fn keywords(pattern: &str) -> Vec<String> {
    pattern
        .split(',')
        .map(normalize)
        .filter(|k| !k.is_empty())
        .collect()
}

fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// The parts of an inbound message rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub body: &'a str,
    /// Content types of the attached media, in order.
    pub media_types: &'a [Option<String>],
    /// The payload of a tapped button or the id of a chosen list item.
    pub payload: Option<&'a str>,
}

impl Inbound<'_> {
    fn has_image(&self) -> bool {
        self.media_types
            .iter()
            .flatten()
            .any(|t| t.to_ascii_lowercase().starts_with("image/"))
    }
}

/// Compiled regular expressions by pattern, shared by every request of the process.
#[derive(Debug, Default)]
pub struct RegexCache {
    compiled: Mutex<HashMap<String, Option<regex::Regex>>>,
}

impl RegexCache {
    fn is_match(&self, pattern: &str, text: &str) -> bool {
        let mut map = self.compiled.lock().expect("regex cache lock");
        if map.len() > 1024 {
            map.clear();
        }
        let re = map
            .entry(pattern.to_owned())
            .or_insert_with(|| compile(pattern).ok());
        re.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// The first rule (of `rules`, already in evaluation order) that answers `msg`.
pub fn first_match<'r>(
    rules: &'r [RuleRow],
    msg: &Inbound<'_>,
    cache: &RegexCache,
) -> Option<&'r RuleRow> {
    let payload = msg.payload.map(str::trim).filter(|p| !p.is_empty());
    if let Some(p) = payload
        && let Some(hit) = rules
            .iter()
            .find(|r| r.enabled && r.kind == "button" && r.pattern.trim() == p)
    {
        return Some(hit);
    }
    let word = normalize(msg.body);
    rules
        .iter()
        .filter(|r| r.enabled)
        .find(|r| match r.kind.as_str() {
            "keyword" => !word.is_empty() && keywords(&r.pattern).contains(&word),
            "regex" => !msg.body.is_empty() && cache.is_match(&r.pattern, msg.body),
            "image_echo" => msg.has_image(),
            "any" => !msg.body.trim().is_empty(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, kind: &str, pattern: &str) -> RuleRow {
        RuleRow {
            id,
            position: id as i32 * 10,
            name: format!("rule {id}"),
            kind: kind.into(),
            pattern: pattern.into(),
            sender: None,
            reply_body: Some(format!("reply {id}")),
            reply_media: Vec::new(),
            bot_id: None,
            enabled: true,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            hits: 0,
            last_hit_at: None,
        }
    }

    fn text(body: &str) -> Inbound<'_> {
        Inbound {
            body,
            media_types: &[],
            payload: None,
        }
    }

    fn tap<'a>(body: &'a str, payload: &'a str) -> Inbound<'a> {
        Inbound {
            body,
            media_types: &[],
            payload: Some(payload),
        }
    }

    #[test]
    fn a_tapped_button_is_answered_by_its_payload_before_text_rules() {
        let cache = RegexCache::default();
        let rules = vec![
            rule(1, "keyword", "yes"),
            rule(2, "regex", "(?i)come"),
            rule(3, "button", "confirm"),
            rule(4, "button", "Reschedule"),
        ];
        let hit = |m: &Inbound<'_>| first_match(&rules, m, &cache).map(|r| r.id);
        assert_eq!(hit(&tap("Yes, I'll come", "confirm")), Some(3));
        assert_eq!(
            hit(&tap("Yes, I'll come", "  confirm ")),
            Some(3),
            "surrounding whitespace is ignored"
        );
        assert_eq!(
            hit(&tap("Yes!", "CONFIRM")),
            Some(1),
            "payloads are case-sensitive: the keyword rule matches the button's text"
        );
        assert_eq!(hit(&tap("Reschedule", "reschedule")), None);
        assert_eq!(hit(&tap("Reschedule", "Reschedule")), Some(4));
        assert_eq!(
            hit(&text("confirm")),
            None,
            "a typed word is not a tap: button rules never match a body"
        );
        assert_eq!(hit(&tap("come", "")), Some(2), "an empty payload is no tap");
        let mut off = rules.clone();
        off[2].enabled = false;
        assert_eq!(
            first_match(&off, &tap("Yes", "confirm"), &cache).map(|r| r.id),
            Some(1)
        );
    }

    #[test]
    fn the_first_matching_rule_answers() {
        let cache = RegexCache::default();
        let rules = vec![
            rule(1, "keyword", "hours, opening hours"),
            rule(2, "regex", r"(?i)\border\s+#?\d+"),
            rule(3, "keyword", "hi"),
            rule(4, "image_echo", ""),
        ];
        let hit = |m: &Inbound<'_>| first_match(&rules, m, &cache).map(|r| r.id);
        assert_eq!(hit(&text("Hours?")), Some(1));
        assert_eq!(hit(&text("  opening   HOURS ")), Some(1));
        assert_eq!(
            hit(&text("what are your hours")),
            None,
            "keywords match whole messages"
        );
        assert_eq!(hit(&text("where is ORDER #123?")), Some(2));
        assert_eq!(hit(&text("hi!")), Some(3));
        assert_eq!(hit(&text("")), None);
        let jpeg = [Some("image/jpeg".to_owned())];
        assert_eq!(
            hit(&Inbound {
                body: "",
                media_types: &jpeg,
                payload: None,
            }),
            Some(4)
        );
        assert_eq!(
            hit(&Inbound {
                body: "hi",
                media_types: &jpeg,
                payload: None,
            }),
            Some(3),
            "text rules come before the image echo"
        );
        let pdf = [Some("application/pdf".to_owned())];
        assert_eq!(
            hit(&Inbound {
                body: "",
                media_types: &pdf,
                payload: None,
            }),
            None,
            "only images are echoed"
        );
    }

    #[test]
    fn an_any_rule_takes_every_text_no_earlier_rule_matched() {
        let cache = RegexCache::default();
        // In evaluation order, as storage returns them: `any` rules last.
        let rules = vec![
            rule(1, "keyword", "hours"),
            rule(2, "image_echo", ""),
            rule(3, "any", ""),
        ];
        let hit = |m: &Inbound<'_>| first_match(&rules, m, &cache).map(|r| r.id);
        assert_eq!(hit(&text("hours")), Some(1));
        assert_eq!(hit(&text("where is my parcel")), Some(3));
        assert_eq!(hit(&text("   ")), None, "no text, nothing for a bot");
        let jpeg = [Some("image/jpeg".to_owned())];
        assert_eq!(
            hit(&Inbound {
                body: "",
                media_types: &jpeg,
                payload: None,
            }),
            Some(2)
        );
    }

    #[test]
    fn a_rule_names_a_bot_or_a_reply_not_both() {
        let bot = RuleInput {
            name: Some("Everything else".into()),
            kind: Some("any".into()),
            bot: Some(4),
            ..Default::default()
        };
        let r = validate(&bot).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.bot_id, r.reply_body),
            ("any", Some(4), None)
        );
        let both = RuleInput {
            reply_body: Some("hi".into()),
            ..bot.clone()
        };
        assert!(validate(&both).unwrap_err().contains("not both"));
        let patterned = RuleInput {
            pattern: "x".into(),
            ..bot.clone()
        };
        assert!(validate(&patterned).unwrap_err().contains("no pattern"));
        let neither = RuleInput {
            bot: None,
            ..bot.clone()
        };
        assert!(validate(&neither).unwrap_err().contains("names a bot"));
        let echo = RuleInput {
            kind: Some("image_echo".into()),
            ..bot
        };
        assert!(validate(&echo).unwrap_err().contains("not a bot"));
    }

    #[test]
    fn disabled_rules_are_skipped() {
        let cache = RegexCache::default();
        let mut r = rule(1, "keyword", "hi");
        r.enabled = false;
        let rules = vec![r, rule(2, "regex", "^hi$")];
        assert_eq!(
            first_match(&rules, &text("hi"), &cache).map(|r| r.id),
            Some(2)
        );
    }

    #[test]
    fn rules_are_validated_before_they_are_stored() {
        let ok = RuleInput {
            name: Some("Hours".into()),
            kind: Some("keyword".into()),
            pattern: "hours".into(),
            reply_body: Some("9 to 5".into()),
            ..Default::default()
        };
        let r = validate(&ok).unwrap();
        assert_eq!((r.kind.as_str(), r.enabled), ("keyword", true));
        let bad = |f: &dyn Fn(&mut RuleInput)| {
            let mut i = ok.clone();
            f(&mut i);
            validate(&i).unwrap_err()
        };
        assert!(bad(&|i| i.pattern = " , ".into()).contains("keyword"));
        assert!(
            bad(&|i| {
                i.kind = Some("regex".into());
                i.pattern = "(unclosed".into();
            })
            .contains("regular expression")
        );
        assert!(bad(&|i| i.kind = Some("other".into())).contains("kind"));
        assert!(bad(&|i| i.reply_body = None).contains("body, media"));
        assert!(bad(&|i| i.reply_media = vec!["ftp://x".into()]).contains("http"));
        assert!(bad(&|i| i.name = None).contains("name"));
        assert!(bad(&|i| i.sender = Some("12345".into())).contains("sender"));
        assert!(
            bad(&|i| {
                i.kind = Some("image_echo".into());
                i.pattern = String::new();
            })
            .contains("image")
        );
        let button = |pattern: &str| {
            validate(&RuleInput {
                kind: Some("button".into()),
                pattern: pattern.into(),
                ..ok.clone()
            })
        };
        assert_eq!(button("  confirm_yes ").unwrap().pattern, "confirm_yes");
        assert!(button("  ").unwrap_err().contains("payload"));
        assert!(button(&"x".repeat(1001)).unwrap_err().contains("bytes"));
        let echo = RuleInput {
            name: Some("Echo".into()),
            kind: Some("image_echo".into()),
            reply_media: vec!["https://example.com/thanks.jpg".into()],
            sender: Some("+14155238886".into()),
            ..Default::default()
        };
        let r = validate(&echo).unwrap();
        assert_eq!(r.sender.as_deref(), Some("whatsapp:+14155238886"));
    }
}
