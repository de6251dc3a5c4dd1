//! Changing a person's role or disabling them, with the one rule that protects the console:
//! at least one active admin remains, whoever asks (themselves included), from the pages and
//! the JSON API alike. The check and the change are one transaction holding the active admins'
//! rows, so two admins demoting each other at once cannot leave none.

use sqlx::PgPool;

use crate::domain::Role;
use crate::storage::users;

/// What a person's account becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Role(Role),
    Disable,
    Enable,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The change would leave no active admin.
    #[error("{0}")]
    LastAdmin(&'static str),
    #[error("no user {0}")]
    NotFound(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why `change` to user `id` is refused when `admins` are the active admins, if it is.
pub fn refusal(admins: &[i64], id: i64, change: Change) -> Option<&'static str> {
    let last = admins == [id];
    match change {
        Change::Role(r) if r != Role::Admin && last => Some(
            "this is the last active admin: make someone else admin first, then change this role",
        ),
        Change::Disable if last => {
            Some("the last active admin cannot be disabled: make someone else admin first")
        }
        _ => None,
    }
}

/// Applies `change` to user `id`, unless it would leave no active admin.
pub async fn apply(pool: &PgPool, id: i64, change: Change) -> Result<(), AdminError> {
    let mut tx = pool.begin().await?;
    let admins = users::lock_active_admins(&mut tx).await?;
    if let Some(why) = refusal(&admins, id, change) {
        return Err(AdminError::LastAdmin(why));
    }
    let found = match change {
        Change::Role(r) => users::set_role(&mut tx, id, r).await?,
        Change::Disable => users::set_disabled(&mut tx, id, true).await?,
        Change::Enable => users::set_disabled(&mut tx, id, false).await?,
    };
    if !found {
        return Err(AdminError::NotFound(id));
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_active_admin_keeps_the_role_and_stays_enabled() {
        let demote = Change::Role(Role::Operator);
        assert!(refusal(&[1], 1, demote).is_some());
        assert!(refusal(&[1], 1, Change::Disable).is_some());
        assert_eq!(refusal(&[1], 1, Change::Role(Role::Admin)), None);
        assert_eq!(refusal(&[1], 1, Change::Enable), None);
        assert_eq!(refusal(&[1, 2], 1, demote), None, "another admin remains");
        assert_eq!(refusal(&[1, 2], 2, Change::Disable), None);
        assert_eq!(
            refusal(&[1], 2, Change::Disable),
            None,
            "not an active admin"
        );
        assert_eq!(refusal(&[1], 2, demote), None);
    }
}
