//! An operator's pause, resume, cancel, retry and release of a broadcast, for the JSON API and
//! the pages alike; which applies when is `domain::broadcast_state`'s table.

use sqlx::PgPool;

use crate::domain::BroadcastAction;
use crate::storage::broadcasts::{self as store, BroadcastRow};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no broadcast {0}")]
    NotFound(i64),
    #[error("no broadcast action {0:?}; use pause, resume, cancel or retry")]
    UnknownAction(String),
    /// The broadcast is not in a state the action applies to.
    #[error("{}", refused(.status, *.action))]
    InvalidState {
        status: String,
        action: BroadcastAction,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn refused(status: &str, action: BroadcastAction) -> String {
    match action {
        BroadcastAction::Release => format!("a {status} broadcast is not held"),
        a => format!("a {status} broadcast cannot {a}"),
    }
}

/// The broadcast `id`.
pub async fn get(pool: &PgPool, id: i64) -> Result<BroadcastRow, LifecycleError> {
    store::get(pool, id)
        .await?
        .ok_or(LifecycleError::NotFound(id))
}

/// Does `action` (`pause`, `resume`, `cancel`, `retry` or `release`) to the broadcast `id` on
/// behalf of `by`, and returns the broadcast as it is after.
pub async fn control(
    pool: &PgPool,
    id: i64,
    action: &str,
    by: &str,
) -> Result<BroadcastRow, LifecycleError> {
    let row = get(pool, id).await?;
    let action: BroadcastAction = action
        .parse()
        .map_err(|_| LifecycleError::UnknownAction(action.to_owned()))?;
    let invalid = |row: &BroadcastRow| LifecycleError::InvalidState {
        status: row.status.to_string(),
        action,
    };
    if let Some(to) = action.sets() {
        // Pause, resume or cancel.
        return match store::set_status(pool, row.id, to, action.allowed_from()).await? {
            Some(updated) => {
                tracing::info!(broadcast = row.id, status = %updated.status, by, "broadcast {action}");
                Ok(updated)
            }
            None => Err(invalid(&row)),
        };
    }
    if action == BroadcastAction::Release {
        return match store::release(pool, row.id).await? {
            Some(updated) => {
                tracing::info!(broadcast = row.id, by, "held broadcast released");
                Ok(updated)
            }
            None => Err(invalid(&row)),
        };
    }
    if !row.status.allows(action) {
        return Err(invalid(&row));
    }
    let n = store::retry_failed(pool, row.id, super::RETRYABLE_CODES).await?;
    tracing::info!(
        broadcast = row.id,
        recipients = n,
        by,
        "retrying failed recipients"
    );
    get(pool, row.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_before() {
        let e = |status: &str, action| LifecycleError::InvalidState {
            status: status.into(),
            action,
        };
        assert_eq!(
            e("running", BroadcastAction::Release).to_string(),
            "a running broadcast is not held"
        );
        assert_eq!(
            e("canceled", BroadcastAction::Retry).to_string(),
            "a canceled broadcast cannot retry"
        );
        assert_eq!(
            e("completed", BroadcastAction::Pause).to_string(),
            "a completed broadcast cannot pause"
        );
        assert_eq!(
            LifecycleError::UnknownAction("stop".into()).to_string(),
            "no broadcast action \"stop\"; use pause, resume, cancel or retry"
        );
    }
}
