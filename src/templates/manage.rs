//! Creating, submitting and deleting templates at Twilio, with wadash's catalogue kept in
//! step at once (the next sync confirms it): a created template is listed straight away, a
//! submission's answer (`received`) and a deletion are in its history.

use sqlx::PgPool;

use super::definition::{self, Definition, Invalid};
use super::{TemplateView, record};
use crate::domain::template::Known;
use crate::storage::templates;
use crate::twilio::client::TwilioError;
use crate::twilio::content::{ContentClient, NewTemplate, Search, Submission};

/// The categories a template may be submitted in.
pub const CATEGORIES: &[&str] = &["marketing", "utility", "authentication"];

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("no template {0}")]
    NotFound(String),
    /// Twilio already has a template of this name in this language.
    #[error("a template named {name:?} in {language} exists already ({sid})")]
    Taken {
        name: String,
        language: String,
        sid: String,
    },
    #[error("Twilio refused: {0}")]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Checks `def`, creates it at Twilio and adds it to the catalogue (`unsubmitted`).
///
/// A name already used in the same language is refused: Twilio is asked (v2's filtered
/// list), not the catalogue, which can be a sync interval behind.
pub async fn create(
    pool: &PgPool,
    content: &ContentClient,
    def: &Definition,
) -> Result<TemplateView, ManageError> {
    let types = def.check().map_err(ManageError::Invalid)?;
    let same = content
        .search(&Search::exact_name(&def.name, &def.language), 1)
        .await?;
    if let Some(t) = same.into_iter().next() {
        return Err(ManageError::Taken {
            name: def.name.clone(),
            language: def.language.clone(),
            sid: t.sid,
        });
    }
    let created = content
        .create(&NewTemplate {
            friendly_name: def.name.clone(),
            language: def.language.clone(),
            variables: def.variables.clone(),
            types,
        })
        .await?;
    let rec = record(created);
    templates::insert_one(pool, &rec).await?;
    let row = templates::get(pool, &rec.sid)
        .await?
        .ok_or_else(|| ManageError::NotFound(rec.sid.clone()))?;
    Ok(row.into())
}

/// Submits template `sid` to WhatsApp as `name` in `category`; returns its status after.
pub async fn submit(
    pool: &PgPool,
    content: &ContentClient,
    sid: &str,
    name: Option<&str>,
    category: &str,
) -> Result<String, ManageError> {
    let row = templates::get(pool, sid)
        .await?
        .filter(|t| t.deleted_at.is_none())
        .ok_or_else(|| ManageError::NotFound(sid.to_owned()))?;
    let name = name.unwrap_or(&row.name).trim().to_owned();
    definition::check_whatsapp_name(&name).map_err(ManageError::Invalid)?;
    let category = category.trim().to_lowercase();
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(ManageError::Invalid(Invalid {
            field: "category".into(),
            reason: format!("must be one of {}", CATEGORIES.join(", ")),
        }));
    }
    let answer = content
        .submit(
            sid,
            &Submission {
                name: name.clone(),
                category: category.clone(),
            },
        )
        .await?;
    let status = Some(answer.status)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "received".into());
    let after = Known {
        status: status.clone(),
        category: Some(answer.category)
            .filter(|c| !c.is_empty())
            .or(Some(category)),
        deleted: false,
    };
    templates::set_state(pool, sid, &after, Some(&name)).await?;
    Ok(status)
}

/// Deletes template `sid` at Twilio (already gone there counts as done) and marks it deleted.
pub async fn delete(pool: &PgPool, content: &ContentClient, sid: &str) -> Result<(), ManageError> {
    let row = templates::get(pool, sid)
        .await?
        .ok_or_else(|| ManageError::NotFound(sid.to_owned()))?;
    match content.delete(sid).await {
        Ok(()) | Err(TwilioError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let after = Known {
        status: row.status,
        category: row.category,
        deleted: true,
    };
    templates::set_state(pool, sid, &after, None).await?;
    Ok(())
}
