//! AWS Lex V2 bots: `RecognizeText` through the official SDK (`aws-sdk-lexruntimev2`), its
//! answer mapped to a [`BotAnswer`] and its failures to [`BotError`] kinds.
//!
//! Mapping (docs/bots.md, "Cloud bots"): `PlainText` and `SSML` messages are text,
//! `ImageResponseCard` a media message when it has an image plus choices from its buttons,
//! `CustomPayload` a Dialogflow-style rich payload when it is one; the intent is
//! `sessionState.intent.name` with its interpretation's `nluConfidence`; the slots are the
//! parameters. `FallbackIntent` is [`BotSignal::Fallback`]; a hand-off intent (see
//! [`is_handoff_name`]) whose dialog action is `Close` is `Handoff("lex_close")`. Any other
//! `Close` only ends that intent: the next message starts a new one with the same bot.

use std::collections::HashMap;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lexruntimev2 as sdk;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use futures_util::future::BoxFuture;
use sdk::config::retry::RetryConfig;
use sdk::config::timeout::TimeoutConfig;
use sdk::config::{BehaviorVersion, Credentials, Region};
use sdk::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use sdk::operation::recognize_text::{RecognizeTextError, RecognizeTextOutput};
use sdk::types::{DialogActionType, MessageContentType, Slot};
use serde_json::{Value, json};

use super::cloud::{is_handoff_name, rich_payload, tidy};
use super::credentials::{CredentialSource, aws_chain_looked_at, process_env};
use super::{Bot, BotAnswer, BotError, BotKind, BotMessage, BotSignal, BotTurn};
use crate::domain::bot::{ChoiceOption, LexConfig};

/// Lex's own name for the built-in fallback intent (`AMAZON.FallbackIntent`).
const FALLBACK_INTENT: &str = "FallbackIntent";
/// Time to open a connection to Lex; the whole call is bounded by the caller.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts per turn: one retry at most (the SDK retries throttling and 5xx answers), after a
/// short back-off, so a turn costs at most about twice the service's latency.
pub const MAX_ATTEMPTS: u32 = 2;

/// A Lex V2 bot alias in one locale.
pub struct LexBot {
    client: sdk::Client,
    source: CredentialSource,
    bot_id: String,
    bot_alias_id: String,
    locale_id: String,
}

impl std::fmt::Debug for LexBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexBot")
            .field("bot_id", &self.bot_id)
            .field("bot_alias_id", &self.bot_alias_id)
            .field("locale_id", &self.locale_id)
            .finish_non_exhaustive()
    }
}

impl LexBot {
    /// Builds the client: the key pair from the configuration when given, else aws-config's
    /// default credential chain (environment, profile, web identity, container, instance),
    /// which is read at the first request, not here.
    pub async fn connect(config: &LexConfig, endpoint: Option<&str>) -> Result<Self, BotError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        // One HTTP stack for the whole process: hyper 1 + rustls 0.23 with ring.
        let http = NullSlotsDropped(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        );
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        let source = match (
            given(&config.access_key_id),
            given(&config.secret_access_key),
        ) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(Credentials::new(
                    id,
                    secret,
                    None,
                    None,
                    "wadash-bot-config",
                ));
                CredentialSource::AccessKeyEntered
            }
            (None, None) => CredentialSource::AwsDefaultChain,
            _ => {
                return Err(BotError::Auth(
                    "lex: access_key_id and secret_access_key go together".into(),
                ));
            }
        };
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let sdk_config = loader.load().await;
        Ok(LexBot {
            client: sdk::Client::new(&sdk_config),
            source,
            bot_id: config.bot_id.clone(),
            bot_alias_id: config.bot_alias_id.clone(),
            locale_id: config.locale_id.clone(),
        })
    }

    async fn recognize(&self, turn: &BotTurn) -> Result<BotAnswer, BotError> {
        let output = self
            .client
            .recognize_text()
            .bot_id(&self.bot_id)
            .bot_alias_id(&self.bot_alias_id)
            .locale_id(&self.locale_id)
            .session_id(&turn.session_id)
            .text(&turn.text)
            .send()
            .await
            .map_err(|e| map_error(e, self.source))?;
        Ok(answer(&output))
    }
}

impl Bot for LexBot {
    fn kind(&self) -> BotKind {
        BotKind::LexV2
    }

    fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
        Box::pin(self.recognize(turn))
    }
}

/// The HTTP client with one fix: Lex answers an unfilled slot as `"Size": null`, which the
/// Rust SDK's dense slot map refuses ("dense map cannot contain null values"), failing every
/// turn in the middle of slot filling. Answers are small JSON, so the connector reads each
/// one and drops `null` entries of `slots` maps before the SDK reads it; anything else passes
/// unchanged.
#[derive(Debug)]
struct NullSlotsDropped(SharedHttpClient);

