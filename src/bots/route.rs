//! Routing to bots: which bot a message goes to, its session, what its answer (or failure)
//! becomes, and the hand-offs it leads to. Pure decisions here, used by `replies::route`
//! (inside the routing transaction) and by [`super::runtime::Bots::converse`] (after it).
//!
//! Precedence: consent keywords first (src/replies); then the rules (button, keyword and
//! regex, image echo); a conversation with a live bot session goes on with its bot before any
//! `any` rule; a conversation waiting for a human gets no bot answer; the hand-off keyword in
//! a bot conversation hands it to a human.

use chrono::{DateTime, Utc};

use crate::config::BotSettings;
use crate::domain::bot::{BotAnswer, BotMessage, BotSignal, ChoiceSet};

use super::BotError;

/// Longest body of one WhatsApp message through Twilio.
pub const MAX_BODY_CHARS: usize = 1600;
/// Messages of one bot answer sent at most (the rest are dropped with a log line).
pub const MAX_MESSAGES: usize = 5;

/// A message handed to a bot by the routing transaction, to ask after it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCall {
    pub inbound_sid: String,
    pub bot_id: i64,
    pub session_id: String,
    pub text: String,
    /// `+E.164`
    pub number: String,
    /// The contact's address (`whatsapp:+…`): where answers go.
    pub contact: String,
    /// The sender written to (`whatsapp:+…`): where answers come from.
    pub sender: String,
    /// Fallback answers in a row in this session before this turn.
    pub fallbacks: i32,
}

/// Who answers a message that passed the consent keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The matched rule's fixed reply.
    Rule,
    /// A bot: the matched rule's (`rule`), or the live session's.
    Bot {
        bot_id: i64,
        rule: bool,
    },
    Nothing,
}

/// Decides between the first matching rule (`(kind, bot)`) and a live bot session's bot.
pub fn choose(hit: Option<(&str, Option<i64>)>, session_bot: Option<i64>) -> Target {
    match (hit, session_bot) {
        // A conversation with a bot goes on with it rather than a catch-all rule.
        (Some(("any", _)), Some(bot_id)) | (None, Some(bot_id)) => Target::Bot {
            bot_id,
            rule: false,
        },
        (Some((_, Some(bot_id))), _) => Target::Bot { bot_id, rule: true },
        (Some((_, None)), _) => Target::Rule,
        (None, None) => Target::Nothing,
    }
}

/// The bot of a conversation whose session is live at `now` (it answered within the idle
/// time, and no human has the conversation).
pub fn live_session_bot(
    bot_id: Option<i64>,
    last_turn_at: Option<DateTime<Utc>>,
    handed_off: bool,
    now: DateTime<Utc>,
    idle: std::time::Duration,
) -> Option<i64> {
    let last = last_turn_at?;
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    (!handed_off && now - last < idle)
        .then_some(bot_id)
        .flatten()
}

/// A conversation's stored session: its id, its bot and its last turn.
pub type StoredSession<'a> = (&'a str, Option<i64>, Option<DateTime<Utc>>);

/// The session for a turn with `bot_id`: the stored one when it is this bot's and not idle
/// (false), else a new one (true).
pub fn session_for(
    stored: Option<StoredSession<'_>>,
    bot_id: i64,
    now: DateTime<Utc>,
    idle: std::time::Duration,
    new_id: impl FnOnce() -> String,
) -> (String, bool) {
    match stored {
        Some((id, Some(b), Some(last)))
            if b == bot_id
                && now - last
                    < chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX) =>
        {
            (id.to_owned(), false)
        }
        _ => (new_id(), true),
    }
}

/// A new session id: 24 random hex digits (valid for Lex and Dialogflow session ids).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    format!("wa-{}", crate::domain::hex(&bytes))
}

/// Whether `body` is the hand-off keyword (matched as consent keywords are).
pub fn is_handoff_keyword(body: &str, settings: &BotSettings) -> bool {
    !settings.handoff_keyword.is_empty()
        && crate::domain::consent::normalize(body) == settings.handoff_keyword
}

