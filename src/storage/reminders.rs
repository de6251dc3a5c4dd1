//! Reminders and the record of each occurrence.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{PgQueryAs, assignments, placeholders};
use crate::domain::ReminderStatus;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ReminderRow {
    pub id: i64,
    pub to_number: Option<String>,
    pub to_tag: Option<String>,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub content_sid: Option<String>,
    pub sender: Option<String>,
    pub first_at: DateTime<Utc>,
    pub recurrence: String,
    pub timezone: String,
    #[sqlx(try_from = "String")]
    pub status: ReminderStatus,
    pub next_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, to_number, to_tag, body, media, content_sid, sender, first_at, \
    recurrence, timezone, status, next_at, created_by, created_at, updated_at";

/// A reminder's settings as written.
#[derive(Debug, Clone)]
pub struct NewReminder {
    pub to_number: Option<String>,
    pub to_tag: Option<String>,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub content_sid: Option<String>,
    pub sender: Option<String>,
    pub first_at: DateTime<Utc>,
    pub recurrence: String,
    pub timezone: String,
    pub status: ReminderStatus,
    pub next_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
}

/// The columns a [`NewReminder`] sets, in the order [`bind_settings`] binds them.
const SETTINGS: [&str; 11] = [
    "to_number",
    "to_tag",
    "body",
    "media",
    "content_sid",
    "sender",
    "first_at",
    "recurrence",
    "timezone",
    "status",
    "next_at",
];

fn bind_settings<'q, O>(q: PgQueryAs<'q, O>, r: &'q NewReminder) -> PgQueryAs<'q, O> {
    q.bind(&r.to_number)
        .bind(&r.to_tag)
        .bind(&r.body)
        .bind(&r.media)
        .bind(&r.content_sid)
        .bind(&r.sender)
        .bind(r.first_at)
        .bind(&r.recurrence)
        .bind(&r.timezone)
        .bind(r.status.as_str())
        .bind(r.next_at)
}

pub async fn insert(pool: &PgPool, r: &NewReminder) -> sqlx::Result<ReminderRow> {
    let sql = format!(
        "INSERT INTO reminders ({}, created_by) VALUES ({}) RETURNING {COLUMNS}",
        SETTINGS.join(", "),
        placeholders(1, SETTINGS.len() + 1)
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)), r)
        .bind(&r.created_by)
        .fetch_one(pool)
        .await
}

/// Replaces a reminder's settings (not its creator).
pub async fn update(pool: &PgPool, id: i64, r: &NewReminder) -> sqlx::Result<Option<ReminderRow>> {
    let sql = format!(
        "UPDATE reminders SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        assignments(&SETTINGS, 2)
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id), r)
        .fetch_optional(pool)
        .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<ReminderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Active and paused reminders first (soonest first), then the rest, newest first.
/// Active reminders whose next occurrence is before `until` (on the due index).
pub async fn due_before(pool: &PgPool, until: DateTime<Utc>) -> sqlx::Result<Vec<ReminderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders WHERE status = 'active' AND next_at < $1 \
         ORDER BY next_at LIMIT 10000"
    )))
    .bind(until)
    .fetch_all(pool)
    .await
}

