//! Where alerts go, as the running jobs see it. The environment (`WADASH_ALERT_WEBHOOK_URL`,
//! `WADASH_ALERT_WEBHOOK_SECRET`, `WADASH_ALERT_WHATSAPP`, `WADASH_TOPUP_WEBHOOK_URL`,
//! `WADASH_TOPUP_WEBHOOK_SECRET`) gives the defaults; what admins save on `/admin/alerts` or
//! through `PUT /api/v1/alert-channels` is stored in the database (`instance_settings` key
//! `alert_channels`) and wins, field by field. A field never saved follows the environment;
//! removing what was saved brings the environment's values back.
//!
//! Secrets are stored sealed with `WADASH_SECRET_KEY`, like the Twilio credentials, each
//! bound to its purpose so that one cannot be swapped for the other. They never leave the
//! process: pages and the API say only whether one is set.
//!
//! Every instance's jobs ask [`ChannelStore::current`] on each tick. It re-reads the stored
//! value (one primary-key lookup) at most every few seconds, so a change saved on one
//! instance reaches the jobs of every instance within that time, without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::Channels;
use crate::credentials::sealed::SecretKey;
use crate::outbound::{AllowList, Refused};
use crate::storage::instance_settings;

pub const KEY: &str = "alert_channels";
/// How long a read of the stored channels is used before it is read again.
const REREAD: Duration = Duration::from_secs(5);
pub const MAX_NUMBERS: usize = 20;
/// A shorter shared secret would be guessable.
pub const MIN_SECRET_LEN: usize = 16;
const WEBHOOK_PURPOSE: &str = "wadash alert webhook secret v1";
const TOPUP_PURPOSE: &str = "wadash top-up webhook secret v1";

/// What is stored: a field that is present replaces the environment's (an empty string or
/// list meaning "none"); secrets are sealed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    whatsapp: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topup_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topup_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Environment,
    /// Saved in the dashboard or through the API.
    Stored,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Environment => "from the environment",
            Source::Stored => "saved in wadash",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    pub webhook_url: Source,
    pub webhook_secret: Source,
    pub whatsapp: Source,
    pub topup_url: Source,
    pub topup_secret: Source,
}

/// The channels in force, where each part comes from, and what could not be used.
#[derive(Debug, Clone)]
pub struct Effective {
    pub channels: Channels,
    pub sources: Sources,
    /// Why a stored value is left out (a secret that cannot be opened, say).
    pub problem: Option<String>,
}

/// What the API shows: never a secret, only whether one is set.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub webhook_url: Option<String>,
    pub webhook_secret_set: bool,
    pub whatsapp: Vec<String>,
    pub topup_url: Option<String>,
    pub topup_secret_set: bool,
    pub sources: Sources,
    pub problem: Option<String>,
    pub secret_key_configured: bool,
}

/// A secret's part in a change.
#[derive(Debug, Default)]
pub enum Secret {
    /// Leave it as it is (saved, or the environment's).
    #[default]
    Keep,
    /// None any more, whatever the environment says.
    Clear,
    Set(SecretString),
}

/// A change asked for by the page or the API. For URLs and numbers `None` means "follow
/// the environment" and an empty value "none".
#[derive(Debug, Default)]
pub struct Change {
    pub webhook_url: Option<String>,
    pub webhook_secret: Secret,
    pub whatsapp: Option<Vec<String>>,
    pub topup_url: Option<String>,
    pub topup_secret: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Field name and what is wrong with it, for each bad field.
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(&'static str, String)>),
    #[error(
        "WADASH_SECRET_KEY is not set: secrets are stored only encrypted. Set it to 32 random bytes (`openssl rand -base64 32`) on every instance and restart"
    )]
    NoSecretKey,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

struct Inner {
    pool: PgPool,
    env: Channels,
    key: Option<SecretKey>,
    cache: Mutex<Option<(Instant, Arc<Effective>)>>,
    /// Private hosts the hooks may be saved with.
    allow: AllowList,
    /// The last problem logged, so that it is logged once, not on every read.
    logged: Mutex<Option<String>>,
}

/// The channels in force on this instance (cheap to clone).
#[derive(Clone)]
pub struct ChannelStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChannelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelStore").finish_non_exhaustive()
    }
}

impl ChannelStore {
    /// `env`: the environment's channels, in force where nothing is stored.
    pub fn new(pool: PgPool, env: Channels, key: Option<SecretKey>) -> Self {
        Self::with_allowed_hosts(pool, env, key, AllowList::default())
    }

