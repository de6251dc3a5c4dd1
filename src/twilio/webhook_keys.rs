//! The auth tokens webhook signatures are checked against.
//!
//! In live mode these are `TWILIO_AUTH_TOKEN` and, during a rotation,
//! `TWILIO_AUTH_TOKEN_SECONDARY`. Without credentials (simulator mode) the instance generates a
//! token once and keeps it in the database, so every instance on that database agrees on it
//! and validation is never silently switched off. The set is swappable at run time so that
//! credentials can be re-read without a restart.

use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::storage::instance_settings;

pub const SIMULATOR_TOKEN_KEY: &str = "simulator_auth_token";

/// Where the current tokens came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    Configured,
    GeneratedForSimulator,
}

#[derive(Clone)]
struct TokenSet {
    tokens: Vec<SecretString>,
    origin: TokenOrigin,
}

/// Shared, swappable webhook keys.
#[derive(Clone)]
pub struct WebhookKeys {
    inner: Arc<RwLock<Arc<TokenSet>>>,
}

impl std::fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

impl WebhookKeys {
    pub fn new(tokens: Vec<SecretString>, origin: TokenOrigin) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(TokenSet { tokens, origin }))),
        }
    }

    pub fn origin(&self) -> TokenOrigin {
        self.inner.read().expect("webhook keys lock").origin
    }

    /// Replaces the tokens (credential rotation without restart).
    pub fn replace(&self, tokens: Vec<SecretString>, origin: TokenOrigin) {
        *self.inner.write().expect("webhook keys lock") = Arc::new(TokenSet { tokens, origin });
    }

    /// The primary token (the one outgoing simulated callbacks are signed with).
    pub fn primary(&self) -> SecretString {
        self.inner.read().expect("webhook keys lock").tokens[0].clone()
    }

    /// Runs `f` with the raw token bytes; the lock is held only to clone an `Arc`.
    pub fn with_tokens<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        let set = self.inner.read().expect("webhook keys lock").clone();
        let raw: Vec<&[u8]> = set
            .tokens
            .iter()
            .map(|t| t.expose_secret().as_bytes())
            .collect();
        f(&raw)
    }
}

/// The simulator-mode auth token, generated on first use and shared through the database.
pub async fn simulator_token(pool: &PgPool) -> anyhow::Result<SecretString> {
    let candidate = crate::domain::random_hex(16);
    let token = instance_settings::get_or_insert(pool, SIMULATOR_TOKEN_KEY, &candidate).await?;
    Ok(SecretString::from(token))
}
