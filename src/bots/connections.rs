//! Bot connections as admins write them (`/api/v1/bots`, `/admin/bots`): validation, sealing
//! the secrets, the public view that never shows them, and opening a stored connection.
//!
//! Secrets (`secret_access_key` for Lex, `service_account_json` for Dialogflow) are
//! write-only: stored as one JSON object sealed with `WADASH_SECRET_KEY` (purpose
//! [`PURPOSE`]); a change that does not give a secret keeps the stored one, an empty string
//! removes it.

use serde::{Deserialize, Serialize};

use crate::bots::credentials::CredentialSource;
use crate::domain::bot::{BotConfig, BotKind};
use crate::domain::destination::{AllowList, check_url};
use crate::domain::secret_key::SecretKey;
use crate::storage::bots::{BotRow, NewBot};

pub const PURPOSE: &str = "bot-secrets";
pub const DEFAULT_TIMEOUT_MS: i32 = 8000;
const SECRET_FIELDS: [&str; 2] = ["secret_access_key", "service_account_json"];

/// A bot as `POST` (all of it) or `PATCH` (any part) gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub config: Option<serde_json::Value>,
    /// `""` removes an override.
    pub endpoint: Option<String>,
    pub timeout_ms: Option<i64>,
}

/// What the API and the pages show of a bot: never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct BotView {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// The configuration without its secrets.
    pub config: serde_json::Value,
    /// Which secrets are stored (names only).
    pub secrets_set: Vec<String>,
    /// Where the bot's credentials come from: "access key entered", "AWS default chain",
    /// "service-account JSON entered", "application default credentials"; `null` for the
    /// demo bot.
    pub credentials: Option<&'static str>,
    pub endpoint: Option<String>,
    pub timeout_ms: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The 400 reason.
    #[error("{0}")]
    Invalid(String),
    /// A secret was given but no `WADASH_SECRET_KEY` is set to seal it.
    #[error(
        "secrets are stored sealed with WADASH_SECRET_KEY, which is not set: set it (openssl rand -base64 32) and restart"
    )]
    NoSecretKey,
    /// The stored secrets cannot be opened (another key, tampered).
    #[error("the bot's stored secrets cannot be opened: {0}")]
    Sealed(String),
}

