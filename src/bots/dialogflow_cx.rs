//! Google Dialogflow CX agents: `Sessions.DetectIntent` through the official SDK
//! (`google-cloud-dialogflow-cx-v3`, REST/JSON), mapped to a [`BotAnswer`].
//!
//! Mapping (docs/bots.md, "Cloud bots"): `text` messages are text, `payload` messages are read
//! as rich content (chips and buttons → choices, images → media); the intent is
//! `match.intent.displayName` with `match.confidence`; `parameters` are the session
//! parameters. An `endInteraction` message (the END_SESSION page) is `Handoff("cx_end_session")`,
//! a `liveAgentHandoff` message `Handoff("cx_live_agent_handoff")`, a page or intent with a
//! hand-off name (see [`is_handoff_name`]) `Handoff("page:…")` / `Handoff("intent:…")`, and
//! a `NO_MATCH` (or `NO_INPUT`) match is [`BotSignal::Fallback`].

use futures_util::future::BoxFuture;
use google_cloud_dialogflow_cx_v3 as sdk;
use sdk::client::Sessions;
use sdk::model::r#match::MatchType;
use sdk::model::response_message::Message;
use sdk::model::{DetectIntentResponse, QueryInput, TextInput};
use serde_json::Value;

use super::cloud::{confidence, f32_value, is_handoff_name, rich_payload, text_message, tidy};
use super::google::GoogleClient;
use super::{Bot, BotAnswer, BotError, BotKind, BotMessage, BotSignal, BotTurn};
use crate::domain::bot::CxConfig;

/// A Dialogflow CX agent (optionally one environment of it) in one language.
pub struct CxBot {
    client: Sessions,
    google: GoogleClient,
    /// `projects/{p}/locations/{l}/agents/{a}[/environments/{e}]`
    agent_path: String,
    language: String,
}

impl std::fmt::Debug for CxBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxBot")
            .field("agent", &self.agent_path)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl CxBot {
    /// Builds the client (see [`GoogleClient::configure`]): the service account from the
    /// configuration when given, else application-default credentials. A regional agent
    /// (`location` other than `global`) is served by
    /// `https://{location}-dialogflow.googleapis.com`; `endpoint` overrides both.
    pub async fn connect(config: &CxConfig, endpoint: Option<&str>) -> Result<Self, BotError> {
        let regional = (config.location != "global")
            .then(|| format!("https://{}-dialogflow.googleapis.com", config.location));
        let (builder, google) = GoogleClient::configure(
            "dialogflow_cx",
            Sessions::builder(),
            endpoint.map(str::to_owned).or(regional),
            config.service_account_json.as_deref(),
        )?;
        let client = builder.build().await.map_err(|e| google.build_error(e))?;
        let mut agent_path = format!(
            "projects/{}/locations/{}/agents/{}",
            config.project, config.location, config.agent
        );
        if let Some(env) = config.environment.as_deref().filter(|e| !e.is_empty()) {
            agent_path.push_str(&format!("/environments/{env}"));
        }
        Ok(CxBot {
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
                QueryInput::new()
                    .set_language_code(&self.language)
                    .set_text(TextInput::new().set_text(&turn.text)),
            )
            .send()
            .await
            .map_err(|e| self.google.call_error(e))?;
        Ok(answer(&response))
    }
}

impl Bot for CxBot {
    fn kind(&self) -> BotKind {
        BotKind::DialogflowCx
    }

    fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(self.detect(turn))
    }
}

/// Reads CX's answer.
pub fn answer(response: &DetectIntentResponse) -> BotAnswer {
    let empty = Default::default();
    let result = response.query_result.as_ref().unwrap_or(&empty);
    let mut messages: Vec<BotMessage> = Vec::new();
    let mut signal = None;
    for message in &result.response_messages {
        match &message.message {
            Some(Message::Text(text)) => messages.extend(text_message(&text.text)),
            Some(Message::Payload(payload)) => messages.extend(rich_payload(payload)),
            Some(Message::EndInteraction(_)) => {
                signal.get_or_insert(BotSignal::Handoff("cx_end_session".into()));
            }
            Some(Message::LiveAgentHandoff(_)) => {
                signal = Some(BotSignal::Handoff("cx_live_agent_handoff".into()));
            }
            _ => {}
        }
    }
    let matched = result.r#match.as_ref();
    let intent = matched
        .and_then(|m| m.intent.as_ref())
        .map(|i| i.display_name.clone())
        .filter(|n| !n.is_empty());
    let score = matched.map(|m| m.confidence).unwrap_or(0.0);
    let page = result
        .current_page
        .as_ref()
        .map(|p| p.display_name.as_str())
        .unwrap_or("");
    let signal = signal.unwrap_or_else(|| {
        let match_type = matched.map(|m| &m.match_type);
        if matches!(match_type, Some(MatchType::NoMatch | MatchType::NoInput)) {
            BotSignal::Fallback
        } else if is_handoff_name(page) {
            BotSignal::Handoff(format!("page:{page}"))
        } else if let Some(name) = intent.as_deref().filter(|n| is_handoff_name(n)) {
            BotSignal::Handoff(format!("intent:{name}"))
        } else {
            BotSignal::Continue
        }
    });
    BotAnswer {
        messages: tidy(messages),
        intent,
        confidence: confidence(f32_value(score)),
        parameters: Value::Object(result.parameters.clone().unwrap_or_default()),
        signal,
    }
}
