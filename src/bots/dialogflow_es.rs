//! Google Dialogflow ES agents: `Sessions.DetectIntent` (API v2) through the official SDK
//! (`google-cloud-dialogflow-v2`, `sessions` only, REST/JSON), mapped to a [`BotAnswer`].
//!
//! Mapping (docs/bots.md, "Cloud bots"): `fulfillmentMessages` of the default platform (all
//! of them when none is for the default platform): `text` → text, `quickReplies` → choices,
//! `card` → media (with an image) and choices from its buttons, `image` → media, `payload` →
//! rich content; `fulfillmentText` when there are no messages. The intent is
//! `intent.displayName` with `intentDetectionConfidence`; `parameters` as sent. An intent
//! marked `isFallback` is [`BotSignal::Fallback`]; `liveAgentHandoff`, `endInteraction` or a
//! hand-off name (see [`is_handoff_name`]) is a hand-off.

use futures_util::future::BoxFuture;
use google_cloud_dialogflow_v2 as sdk;
use sdk::client::Sessions;
use sdk::model::intent::message::{Message, Platform};
use sdk::model::{DetectIntentResponse, QueryInput, TextInput};
use serde_json::Value;

use super::cloud::{confidence, f32_value, is_handoff_name, rich_payload, text_message, tidy};
use super::google::GoogleClient;
use super::{Bot, BotAnswer, BotError, BotKind, BotMessage, BotSignal, BotTurn};
use crate::domain::bot::{ChoiceOption, EsConfig};

/// A Dialogflow ES agent (optionally one environment of it) in one language.
pub struct EsBot {
    client: Sessions,
    google: GoogleClient,
    /// `projects/{p}/agent[/environments/{e}/users/-]`
    agent_path: String,
    language: String,
}

impl std::fmt::Debug for EsBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsBot")
            .field("agent", &self.agent_path)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl EsBot {
    /// Builds the client (see [`GoogleClient::configure`]): the service account from the
    /// configuration when given, else application-default credentials; `endpoint` overrides
    /// `https://dialogflow.googleapis.com`.
    pub async fn connect(config: &EsConfig, endpoint: Option<&str>) -> Result<Self, BotError> {
        let (builder, google) = GoogleClient::configure(
            "dialogflow_es",
            Sessions::builder(),
            endpoint.map(str::to_owned),
            config.service_account_json.as_deref(),
        )?;
        let client = builder.build().await.map_err(|e| google.build_error(e))?;
        let agent_path = match config.environment.as_deref().filter(|e| !e.is_empty()) {
            Some(env) => format!(
                "projects/{}/agent/environments/{env}/users/-",
                config.project
            ),
            None => format!("projects/{}/agent", config.project),
        };
        Ok(EsBot {
            client,
            google,
            agent_path,
            language: config.language.clone(),
        })
    }

    /// The session's resource name.
    pub fn session_path(&self, session_id: &str) -> String {
        format!("{}/sessions/{session_id}", self.agent_path)
    }

    async fn detect(&self, turn: &BotTurn) -> Result<BotAnswer, BotError> {
        let response = self
            .client
            .detect_intent()
            .set_session(self.session_path(&turn.session_id))
            .set_query_input(
                QueryInput::new().set_text(
                    TextInput::new()
                        .set_text(&turn.text)
                        .set_language_code(&self.language),
                ),
            )
            .send()
            .await
            .map_err(|e| self.google.call_error(e))?;
        Ok(answer(&response))
    }
}

impl Bot for EsBot {
    fn kind(&self) -> BotKind {
        BotKind::DialogflowEs
    }

    fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(self.detect(turn))
    }
}

/// Reads ES's answer.
pub fn answer(response: &DetectIntentResponse) -> BotAnswer {
    let empty = Default::default();
    let result = response.query_result.as_ref().unwrap_or(&empty);
    let default_platform = result
        .fulfillment_messages
        .iter()
        .any(|m| m.platform == Platform::Unspecified);
    let mut messages: Vec<BotMessage> = Vec::new();
    for message in result
        .fulfillment_messages
        .iter()
        .filter(|m| !default_platform || m.platform == Platform::Unspecified)
    {
        match &message.message {
            Some(Message::Text(text)) => messages.extend(text_message(&text.text)),
            Some(Message::QuickReplies(q)) if !q.quick_replies.is_empty() => {
                messages.push(BotMessage::Choices {
                    body: q.title.trim().to_owned(),
                    options: q.quick_replies.iter().map(|r| r.as_str().into()).collect(),
                })
            }
            Some(Message::Image(image)) if !image.image_uri.trim().is_empty() => {
                messages.push(BotMessage::Media {
                    url: image.image_uri.trim().to_owned(),
                    caption: Some(image.accessibility_text.trim().to_owned())
                        .filter(|c| !c.is_empty()),
                })
            }
            Some(Message::Card(card)) => {
                let title = card.title.trim();
                if !card.image_uri.trim().is_empty() {
                    messages.push(BotMessage::Media {
                        url: card.image_uri.trim().to_owned(),
                        caption: (!title.is_empty()).then(|| title.to_owned()),
                    });
                }
                let body = [title, card.subtitle.trim()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                let options: Vec<ChoiceOption> = card
                    .buttons
                    .iter()
                    // A postback is the text sent back to the agent, unless it is a link.
                    .map(|b| match b.postback.trim() {
                        p if p.starts_with("https://") || p.starts_with("http://") => {
                            ChoiceOption::from(b.text.as_str())
                        }
                        p => ChoiceOption::with_value(b.text.as_str(), p),
                    })
                    .collect();
                if !options.is_empty() {
                    messages.push(BotMessage::Choices { body, options });
                } else if card.image_uri.trim().is_empty() {
                    messages.push(BotMessage::Text { body });
                }
            }
            Some(Message::Payload(payload)) => messages.extend(rich_payload(payload)),
            _ => {}
        }
    }
    if messages.is_empty() {
        messages.extend(text_message(std::slice::from_ref(&result.fulfillment_text)));
    }
    let intent = result.intent.as_ref();
    let name = intent
        .map(|i| i.display_name.clone())
        .filter(|n| !n.is_empty());
    let signal = match intent {
        Some(i) if i.is_fallback => BotSignal::Fallback,
        Some(i) if i.live_agent_handoff => BotSignal::Handoff("es_live_agent_handoff".into()),
        Some(i) if i.end_interaction => BotSignal::Handoff("es_end_interaction".into()),
        Some(i) if is_handoff_name(&i.display_name) => {
            BotSignal::Handoff(format!("intent:{}", i.display_name))
        }
        _ => BotSignal::Continue,
    };
    BotAnswer {
        messages: tidy(messages),
        intent: name,
        confidence: confidence(f32_value(result.intent_detection_confidence)),
        parameters: Value::Object(result.parameters.clone().unwrap_or_default()),
        signal,
    }
}
