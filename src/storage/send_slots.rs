//! Each sender's line of send slots (`send_slots`), shared by every instance: whoever sends
//! from a sender (the broadcast runner, the API, the dashboard, automatic replies) takes its
//! next slots here, so the sender's limit holds in total.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Slots taken on a sender's line.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct Reserved {
    /// Seconds from now until the first slot (zero or negative: now).
    pub wait_secs: f64,
    /// The first slot, on the database's clock.
    pub first: DateTime<Utc>,
}

/// Holds every instance's sends from `sender` for `secs` (Twilio said 429).
pub async fn hold(pool: &PgPool, sender: &str, secs: f64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE send_slots SET next_slot = GREATEST(next_slot, clock_timestamp() \
           + make_interval(secs => $2)) WHERE sender = $1",
    )
    .bind(sender)
    .bind(secs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reserves `count` consecutive slots of `sender`, spaced `spacing_secs` apart, after every
/// slot already taken.
pub async fn reserve(
    pool: &PgPool,
    sender: &str,
    count: i64,
    spacing_secs: f64,
) -> sqlx::Result<Reserved> {
    let taken = take(pool, sender, count, spacing_secs, None).await?;
    taken.ok_or(sqlx::Error::RowNotFound)
}

/// Like [`reserve`], but only when the first slot comes within `max_wait_secs`; otherwise
/// nothing is taken and the answer is how many seconds until the line is free.
pub async fn reserve_within(
    pool: &PgPool,
    sender: &str,
    count: i64,
    spacing_secs: f64,
    max_wait_secs: f64,
) -> sqlx::Result<Result<Reserved, f64>> {
    if let Some(r) = take(pool, sender, count, spacing_secs, Some(max_wait_secs)).await? {
        return Ok(Ok(r));
    }
    let free_in: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_slot - clock_timestamp())::float8 \
         FROM send_slots WHERE sender = $1",
    )
    .bind(sender)
    .fetch_optional(pool)
    .await?;
    Ok(Err(free_in.unwrap_or(0.0).max(0.0)))
}

async fn take(
    pool: &PgPool,
    sender: &str,
    count: i64,
    spacing_secs: f64,
    max_wait_secs: Option<f64>,
) -> sqlx::Result<Option<Reserved>> {
    sqlx::query(
        "INSERT INTO send_slots (sender, next_slot) VALUES ($1, clock_timestamp()) \
         ON CONFLICT DO NOTHING",
    )
    .bind(sender)
    .execute(pool)
    .await?;
    sqlx::query_as(
        "WITH now AS (SELECT clock_timestamp() AS t) \
         UPDATE send_slots s SET next_slot = GREATEST(s.next_slot, now.t) \
           + make_interval(secs => $2 * $3) \
         FROM now WHERE s.sender = $1 \
           AND ($4::float8 IS NULL OR s.next_slot <= now.t + make_interval(secs => $4)) \
         RETURNING extract(epoch FROM (s.next_slot - make_interval(secs => $2 * $3)) - now.t)::float8 \
             AS wait_secs, \
           s.next_slot - make_interval(secs => $2 * $3) AS first",
    )
    .bind(sender)
    .bind(count as f64)
    .bind(spacing_secs)
    .bind(max_wait_secs)
    .fetch_optional(pool)
    .await
}
