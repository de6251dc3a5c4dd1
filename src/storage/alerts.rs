//! Alerts and their deliveries. Every change of an alert's state appends an `alerts` row to
//! `live_log` in the same transaction, so live pages hear of exactly the changes that commit.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::alert_state::AlertState;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub severity: String,
    #[sqlx(try_from = "String")]
    pub state: AlertState,
    pub message: String,
    pub fired_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, subject, severity, state, message, fired_at, acknowledged_at, \
    acknowledged_by, resolved_at";

/// Fires an alert for (`kind`, `subject`) unless one is open; returns the new one.
pub async fn fire(
    conn: &mut PgConnection,
    kind: &str,
    subject: &str,
    severity: &str,
    message: &str,
    channels: &[String],
) -> sqlx::Result<Option<AlertRow>> {
    let row: Option<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO alerts (kind, subject, severity, state, message) \
         VALUES ($1, $2, $3, 'firing', $4) \
         ON CONFLICT (kind, subject) WHERE state <> 'resolved' DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(kind)
    .bind(subject)
    .bind(severity)
    .bind(message)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(a) = &row {
        queue(conn, a.id, "fired", channels).await?;
        announce(conn, a).await?;
    }
    Ok(row)
}

/// Resolves the open alert for (`kind`, `subject`), if any; returns it.
pub async fn resolve(
    conn: &mut PgConnection,
    kind: &str,
    subject: &str,
    channels: &[String],
) -> sqlx::Result<Option<AlertRow>> {
    let row: Option<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE alerts SET state = 'resolved', resolved_at = now() \
         WHERE kind = $1 AND subject = $2 AND state <> 'resolved' RETURNING {COLUMNS}"
    )))
    .bind(kind)
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(a) = &row {
        queue(conn, a.id, "resolved", channels).await?;
        announce(conn, a).await?;
    }
    Ok(row)
}

/// Tells live pages (the banner, `/alerts`) that `a` changed.
async fn announce(conn: &mut PgConnection, a: &AlertRow) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO live_log (kind, payload) VALUES ('alerts', $1)")
        .bind(serde_json::json!({ "id": a.id, "kind": a.kind, "state": a.state }))
        .execute(conn)
        .await?;
    Ok(())
}

async fn queue(
    conn: &mut PgConnection,
    id: i64,
    event: &str,
    channels: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO alert_deliveries (alert_id, channel, event) \
         SELECT $1, c, $2 FROM unnest($3::text[]) AS c ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(event)
    .bind(channels)
    .execute(conn)
    .await?;
    Ok(())
}

/// Subjects of the open alerts of `kind`.
pub async fn open_subjects(conn: &mut PgConnection, kind: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT subject FROM alerts WHERE kind = $1 AND state <> 'resolved'")
        .bind(kind)
        .fetch_all(conn)
        .await
}

/// Alerts newest first, optionally in one state.
pub async fn list(
    pool: &PgPool,
    state: Option<AlertState>,
    limit: i64,
) -> sqlx::Result<Vec<AlertRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE ($1::text IS NULL OR state = $1) \
         ORDER BY fired_at DESC, id DESC LIMIT $2"
    )))
    .bind(state.map(AlertState::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Acknowledges a firing alert; `None` if it is not firing (or does not exist).
pub async fn acknowledge(
    conn: &mut PgConnection,
    id: i64,
    by: &str,
) -> sqlx::Result<Option<AlertRow>> {
    let row: Option<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 \
         WHERE id = $1 AND state = 'firing' RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(by)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(a) = &row {
        announce(conn, a).await?;
    }
    Ok(row)
}

/// Records a test alert, born resolved so that it never shows as open, and queues its
/// delivery to `channels` like a firing.
pub async fn insert_test(
    conn: &mut PgConnection,
    message: &str,
    channels: &[String],
) -> sqlx::Result<AlertRow> {
    let row: AlertRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO alerts (kind, severity, state, message, resolved_at) \
         VALUES ('test', 'warning', 'resolved', $1, now()) RETURNING {COLUMNS}"
    )))
    .bind(message)
    .fetch_one(&mut *conn)
    .await?;
    queue(conn, row.id, "fired", channels).await?;
    announce(conn, &row).await?;
    Ok(row)
}

/// The open alerts (firing, then acknowledged; critical first, newest first), read through
/// the partial index of open alerts.
pub async fn open(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<AlertRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE state <> 'resolved' \
         ORDER BY state = 'firing' DESC, severity = 'critical' DESC, fired_at DESC, id DESC \
         LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One delivery of an alert to a channel, as it stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub alert_id: i64,
    pub channel: String,
    pub event: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The deliveries of the given alerts (through the primary key's leading `alert_id`).
pub async fn deliveries(pool: &PgPool, ids: &[i64]) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT alert_id, channel, event, state, attempts, last_error, sent_at \
         FROM alert_deliveries WHERE alert_id = ANY($1) ORDER BY alert_id, event, channel",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<AlertRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A delivery to make.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub alert_id: i64,
    pub channel: String,
    pub event: String,
    pub attempts: i32,
}

/// Claims due deliveries (other instances skip them) and moves their next try on, so that
/// one that is not finished is retried later.
pub async fn claim_due(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "UPDATE alert_deliveries d SET attempts = d.attempts + 1, \
           next_at = now() + make_interval(secs => least(300, 5 * power(2, d.attempts))) \
         FROM (SELECT alert_id, channel, event FROM alert_deliveries \
               WHERE state = 'pending' AND next_at <= now() \
               ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED) due \
         WHERE d.alert_id = due.alert_id AND d.channel = due.channel AND d.event = due.event \
         RETURNING d.alert_id, d.channel, d.event, d.attempts",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn delivered(
    pool: &PgPool,
    d: &Due,
    error: Option<&str>,
    give_up: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alert_deliveries SET \
           state = CASE WHEN $4::text IS NULL THEN 'sent' WHEN $5 THEN 'failed' ELSE 'pending' END, \
           sent_at = CASE WHEN $4::text IS NULL THEN now() END, last_error = $4 \
         WHERE alert_id = $1 AND channel = $2 AND event = $3",
    )
    .bind(d.alert_id)
    .bind(&d.channel)
    .bind(&d.event)
    .bind(error)
    .bind(give_up)
    .execute(pool)
    .await?;
    Ok(())
}
