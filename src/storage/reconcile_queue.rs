//! The reconciliation queue (`reconcile_queue`): outbound messages to look up at Twilio.
//!
//! Filling it: one instance at a time (a transaction-scoped advisory lock) walks `messages` by
//! `created_at` from a watermark kept in `instance_settings`, and queues the outbound messages
//! that are not settled. Each message is scanned once, on the `created_at` index.
//!
//! Draining it: [`claim`] takes due rows with `FOR UPDATE SKIP LOCKED` and, in the same
//! statement, moves each one's `next_at` forward by its back-off. Two instances never claim
//! the same row, and a row claimed by an instance that then dies comes due again later.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::status::SETTLED_RANK;

/// Advisory lock key of the queue filler ("wadash reconcile" in ASCII, truncated).
const FILL_LOCK: i64 = 0x7761_6461_7368_7263;
const WATERMARK_KEY: &str = "reconcile_watermark";

/// A claimed message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub sid: String,
    pub created_at: DateTime<Utc>,
    /// Lookups so far, this one included.
    pub attempts: i32,
}

/// One step of [`fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillStep {
    pub queued: u64,
    /// The watermark has reached `until`.
    pub caught_up: bool,
}

/// Queues unsettled outbound messages created in `(watermark, until]`, at most `span` past
/// the watermark per call, and moves the watermark. Returns `None` when another instance
/// holds the lock. The first call ever starts `lookback` before `until`.
pub async fn fill(
    pool: &PgPool,
    until: DateTime<Utc>,
    lookback: chrono::Duration,
    span: chrono::Duration,
) -> sqlx::Result<Option<FillStep>> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(FILL_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
            .bind(WATERMARK_KEY)
            .fetch_optional(&mut *tx)
            .await?;
    let from = stored
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(until - lookback);
    if from >= until {
        return Ok(Some(FillStep {
            queued: 0,
            caught_up: true,
        }));
    }
    let to = until.min(from + span);
    let queued = sqlx::query(
        r#"INSERT INTO reconcile_queue (sid, created_at, next_at)
           SELECT sid, created_at, now() FROM messages
           WHERE created_at > $1 AND created_at <= $2
             AND direction = 'outbound' AND status_rank < $3
           ON CONFLICT (sid) DO NOTHING"#,
    )
    .bind(from)
    .bind(to)
    .bind(SETTLED_RANK)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        r#"INSERT INTO instance_settings (key, value) VALUES ($1, $2)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"#,
    )
    .bind(WATERMARK_KEY)
    .bind(to.to_rfc3339())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(FillStep {
        queued,
        caught_up: to >= until,
    }))
}

/// Claims up to `limit` due messages. Each claimed row's next lookup is pushed back by
/// `first_delay × 2^attempts`, capped at `max_delay`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    first_delay: std::time::Duration,
    max_delay: std::time::Duration,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        r#"UPDATE reconcile_queue q
           SET attempts = q.attempts + 1,
               next_at = now() + LEAST(
                   make_interval(secs => $3::float8),
                   make_interval(secs => $2::float8 * power(2, LEAST(q.attempts, 30))))
           WHERE q.sid IN (
               SELECT sid FROM reconcile_queue
               WHERE next_at <= now()
               ORDER BY next_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
           RETURNING q.sid, q.created_at, q.attempts"#,
    )
    .bind(limit)
    .bind(first_delay.as_secs_f64())
    .bind(max_delay.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Removes messages that need no further lookups.
pub async fn remove(pool: &PgPool, sids: &[String]) -> sqlx::Result<u64> {
    if sids.is_empty() {
        return Ok(0);
    }
    Ok(
        sqlx::query("DELETE FROM reconcile_queue WHERE sid = ANY($1)")
            .bind(sids)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Messages waiting in the queue (for metrics and tests).
pub async fn len(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM reconcile_queue")
        .fetch_one(pool)
        .await
}