/// Opens a stored bot's secrets (an empty object when it has none).
pub fn open_secrets(
    row: &BotRow,
    key: Option<&SecretKey>,
) -> Result<serde_json::Map<String, serde_json::Value>, InputError> {
    let Some(sealed) = &row.secrets else {
        return Ok(serde_json::Map::new());
    };
    let key = key.ok_or(InputError::NoSecretKey)?;
    let plain = key
        .open(PURPOSE, sealed)
        .map_err(|e| InputError::Sealed(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|e| InputError::Sealed(e.to_string()))
}

/// The stored bot's whole configuration, secrets included (in memory only).
pub fn config_of(row: &BotRow, key: Option<&SecretKey>) -> Result<BotConfig, InputError> {
    let kind = BotKind::parse(&row.kind)
        .ok_or_else(|| InputError::Invalid(format!("unknown bot kind {:?}", row.kind)))?;
    let mut config = row.config.0.as_object().cloned().unwrap_or_default();
    config.extend(open_secrets(row, key)?);
    BotConfig::parse(kind, &serde_json::Value::Object(config)).map_err(InputError::Invalid)
}

pub fn view(row: &BotRow, key: Option<&SecretKey>) -> BotView {
    let secrets_set = match open_secrets(row, key) {
        Ok(s) => s.keys().cloned().collect(),
        // Stored but unreadable here: say that something is stored.
        Err(_) => vec!["(sealed)".to_owned()],
    };
    let credentials = BotKind::parse(&row.kind)
        .and_then(|kind| CredentialSource::of_stored(kind, &secrets_set))
        .map(CredentialSource::label);
    BotView {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.clone(),
        config: row.config.0.clone(),
        secrets_set,
        credentials,
        endpoint: row.endpoint.clone(),
        timeout_ms: row.timeout_ms,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Validates `input` (over `existing` for a change) into what is stored: the configuration
/// is read for its kind (`BotConfig::parse`), the endpoint checked like every user-given
/// outbound URL, the secrets sealed.
pub fn validate(
    input: &BotInput,
    existing: Option<&BotRow>,
    key: Option<&SecretKey>,
    allow: &AllowList,
) -> Result<NewBot, InputError> {
    let bad = |m: String| InputError::Invalid(m);
    let name = input
        .name
        .clone()
        .or_else(|| existing.map(|e| e.name.clone()))
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("name is required (at most 100 characters)".into()));
    }
    let kind_text = input
        .kind
        .clone()
        .or_else(|| existing.map(|e| e.kind.clone()))
        .unwrap_or_default();
    let kind = BotKind::parse(kind_text.trim()).ok_or_else(|| {
        bad(format!(
            "kind must be lex_v2, dialogflow_cx, dialogflow_es or demo, got {kind_text:?}"
        ))
    })?;
    let same_kind = existing.is_some_and(|e| e.kind == kind.as_str());
    if existing.is_some() && !same_kind && input.config.is_none() && kind != BotKind::Demo {
        return Err(bad(format!(
            "changing the kind to {} needs its config",
            kind.as_str()
        )));
    }
    // Start from what is stored (same kind only), then lay the given config over it.
    let mut plain = serde_json::Map::new();
    let mut secrets = serde_json::Map::new();
    if let Some(e) = existing.filter(|_| same_kind) {
        if input.config.is_none() {
            plain = e.config.0.as_object().cloned().unwrap_or_default();
        }
        secrets = open_secrets(e, key)?;
    }
    if let Some(config) = &input.config {
        let obj = config
            .as_object()
            .ok_or_else(|| bad("config must be a JSON object".into()))?;
        for (k, v) in obj {
            if SECRET_FIELDS.contains(&k.as_str()) {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) if s.is_empty() => {
                        secrets.remove(k);
                    }
                    serde_json::Value::String(_) => {
                        secrets.insert(k.clone(), v.clone());
                    }
                    _ => return Err(bad(format!("config: {k} must be a string"))),
                }
            } else if !v.is_null() {
                plain.insert(k.clone(), v.clone());
            }
        }
    }
    if kind == BotKind::Demo {
        if !plain.is_empty() || !secrets.is_empty() {
            return Err(bad("the demo bot takes no config: give {}".into()));
        }
    } else {
        let mut whole = plain.clone();
        whole.extend(secrets.clone());
        let parsed = BotConfig::parse(kind, &serde_json::Value::Object(whole)).map_err(bad)?;
        check_config(&parsed).map_err(bad)?;
        let known = fields_of(kind);
        if let Some(unknown) = input
            .config
            .as_ref()
            .and_then(|c| c.as_object())
            .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(bad(format!(
                "config: unknown field {unknown:?} for a {} bot",
                kind.as_str()
            )));
        }
        plain.retain(|k, _| known.contains(&k.as_str()));
        secrets.retain(|k, _| known.contains(&k.as_str()));
    }
    let endpoint = match input.endpoint.as_deref().map(str::trim) {
        Some("") => None,
        Some(e) => Some(check_url(e, allow).map_err(|r| bad(format!("endpoint: {r}")))?),
        None => existing
            .and_then(|e| e.endpoint.clone())
            .map(|e| check_url(&e, allow).map_err(|r| bad(format!("endpoint: {r}"))))
            .transpose()?,
    }
    .map(|u| u.as_str().trim_end_matches('/').to_owned());
    let timeout_ms = match input.timeout_ms {
        Some(t) if (100..=60_000).contains(&t) => t as i32,
        Some(t) => {
            return Err(bad(format!(
                "timeout_ms must be between 100 and 60000, got {t}"
            )));
        }
        None => existing.map_or(DEFAULT_TIMEOUT_MS, |e| e.timeout_ms),
    };
    let sealed = if secrets.is_empty() {
        None
    } else {
        let key = key.ok_or(InputError::NoSecretKey)?;
        let plain = serde_json::to_vec(&secrets).map_err(|e| bad(e.to_string()))?;
        Some(key.seal(PURPOSE, &plain))
    };
    Ok(NewBot {
        name,
        kind: kind.as_str().to_owned(),
        config: serde_json::Value::Object(plain),
        secrets: sealed,
        endpoint,
        timeout_ms,
    })
}

/// The configuration fields of each kind (DESIGN.md, "Bots").
pub fn fields_of(kind: BotKind) -> &'static [&'static str] {
    match kind {
        BotKind::LexV2 => &[
            "bot_id",
            "bot_alias_id",
            "locale_id",
            "region",
            "access_key_id",
            "secret_access_key",
        ],
        BotKind::DialogflowCx => &[
            "project",
            "location",
            "agent",
            "environment",
            "language",
            "service_account_json",
        ],
        BotKind::DialogflowEs => &["project", "language", "environment", "service_account_json"],
        BotKind::Demo => &[],
    }
}

