//! Bots that answer WhatsApp conversations: one trait over AWS Lex V2, Dialogflow CX and ES,
//! and the built-in demo bot.
//!
//! Each service has its own module implementing [`Bot`]; routing, hand-off and the circuit
//! breaker only see the trait. Adapters map every failure to a [`BotError`] kind so the
//! fallback reply, the metric's outcome label and the breaker treat all services alike.

pub mod breaker;
pub mod choices;
pub mod cloud;
pub mod connections;
pub mod credentials;
pub mod demo;
pub mod dialogflow_cx;
pub mod dialogflow_es;
pub mod google;
pub mod handoff;
pub mod interactive;
pub mod lex;
pub mod route;
pub mod runtime;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use crate::domain::bot::{BotAnswer, BotKind, BotMessage, BotSignal, BotTurn};

/// Why a bot gave no answer. `outcome()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotError {
    #[error("the bot did not answer within {0:?}")]
    Timeout(Duration),
    /// `ThrottlingException`, HTTP 429, `RESOURCE_EXHAUSTED`.
    #[error("the bot service is throttling: {0}")]
    Throttled(String),
    /// Bad or missing credentials, access denied.
    #[error("the bot service refused the credentials: {0}")]
    Auth(String),
    /// An answer that could not be read.
    #[error("the bot's answer could not be read: {0}")]
    Malformed(String),
    /// Anything else: 5xx, connection refused, bad configuration.
    #[error("the bot failed: {0}")]
    Failed(String),
}

impl BotError {
    /// The outcome label used in metrics and message events.
    pub fn outcome(&self) -> &'static str {
        match self {
            BotError::Timeout(_) => "timeout",
            BotError::Throttled(_) => "throttled",
            BotError::Auth(_) => "auth",
            BotError::Malformed(_) => "malformed",
            BotError::Failed(_) => "failed",
        }
    }
}

/// A bot wadash can ask. Implementations are cheap to share (`Arc<dyn Bot>`) and enforce no
/// timeout of their own beyond the connection's: the caller bounds every call.
pub trait Bot: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> BotKind;

    /// Sends one turn and returns the bot's answer.
    fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>>;
}