pub async fn list(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<ReminderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders \
         ORDER BY status NOT IN ('active', 'paused'), next_at NULLS LAST, id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn cancel(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE reminders SET status = 'canceled', next_at = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Due active reminders, locked for this transaction; other instances skip them.
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<ReminderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders WHERE status = 'active' AND next_at <= now() \
         ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records one occurrence; false if it was already recorded (never twice).
pub async fn record_run(
    conn: &mut PgConnection,
    reminder_id: i64,
    due_at: DateTime<Utc>,
    outcome: &str,
    broadcast_id: Option<i64>,
    note: Option<&str>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO reminder_runs (reminder_id, due_at, outcome, broadcast_id, note) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(reminder_id)
    .bind(due_at)
    .bind(outcome)
    .bind(broadcast_id)
    .bind(note)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A held occurrence settled by [`settle_held_runs`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Settled {
    pub reminder_id: i64,
    pub due_at: DateTime<Utc>,
    /// `sent` or `skipped`.
    pub outcome: String,
}

/// Settles the occurrences recorded `held` (waiting for their sender) whose broadcast moved
/// on: `sent` once it is no longer held; `skipped` when it was canceled, or — canceling it —
/// when it is still held and was due before `cutoff` (`limit` names that lateness limit in
/// the note). Rows another instance is settling are left to it.
pub async fn settle_held_runs(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    limit: &str,
) -> sqlx::Result<Vec<Settled>> {
    sqlx::query_as(
        "WITH held AS ( \
           SELECT rr.reminder_id, rr.due_at, rr.broadcast_id, b.status AS bstatus \
           FROM reminder_runs rr LEFT JOIN broadcasts b ON b.id = rr.broadcast_id \
           WHERE rr.outcome = 'held' FOR UPDATE OF rr SKIP LOCKED), \
         expired AS ( \
           UPDATE broadcasts SET status = 'canceled', completed_at = now(), updated_at = now(), \
             held_for = NULL, held_on = NULL \
           WHERE status = 'held' AND id IN \
             (SELECT broadcast_id FROM held WHERE bstatus = 'held' AND due_at < $1) \
           RETURNING id, paused_reason), \
         dropped AS ( \
           UPDATE broadcast_recipients SET state = 'canceled' \
           WHERE broadcast_id IN (SELECT id FROM expired) AND state = 'pending') \
         UPDATE reminder_runs rr SET \
           outcome = CASE WHEN e.id IS NULL AND h.bstatus <> 'canceled' THEN 'sent' \
                          ELSE 'skipped' END, \
           note = CASE \
             WHEN e.id IS NOT NULL THEN 'not sent: its sender could not send for ' || $2 || \
               ' past its time, the most a reminder may be late (' || \
               coalesce(e.paused_reason, 'held') || ')' \
             WHEN h.bstatus IS NULL OR h.bstatus = 'canceled' THEN \
               'not sent: its broadcast was canceled while it waited for its sender' \
             ELSE 'sent late: it waited for its sender, and went out once it could send' END \
         FROM held h LEFT JOIN expired e ON e.id = h.broadcast_id \
         WHERE rr.reminder_id = h.reminder_id AND rr.due_at = h.due_at \
           AND (e.id IS NOT NULL OR h.bstatus IS NULL OR h.bstatus <> 'held') \
         RETURNING rr.reminder_id, rr.due_at, rr.outcome",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Moves the reminder on to its next occurrence (None: there is none) in `status`.
pub async fn advance(
    conn: &mut PgConnection,
    id: i64,
    next_at: Option<DateTime<Utc>>,
    status: ReminderStatus,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE reminders SET next_at = $2, status = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(next_at)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RunRow {
    pub due_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub outcome: String,
    pub broadcast_id: Option<i64>,
    pub note: Option<String>,
    /// The message, when the reminder went to one number.
    pub message_sid: Option<String>,
    pub message_status: Option<String>,
}

/// The latest occurrences, newest first.
pub async fn runs(pool: &PgPool, reminder_id: i64, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "SELECT rr.due_at, rr.started_at, rr.outcome, rr.broadcast_id, rr.note, \
           r.message_sid, m.status AS message_status \
         FROM reminder_runs rr \
         LEFT JOIN LATERAL (SELECT message_sid FROM broadcast_recipients \
                            WHERE broadcast_id = rr.broadcast_id ORDER BY number LIMIT 1) r ON true \
         LEFT JOIN messages m ON m.sid = r.message_sid \
         WHERE rr.reminder_id = $1 ORDER BY rr.due_at DESC LIMIT $2",
    )
    .bind(reminder_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
