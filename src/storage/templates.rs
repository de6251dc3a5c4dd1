//! The WhatsApp template catalogue: a fresh read from Twilio replaces it in one transaction,
//! recording what changed (status, category, presence); templates and their history are read
//! back for the API and pages; the sync's health is kept in one row.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::escape_like;
use crate::domain::template::{self, Change, Known, TemplateRecord};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub sid: String,
    pub name: String,
    pub language: String,
    pub types: Json<serde_json::Value>,
    pub variables: Json<BTreeMap<String, String>>,
    pub status: String,
    pub category: Option<String>,
    pub rejection_reason: Option<String>,
    pub whatsapp_name: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub synced_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// When wadash last sent with it (to the minute: see [`mark_used`]).
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "sid, name, language, types, variables, status, category, rejection_reason, \
     whatsapp_name, updated_at, synced_at, deleted_at, last_used_at";

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ChangeRow {
    pub field: String,
    #[serde(rename = "from")]
    pub old_value: Option<String>,
    #[serde(rename = "to")]
    pub new_value: Option<String>,
    pub changed_at: DateTime<Utc>,
}

pub use super::sync_state::SyncState;
use super::sync_state::{self, Sync};

/// Replaces the catalogue with `fresh` (Twilio's whole catalogue, read after `mark` was
/// taken): new and changed templates are written, templates Twilio no longer has are marked
/// deleted, and every change is added to the history. A template wadash created, submitted or
/// deleted after `mark` is left as it is (`fresh` may predate it). Returns the changes.
/// Concurrent calls are serialised.
pub async fn apply_catalogue(
    pool: &PgPool,
    fresh: &[TemplateRecord],
    mark: sync_state::Mark,
) -> sqlx::Result<Vec<Change>> {
    let mut tx = pool.begin().await?;
    sync_state::lock(&mut tx, Sync::Templates).await?;
    let stored: Vec<(String, String, Option<String>, bool)> =
        sqlx::query_as("SELECT sid, status, category, deleted_at IS NOT NULL FROM templates")
            .fetch_all(&mut *tx)
            .await?;
    let known: HashMap<String, Known> = stored
        .into_iter()
        .map(|(sid, status, category, deleted)| {
            (
                sid,
                Known {
                    status,
                    category,
                    deleted,
                },
            )
        })
        .collect();
    let mut changes: Vec<Change> = fresh
        .iter()
        .flat_map(|t| template::changes(known.get(&t.sid), t))
        .collect();
    let present: HashSet<&str> = fresh.iter().map(|t| t.sid.as_str()).collect();
    let mut gone: Vec<&str> = known
        .iter()
        .filter(|(sid, k)| !k.deleted && !present.contains(sid.as_str()))
        .map(|(sid, _)| sid.as_str())
        .collect();
    gone.sort_unstable();
    changes.extend(gone.iter().map(|sid| template::gone(sid)));

    let col = |f: fn(&TemplateRecord) -> Option<String>| fresh.iter().map(f).collect::<Vec<_>>();
    let written: Vec<String> = sqlx::query_scalar(
        "INSERT INTO templates (sid, name, language, types, variables, status, category,
             rejection_reason, whatsapp_name, updated_at, synced_at, deleted_at)
         SELECT u.sid, u.name, u.language, u.types::jsonb, u.variables::jsonb, u.status,
                u.category, u.rejection_reason, u.whatsapp_name, u.updated_at, now(), NULL
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::timestamptz[])
             AS u(sid, name, language, types, variables, status, category, rejection_reason,
                  whatsapp_name, updated_at)
         ON CONFLICT (sid) DO UPDATE SET
             name = EXCLUDED.name, language = EXCLUDED.language, types = EXCLUDED.types,
             variables = EXCLUDED.variables, status = EXCLUDED.status,
             category = EXCLUDED.category, rejection_reason = EXCLUDED.rejection_reason,
             whatsapp_name = EXCLUDED.whatsapp_name, updated_at = EXCLUDED.updated_at,
             synced_at = now(), deleted_at = NULL
           WHERE templates.local_change IS NULL OR templates.local_change <= $11
         RETURNING sid",
    )
    .bind(col(|t| Some(t.sid.clone())))
    .bind(col(|t| Some(t.name.clone())))
    .bind(col(|t| Some(t.language.clone())))
    .bind(col(|t| Some(t.types.to_string())))
    .bind(col(|t| serde_json::to_string(&t.variables).ok()))
    .bind(col(|t| Some(t.status.clone())))
    .bind(col(|t| t.category.clone()))
    .bind(col(|t| t.rejection_reason.clone()))
    .bind(col(|t| t.whatsapp_name.clone()))
    .bind(fresh.iter().map(|t| t.updated_at).collect::<Vec<_>>())
    .bind(mark.0)
    .fetch_all(&mut *tx)
    .await?;
    let marked: Vec<String> = sqlx::query_scalar(
        "UPDATE templates SET deleted_at = now()
          WHERE sid = ANY($1) AND deleted_at IS NULL
            AND (local_change IS NULL OR local_change <= $2)
         RETURNING sid",
    )
    .bind(&gone)
    .bind(mark.0)
    .fetch_all(&mut *tx)
    .await?;
    // The guards are checked on the row as it is when written (a local write that committed
    // meanwhile included), so only what was written goes into the history.
    let applied: HashSet<&str> = written.iter().chain(&marked).map(String::as_str).collect();
    changes.retain(|c| applied.contains(c.sid.as_str()));
    insert_changes(&mut tx, &changes).await?;
    sync_state::record_success(&mut tx, Sync::Templates).await?;
    tx.commit().await?;
    Ok(changes)
}

