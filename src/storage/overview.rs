//! The numbers of the overview page beyond the funnel: delivery times, failures by code,
//! traffic over time. Every query is bounded by a `created_at` range, so it runs on the
//! `messages_created_idx` index.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};

/// Median and 90th percentile, in seconds, from creation to delivered and to read.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct Timings {
    pub delivered_p50: Option<f64>,
    pub delivered_p90: Option<f64>,
    pub read_p50: Option<f64>,
    pub read_p90: Option<f64>,
}

pub async fn timings(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Timings> {
    sqlx::query_as(
        r#"SELECT
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) AS delivered_p50,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) AS delivered_p90,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - created_at)) AS read_p50,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - created_at)) AS read_p90
           FROM messages
           WHERE direction = 'outbound' AND created_at >= $1 AND created_at < $2
             AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)"#,
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_one(pool)
    .await
}

/// Failed and undelivered messages by error code, most frequent first.
pub async fn failures_by_code(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Vec<(Option<i32>, i64)>> {
    sqlx::query_as(
        r#"SELECT error_code, count(*) FROM messages
           WHERE direction = 'outbound' AND status IN ('failed', 'undelivered')
             AND created_at >= $1 AND created_at < $2
             AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)
           GROUP BY error_code ORDER BY count(*) DESC, error_code LIMIT 20"#,
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_all(pool)
    .await
}

/// Messages per time bucket and direction.
#[derive(Debug, Clone, FromRow)]
pub struct TrafficBucket {
    pub bucket: DateTime<Utc>,
    pub outbound: i64,
    pub inbound: i64,
}

/// Counts in buckets of `step` starting at `since`; empty buckets are absent.
pub async fn traffic(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step: std::time::Duration,
    sender: Option<&str>,
) -> sqlx::Result<Vec<TrafficBucket>> {
    sqlx::query_as(
        r#"SELECT date_bin(make_interval(secs => $3), created_at, $1) AS bucket,
                  count(*) FILTER (WHERE direction = 'outbound') AS outbound,
                  count(*) FILTER (WHERE direction = 'inbound') AS inbound
           FROM messages
           WHERE created_at >= $1 AND created_at < $2
             AND ($4::text IS NULL OR from_addr = $4 OR to_addr = $4 OR messaging_service_sid = $4)
           GROUP BY 1 ORDER BY 1"#,
    )
    .bind(since)
    .bind(until)
    .bind(step.as_secs_f64())
    .bind(sender)
    .fetch_all(pool)
    .await
}
