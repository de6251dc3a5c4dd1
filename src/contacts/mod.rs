//! What people and programs do to contacts: consent actions, tags, number changes, import
//! and export. The API, the dashboard and the CLI all come through here.

pub mod csv_io;
pub mod view;

use sqlx::PgPool;

use crate::domain::PhoneNumber;
use crate::domain::consent::{ConsentChange, ConsentSource};
use crate::storage::contacts::{self, ChangeBy, ContactRow};

/// A consent action taken by the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OptOut,
    OptIn,
    Deauthorize,
    Reauthorize,
}

impl Action {
    /// From the last path segment of `/contacts/{number}/{action}`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opt-out" => Some(Self::OptOut),
            "opt-in" => Some(Self::OptIn),
            "deauthorize" => Some(Self::Deauthorize),
            "reauthorize" => Some(Self::Reauthorize),
            _ => None,
        }
    }

    fn change(self) -> ConsentChange {
        match self {
            Action::OptOut => ConsentChange::OptedOut,
            Action::OptIn => ConsentChange::OptedIn,
            Action::Deauthorize => ConsentChange::Deauthorized,
            Action::Reauthorize => ConsentChange::Reauthorized,
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub source: ConsentSource,
    /// The username or API token.
    pub name: &'a str,
    pub note: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("{0}")]
    Invalid(String),
    #[error("no contact has the number {0}")]
    NotFound(String),
    #[error("{0} already belongs to another contact")]
    NumberTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub fn parse_number(raw: &str) -> Result<PhoneNumber, ContactError> {
    PhoneNumber::parse(raw).map_err(ContactError::Invalid)
}

/// Applies a consent action, creating the contact if wadash has never seen the number (an
/// operator may opt out or block a number before it ever writes). Doing what is already so
/// records nothing.
pub async fn act(
    pool: &PgPool,
    number: &PhoneNumber,
    action: Action,
    actor: Actor<'_>,
) -> Result<ContactRow, ContactError> {
    let mut tx = pool.begin().await?;
    let contact = contacts::ensure_locked(&mut tx, number.as_str()).await?;
    let already = match action {
        Action::OptOut => contact.consent == "opted_out",
        Action::OptIn => contact.consent == "opted_in",
        Action::Deauthorize => contact.is_deauthorized(),
        Action::Reauthorize => !contact.is_deauthorized(),
    };
    if !already {
        contacts::apply_change(
            &mut tx,
            contact.id,
            action.change(),
            ChangeBy {
                source: actor.source,
                actor: Some(actor.name),
                detail: actor.note,
                message_sid: None,
            },
        )
        .await?;
        tracing::info!(
            contact = contact.id,
            change = action.change().as_str(),
            by = actor.name,
            "consent changed"
        );
    }
    let updated = contacts::get_locked(&mut tx, number.as_str())
        .await?
        .expect("the locked contact exists");
    tx.commit().await?;
    Ok(updated)
}

/// Tags are lower case words of letters, digits, `-` and `_`, at most 40 characters.
pub fn normalize_tags<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw {
        let t = t.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > 40
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "tag {t:?} must be letters, digits, - and _ (at most 40 characters)"
            ));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > 50 {
        return Err("a contact has at most 50 tags".into());
    }
    tags.sort();
    Ok(tags)
}

/// Replaces a contact's tags (and optionally its name).
pub async fn update(
    pool: &PgPool,
    number: &PhoneNumber,
    tags: Option<Vec<String>>,
    profile_name: Option<&str>,
) -> Result<ContactRow, ContactError> {
    let mut tx = pool.begin().await?;
    let contact = contacts::ensure_locked(&mut tx, number.as_str()).await?;
    if let Some(tags) = tags {
        contacts::set_tags(&mut tx, contact.id, &tags).await?;
    }
    if let Some(name) = profile_name {
        let name = name.trim();
        if name.chars().count() > 200 {
            return Err(ContactError::Invalid(
                "profile_name is limited to 200 characters".into(),
            ));
        }
        contacts::set_profile_name(&mut tx, contact.id, name).await?;
    }
    let updated = contacts::get_locked(&mut tx, number.as_str())
        .await?
        .expect("the locked contact exists");
    tx.commit().await?;
    Ok(updated)
}

/// Moves a contact to a new number. Its history (messages, consent) follows it; the old
/// number is refused for sending from now on.
pub async fn change_number(
    pool: &PgPool,
    old: &PhoneNumber,
    new: &PhoneNumber,
    actor: &str,
) -> Result<ContactRow, ContactError> {
    if old == new {
        return Err(ContactError::Invalid(
            "the new number is the current one".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let contact = contacts::get_locked(&mut tx, old.as_str())
        .await?
        .ok_or_else(|| ContactError::NotFound(old.to_string()))?;
    match contacts::change_number(&mut tx, &contact, new.as_str(), Some(actor)).await {
        Ok(()) => {}
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            return Err(ContactError::NumberTaken(new.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    let updated = contacts::get_locked(&mut tx, new.as_str())
        .await?
        .expect("the contact was just moved");
    tx.commit().await?;
    tracing::info!(contact = contact.id, by = actor, "contact number changed");
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalized_deduplicated_and_checked() {
        assert_eq!(
            normalize_tags(["VIP", " vip", "", "north-east", "b2b_leads"]).unwrap(),
            vec!["b2b_leads", "north-east", "vip"]
        );
        assert!(normalize_tags(["has space"]).is_err());
        assert!(normalize_tags(["<script>"]).is_err());
        assert!(normalize_tags([&*"x".repeat(41)]).is_err());
        assert_eq!(normalize_tags(["Café"]).unwrap(), vec!["café"]);
    }

    #[test]
    fn actions_come_from_paths() {
        assert_eq!(Action::parse("opt-out"), Some(Action::OptOut));
        assert_eq!(Action::parse("deauthorize"), Some(Action::Deauthorize));
        assert_eq!(Action::parse("delete"), None);
    }
}
