//! The state of a periodic sync from Twilio (the template catalogue, the WhatsApp senders):
//! when it last worked, its last error and failures in a row, and the claim that lets one
//! instance sync per interval. One single-row table per sync.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Which sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    Templates,
    Senders,
}

impl Sync {
    fn table(self) -> &'static str {
        match self {
            Sync::Templates => "template_sync",
            Sync::Senders => "sender_sync",
        }
    }
}

/// How the syncs have gone.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SyncState {
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub failures: i32,
}

/// Where a sync stands in the order of wadash's own writes of Twilio's state (the
/// `local_changes` sequence), taken before it reads Twilio: a row written locally after the
/// mark may be newer than what the sync read, so the sync leaves it for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(pub i64);

/// Takes a [`Mark`]: call it before reading Twilio, pass it to the write. A local write
/// numbers its row with `local_change = nextval('local_changes')` after Twilio answered it.
pub async fn mark(pool: &PgPool) -> sqlx::Result<Mark> {
    sqlx::query_scalar("SELECT nextval('local_changes')")
        .fetch_one(pool)
        .await
        .map(Mark)
}

/// Locks the sync's row for the transaction, so concurrent applications are serialised.
pub async fn lock(conn: &mut sqlx::PgConnection, sync: Sync) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {} FOR UPDATE",
        sync.table()
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Records a sync that worked.
pub async fn record_success(conn: &mut sqlx::PgConnection, sync: Sync) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET last_ok_at = now(), last_attempt_at = now(), last_error = NULL,
             failures = 0",
        sync.table()
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Records a failed sync; returns how many have failed in a row.
pub async fn record_failure(pool: &PgPool, sync: Sync, error: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET last_attempt_at = now(), last_error = $1, failures = failures + 1
          RETURNING failures",
        sync.table()
    )))
    .bind(error)
    .fetch_one(pool)
    .await
}

pub async fn get(pool: &PgPool, sync: Sync) -> sqlx::Result<SyncState> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT last_ok_at, last_attempt_at, last_error, failures FROM {}",
        sync.table()
    )))
    .fetch_optional(pool)
    .await
    .map(Option::unwrap_or_default)
}

/// Claims the next scheduled sync: true for exactly one caller per `interval` across all
/// instances (the attempt time is the claim), so Twilio is read once per interval however
/// many instances run.
pub async fn claim_due(
    pool: &PgPool,
    sync: Sync,
    interval: std::time::Duration,
) -> sqlx::Result<bool> {
    let claimed: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET last_attempt_at = now()
          WHERE last_attempt_at IS NULL
             OR last_attempt_at <= now() - make_interval(secs => $1)
         RETURNING true",
        sync.table()
    )))
    .bind(interval.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(claimed.unwrap_or(false))
}
