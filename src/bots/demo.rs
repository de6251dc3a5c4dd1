//! The built-in demo bot: a few rule-based intents, no cloud account, so the whole bot flow
//! (routing, sessions, hand-off, giving back) works in simulator mode and in demos.
//!
//! Deterministic: the same words in the same session state give the same answer. It keeps
//! one small piece of state per session (an order number it asked for), which shows that the
//! session id carries context across messages and is forgotten after the idle reset.
//!
//! Intents: `greeting`, `opening_hours`, `order_status` (slot `order_number`, asked for when
//! missing), `menu` (a question with choices), `picture` (an image from this instance's own
//! static assets), `talk_to_human` (asks for hand-off) and the fallback.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::{Bot, BotAnswer, BotError, BotKind, BotMessage, BotSignal, BotTurn};

/// Where the picture the `picture` intent answers with is served (public: Twilio fetches it).
pub const PICTURE_PATH: &str = "/static/demo-bot.png";

/// Sessions remembered at most; past this the oldest state is dropped wholesale (a demo).
const MAX_SESSIONS: usize = 10_000;

pub const MENU_OPTIONS: [&str; 3] = ["Opening hours", "Order status", "Talk to a person"];

#[derive(Debug, Default)]
struct Session {
    /// The bot asked for an order number: the next digits answer it.
    awaiting_order: bool,
    /// The last answer offered the menu: "1", "2", "3" choose from it.
    offered_menu: bool,
}

#[derive(Debug)]
pub struct DemoBot {
    /// `https://ops.example.com`: the picture is `{base}/static/demo-bot.png`. None: the
    /// picture intent answers with text only.
    public_url: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl DemoBot {
    pub fn new(public_url: Option<&str>) -> Self {
        Self {
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The answer to `turn`, updating the session's state.
    pub fn answer(&self, turn: &BotTurn) -> BotAnswer {
        let mut sessions = self.sessions.lock().expect("demo bot sessions");
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(&turn.session_id) {
            sessions.clear();
        }
        let session = sessions.entry(turn.session_id.clone()).or_default();
        let text = turn.text.trim();
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);

        // A numbered choice from the menu just offered.
        let mut chosen = None;
        if session.offered_menu
            && let Ok(n) = text.trim_end_matches('.').parse::<usize>()
            && (1..=MENU_OPTIONS.len()).contains(&n)
        {
            chosen = Some(n);
        }
        let menu_pick = |n: usize| chosen == Some(n);
        session.offered_menu = false;

        let digits = words
            .iter()
            .find(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_digit()))
            .map(|w| (*w).to_owned());

        if menu_pick(3)
            || has("human")
            || has("person")
            || has("representative")
            || lower.contains("talk to someone")
        {
            session.awaiting_order = false;
            answer(
                vec![text_msg("I'll pass you to a member of our team.")],
                "talk_to_human",
                1.0,
                json!({}),
                BotSignal::Handoff("intent:talk_to_human".into()),
            )
        } else if menu_pick(2) || has("order") || (session.awaiting_order && digits.is_some()) {
            match digits {
                Some(number) => {
                    session.awaiting_order = false;
                    // Deterministic status: from the number's last digit.
                    let last = number
                        .chars()
                        .last()
                        .and_then(|c| c.to_digit(10))
                        .unwrap_or(0);
                    let status = if last % 2 == 0 {
                        "has shipped and should arrive within two days"
                    } else {
                        "is being packed and ships tomorrow"
                    };
                    answer(
                        vec![text_msg(&format!("Order {number} {status}."))],
                        "order_status",
                        1.0,
                        json!({ "order_number": number }),
                        BotSignal::Continue,
                    )
                }
                None => {
                    session.awaiting_order = true;
                    answer(
                        vec![text_msg("Sure. What is your order number?")],
                        "order_status",
                        0.9,
                        json!({ "order_number": null }),
                        BotSignal::Continue,
                    )
                }
            }
        } else if menu_pick(1) || has("hours") || has("open") || has("opening") {
            answer(
                vec![text_msg(
                    "We are open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00.",
                )],
                "opening_hours",
                if has("hours") { 1.0 } else { 0.8 },
                json!({}),
                BotSignal::Continue,
            )
        } else if has("menu") || has("help") || has("options") {
            session.offered_menu = true;
            answer(
                vec![BotMessage::Choices {
                    body: "What can I help you with?".into(),
                    options: MENU_OPTIONS.iter().map(|o| (*o).into()).collect(),
                }],
                "menu",
                1.0,
                json!({}),
                BotSignal::Continue,
            )
        } else if has("picture") || has("photo") || has("image") {
            let messages = match &self.public_url {
                Some(base) => vec![BotMessage::Media {
                    url: format!("{base}{PICTURE_PATH}"),
                    caption: Some("Here is our picture.".into()),
                }],
                None => vec![text_msg("I have no picture to show here.")],
            };
            answer(messages, "picture", 1.0, json!({}), BotSignal::Continue)
        } else if ["hi", "hello", "hey", "hola", "namaste"]
            .iter()
            .any(|g| has(g))
            || lower.starts_with("good morning")
            || lower.starts_with("good evening")
        {
            answer(
                vec![text_msg(
                    "Hello! I am the demo assistant. Ask about our opening hours or an order, \
                     or say MENU.",
                )],
                "greeting",
                1.0,
                json!({}),
                BotSignal::Continue,
            )
        } else {
            answer(
                vec![text_msg(
                    "Sorry, I did not understand. You can ask about opening hours or an order, \
                     or say MENU.",
                )],
                "fallback",
                0.0,
                json!({}),
                BotSignal::Fallback,
            )
        }
    }
}

fn text_msg(body: &str) -> BotMessage {
    BotMessage::Text { body: body.into() }
}

fn answer(
    messages: Vec<BotMessage>,
    intent: &str,
    confidence: f64,
    parameters: serde_json::Value,
    signal: BotSignal,
) -> BotAnswer {
    BotAnswer {
        messages,
        intent: Some(intent.to_owned()),
        confidence: Some(confidence),
        parameters,
        signal,
    }
}

impl Bot for DemoBot {
    fn kind(&self) -> BotKind {
        BotKind::Demo
    }

    fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(async move { Ok(self.answer(turn)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(session: &str, text: &str) -> BotTurn {
        BotTurn {
            session_id: session.into(),
            text: text.into(),
        }
    }

    fn intent(a: &BotAnswer) -> &str {
        a.intent.as_deref().unwrap()
    }

    #[test]
    fn intents_are_recognised_by_their_words() {
        let bot = DemoBot::new(Some("https://ops.example.com/"));
        for (text, want) in [
            ("Hi!", "greeting"),
            ("What are your opening hours?", "opening_hours"),
            ("are you open on sunday", "opening_hours"),
            ("menu", "menu"),
            ("send me a photo", "picture"),
            ("I want to talk to a human", "talk_to_human"),
            ("blorp", "fallback"),
        ] {
            assert_eq!(intent(&bot.answer(&turn("s", text))), want, "{text}");
        }
    }

    #[test]
    fn the_order_number_is_a_slot_asked_for_and_remembered_per_session() {
        let bot = DemoBot::new(None);
        let a = bot.answer(&turn("s1", "where is my order?"));
        assert_eq!(a.parameters, json!({"order_number": null}));
        assert_eq!(a.signal, BotSignal::Continue);
        // Another session does not share the question.
        assert_eq!(intent(&bot.answer(&turn("s2", "12345"))), "fallback");
        let b = bot.answer(&turn("s1", "12345"));
        assert_eq!(intent(&b), "order_status");
        assert_eq!(b.parameters, json!({"order_number": "12345"}));
        assert_eq!(
            b.messages,
            vec![text_msg("Order 12345 is being packed and ships tomorrow.")]
        );
        let c = bot.answer(&turn("s3", "order 4568"));
        assert_eq!(
            c.messages,
            vec![text_msg(
                "Order 4568 has shipped and should arrive within two days."
            )]
        );
    }

    #[test]
    fn the_menu_offers_choices_that_can_be_picked_by_number() {
        let bot = DemoBot::new(None);
        let a = bot.answer(&turn("s", "help"));
        assert!(
            matches!(&a.messages[0], BotMessage::Choices { options, .. } if options.len() == 3)
        );
        assert_eq!(intent(&bot.answer(&turn("s", "1"))), "opening_hours");
        assert_eq!(
            intent(&bot.answer(&turn("s", "1"))),
            "fallback",
            "a number means nothing without the menu"
        );
        bot.answer(&turn("s", "menu"));
        let h = bot.answer(&turn("s", "3"));
        assert_eq!(h.signal, BotSignal::Handoff("intent:talk_to_human".into()));
    }

    #[test]
    fn the_picture_is_served_by_the_instance_itself_or_not_at_all() {
        let with = DemoBot::new(Some("https://ops.example.com/")).answer(&turn("s", "picture"));
        assert_eq!(
            with.messages,
            vec![BotMessage::Media {
                url: "https://ops.example.com/static/demo-bot.png".into(),
                caption: Some("Here is our picture.".into())
            }]
        );
        let without = DemoBot::new(None).answer(&turn("s", "picture"));
        assert!(matches!(&without.messages[0], BotMessage::Text { .. }));
    }

    #[test]
    fn unknown_text_is_a_fallback() {
        let a = DemoBot::new(None).answer(&turn("s", "qwerty uiop"));
        assert_eq!(a.signal, BotSignal::Fallback);
        assert_eq!(a.confidence, Some(0.0));
    }
}