impl HttpClient for NullSlotsDropped {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NullSlotsConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct NullSlotsConnector(SharedHttpConnector);

impl HttpConnector for NullSlotsConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            let body = ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(Box::new(e)))?
                .into_bytes();
            let fixed = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|mut json| {
                    drop_null_slots(&mut json).then(|| serde_json::to_vec(&json).ok())
                })
                .flatten();
            let body = match fixed {
                Some(json) => SdkBody::from(json),
                None => SdkBody::from(body),
            };
            *response.body_mut() = body;
            Ok(response)
        })
    }
}

/// Removes `null` values from every `slots` object in `json`; whether it removed any.
fn drop_null_slots(json: &mut Value) -> bool {
    let mut changed = false;
    match json {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "slots"
                    && let Value::Object(slots) = value
                {
                    let before = slots.len();
                    slots.retain(|_, v| !v.is_null());
                    changed |= slots.len() != before;
                }
                changed |= drop_null_slots(value);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= drop_null_slots(item);
            }
        }
        _ => {}
    }
    changed
}

/// Reads Lex's answer.
pub fn answer(output: &RecognizeTextOutput) -> BotAnswer {
    let mut messages = Vec::new();
    for message in output.messages() {
        let content = message.content().unwrap_or("");
        match message.content_type() {
            MessageContentType::ImageResponseCard => {
                if let Some(card) = message.image_response_card() {
                    let title = card.title().trim();
                    if let Some(url) = card.image_url().filter(|u| !u.trim().is_empty()) {
                        messages.push(BotMessage::Media {
                            url: url.trim().to_owned(),
                            caption: (!title.is_empty()).then(|| title.to_owned()),
                        });
                    }
                    let body = [Some(title), card.subtitle().map(str::trim)]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("\n");
                    // A button's value is what Lex expects back when it is chosen.
                    let options: Vec<ChoiceOption> = card
                        .buttons()
                        .iter()
                        .map(|b| ChoiceOption::with_value(b.text(), b.value()))
                        .collect();
                    if !options.is_empty() {
                        messages.push(BotMessage::Choices { body, options });
                    } else if card.image_url().is_none() {
                        messages.push(BotMessage::Text { body });
                    }
                } else {
                    messages.push(BotMessage::Text {
                        body: content.to_owned(),
                    });
                }
            }
            MessageContentType::CustomPayload => {
                match serde_json::from_str::<Value>(content) {
                    Ok(Value::Object(payload)) => messages.extend(rich_payload(&payload)),
                    // A payload that is not JSON is text written for the channel.
                    _ => messages.push(BotMessage::Text {
                        body: content.to_owned(),
                    }),
                }
            }
            MessageContentType::Ssml => messages.push(BotMessage::Text {
                body: strip_tags(content),
            }),
            _ => messages.push(BotMessage::Text {
                body: content.to_owned(),
            }),
        }
    }

    let state = output.session_state();
    let intent = state.and_then(|s| s.intent());
    let name = intent.map(|i| i.name().to_owned()).or_else(|| {
        output
            .interpretations()
            .first()
            .and_then(|i| i.intent())
            .map(|i| i.name().to_owned())
    });
    let confidence = output
        .interpretations()
        .iter()
        .find(|i| i.intent().map(|x| x.name()) == name.as_deref())
        .or_else(|| output.interpretations().first())
        .and_then(|i| i.nlu_confidence())
        .map(|c| c.score());
    let parameters = intent
        .and_then(|i| i.slots())
        .map(slots_json)
        .unwrap_or_else(|| json!({}));
    let closed = state
        .and_then(|s| s.dialog_action())
        .is_some_and(|a| *a.r#type() == DialogActionType::Close);
    let signal = match name.as_deref() {
        Some(FALLBACK_INTENT) => BotSignal::Fallback,
        Some(n) if closed && is_handoff_name(n) => BotSignal::Handoff("lex_close".into()),
        _ => BotSignal::Continue,
    };
    BotAnswer {
        messages: tidy(messages),
        intent: name,
        confidence,
        parameters,
        signal,
    }
}

/// Slots as Lex sends them: `{name: {originalValue, interpretedValue, resolvedValues}}`, a
/// list slot's `values` as an array; unfilled slots are left out (see [`NullSlotsDropped`]).
fn slots_json(slots: &HashMap<String, Slot>) -> Value {
    fn slot(s: &Slot) -> Value {
        if !s.values().is_empty() {
            return Value::Array(s.values().iter().map(slot).collect());
        }
        let mut v = match s.value() {
            Some(value) => json!({
                "originalValue": value.original_value(),
                "interpretedValue": value.interpreted_value(),
                "resolvedValues": value.resolved_values(),
            }),
            None => Value::Null,
        };
        if let (Some(subs), Value::Object(map)) = (s.sub_slots(), &mut v) {
            map.insert("subSlots".into(), slots_json(subs));
        }
        v
    }
    // Sorted, so the parameters read the same on every call.
    let sorted: std::collections::BTreeMap<&String, &Slot> = slots.iter().collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, s)| (k.clone(), slot(s)))
            .collect(),
    )
}