    /// Like [`new`](Self::new); URLs saved for the hooks may also point at `allow`'s hosts
    /// although they are private (`crate::outbound`).
    pub fn with_allowed_hosts(
        pool: PgPool,
        env: Channels,
        key: Option<SecretKey>,
        allow: AllowList,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                env,
                key,
                allow,
                cache: Mutex::new(None),
                logged: Mutex::new(None),
            }),
        }
    }

    /// The channels in force, re-read from the database at most every few seconds. When the
    /// database cannot be read, the last channels read stay in force.
    pub async fn current(&self) -> Arc<Effective> {
        if let Some((at, eff)) = &*self.inner.cache.lock().expect("channels lock")
            && at.elapsed() < REREAD
        {
            return eff.clone();
        }
        match self.reload().await {
            Ok(eff) => eff,
            Err(e) => {
                tracing::warn!(error = %e, "alert channels: cannot read the saved channels; using the last ones read");
                let cached = self.inner.cache.lock().expect("channels lock").clone();
                cached.map_or_else(
                    || Arc::new(merge(&self.inner.env, &Stored::default(), None)),
                    |(_, eff)| eff,
                )
            }
        }
    }

    /// Reads the saved channels now.
    pub async fn reload(&self) -> sqlx::Result<Arc<Effective>> {
        let stored = self.read_stored().await?;
        let eff = Arc::new(merge(&self.inner.env, &stored, self.inner.key.as_ref()));
        {
            let mut logged = self.inner.logged.lock().expect("channels lock");
            if eff.problem != *logged {
                if let Some(p) = &eff.problem {
                    tracing::error!(problem = %p, "alert channels: a saved value cannot be used");
                }
                logged.clone_from(&eff.problem);
            }
        }
        *self.inner.cache.lock().expect("channels lock") = Some((Instant::now(), eff.clone()));
        Ok(eff)
    }

    async fn read_stored(&self) -> sqlx::Result<Stored> {
        Ok(match instance_settings::get(&self.inner.pool, KEY).await? {
            None => Stored::default(),
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::error!(error = %e, "alert channels: the saved value is unreadable; the environment's apply");
                Stored::default()
            }),
        })
    }

    pub fn secret_key_configured(&self) -> bool {
        self.inner.key.is_some()
    }

    /// What pages and the API show.
    pub fn view(&self, eff: &Effective) -> View {
        let c = &eff.channels;
        View {
            webhook_url: c.webhook_url.clone(),
            webhook_secret_set: c.webhook_secret.is_some(),
            whatsapp: c.whatsapp.clone(),
            topup_url: c.topup_url.clone(),
            topup_secret_set: c.topup_secret.is_some(),
            sources: eff.sources.clone(),
            problem: eff.problem.clone(),
            secret_key_configured: self.secret_key_configured(),
        }
    }

    /// Validates `change` against what is saved and saves it; this instance uses it at once,
    /// the others within a few seconds. Nothing is saved when anything is wrong.
    pub async fn save(&self, change: Change) -> Result<Arc<Effective>, SaveError> {
        let stored = self.read_stored().await?;
        let next = apply(
            &self.inner.env,
            stored,
            change,
            self.inner.key.as_ref(),
            &self.inner.allow,
        )?;
        let text = serde_json::to_string(&next).expect("channels serialize");
        instance_settings::put(&self.inner.pool, KEY, &text).await?;
        Ok(self.reload().await?)
    }

    /// Forgets everything saved: the environment's channels apply again.
    pub async fn reset(&self) -> sqlx::Result<Arc<Effective>> {
        instance_settings::delete(&self.inner.pool, KEY).await?;
        self.reload().await
    }
}

