//! The business's WhatsApp senders.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{PgQueryAs, assignments, placeholders};
use crate::domain::SenderStatus;
use crate::domain::sender_health::OfflineReason;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SenderRow {
    pub id: i64,
    pub address: String,
    pub kind: String,
    pub label: String,
    #[sqlx(try_from = "String")]
    pub status: SenderStatus,
    pub join_code: Option<String>,
    pub mps: f64,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Twilio's view (Senders API), for senders it lists; empty for the others.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub twilio: AtTwilio,
}

/// A sender as Twilio's Senders API last described it (see `crate::onboarding::sync`).
#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct AtTwilio {
    pub twilio_sid: Option<String>,
    pub twilio_status: Option<String>,
    pub offline_reasons: sqlx::types::Json<Vec<OfflineReason>>,
    pub quality_rating: Option<String>,
    pub messaging_limit: Option<String>,
    pub webhooks_ok: Option<bool>,
    /// Where Twilio sends the sender's inbound messages and status callbacks now.
    pub callback_url: Option<String>,
    pub status_callback_url: Option<String>,
    pub twilio_synced_at: Option<DateTime<Utc>>,
    pub twilio_gone_at: Option<DateTime<Utc>>,
    /// The Messaging Service it is in at Twilio (`MG…`), as last synced.
    pub messaging_service_sid: Option<String>,
}

const COLUMNS: &str = "id, address, kind, label, status, join_code, mps, is_default, created_at,
    updated_at, twilio_sid, twilio_status, offline_reasons, quality_rating, messaging_limit,
    webhooks_ok, callback_url, status_callback_url, twilio_synced_at, twilio_gone_at,
    messaging_service_sid";

/// A sender's settings as written.
#[derive(Debug, Clone)]
pub struct NewSender {
    pub address: String,
    pub kind: String,
    pub label: String,
    pub status: SenderStatus,
    pub join_code: Option<String>,
    pub mps: f64,
    pub is_default: bool,
}

pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<SenderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM senders ORDER BY is_default DESC, status, address"
    )))
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<SenderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM senders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Sender `id`, locked for the caller's transaction.
pub async fn lock(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<SenderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM senders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn by_address(pool: &PgPool, address: &str) -> sqlx::Result<Option<SenderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM senders WHERE address = $1"
    )))
    .bind(address)
    .fetch_optional(pool)
    .await
}

pub async fn default(pool: &PgPool) -> sqlx::Result<Option<SenderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM senders WHERE is_default"
    )))
    .fetch_optional(pool)
    .await
}

/// The columns of a [`NewSender`] an update sets (all but its address), in the order
/// [`bind_settings`] binds them.
const SETTINGS: [&str; 6] = ["kind", "label", "status", "join_code", "mps", "is_default"];

fn bind_settings<'q, O>(q: PgQueryAs<'q, O>, s: &'q NewSender) -> PgQueryAs<'q, O> {
    q.bind(&s.kind)
        .bind(&s.label)
        .bind(s.status.as_str())
        .bind(&s.join_code)
        .bind(s.mps)
        .bind(s.is_default)
}

/// Inserts a sender; when it is the default, the previous default stops being one in the
/// same transaction. A second sender with the same address is a unique violation.
pub async fn insert(conn: &mut PgConnection, s: &NewSender) -> sqlx::Result<SenderRow> {
    if s.is_default {
        clear_default(&mut *conn).await?;
    }
    let sql = format!(
        "INSERT INTO senders (address, {}) VALUES ({}) RETURNING {COLUMNS}",
        SETTINGS.join(", "),
        placeholders(1, SETTINGS.len() + 1)
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&s.address), s)
        .fetch_one(conn)
        .await
}

/// Replaces a sender's settings (its address stays).
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    s: &NewSender,
) -> sqlx::Result<Option<SenderRow>> {
    if s.is_default {
        clear_default(&mut *conn).await?;
    }
    let sql = format!(
        "UPDATE senders SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        assignments(&SETTINGS, 2)
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id), s)
        .fetch_optional(conn)
        .await
}

async fn clear_default(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("UPDATE senders SET is_default = false, updated_at = now() WHERE is_default")
        .execute(conn)
        .await?;
    Ok(())
}

/// Registers the configured sender at start-up, as the default when there is none. An
/// existing row is left as an admin set it.
pub async fn seed(pool: &PgPool, s: &NewSender) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO senders (address, kind, label, status, join_code, mps, is_default) \
         SELECT $1, $2, $3, $4, $5, $6, NOT EXISTS (SELECT 1 FROM senders WHERE is_default) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&s.address)
    .bind(&s.kind)
    .bind(&s.label)
    .bind(s.status.as_str())
    .bind(&s.join_code)
    .bind(s.mps)
    .execute(pool)
    .await?;
    Ok(())
}

/// Notes that wadash just changed sender `id` at Twilio without changing its row (a detach
/// from a service the row did not show yet), so that a sync which read Twilio before the
/// change leaves the row for the next one.
pub async fn changed_at_twilio(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE senders SET local_change = nextval('local_changes') WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// Records the Messaging Service sender `id` is in at Twilio (None: in none), as an attach or
/// detach just did; the next sender sync confirms it.
pub async fn set_messaging_service(
    pool: &PgPool,
    id: i64,
    service: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE senders SET messaging_service_sid = $2, updated_at = now(),
                local_change = nextval('local_changes')
          WHERE id = $1",
    )
    .bind(id)
    .bind(service)
    .execute(pool)
    .await
    .map(drop)
}