/// Records a failed sync; returns how many have failed in a row.
pub async fn record_failure(pool: &PgPool, error: &str) -> sqlx::Result<i32> {
    sync_state::record_failure(pool, Sync::Templates, error).await
}

pub async fn sync_state(pool: &PgPool) -> sqlx::Result<SyncState> {
    sync_state::get(pool, Sync::Templates).await
}

/// What to list: each set field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    /// Part of the name or of any text in the template.
    pub q: Option<String>,
}

/// Templates still at Twilio, by name then SID, after the template `after` (a SID: the cursor).
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<TemplateRow>> {
    let q = filter.q.as_deref().map(|q| format!("%{}%", escape_like(q)));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM templates
          WHERE deleted_at IS NULL
            AND ($1::text IS NULL OR status = $1)
            AND ($2::text IS NULL OR category = $2)
            AND ($3::text IS NULL OR language = $3)
            AND ($4::text IS NULL OR name ILIKE $4 OR types::text ILIKE $4)
            AND ($5::text IS NULL OR (name, sid) > (SELECT name, sid FROM templates WHERE sid = $5))
          ORDER BY name, sid
          LIMIT $6"
    )))
    .bind(filter.status.as_deref())
    .bind(filter.category.as_deref())
    .bind(filter.language.as_deref())
    .bind(q)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One template, deleted at Twilio or not.
pub async fn get(pool: &PgPool, sid: &str) -> sqlx::Result<Option<TemplateRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM templates WHERE sid = $1"
    )))
    .bind(sid)
    .fetch_optional(pool)
    .await
}

/// A template's history, oldest first.
pub async fn history(pool: &PgPool, sid: &str) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as(
        "SELECT field, old_value, new_value, changed_at FROM template_changes
          WHERE sid = $1 ORDER BY id",
    )
    .bind(sid)
    .fetch_all(pool)
    .await
}

/// Claims the next scheduled catalogue sync (see [`sync_state::claim_due`]).
pub async fn claim_due(pool: &PgPool, interval: std::time::Duration) -> sqlx::Result<bool> {
    sync_state::claim_due(pool, Sync::Templates, interval).await
}

