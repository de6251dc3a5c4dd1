//! Connects to a cloud bot (Lex V2, Dialogflow CX or ES) from its configuration, and the
//! reading shared by the adapters: rich payloads, hand-off names, the caller's time budget.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Bot, BotError, BotMessage, BotTurn};
use crate::bots::{dialogflow_cx, dialogflow_es, lex};
use crate::domain::bot::{BotAnswer, BotConfig, ChoiceOption};

/// Builds the client for `config`; `endpoint` overrides the service's URL (tests, private
/// endpoints). The demo bot is not a cloud bot and is refused here.
///
/// Building reads credentials (the key pair or service-account JSON given, else the standard
/// AWS chain / application-default credentials) but sends nothing to the service.
pub async fn connect(config: &BotConfig, endpoint: Option<&str>) -> Result<Arc<dyn Bot>, BotError> {
    // The SDKs find rustls' process-wide provider; wadash uses ring everywhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(match config {
        BotConfig::LexV2(c) => Arc::new(lex::LexBot::connect(c, endpoint).await?),
        BotConfig::DialogflowCx(c) => Arc::new(dialogflow_cx::CxBot::connect(c, endpoint).await?),
        BotConfig::DialogflowEs(c) => Arc::new(dialogflow_es::EsBot::connect(c, endpoint).await?),
        BotConfig::Demo => {
            return Err(BotError::Failed(
                "the demo bot is not a cloud bot: it needs no connection".into(),
            ));
        }
    })
}

/// Asks `bot` and gives up after `budget` with [`BotError::Timeout`]. The adapters keep the
/// SDKs' own retries to at most one, so the budget is the whole cost of a turn.
pub async fn ask_within(
    bot: &dyn Bot,
    turn: &BotTurn,
    budget: Duration,
) -> Result<BotAnswer, BotError> {
    match tokio::time::timeout(budget, bot.ask(turn)).await {
        Ok(answer) => answer,
        Err(_) => Err(BotError::Timeout(budget)),
    }
}

/// Whether an intent or page name asks for a human. The name is lowercased and stripped of
/// everything but letters and digits; it asks for a human when it contains "handoff",
/// "human" or "liveagent", or is one of "agent", "talktoagent", "speaktoagent",
/// "escalate". So `TalkToAgent`, `human_handoff`, `Live Agent` and `speak-to-a-human` do,
/// `BookFlight` and `TravelAgentInfo` do not.
pub fn is_handoff_name(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    ["handoff", "human", "liveagent"]
        .iter()
        .any(|w| n.contains(w))
        || ["agent", "talktoagent", "speaktoagent", "escalate"].contains(&n.as_str())
}

