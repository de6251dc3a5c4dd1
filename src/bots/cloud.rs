//! Connects to a cloud bot (Lex V2, Dialogflow CX or ES) from its configuration.
//!
//! Placeholder until the SDK adapters land: every cloud kind is refused with a clear error.

use std::sync::Arc;

use super::{Bot, BotError};
use crate::domain::bot::BotConfig;

/// Builds the client for `config`; `endpoint` overrides the service's URL (tests, private
/// endpoints). The demo bot is not a cloud bot and is refused here.
pub async fn connect(config: &BotConfig, endpoint: Option<&str>) -> Result<Arc<dyn Bot>, BotError> {
    let _ = endpoint;
    Err(BotError::Failed(format!(
        "{} bots are not available in this build",
        config.kind().as_str()
    )))
}
