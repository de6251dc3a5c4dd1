//! Bot connections and bot answers: what wadash keeps about a bot and what a bot says back.
//!
//! The configuration shapes are the ones `/api/v1/bots` accepts (DESIGN.md, "Bots"). Secrets
//! (`secret_access_key`, `service_account_json`) are write-only: stored sealed, never shown.

use serde::{Deserialize, Serialize};

/// Which service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotKind {
    LexV2,
    DialogflowCx,
    DialogflowEs,
    /// The built-in rule-based bot: no cloud account needed (simulator mode, demos).
    Demo,
}

impl BotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BotKind::LexV2 => "lex_v2",
            BotKind::DialogflowCx => "dialogflow_cx",
            BotKind::DialogflowEs => "dialogflow_es",
            BotKind::Demo => "demo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lex_v2" => Some(Self::LexV2),
            "dialogflow_cx" => Some(Self::DialogflowCx),
            "dialogflow_es" => Some(Self::DialogflowEs),
            "demo" => Some(Self::Demo),
            _ => None,
        }
    }
}

/// AWS Lex V2 (`RecognizeText`). Without a key pair, the standard AWS credential chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexConfig {
    pub bot_id: String,
    pub bot_alias_id: String,
    pub locale_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret: write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
}

/// Google Dialogflow CX (`Sessions.DetectIntent`). Without a service-account JSON,
/// application-default credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CxConfig {
    pub project: String,
    pub location: String,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub language: String,
    /// Secret: write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_json: Option<String>,
}

/// Google Dialogflow ES (`Sessions.DetectIntent`, API v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsConfig {
    pub project: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Secret: write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_json: Option<String>,
}

/// A bot connection's configuration, by kind, secrets included (unsealed only in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotConfig {
    LexV2(LexConfig),
    DialogflowCx(CxConfig),
    DialogflowEs(EsConfig),
    Demo,
}

impl BotConfig {
    pub fn kind(&self) -> BotKind {
        match self {
            BotConfig::LexV2(_) => BotKind::LexV2,
            BotConfig::DialogflowCx(_) => BotKind::DialogflowCx,
            BotConfig::DialogflowEs(_) => BotKind::DialogflowEs,
            BotConfig::Demo => BotKind::Demo,
        }
    }

    /// Reads the `config` object of `/api/v1/bots` for `kind`; the error is the 400 reason.
    pub fn parse(kind: BotKind, config: &serde_json::Value) -> Result<Self, String> {
        fn read<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
            T::deserialize(v).map_err(|e| format!("config: {e}"))
        }
        Ok(match kind {
            BotKind::LexV2 => BotConfig::LexV2(read(config)?),
            BotKind::DialogflowCx => BotConfig::DialogflowCx(read(config)?),
            BotKind::DialogflowEs => BotConfig::DialogflowEs(read(config)?),
            BotKind::Demo => BotConfig::Demo,
        })
    }
}

/// One inbound message as a bot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotTurn {
    /// Stable per contact and sender until the idle reset (context carries across messages).
    pub session_id: String,
    /// What the contact wrote, or the tapped button's text.
    pub text: String,
}

/// One message of a bot's answer, before it becomes a WhatsApp message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotMessage {
    Text {
        body: String,
    },
    /// An image or other media by public URL, with an optional caption.
    Media {
        url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// A question with choices (Lex response card buttons, Dialogflow chips): quick replies
    /// or a list where WhatsApp allows, else text listing the choices (see
    /// `crate::bots::choices`).
    Choices {
        body: String,
        options: Vec<ChoiceOption>,
    },
}

/// One choice of a [`BotMessage::Choices`]: what the contact sees, and what the bot is sent
/// when the contact picks it (a Lex button's `value`; Dialogflow's chips have none and get
/// their text back).
///
/// Serialized as a plain string when it has no value of its own (what `options` always was),
/// else as `{"title": …, "value": …}`; both forms are read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OptionForm", into = "OptionForm")]
pub struct ChoiceOption {
    pub title: String,
    pub value: Option<String>,
}