/// Reads a custom payload (Dialogflow `payload` message, Lex `CustomPayload`) in the Dialogflow
/// Messenger `richContent` shape: `{"richContent": [[{"type": "chips", "options": [{"text":
/// …}]}, {"type": "image", "rawUrl": …}, …]]}`. Chips, buttons and list items become the
/// options of one [`BotMessage::Choices`]; info and description titles and texts its body (or
/// [`BotMessage::Text`] when there are no options); images become [`BotMessage::Media`].
/// Other payloads carry nothing a WhatsApp contact can see and give no message.
pub(crate) fn rich_payload(payload: &serde_json::Map<String, Value>) -> Vec<BotMessage> {
    let Some(Value::Array(groups)) = payload.get("richContent") else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    for group in groups {
        let items: Vec<&Value> = match group {
            Value::Array(items) => items.iter().collect(),
            item @ Value::Object(_) => vec![item],
            _ => continue,
        };
        let mut body: Vec<String> = Vec::new();
        let mut options: Vec<ChoiceOption> = Vec::new();
        for item in items {
            let str_of = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            match item.get("type").and_then(Value::as_str).unwrap_or("") {
                "chips" => {
                    for option in item
                        .get("options")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(text) = option.get("text").and_then(Value::as_str) {
                            options.push(text.into());
                        }
                    }
                }
                "button" | "list" => {
                    if let Some(text) = str_of("text").or_else(|| str_of("title")) {
                        options.push(text.into());
                    }
                }
                "image" => {
                    if let Some(url) = str_of("rawUrl") {
                        messages.push(BotMessage::Media {
                            url,
                            caption: str_of("accessibilityText"),
                        });
                    }
                }
                "info" | "description" | "accordion" => {
                    body.extend(str_of("title"));
                    body.extend(str_of("subtitle"));
                    match item.get("text") {
                        Some(Value::String(s)) if !s.trim().is_empty() => {
                            body.push(s.trim().to_owned())
                        }
                        Some(Value::Array(lines)) => {
                            body.extend(lines.iter().filter_map(Value::as_str).map(str::to_owned))
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let body = body.join("\n");
        if !options.is_empty() {
            messages.push(BotMessage::Choices { body, options });
        } else if !body.is_empty() {
            messages.push(BotMessage::Text { body });
        }
    }
    messages
}

/// Final touch on an answer's messages: drops empty texts, and gives choices without a body
/// the text just before them, images between them aside (a bot usually asks, then offers
/// chips), so WhatsApp gets one question with its quick replies.
pub(crate) fn tidy(messages: Vec<BotMessage>) -> Vec<BotMessage> {
    let mut out: Vec<BotMessage> = Vec::with_capacity(messages.len());
    for message in messages {
        match message {
            BotMessage::Text { body } if body.trim().is_empty() => {}
            BotMessage::Choices { body, options } if body.trim().is_empty() => {
                // The question may come before the payload's images.
                let question = out
                    .iter()
                    .rposition(|m| !matches!(m, BotMessage::Media { .. }))
                    .filter(|&i| matches!(out[i], BotMessage::Text { .. }));
                let body = match question.map(|i| out.remove(i)) {
                    Some(BotMessage::Text { body }) => body,
                    _ => String::new(),
                };
                out.push(BotMessage::Choices { body, options });
            }
            other => out.push(other),
        }
    }
    out
}

/// The first non-empty one of the service's message texts, joined for a `Text` message.
pub(crate) fn text_message(lines: &[String]) -> Option<BotMessage> {
    let body = lines
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (!body.is_empty()).then_some(BotMessage::Text { body })
}

/// Confidence as a 0.0–1.0 value, or none when the service reported none (0 means "not
/// computed" in Dialogflow's answers).
pub(crate) fn confidence(value: f64) -> Option<f64> {
    (value > 0.0).then_some(value.min(1.0))
}

/// A protobuf `float` as the decimal the service meant (0.87, not 0.8700000047683716).
pub(crate) fn f32_value(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Maps an error of a Google client (Dialogflow CX or ES) to its kind.
pub(crate) fn google_error(service: &str, err: google_cloud_gax::error::Error) -> BotError {
    use google_cloud_gax::error::rpc::Code;
    let detail = || {
        err.status()
            .map(|s| format!("{service}: {:?}: {}", s.code, s.message))
            .unwrap_or_else(|| format!("{service}: {err}"))
    };
    if err.is_timeout() {
        return BotError::Failed(format!("{service}: timed out: {err}"));
    }
    if err.is_authentication() {
        return BotError::Auth(format!("{service}: {err}"));
    }
    if err.is_deserialization() {
        return BotError::Malformed(format!("{service}: {err}"));
    }
    let code = err.status().map(|s| s.code);
    let http = err.http_status_code();
    if code == Some(Code::ResourceExhausted) || http == Some(429) {
        return BotError::Throttled(detail());
    }
    if matches!(code, Some(Code::Unauthenticated | Code::PermissionDenied))
        || matches!(http, Some(401 | 403))
    {
        return BotError::Auth(detail());
    }
    if http.is_some_and(|h| (200..300).contains(&h)) {
        return BotError::Malformed(detail());
    }
    BotError::Failed(detail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn handoff_names_are_recognised_loosely_but_not_by_accident() {
        for yes in [
            "TalkToAgent",
            "human_handoff",
            "Live Agent",
            "speak-to-a-human",
            "agent",
            "Escalate",
            "HandOff",
        ] {
            assert!(is_handoff_name(yes), "{yes}");
        }
        for no in [
            "BookFlight",
            "TravelAgentInfo",
            "FallbackIntent",
            "",
            "Default Welcome Intent",
        ] {
            assert!(!is_handoff_name(no), "{no}");
        }
    }

    #[test]
    fn rich_content_becomes_choices_media_and_text() {
        let payload = json!({"richContent": [[
            {"type": "info", "title": "Our sizes"},
            {"type": "chips", "options": [{"text": "Small"}, {"text": "Large"}]},
            {"type": "image", "rawUrl": "https://example.com/s.png", "accessibilityText": "Sizes"}
        ], [
            {"type": "description", "title": "Opening hours", "text": ["Mon–Fri", "9–17"]}
        ]]});
        let got = rich_payload(payload.as_object().unwrap());
        assert_eq!(
            got,
            vec![
                BotMessage::Media {
                    url: "https://example.com/s.png".into(),
                    caption: Some("Sizes".into())
                },
                BotMessage::Choices {
                    body: "Our sizes".into(),
                    options: vec!["Small".into(), "Large".into()]
                },
                BotMessage::Text {
                    body: "Opening hours\nMon–Fri\n9–17".into()
                },
            ]
        );
        assert!(rich_payload(json!({"custom": 1}).as_object().unwrap()).is_empty());
    }

    #[test]
    fn choices_without_a_body_take_the_question_before_them() {
        let got = tidy(vec![
            BotMessage::Text { body: " ".into() },
            BotMessage::Text {
                body: "Which size?".into(),
            },
            BotMessage::Choices {
                body: String::new(),
                options: vec!["S".into(), "L".into()],
            },
        ]);
        assert_eq!(
            got,
            vec![BotMessage::Choices {
                body: "Which size?".into(),
                options: vec!["S".into(), "L".into()]
            }]
        );
    }
}