/// What asking the bot gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Answer(BotAnswer),
    Failed(BotError),
    /// Not asked: the circuit breaker has paused the bot.
    Paused,
}

/// One reply to send: a body, media, or both; or a question with choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// For choices, the numbered text (what is sent when no interactive message is).
    pub body: Option<String>,
    pub media: Vec<String>,
    /// A question with choices: sent as quick replies or a list where WhatsApp allows
    /// ([`super::choices`]), through the REST client.
    pub choices: Option<ChoiceSet>,
    /// `bot` for the bot's words and the fallback reply, `handoff` for the hand-off notice.
    pub reason: &'static str,
}

/// What a turn comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub replies: Vec<Reply>,
    /// Hand the conversation to a human, for this reason.
    pub handoff: Option<String>,
    /// Fallbacks in a row after this turn.
    pub fallbacks: i32,
    /// `answered`, or why there was no answer (the metric's outcome label).
    pub outcome: &'static str,
}

/// Turns what the bot said (or why it said nothing) into replies and hand-offs.
pub fn plan(asked: &Asked, fallbacks_before: i32, settings: &BotSettings) -> Plan {
    let fallback_reply = || {
        vec![Reply {
            body: Some(settings.fallback_reply.clone()),
            media: Vec::new(),
            choices: None,
            reason: "bot",
        }]
    };
    let handoff_reply = || {
        settings
            .handoff_reply
            .iter()
            .map(|t| Reply {
                body: Some(t.clone()),
                media: Vec::new(),
                choices: None,
                reason: "handoff",
            })
            .collect::<Vec<_>>()
    };
    match asked {
        Asked::Paused => Plan {
            replies: fallback_reply(),
            handoff: None,
            fallbacks: fallbacks_before,
            outcome: "paused",
        },
        Asked::Failed(e) => Plan {
            replies: fallback_reply(),
            handoff: None,
            fallbacks: fallbacks_before,
            outcome: e.outcome(),
        },
        Asked::Answer(a) => {
            let said = render(&a.messages);
            match &a.signal {
                BotSignal::Continue => Plan {
                    replies: said,
                    handoff: None,
                    fallbacks: 0,
                    outcome: "answered",
                },
                BotSignal::Handoff(reason) => Plan {
                    replies: if said.is_empty() {
                        handoff_reply()
                    } else {
                        said
                    },
                    handoff: Some(reason.clone()),
                    fallbacks: 0,
                    outcome: "answered",
                },
                BotSignal::Fallback => {
                    let n = fallbacks_before.saturating_add(1);
                    if settings.max_fallbacks > 0 && n >= settings.max_fallbacks as i32 {
                        Plan {
                            replies: handoff_reply(),
                            handoff: Some("fallbacks".into()),
                            fallbacks: 0,
                            outcome: "answered",
                        }
                    } else {
                        Plan {
                            replies: said,
                            handoff: None,
                            fallbacks: n,
                            outcome: "answered",
                        }
                    }
                }
            }
        }
    }
}

