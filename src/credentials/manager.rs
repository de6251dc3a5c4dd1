//! Keeps the credentials in use current: reads the sources, and when what they say changes,
//! switches the REST client and webhook validation over without a restart.
//!
//! A reload happens every poll interval (the file is a few bytes and the stored value one
//! primary-key lookup, so this is cheap and also catches values written by other instances),
//! at once on SIGHUP, and right after an API call changes the stored credentials. A source
//! that cannot be read leaves the previous credentials in force, logged and counted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::PgPool;

use super::sealed::SecretKey;
use super::{CredentialSet, Effective, Source};
use crate::metrics::Metrics;
use crate::storage::instance_settings;
use crate::twilio::client::TwilioClient;
use crate::twilio::webhook_keys::{TokenOrigin, WebhookKeys};

/// Where credentials set through the API are stored (sealed).
pub const STORED_KEY: &str = "twilio_credentials";
/// Associated data bound to the sealed value.
const PURPOSE: &str = "wadash twilio credentials v1";

/// Where credentials come from besides the API.
#[derive(Debug, Clone)]
pub struct Sources {
    pub environment: CredentialSet,
    pub file: Option<PathBuf>,
    pub secret_key: Option<SecretKey>,
}

impl Sources {
    /// Reads every source. `strict_stored`: an unreadable stored value is an error (reload)
    /// rather than a warning (start-up, so that a lost key does not keep wadash down).
    pub async fn read(&self, pool: &PgPool, strict_stored: bool) -> Result<Effective, String> {
        let file = match &self.file {
            Some(path) => Some(super::file::read(path).map_err(|e| format!("{e:#}"))?),
            None => None,
        };
        let stored = match self.read_stored(pool).await {
            Ok(s) => s,
            Err(e) if strict_stored => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "the Twilio credentials stored through the API cannot be used; continuing without them");
                None
            }
        };
        let mut layers: Vec<(Source, &CredentialSet)> =
            vec![(Source::Environment, &self.environment)];
        if let Some(f) = &file {
            layers.push((Source::File, f));
        }
        if let Some(s) = &stored {
            layers.push((Source::Api, s));
        }
        Ok(Effective::merge(&layers))
    }

    async fn read_stored(&self, pool: &PgPool) -> Result<Option<CredentialSet>, String> {
        let Some(sealed) = instance_settings::get(pool, STORED_KEY)
            .await
            .map_err(|e| format!("reading stored credentials: {e}"))?
        else {
            return Ok(None);
        };
        let Some(key) = &self.secret_key else {
            return Err("credentials were stored through the API, but WADASH_SECRET_KEY is not set, so they cannot be opened".into());
        };
        let plain = key
            .open(PURPOSE, &sealed)
            .map_err(|e| format!("stored credentials: {e}"))?;
        let set: CredentialSet = serde_json::from_slice(&plain)
            .map_err(|e| format!("stored credentials are unreadable: {e}"))?;
        set.validated()
            .map(Some)
            .map_err(|e| format!("stored credentials: {e}"))
    }
}

/// The public view of the credentials in force: where each comes from, never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    pub mode: &'static str,
    pub account_sid: Option<String>,
    pub account_sid_source: Option<Source>,
    pub auth_token_source: Option<Source>,
    pub secondary_auth_token: bool,
    pub api_key: Option<String>,
    pub api_key_source: Option<Source>,
    /// Increases every time a change is applied.
    pub generation: u64,
    pub loaded_at: DateTime<Utc>,
    /// Why the last reload could not be used, if it could not.
    pub last_error: Option<String>,
    pub credentials_file: Option<String>,
    pub secret_key_configured: bool,
}

/// Why a change through the API was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "WADASH_SECRET_KEY is not set: credentials are stored only encrypted. Set it to 32 random bytes (`openssl rand -base64 32`) on every instance and restart"
    )]
    NoSecretKey,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

struct Current {
    effective: Effective,
    generation: u64,
    loaded_at: DateTime<Utc>,
    last_error: Option<String>,
    /// Fingerprint of a change already reported as unusable, so it is logged once.
    refused: Option<[u8; 32]>,
}

struct Inner {
    sources: Sources,
    pool: PgPool,
    metrics: Arc<Metrics>,
    twilio: TwilioClient,
    webhook_keys: WebhookKeys,
    live: bool,
    current: Mutex<Current>,
    /// Serialises reloads (the watcher and API calls).
    reloading: tokio::sync::Mutex<()>,
}

/// Shared handle; cheap to clone.
#[derive(Clone)]
pub struct CredentialManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CredentialManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialManager")
            .field("live", &self.inner.live)
            .finish_non_exhaustive()
    }
}

