//! Balance readings.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub read_at: DateTime<Utc>,
    pub balance: Decimal,
    pub currency: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    read_at: DateTime<Utc>,
    balance: String,
    currency: String,
}

impl From<Row> for Reading {
    fn from(r: Row) -> Self {
        Self {
            read_at: r.read_at,
            balance: r.balance.parse().unwrap_or_default(),
            currency: r.currency,
        }
    }
}

/// The newest reading's id (readings only ever get added).
pub async fn newest_id(pool: &PgPool) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT max(id) FROM balance_readings")
        .fetch_one(pool)
        .await
}

/// When the last reading was taken.
pub async fn last_read_at(conn: &mut PgConnection) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT max(read_at) FROM balance_readings")
        .fetch_one(conn)
        .await
}

pub async fn insert(
    conn: &mut PgConnection,
    balance: Decimal,
    currency: &str,
    account_sid: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO balance_readings (balance, currency, account_sid) VALUES ($1::numeric, $2, $3)",
    )
    .bind(balance.to_string())
    .bind(currency)
    .bind(account_sid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Readings since `since`, oldest first (at most `limit`, the newest ones).
pub async fn since(pool: &PgPool, since: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Reading>> {
    let mut rows: Vec<Reading> = sqlx::query_as::<_, Row>(
        "SELECT read_at, balance::text AS balance, currency FROM balance_readings \
         WHERE read_at >= $1 ORDER BY read_at DESC LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Reading::from)
    .collect();
    rows.reverse();
    Ok(rows)
}

pub async fn latest(pool: &PgPool) -> sqlx::Result<Option<Reading>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT read_at, balance::text AS balance, currency FROM balance_readings \
         ORDER BY read_at DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .map(Reading::from))
}

/// What the broadcasts still to send within `within` from now will cost by their estimates:
/// each unfinished broadcast (scheduled, running, paused or held) starting in that window, at
/// its estimated cost times the share of its recipients not yet sent.
pub async fn scheduled_broadcast_cost(
    pool: &PgPool,
    within: chrono::TimeDelta,
) -> sqlx::Result<Decimal> {
    let sum: Option<String> = sqlx::query_scalar(
        "SELECT sum(b.estimated_cost * p.left_to_send / p.total)::text \
         FROM broadcasts b \
         CROSS JOIN LATERAL ( \
           SELECT count(*) FILTER (WHERE r.state IN ('pending', 'sending'))::numeric AS left_to_send, \
                  NULLIF(count(*), 0)::numeric AS total \
           FROM broadcast_recipients r WHERE r.broadcast_id = b.id) p \
         WHERE b.status IN ('scheduled', 'running', 'paused', 'held') \
           AND b.estimated_cost IS NOT NULL AND b.start_at < now() + $1",
    )
    .bind(within)
    .fetch_one(pool)
    .await?;
    Ok(sum.and_then(|s| s.parse().ok()).unwrap_or_default())
}

/// What outbound messages cost since `since` by their final prices (Twilio writes charges as
/// negative amounts), and how many were priced.
pub async fn spend_since(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<(Decimal, i64)> {
    let (sum, n): (Option<String>, i64) = sqlx::query_as(
        "SELECT (-sum(price))::text, count(price) FROM messages \
         WHERE direction = 'outbound' AND created_at >= $1 AND price IS NOT NULL",
    )
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok((sum.and_then(|s| s.parse().ok()).unwrap_or_default(), n))
}