/// A template's name, if wadash has it.
pub async fn name_of(conn: &mut sqlx::PgConnection, sid: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT name FROM templates WHERE sid = $1")
        .bind(sid)
        .fetch_optional(conn)
        .await
}

/// Adds one template (just created at Twilio) with the first line of its history; nothing
/// if a sync stored it first.
pub async fn insert_one(pool: &PgPool, t: &TemplateRecord) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO templates (sid, name, language, types, variables, status, category,
             rejection_reason, whatsapp_name, updated_at, local_change)
         VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, nextval('local_changes'))
         ON CONFLICT (sid) DO NOTHING",
    )
    .bind(&t.sid)
    .bind(&t.name)
    .bind(&t.language)
    .bind(t.types.to_string())
    .bind(serde_json::to_string(&t.variables).unwrap_or_else(|_| "{}".into()))
    .bind(&t.status)
    .bind(&t.category)
    .bind(&t.rejection_reason)
    .bind(&t.whatsapp_name)
    .bind(t.updated_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        insert_changes(&mut tx, &template::changes(None, t)).await?;
    }
    tx.commit().await
}

/// Moves template `sid` to `after` (its approval as Twilio answered a submission, or deleted
/// at Twilio), recording what changed; `None` when wadash does not have it.
pub async fn set_state(
    pool: &PgPool,
    sid: &str,
    after: &Known,
    whatsapp_name: Option<&str>,
) -> sqlx::Result<Option<Vec<Change>>> {
    let mut tx = pool.begin().await?;
    let before: Option<(String, Option<String>, bool)> = sqlx::query_as(
        "SELECT status, category, deleted_at IS NOT NULL FROM templates WHERE sid = $1 FOR UPDATE",
    )
    .bind(sid)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, category, deleted)) = before else {
        return Ok(None);
    };
    let known = Known {
        status,
        category,
        deleted,
    };
    let changes = template::between(sid, Some(&known), after);
    sqlx::query(
        "UPDATE templates SET status = $2, category = $3,
             whatsapp_name = COALESCE($4, whatsapp_name),
             deleted_at = CASE WHEN $5 THEN COALESCE(deleted_at, now()) END,
             local_change = nextval('local_changes')
          WHERE sid = $1",
    )
    .bind(sid)
    .bind(&after.status)
    .bind(&after.category)
    .bind(whatsapp_name)
    .bind(after.deleted)
    .execute(&mut *tx)
    .await?;
    insert_changes(&mut tx, &changes).await?;
    tx.commit().await?;
    Ok(Some(changes))
}

/// How stale a template's `last_used_at` may get before a send writes it again.
pub const LAST_USE_GRANULARITY_SECS: f64 = 60.0;

/// Notes that Twilio accepted a send with template `sid` now; written at most once per
/// [`LAST_USE_GRANULARITY_SECS`] per template (a broadcast of many recipients writes it once a
/// minute, not once per message). Returns whether the row was written.
pub async fn mark_used(pool: &PgPool, sid: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE templates SET last_used_at = now()
          WHERE sid = $1
            AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))",
    )
    .bind(sid)
    .bind(LAST_USE_GRANULARITY_SECS)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many messages wadash sent with each of `sids` since `since` (from the messages'
/// costs, which name their template); templates with none are left out.
pub async fn sends_since(
    pool: &PgPool,
    sids: &[String],
    since: DateTime<Utc>,
) -> sqlx::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT content_sid, count(*) FROM message_costs
          WHERE content_sid = ANY($1) AND created_at >= $2
          GROUP BY content_sid",
    )
    .bind(sids)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn insert_changes(conn: &mut sqlx::PgConnection, changes: &[Change]) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO template_changes (sid, field, old_value, new_value)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(changes.iter().map(|c| c.sid.as_str()).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|c| c.from.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(changes.iter().map(|c| c.to.as_deref()).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}