impl ChoiceOption {
    /// An option that sends the bot `value` when chosen (no value when it is the title).
    pub fn with_value(title: impl Into<String>, value: impl Into<String>) -> Self {
        let (title, value) = (title.into(), value.into());
        let value = (!value.trim().is_empty() && value != title).then_some(value);
        Self { title, value }
    }

    /// What the bot is sent when the contact picks this option.
    pub fn utterance(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.title)
    }
}

impl From<&str> for ChoiceOption {
    fn from(title: &str) -> Self {
        title.to_owned().into()
    }
}

impl From<String> for ChoiceOption {
    fn from(title: String) -> Self {
        Self { title, value: None }
    }
}

/// A question with its choices as stored with the reply that asks it (`auto_replies.choices`),
/// so that a tap on one of its buttons can be turned back into the option's utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceSet {
    pub body: String,
    pub options: Vec<ChoiceOption>,
}

/// The friendly name of every Content wadash creates for a bot's choices starts with this; the
/// template catalogue leaves them out (they are session messages, not templates).
pub const CHOICE_CONTENT_PREFIX: &str = "wadash_bot_choice_";

/// The two JSON forms of a [`ChoiceOption`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum OptionForm {
    Title(String),
    Valued { title: String, value: String },
}

impl From<OptionForm> for ChoiceOption {
    fn from(f: OptionForm) -> Self {
        match f {
            OptionForm::Title(title) => title.into(),
            OptionForm::Valued { title, value } => Self::with_value(title, value),
        }
    }
}

impl From<ChoiceOption> for OptionForm {
    fn from(o: ChoiceOption) -> Self {
        match o.value {
            None => OptionForm::Title(o.title),
            Some(value) => OptionForm::Valued {
                title: o.title,
                value,
            },
        }
    }
}

/// What the bot says about the conversation after this turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "signal", content = "reason", rename_all = "snake_case")]
pub enum BotSignal {
    /// Keep talking to the bot.
    Continue,
    /// The bot did not understand (fallback intent / no match).
    Fallback,
    /// The bot asks for a human, or ended the session (reason names Twilio-independent cause,
    /// e.g. "lex_close", "cx_end_session", "es_end_interaction", "intent:talk_to_agent").
    Handoff(String),
}

/// A bot's answer to one turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotAnswer {
    pub messages: Vec<BotMessage>,
    pub intent: Option<String>,
    /// 0.0–1.0 where the service reports one.
    pub confidence: Option<f64>,
    /// Slots (Lex) or parameters (Dialogflow), as the service sent them.
    pub parameters: serde_json::Value,
    pub signal: BotSignal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [
            BotKind::LexV2,
            BotKind::DialogflowCx,
            BotKind::DialogflowEs,
            BotKind::Demo,
        ] {
            assert_eq!(BotKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(BotKind::parse("lex"), None);
    }

    #[test]
    fn options_without_a_value_stay_strings_in_json_and_both_forms_read_back() {
        let plain = ChoiceOption::from("Small");
        let valued = ChoiceOption::with_value("Small pizza", "small");
        assert_eq!(serde_json::to_value(&plain).unwrap(), "Small");
        assert_eq!(
            serde_json::to_value(&valued).unwrap(),
            serde_json::json!({"title": "Small pizza", "value": "small"})
        );
        for o in [&plain, &valued] {
            let back: ChoiceOption =
                serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap();
            assert_eq!(&back, o);
        }
        assert_eq!(valued.utterance(), "small");
        assert_eq!(plain.utterance(), "Small");
        assert_eq!(ChoiceOption::with_value("Yes", "Yes").value, None);
        assert_eq!(ChoiceOption::with_value("Yes", " ").value, None);
    }

    #[test]
    fn a_config_is_read_for_its_kind_and_a_missing_field_is_named() {
        let lex = serde_json::json!({"bot_id": "B", "bot_alias_id": "A", "locale_id": "en_US", "region": "eu-west-1"});
        let cfg = BotConfig::parse(BotKind::LexV2, &lex).unwrap();
        assert_eq!(cfg.kind(), BotKind::LexV2);
        let err = BotConfig::parse(BotKind::DialogflowCx, &lex).unwrap_err();
        assert!(err.contains("project"), "{err}");
    }
}