fn or_none(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The environment's channels with the stored fields laid over them.
fn merge(env: &Channels, stored: &Stored, key: Option<&SecretKey>) -> Effective {
    let mut problems = Vec::new();
    let url = |s: &Option<String>, e: &Option<String>| match s {
        Some(u) => (or_none(u), Source::Stored),
        None => (e.clone(), Source::Environment),
    };
    let mut secret = |s: &Option<String>, e: &Option<SecretString>, purpose: &str, what: &str| {
        match s.as_deref() {
            None => (e.clone(), Source::Environment),
            Some("") => (None, Source::Stored),
            Some(sealed) => {
                let opened = match key {
                    None => Err(format!(
                        "the {what} was saved, but WADASH_SECRET_KEY is not set, so it cannot be opened"
                    )),
                    Some(k) => k
                        .open(purpose, sealed)
                        .map_err(|e| format!("the saved {what}: {e}"))
                        .and_then(|b| {
                            String::from_utf8(b).map_err(|_| format!("the saved {what} is corrupt"))
                        }),
                };
                match opened {
                    Ok(s) => (Some(SecretString::from(s)), Source::Stored),
                    Err(p) => {
                        problems.push(p);
                        (None, Source::Stored)
                    }
                }
            }
        }
    };
    let (webhook_url, webhook_url_src) = url(&stored.webhook_url, &env.webhook_url);
    let (webhook_secret, webhook_secret_src) = secret(
        &stored.webhook_secret,
        &env.webhook_secret,
        WEBHOOK_PURPOSE,
        "webhook secret",
    );
    let (topup_url, topup_url_src) = url(&stored.topup_url, &env.topup_url);
    let (topup_secret, topup_secret_src) = secret(
        &stored.topup_secret,
        &env.topup_secret,
        TOPUP_PURPOSE,
        "top-up secret",
    );
    let (whatsapp, whatsapp_src) = match &stored.whatsapp {
        Some(list) => (list.clone(), Source::Stored),
        None => (env.whatsapp.clone(), Source::Environment),
    };
    Effective {
        channels: Channels {
            webhook_url,
            webhook_secret,
            whatsapp,
            topup_url,
            topup_secret,
        },
        sources: Sources {
            webhook_url: webhook_url_src,
            webhook_secret: webhook_secret_src,
            whatsapp: whatsapp_src,
            topup_url: topup_url_src,
            topup_secret: topup_secret_src,
        },
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

fn check_url(
    field: &'static str,
    raw: &str,
    allow: &AllowList,
    errors: &mut Vec<(&'static str, String)>,
) -> String {
    let u = raw.trim();
    if u.is_empty() {
        return String::new();
    }
    let checked = if u.len() > 2048 {
        Err(Refused::NotHttp)
    } else {
        crate::outbound::check_url(u, allow).map(|_| ())
    };
    if let Err(e) = checked {
        errors.push((field, e.to_string()));
    }
    u.to_owned()
}

fn check_numbers(items: &[String], errors: &mut Vec<(&'static str, String)>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match crate::domain::PhoneNumber::parse(raw) {
            Ok(n) if out.iter().any(|o| o == n.as_str()) => {}
            Ok(n) => out.push(n.as_str().to_owned()),
            Err(e) => errors.push(("whatsapp", e)),
        }
    }
    if out.len() > MAX_NUMBERS {
        errors.push(("whatsapp", format!("at most {MAX_NUMBERS} numbers")));
    }
    out
}

/// `stored` with `change` applied, or why not.
fn apply(
    env: &Channels,
    stored: Stored,
    change: Change,
    key: Option<&SecretKey>,
    allow: &AllowList,
) -> Result<Stored, SaveError> {
    let mut errors = Vec::new();
    let mut next = stored;
    next.webhook_url = change
        .webhook_url
        .map(|u| check_url("webhook_url", &u, allow, &mut errors));
    next.topup_url = change
        .topup_url
        .map(|u| check_url("topup_url", &u, allow, &mut errors));
    next.whatsapp = change.whatsapp.map(|n| check_numbers(&n, &mut errors));
    let mut to_seal = Vec::new();
    for (field, secret) in [
        ("webhook_secret", change.webhook_secret),
        ("topup_secret", change.topup_secret),
    ] {
        match secret {
            Secret::Keep => {}
            Secret::Clear => to_seal.push((field, None)),
            Secret::Set(s) => {
                let s = s.expose_secret().trim().to_owned();
                if s.chars().count() < MIN_SECRET_LEN {
                    errors.push((
                        field,
                        format!("must be at least {MIN_SECRET_LEN} characters"),
                    ));
                }
                to_seal.push((field, Some(s)));
            }
        }
    }
    if !errors.is_empty() {
        return Err(SaveError::Invalid(errors));
    }
    for (field, value) in to_seal {
        let (slot, purpose) = match field {
            "webhook_secret" => (&mut next.webhook_secret, WEBHOOK_PURPOSE),
            _ => (&mut next.topup_secret, TOPUP_PURPOSE),
        };
        *slot = Some(match value {
            None => String::new(),
            Some(s) => key
                .ok_or(SaveError::NoSecretKey)?
                .seal(purpose, s.as_bytes()),
        });
    }
    // Each hook's receiver checks signatures: a URL without a secret would be refused there.
    let eff = merge(env, &next, key);
    if eff.channels.webhook_url.is_some() && eff.channels.webhook_secret.is_none() {
        errors.push((
            "webhook_secret",
            "the webhook needs a secret: its receiver checks each alert's signature with it".into(),
        ));
    }
    if eff.channels.topup_url.is_some() && eff.channels.topup_secret.is_none() {
        errors.push((
            "topup_secret",
            "the top-up hook needs a secret: the finance system checks each call's signature with it"
                .into(),
        ));
    }
    if errors.is_empty() {
        Ok(next)
    } else {
        Err(SaveError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::parse(&"07".repeat(32)).unwrap()
    }

    fn env() -> Channels {
        Channels {
            webhook_url: Some("https://env.example/hook".into()),
            webhook_secret: Some(SecretString::from("environment-secret-value")),
            whatsapp: vec!["+919900000001".into()],
            topup_url: None,
            topup_secret: None,
        }
    }

    fn fields(e: &SaveError) -> Vec<&'static str> {
        match e {
            SaveError::Invalid(v) => v.iter().map(|(f, _)| *f).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn nothing_stored_means_the_environment_field_by_field() {
        let eff = merge(&env(), &Stored::default(), None);
        assert_eq!(eff.channels.names(), ["webhook", "whatsapp:+919900000001"]);
        assert_eq!(eff.sources.webhook_url, Source::Environment);

        let stored = Stored {
            webhook_url: Some("https://saved.example/hook".into()),
            whatsapp: Some(vec![]),
            ..Default::default()
        };
        let eff = merge(&env(), &stored, None);
        assert_eq!(
            eff.channels.webhook_url.as_deref(),
            Some("https://saved.example/hook")
        );
        assert_eq!(
            eff.channels
                .webhook_secret
                .as_ref()
                .map(|s| s.expose_secret()),
            Some("environment-secret-value"),
            "a secret never saved is the environment's"
        );
        assert!(eff.channels.whatsapp.is_empty(), "an empty list is none");
        assert_eq!(eff.sources.whatsapp, Source::Stored);
    }

    #[test]
    fn secrets_are_sealed_kept_and_cleared() {
        let k = key();
        let change = Change {
            topup_url: Some("https://finance.example/recharge".into()),
            topup_secret: Secret::Set(SecretString::from("a-long-enough-top-up-secret")),
            ..Default::default()
        };
        let stored = apply(
            &env(),
            Stored::default(),
            change,
            Some(&k),
            &AllowList::default(),
        )
        .unwrap();
        let sealed = stored.topup_secret.clone().unwrap();
        assert!(sealed.starts_with("v1.") && !sealed.contains("a-long-enough"));
        let eff = merge(&env(), &stored, Some(&k));
        assert_eq!(
            eff.channels
                .topup_secret
                .as_ref()
                .map(|s| s.expose_secret()),
            Some("a-long-enough-top-up-secret")
        );
        // Keeping leaves it; the purposes cannot be swapped.
        let kept = apply(
            &env(),
            stored.clone(),
            Change::default(),
            Some(&k),
            &AllowList::default(),
        )
        .unwrap();
        assert_eq!(kept.topup_secret, stored.topup_secret);
        let swapped = Stored {
            webhook_secret: stored.topup_secret.clone(),
            ..Default::default()
        };
        assert!(merge(&env(), &swapped, Some(&k)).problem.is_some());
        // Clearing the secret of a hook that keeps its URL is refused.
        let clear = Change {
            topup_url: Some("https://finance.example/recharge".into()),
            topup_secret: Secret::Clear,
            ..Default::default()
        };
        let e = apply(
            &env(),
            stored.clone(),
            clear,
            Some(&k),
            &AllowList::default(),
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["topup_secret"]);
        let clear_both = Change {
            topup_url: Some(String::new()),
            topup_secret: Secret::Clear,
            ..Default::default()
        };
        let cleared = apply(&env(), stored, clear_both, Some(&k), &AllowList::default()).unwrap();
        assert_eq!(cleared.topup_secret.as_deref(), Some(""));
        assert!(
            merge(&env(), &cleared, Some(&k))
                .channels
                .topup_url
                .is_none()
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_fields_and_secrets_need_the_key() {
        let change = Change {
            webhook_url: Some("ftp://x".into()),
            whatsapp: Some(vec!["+919900000002".into(), "12345".into()]),
            topup_secret: Secret::Set(SecretString::from("short")),
            ..Default::default()
        };
        let e = apply(
            &env(),
            Stored::default(),
            change,
            Some(&key()),
            &AllowList::default(),
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["webhook_url", "whatsapp", "topup_secret"]);
        let change = Change {
            webhook_secret: Secret::Set(SecretString::from("a-long-enough-webhook-secret")),
            ..Default::default()
        };
        assert!(matches!(
            apply(
                &env(),
                Stored::default(),
                change,
                None,
                &AllowList::default()
            ),
            Err(SaveError::NoSecretKey)
        ));
        let numbers = Change {
            whatsapp: Some(vec![
                " +91 99000 00002 ".into(),
                "whatsapp:+919900000002".into(),
            ]),
            ..Default::default()
        };
        let s = apply(
            &env(),
            Stored::default(),
            numbers,
            None,
            &AllowList::default(),
        )
        .unwrap();
        assert_eq!(
            s.whatsapp,
            Some(vec!["+919900000002".to_owned()]),
            "normalized, once"
        );
    }
}
