//! Operators taking a conversation from the bot and giving it back, for the JSON API and the
//! conversation page alike.

use sqlx::PgPool;

use crate::domain::PhoneNumber;
use crate::storage::bots as store;

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The number never wrote: there is no conversation to take.
    #[error("{0} has not written to any sender: there is no conversation to hand over")]
    NoConversation(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Puts every conversation of `number` in the "needs a human" queue (reason `operator`), or
/// the one with the sender it last wrote to when it has none yet. Returns how many were newly
/// handed off (0: already waiting).
pub async fn hand_off(pool: &PgPool, number: &PhoneNumber) -> Result<u64, HandoffError> {
    let mut tx = pool.begin().await?;
    let mut senders: Vec<String> = store::conversations_of(&mut tx, number.as_str())
        .await?
        .into_iter()
        .map(|c| c.sender)
        .collect();
    if senders.is_empty() {
        match store::last_sender_of(pool, number.as_str()).await? {
            Some(s) => senders.push(s),
            None => return Err(HandoffError::NoConversation(number.as_str().to_owned())),
        }
    }
    let mut n = 0;
    for sender in &senders {
        if store::hand_off(&mut tx, number.as_str(), sender, "operator").await? {
            n += 1;
        }
    }
    tx.commit().await?;
    Ok(n)
}

/// Gives every conversation of `number` back to the bot (a fresh session at its next
/// message). Returns how many were waiting.
pub async fn give_back(pool: &PgPool, number: &PhoneNumber) -> Result<u64, HandoffError> {
    let mut tx = pool.begin().await?;
    let n = store::give_back(&mut tx, number.as_str()).await?;
    tx.commit().await?;
    Ok(n)
}