/// A bot's messages as WhatsApp messages: text as text, media by URL (with its caption), and
/// choices as a [`Reply`] carrying them with their numbered text as its body. Choices become
/// quick-reply buttons (up to 3 options of up to 20 characters) or a list picker (up to 10
/// of up to 24) when sent — a bot always answers inside the 24-hour session, where WhatsApp
/// takes both without approval — and stay numbered text when they do not fit, or when
/// creating their Content at Twilio fails ([`super::choices`], [`super::interactive`]).
pub fn render(messages: &[BotMessage]) -> Vec<Reply> {
    let clip = |s: &str| -> String { s.chars().take(MAX_BODY_CHARS).collect() };
    let mut out: Vec<Reply> = messages
        .iter()
        .filter_map(|m| match m {
            BotMessage::Text { body } if body.trim().is_empty() => None,
            BotMessage::Text { body } => Some(Reply {
                body: Some(clip(body)),
                media: Vec::new(),
                choices: None,
                reason: "bot",
            }),
            BotMessage::Media { url, caption } => {
                let ok = url.starts_with("https://") || url.starts_with("http://");
                if !ok {
                    tracing::warn!(%url, "a bot's media answer is not an http(s) URL: left out");
                    return None;
                }
                Some(Reply {
                    body: caption
                        .as_deref()
                        .filter(|c| !c.trim().is_empty())
                        .map(clip),
                    media: vec![url.clone()],
                    choices: None,
                    reason: "bot",
                })
            }
            BotMessage::Choices { body, options } => {
                let set = ChoiceSet {
                    body: body.clone(),
                    options: options.clone(),
                };
                Some(Reply {
                    body: Some(clip(&super::choices::numbered_text(&set))),
                    media: Vec::new(),
                    choices: Some(set),
                    reason: "bot",
                })
            }
        })
        .collect();
    if out.len() > MAX_MESSAGES {
        tracing::warn!(
            messages = out.len(),
            "a bot answered with more messages than are sent: the rest are left out"
        );
        out.truncate(MAX_MESSAGES);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::domain::bot::ChoiceOption;

    fn settings() -> BotSettings {
        BotSettings::default()
    }

    fn answer(signal: BotSignal, body: &str) -> Asked {
        Asked::Answer(BotAnswer {
            messages: vec![BotMessage::Text { body: body.into() }],
            intent: Some("x".into()),
            confidence: Some(0.9),
            parameters: json!({}),
            signal,
        })
    }

    #[test]
    fn a_live_session_goes_on_before_an_any_rule_but_not_before_other_rules() {
        assert_eq!(choose(Some(("keyword", None)), Some(7)), Target::Rule);
        assert_eq!(
            choose(Some(("keyword", Some(3))), Some(7)),
            Target::Bot {
                bot_id: 3,
                rule: true
            }
        );
        assert_eq!(
            choose(Some(("any", Some(3))), Some(7)),
            Target::Bot {
                bot_id: 7,
                rule: false
            }
        );
        assert_eq!(
            choose(Some(("any", None)), Some(7)),
            Target::Bot {
                bot_id: 7,
                rule: false
            }
        );
        assert_eq!(choose(Some(("any", None)), None), Target::Rule);
        assert_eq!(
            choose(Some(("any", Some(3))), None),
            Target::Bot {
                bot_id: 3,
                rule: true
            }
        );
        assert_eq!(
            choose(None, Some(7)),
            Target::Bot {
                bot_id: 7,
                rule: false
            }
        );
        assert_eq!(choose(None, None), Target::Nothing);
    }

    #[test]
    fn sessions_last_while_the_contact_writes_and_reset_after_the_idle_time() {
        let idle = Duration::from_secs(1800);
        let t0 = chrono::Utc::now();
        let fresh = || "new".to_owned();
        let later = |s: i64| t0 + chrono::Duration::seconds(s);
        assert_eq!(
            session_for(Some(("s1", Some(1), Some(t0))), 1, later(1799), idle, fresh),
            ("s1".to_owned(), false)
        );
        assert_eq!(
            session_for(Some(("s1", Some(1), Some(t0))), 1, later(1800), idle, fresh),
            ("new".to_owned(), true)
        );
        assert_eq!(
            session_for(Some(("s1", Some(1), Some(t0))), 2, later(1), idle, fresh),
            ("new".to_owned(), true),
            "another bot, another session"
        );
        assert_eq!(
            session_for(None, 1, t0, idle, fresh),
            ("new".to_owned(), true)
        );
        assert_eq!(
            live_session_bot(Some(1), Some(t0), false, later(10), idle),
            Some(1)
        );
        assert_eq!(
            live_session_bot(Some(1), Some(t0), true, later(10), idle),
            None
        );
        assert_eq!(
            live_session_bot(Some(1), Some(t0), false, later(1800), idle),
            None
        );
        assert_eq!(live_session_bot(Some(1), None, false, t0, idle), None);
        let id = new_session_id();
        assert_eq!(id.len(), 27);
        assert_ne!(id, new_session_id());
    }

    #[test]
    fn failures_and_pauses_give_the_fallback_reply_and_keep_the_count() {
        let s = settings();
        for (asked, outcome) in [
            (
                Asked::Failed(BotError::Timeout(Duration::from_secs(8))),
                "timeout",
            ),
            (
                Asked::Failed(BotError::Throttled("429".into())),
                "throttled",
            ),
            (Asked::Failed(BotError::Auth("denied".into())), "auth"),
            (Asked::Failed(BotError::Malformed("{".into())), "malformed"),
            (Asked::Paused, "paused"),
        ] {
            let p = plan(&asked, 1, &s);
            assert_eq!(p.outcome, outcome);
            assert_eq!(p.replies.len(), 1);
            assert_eq!(
                p.replies[0].body.as_deref(),
                Some(s.fallback_reply.as_str())
            );
            assert_eq!((p.fallbacks, p.handoff), (1, None));
        }
    }

    #[test]
    fn n_fallbacks_in_a_row_hand_off_and_an_answer_resets_the_count() {
        let s = settings();
        let first = plan(&answer(BotSignal::Fallback, "Sorry?"), 0, &s);
        assert_eq!((first.fallbacks, first.handoff.as_deref()), (1, None));
        assert_eq!(first.replies[0].body.as_deref(), Some("Sorry?"));
        let second = plan(&answer(BotSignal::Fallback, "Sorry?"), 1, &s);
        assert_eq!(second.handoff.as_deref(), Some("fallbacks"));
        assert_eq!(second.replies[0].reason, "handoff");
        assert_eq!(second.fallbacks, 0);
        let ok = plan(&answer(BotSignal::Continue, "Sure"), 1, &s);
        assert_eq!((ok.fallbacks, ok.outcome), (0, "answered"));
        let never = BotSettings {
            max_fallbacks: 0,
            ..settings()
        };
        assert_eq!(
            plan(&answer(BotSignal::Fallback, "?"), 50, &never).handoff,
            None
        );
    }

    #[test]
    fn the_bots_handoff_signal_hands_off_with_its_words_or_the_notice() {
        let s = settings();
        let p = plan(
            &answer(BotSignal::Handoff("lex_close".into()), "Bye"),
            0,
            &s,
        );
        assert_eq!(p.handoff.as_deref(), Some("lex_close"));
        assert_eq!(p.replies[0].body.as_deref(), Some("Bye"));
        let silent = Asked::Answer(BotAnswer {
            messages: vec![],
            intent: None,
            confidence: None,
            parameters: json!({}),
            signal: BotSignal::Handoff("cx_end_session".into()),
        });
        let p = plan(&silent, 0, &s);
        assert_eq!(p.replies[0].reason, "handoff");
    }

    #[test]
    fn rich_answers_become_media_and_choices_with_their_numbered_text() {
        let r = render(&[
            BotMessage::Choices {
                body: "Pick one".into(),
                options: vec!["Hours".into(), "Orders".into()],
            },
            BotMessage::Media {
                url: "https://cdn.example.com/a.png".into(),
                caption: None,
            },
            BotMessage::Media {
                url: "s3://bucket/a.png".into(),
                caption: Some("no".into()),
            },
            BotMessage::Text { body: " ".into() },
            BotMessage::Text {
                body: "x".repeat(2000),
            },
        ]);
        assert_eq!(r[0].body.as_deref(), Some("Pick one\n1. Hours\n2. Orders"));
        let choices = r[0]
            .choices
            .as_ref()
            .expect("the choices go with their text");
        assert_eq!(
            choices.options,
            [ChoiceOption::from("Hours"), ChoiceOption::from("Orders")]
        );
        assert_eq!((r[1].body.as_deref(), r[1].media.len()), (None, 1));
        assert!(r[1..].iter().all(|r| r.choices.is_none()));
        assert_eq!(r.len(), 3, "bad URLs and empty text are left out");
        assert_eq!(r[2].body.as_ref().unwrap().chars().count(), MAX_BODY_CHARS);
    }

    #[test]
    fn the_handoff_keyword_is_matched_like_consent_keywords() {
        let s = settings();
        assert!(is_handoff_keyword(" Agent! ", &s));
        assert!(!is_handoff_keyword("an agent please", &s));
        let none = BotSettings {
            handoff_keyword: String::new(),
            ..settings()
        };
        assert!(!is_handoff_keyword("", &none));
    }
}