/// What `BotConfig::parse` does not check: required text present, key pairs whole, a
/// service-account JSON that is one.
fn check_config(config: &BotConfig) -> Result<(), String> {
    let required = |pairs: &[(&str, &str)]| -> Result<(), String> {
        match pairs.iter().find(|(_, v)| v.trim().is_empty()) {
            Some((k, _)) => Err(format!("config: {k} must not be empty")),
            None => Ok(()),
        }
    };
    let account = |json: &Option<String>| -> Result<(), String> {
        let Some(text) = json else { return Ok(()) };
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("config: service_account_json is not JSON: {e}"))?;
        for field in ["client_email", "private_key"] {
            if v.get(field).and_then(|f| f.as_str()).is_none() {
                return Err(format!(
                    "config: service_account_json has no {field} (download a key for the service account)"
                ));
            }
        }
        Ok(())
    };
    match config {
        BotConfig::LexV2(c) => {
            required(&[
                ("bot_id", &c.bot_id),
                ("bot_alias_id", &c.bot_alias_id),
                ("locale_id", &c.locale_id),
                ("region", &c.region),
            ])?;
            if c.access_key_id.is_some() != c.secret_access_key.is_some() {
                return Err(
                    "config: give access_key_id and secret_access_key together (or neither, for the standard AWS credential chain)"
                        .into(),
                );
            }
            Ok(())
        }
        BotConfig::DialogflowCx(c) => {
            required(&[
                ("project", &c.project),
                ("location", &c.location),
                ("agent", &c.agent),
                ("language", &c.language),
            ])?;
            account(&c.service_account_json)
        }
        BotConfig::DialogflowEs(c) => {
            required(&[("project", &c.project), ("language", &c.language)])?;
            account(&c.service_account_json)
        }
        BotConfig::Demo => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SecretKey {
        SecretKey::from_bytes([9; 32])
    }

    fn lex(extra: serde_json::Value) -> BotInput {
        let mut config = json!({"bot_id": "B1", "bot_alias_id": "A1", "locale_id": "en_US", "region": "eu-west-1"});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        BotInput {
            name: Some("Support".into()),
            kind: Some("lex_v2".into()),
            config: Some(config),
            ..Default::default()
        }
    }

    fn row(b: NewBot) -> BotRow {
        BotRow {
            id: 1,
            name: b.name,
            kind: b.kind,
            config: sqlx::types::Json(b.config),
            secrets: b.secrets,
            endpoint: b.endpoint,
            timeout_ms: b.timeout_ms,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn secrets_are_sealed_apart_from_the_config_and_kept_by_a_change_without_them() {
        let allow = AllowList::default();
        let input = lex(json!({"access_key_id": "AKIA1", "secret_access_key": "s3cr3t"}));
        let new = validate(&input, None, Some(&key()), &allow).unwrap();
        assert!(!new.config.to_string().contains("s3cr3t"));
        assert!(!new.secrets.as_deref().unwrap().contains("s3cr3t"));
        assert_eq!(new.config["access_key_id"], "AKIA1");
        let stored = row(new);
        let view = view(&stored, Some(&key()));
        assert_eq!(view.secrets_set, vec!["secret_access_key".to_owned()]);
        assert_eq!(view.credentials, Some("access key entered"));
        // A change of the region alone keeps the secret.
        let change = BotInput {
            config: Some(
                json!({"bot_id": "B1", "bot_alias_id": "A1", "locale_id": "en_US", "region": "us-east-1", "access_key_id": "AKIA1"}),
            ),
            ..Default::default()
        };
        let changed = row(validate(&change, Some(&stored), Some(&key()), &allow).unwrap());
        match config_of(&changed, Some(&key())).unwrap() {
            BotConfig::LexV2(c) => {
                assert_eq!(c.region, "us-east-1");
                assert_eq!(c.secret_access_key.as_deref(), Some("s3cr3t"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_configs_are_refused_with_their_reason() {
        let allow = AllowList::default();
        let k = Some(key());
        let err = |i: BotInput| {
            validate(&i, None, k.as_ref(), &allow)
                .unwrap_err()
                .to_string()
        };
        assert!(err(lex(json!({"region": ""}))).contains("region"));
        assert!(err(lex(json!({"access_key_id": "AKIA1"}))).contains("together"));
        assert!(err(lex(json!({"projcet": "x"}))).contains("projcet"));
        let mut no_kind = lex(json!({}));
        no_kind.kind = Some("watson".into());
        assert!(err(no_kind).contains("kind"));
        let cx = BotInput {
            name: Some("CX".into()),
            kind: Some("dialogflow_cx".into()),
            config: Some(
                json!({"project": "p", "location": "global", "agent": "a", "language": "en", "service_account_json": "{}"}),
            ),
            ..Default::default()
        };
        assert!(err(cx).contains("client_email"));
        let mut endpoint = lex(json!({}));
        endpoint.endpoint = Some("http://127.0.0.1:9/".into());
        assert!(err(endpoint.clone()).contains("endpoint"));
        let allowed = AllowList::new(&["127.0.0.1".into()]);
        let ok = validate(&endpoint, None, k.as_ref(), &allowed).unwrap();
        assert_eq!(ok.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        let no_key = lex(json!({"access_key_id": "AKIA1", "secret_access_key": "x"}));
        assert!(matches!(
            validate(&no_key, None, None, &allow),
            Err(InputError::NoSecretKey)
        ));
    }

    #[test]
    fn the_demo_bot_takes_no_config() {
        let allow = AllowList::default();
        let demo = BotInput {
            name: Some("Demo".into()),
            kind: Some("demo".into()),
            config: Some(json!({})),
            ..Default::default()
        };
        let b = validate(&demo, None, None, &allow).unwrap();
        assert_eq!(
            (b.kind.as_str(), b.timeout_ms),
            ("demo", DEFAULT_TIMEOUT_MS)
        );
        let with = BotInput {
            config: Some(json!({"project": "p"})),
            ..demo
        };
        assert!(validate(&with, None, None, &allow).is_err());
    }
}