fn strip_tags(ssml: &str) -> String {
    let mut out = String::with_capacity(ssml.len());
    let mut in_tag = false;
    for c in ssml.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// Maps an SDK failure to its kind; the SDK's own retry has already run.
fn map_error(
    err: SdkError<RecognizeTextError, sdk::config::http::HttpResponse>,
    source: CredentialSource,
) -> BotError {
    if source == CredentialSource::AwsDefaultChain && no_credentials(&err) {
        // The chain's own reasons can quote a profile file's lines: name places only.
        return BotError::Auth(format!(
            "lex: the AWS default credential chain found no credentials (looked at {}); enter an access key pair or give wadash's service credentials",
            aws_chain_looked_at(&process_env)
        ));
    }
    let context = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let detail = format!("lex: {status} {code}: {message}");
            match code {
                "ThrottlingException" | "TooManyRequestsException" | "LimitExceededException" => {
                    BotError::Throttled(detail)
                }
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationTokenException"
                | "ExpiredTokenException" => BotError::Auth(detail),
                _ if status == 429 => BotError::Throttled(detail),
                _ if status == 401 || status == 403 => BotError::Auth(detail),
                // A success status whose body the SDK could not read.
                _ if (200..300).contains(&status) => BotError::Malformed(format!("lex: {context}")),
                _ => BotError::Failed(detail),
            }
        }
        SdkError::ResponseError(_) => BotError::Malformed(format!("lex: {context}")),
        SdkError::TimeoutError(_) => BotError::Timeout(CONNECT_TIMEOUT),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            BotError::Timeout(CONNECT_TIMEOUT)
        }
        _ if context.to_ascii_lowercase().contains("credential") => {
            BotError::Auth(format!("lex: {context}"))
        }
        _ => BotError::Failed(format!("lex: {context}")),
    }
}

/// Whether the request failed because the credentials provider gave none.
fn no_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::types::{
        Button, ConfidenceScore, DialogAction, ImageResponseCard, Intent, Interpretation, Message,
        SessionState, Value as SlotValue,
    };

    fn output(
        intent: &str,
        action: DialogActionType,
        messages: Vec<Message>,
    ) -> RecognizeTextOutput {
        let intent = Intent::builder()
            .name(intent)
            .slots(
                "Size",
                Slot::builder()
                    .value(
                        SlotValue::builder()
                            .original_value("big")
                            .interpreted_value("large")
                            .resolved_values("large")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        RecognizeTextOutput::builder()
            .set_messages(Some(messages))
            .session_state(
                SessionState::builder()
                    .dialog_action(DialogAction::builder().r#type(action).build().unwrap())
                    .intent(intent.clone())
                    .build(),
            )
            .interpretations(
                Interpretation::builder()
                    .intent(intent)
                    .nlu_confidence(ConfidenceScore::builder().score(0.87).build())
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_card_with_an_image_is_media_then_choices_and_slots_are_parameters() {
        let card = ImageResponseCard::builder()
            .title("Pick a size")
            .image_url("https://example.com/sizes.png")
            .buttons(Button::builder().text("Small").value("s").build().unwrap())
            .buttons(Button::builder().text("Large").value("l").build().unwrap())
            .build()
            .unwrap();
        let out = output(
            "OrderPizza",
            DialogActionType::ElicitSlot,
            vec![
                Message::builder()
                    .content_type(MessageContentType::ImageResponseCard)
                    .image_response_card(card)
                    .build()
                    .unwrap(),
                Message::builder()
                    .content_type(MessageContentType::Ssml)
                    .content("<speak>Thanks!</speak>")
                    .build()
                    .unwrap(),
            ],
        );
        let a = answer(&out);
        assert_eq!(
            a.messages,
            vec![
                BotMessage::Media {
                    url: "https://example.com/sizes.png".into(),
                    caption: Some("Pick a size".into())
                },
                BotMessage::Choices {
                    body: "Pick a size".into(),
                    options: vec![
                        ChoiceOption::with_value("Small", "s"),
                        ChoiceOption::with_value("Large", "l")
                    ]
                },
                BotMessage::Text {
                    body: "Thanks!".into()
                },
            ]
        );
        assert_eq!(a.intent.as_deref(), Some("OrderPizza"));
        assert_eq!(a.confidence, Some(0.87));
        assert_eq!(
            a.parameters,
            json!({"Size": {"originalValue": "big", "interpretedValue": "large", "resolvedValues": ["large"]}})
        );
        assert_eq!(a.signal, BotSignal::Continue);
    }

    #[test]
    fn fallback_and_closing_a_handoff_intent_are_signals_but_a_plain_close_is_not() {
        let a = answer(&output("FallbackIntent", DialogActionType::Close, vec![]));
        assert_eq!(a.signal, BotSignal::Fallback);
        let a = answer(&output("TalkToAgent", DialogActionType::Close, vec![]));
        assert_eq!(a.signal, BotSignal::Handoff("lex_close".into()));
        let a = answer(&output("TalkToAgent", DialogActionType::ElicitSlot, vec![]));
        assert_eq!(a.signal, BotSignal::Continue);
        let a = answer(&output("OrderPizza", DialogActionType::Close, vec![]));
        assert_eq!(a.signal, BotSignal::Continue);
    }
}