impl CredentialManager {
    /// `effective` is what the client and the webhook keys were built from at start.
    pub fn new(
        sources: Sources,
        effective: Effective,
        pool: PgPool,
        metrics: Arc<Metrics>,
        twilio: TwilioClient,
        webhook_keys: WebhookKeys,
    ) -> Self {
        let live = effective.is_live();
        Self {
            inner: Arc::new(Inner {
                sources,
                pool,
                metrics,
                twilio,
                webhook_keys,
                live,
                current: Mutex::new(Current {
                    effective,
                    generation: 0,
                    loaded_at: Utc::now(),
                    last_error: None,
                    refused: None,
                }),
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.inner.current.lock().expect("credentials state lock")
    }

    /// Re-reads the sources and applies a change. Returns whether anything changed.
    pub async fn reload(&self, trigger: &str) -> Result<bool, String> {
        let _serial = self.inner.reloading.lock().await;
        let new = match self.inner.sources.read(&self.inner.pool, true).await {
            Ok(e) => e,
            Err(e) => {
                let mut cur = self.lock();
                if cur.last_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(%trigger, error = %e, "Twilio credentials could not be reloaded; the previous ones stay in use");
                    self.inner.metrics.credentials_reloaded(false);
                }
                cur.last_error = Some(e.clone());
                return Err(e);
            }
        };
        let fingerprint = new.fingerprint();
        let mut cur = self.lock();
        if fingerprint == cur.effective.fingerprint() {
            cur.last_error = None;
            cur.refused = None;
            // Sources may have moved (same values, new place): keep the labels current.
            cur.effective = new;
            return Ok(false);
        }
        let refusal = if !self.inner.live {
            Some("this instance runs in simulator mode; restart it to use the new Twilio credentials".to_owned())
        } else if new.set.account_sid != cur.effective.set.account_sid {
            Some("the account SID changed; a different account needs a restart".to_owned())
        } else if !new.is_live() {
            Some(
                "the new credentials have no auth token or API key for REST calls; keeping the previous ones"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(reason) = refusal {
            if cur.refused != Some(fingerprint) {
                tracing::warn!(%trigger, "Twilio credentials changed but were not applied: {reason}");
                self.inner.metrics.credentials_reloaded(false);
            }
            cur.refused = Some(fingerprint);
            cur.last_error = Some(reason.clone());
            return Err(reason);
        }
        if let Some(rest) = new.rest_credentials() {
            self.inner.twilio.set_credentials(rest);
        }
        let tokens = new.webhook_tokens();
        if !tokens.is_empty() {
            self.inner
                .webhook_keys
                .replace(tokens, TokenOrigin::Configured);
        }
        cur.generation += 1;
        cur.loaded_at = Utc::now();
        cur.last_error = None;
        cur.refused = None;
        tracing::info!(
            %trigger,
            generation = cur.generation,
            auth_token = ?new.token_source,
            secondary_auth_token = new.set.auth_token_secondary.is_some(),
            api_key = ?new.api_key_source,
            "Twilio credentials reloaded: new REST calls and webhook checks use them"
        );
        cur.effective = new;
        self.inner.metrics.credentials_reloaded(true);
        Ok(true)
    }

    pub fn status(&self) -> CredentialStatus {
        let cur = self.lock();
        let e = &cur.effective;
        CredentialStatus {
            mode: if self.inner.live { "live" } else { "simulator" },
            account_sid: e.set.account_sid.clone(),
            account_sid_source: e.account_source,
            auth_token_source: e.token_source,
            secondary_auth_token: e.set.auth_token_secondary.is_some(),
            api_key: e.set.api_key.clone(),
            api_key_source: e.api_key_source,
            generation: cur.generation,
            loaded_at: cur.loaded_at,
            last_error: cur.last_error.clone(),
            credentials_file: self
                .inner
                .sources
                .file
                .as_ref()
                .map(|p| p.display().to_string()),
            secret_key_configured: self.inner.sources.secret_key.is_some(),
        }
    }

    /// Stores credentials set through the API (sealed) and applies them.
    pub async fn store(&self, set: CredentialSet) -> Result<CredentialStatus, StoreError> {
        let set = set.validated().map_err(StoreError::Invalid)?;
        if set.auth_token.is_none() && set.api_key.is_none() {
            return Err(StoreError::Invalid(
                "give an auth_token (and optionally auth_token_secondary) or an api_key with its api_secret".into(),
            ));
        }
        let key = self
            .inner
            .sources
            .secret_key
            .as_ref()
            .ok_or(StoreError::NoSecretKey)?;
        let running = self.lock().effective.set.account_sid.clone();
        if self.inner.live
            && let (Some(new), Some(old)) = (&set.account_sid, &running)
            && new != old
        {
            return Err(StoreError::Conflict(format!(
                "this instance serves account {old}; changing the account needs a restart"
            )));
        }
        let plain = serde_json::json!({
            "account_sid": set.account_sid,
            "auth_token": set.auth_token.as_ref().map(|t| t.expose_secret()),
            "auth_token_secondary": set.auth_token_secondary.as_ref().map(|t| t.expose_secret()),
            "api_key": set.api_key,
            "api_secret": set.api_secret.as_ref().map(|t| t.expose_secret()),
        });
        let sealed = key.seal(PURPOSE, plain.to_string().as_bytes());
        instance_settings::put(&self.inner.pool, STORED_KEY, &sealed).await?;
        tracing::info!("Twilio credentials stored through the API");
        // In simulator mode the reload reports that a restart is needed; the value is stored.
        let _ = self.reload("api").await;
        Ok(self.status())
    }

    /// Removes credentials stored through the API; the file or environment apply again.
    pub async fn clear(&self) -> Result<CredentialStatus, StoreError> {
        if instance_settings::delete(&self.inner.pool, STORED_KEY).await? {
            tracing::info!("Twilio credentials stored through the API were removed");
        }
        let _ = self.reload("api").await;
        Ok(self.status())
    }

    /// Reloads every `poll` (zero: never) and on SIGHUP, until shutdown.
    pub fn start(
        &self,
        poll: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let tick = async {
                    if poll.is_zero() {
                        std::future::pending::<()>().await
                    } else {
                        tokio::time::sleep(poll).await
                    }
                };
                #[cfg(unix)]
                let hup = async {
                    match hangup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hup = std::future::pending::<()>();
                let trigger = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick => "poll",
                    _ = hup => "SIGHUP",
                };
                if trigger == "SIGHUP" {
                    tracing::info!("SIGHUP: re-reading Twilio credentials");
                }
                let _ = this.reload(trigger).await;
            }
        })
    }
}
