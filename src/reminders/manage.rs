//! What the JSON API and the dashboard do to stored reminders: create, find, edit, and the
//! lifecycle actions, each checked against the lifecycle table. Failures are a
//! [`ReminderError`], which each adapter maps to its HTTP answer in one place.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::lifecycle::{self, Action};
use super::{ReminderInput, validate};
use crate::domain::ReminderStatus;
use crate::storage::reminders::{self as store, ReminderRow};

/// Why a reminder could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    /// What was asked for is not a valid reminder.
    #[error("{0}")]
    Invalid(String),
    /// The action is not allowed from the reminder's state.
    #[error("a {status} reminder cannot {action}")]
    NotAllowed {
        status: ReminderStatus,
        action: Action,
    },
    /// The action is allowed, but the reminder's settings cannot carry it out.
    #[error("{0}")]
    Conflict(String),
    #[error("no reminder {0}")]
    NotFound(i64),
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

/// Checks and stores a new reminder.
pub async fn create(
    pool: &PgPool,
    input: &ReminderInput,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<ReminderRow, ReminderError> {
    let new = validate(input, None, created_by, now).map_err(ReminderError::Invalid)?;
    Ok(store::insert(pool, &new).await?)
}

pub async fn find(pool: &PgPool, id: i64) -> Result<ReminderRow, ReminderError> {
    store::get(pool, id)
        .await?
        .ok_or(ReminderError::NotFound(id))
}

/// Whether `action` is allowed on `r` (the lifecycle table); the state it leads to.
pub fn allow(r: &ReminderRow, action: Action) -> Result<ReminderStatus, ReminderError> {
    lifecycle::next(r.status, action).ok_or(ReminderError::NotAllowed {
        status: r.status,
        action,
    })
}

/// Changes an open reminder's settings; fields `input` leaves out keep their values.
pub async fn edit(
    pool: &PgPool,
    existing: &ReminderRow,
    input: &ReminderInput,
    by: &str,
    now: DateTime<Utc>,
) -> Result<ReminderRow, ReminderError> {
    allow(existing, Action::Edit)?;
    let new = validate(input, Some(existing), by, now).map_err(ReminderError::Invalid)?;
    store::update(pool, existing.id, &new)
        .await?
        .ok_or(ReminderError::NotFound(existing.id))
}

/// Pauses, resumes, cancels or deletes (cancels whatever its state) a reminder. A resumed
/// reminder's next time is counted from `now`; one with no occurrence left is done.
pub async fn act(
    pool: &PgPool,
    existing: &ReminderRow,
    action: Action,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), ReminderError> {
    let to = allow(existing, action)?;
    match action {
        Action::Cancel | Action::Delete => store::cancel(pool, existing.id).await?,
        Action::Pause | Action::Resume => {
            let input = ReminderInput {
                status: Some(to.as_str().to_owned()),
                ..ReminderInput::default()
            };
            let new = validate(&input, Some(existing), by, now).map_err(ReminderError::Conflict)?;
            store::update(pool, existing.id, &new).await?;
        }
        Action::Edit | Action::Finish => {
            return Err(ReminderError::Conflict(format!(
                "{action} is not an action on its own: edit the reminder's settings instead"
            )));
        }
    }
    Ok(())
}
