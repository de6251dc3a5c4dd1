//! Broadcasts and their per-recipient queue (the send slots are in `send_slots`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::BroadcastStatus;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct BroadcastRow {
    pub id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub status: BroadcastStatus,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<serde_json::Value>,
    /// The template's category for pricing (`marketing`, `utility`, `authentication`).
    pub template_category: Option<String>,
    pub sender: String,
    pub mps: f64,
    pub start_at: DateTime<Utc>,
    pub audience: serde_json::Value,
    pub excluded: serde_json::Value,
    /// Exact decimal text (USD).
    pub estimated_cost: Option<String>,
    pub reminder_id: Option<i64>,
    pub created_by: Option<String>,
    pub paused_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, status, body, media, content_sid, content_variables, \
    template_category, sender, \
    mps, start_at, audience, excluded, estimated_cost::text AS estimated_cost, reminder_id, \
    created_by, paused_reason, created_at, updated_at, completed_at";

/// A broadcast to create with its recipients.
#[derive(Debug, Clone)]
pub struct NewBroadcast {
    pub name: String,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<serde_json::Value>,
    pub template_category: Option<crate::domain::price::Category>,
    pub sender: String,
    pub mps: f64,
    pub start_at: DateTime<Utc>,
    pub audience: serde_json::Value,
    pub excluded: serde_json::Value,
    pub estimated_cost: Option<rust_decimal::Decimal>,
    pub reminder_id: Option<i64>,
    pub created_by: Option<String>,
    pub request_key: Option<String>,
    /// Held for an admin, and why.
    pub held_reason: Option<String>,
}

/// One recipient: the number and its own template variables.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecipient {
    pub number: String,
    pub variables: Option<serde_json::Value>,
}

/// Creates the broadcast and queues every recipient in one transaction.
pub async fn insert(
    conn: &mut PgConnection,
    b: &NewBroadcast,
    recipients: &[NewRecipient],
    now: DateTime<Utc>,
) -> sqlx::Result<BroadcastRow> {
    let status = if b.held_reason.is_some() {
        BroadcastStatus::Held
    } else if b.start_at > now {
        BroadcastStatus::Scheduled
    } else {
        BroadcastStatus::Running
    };
    let row: BroadcastRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO broadcasts (name, status, body, media, content_sid, content_variables, \
           sender, mps, start_at, audience, excluded, estimated_cost, reminder_id, created_by, \
           request_key, paused_reason, template_category) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::numeric, $13, $14, $15, $16, \
           $17) \
         RETURNING {COLUMNS}"
    )))
    .bind(&b.name)
    .bind(status.as_str())
    .bind(&b.body)
    .bind(&b.media)
    .bind(&b.content_sid)
    .bind(&b.content_variables)
    .bind(&b.sender)
    .bind(b.mps)
    .bind(b.start_at)
    .bind(&b.audience)
    .bind(&b.excluded)
    .bind(b.estimated_cost.map(|d| d.to_string()))
    .bind(b.reminder_id)
    .bind(&b.created_by)
    .bind(&b.request_key)
    .bind(&b.held_reason)
    .bind(b.template_category.map(|c| c.as_str()))
    .fetch_one(&mut *conn)
    .await?;
    // In chunks, so a 100,000-recipient broadcast is a few statements, not 100,000.
    for chunk in recipients.chunks(5000) {
        let numbers: Vec<&str> = chunk.iter().map(|r| r.number.as_str()).collect();
        let variables: Vec<Option<&serde_json::Value>> =
            chunk.iter().map(|r| r.variables.as_ref()).collect();
        sqlx::query(
            "INSERT INTO broadcast_recipients (broadcast_id, number, variables, next_at) \
             SELECT $1, n, v, $4 FROM unnest($2::text[], $3::jsonb[]) AS t(n, v) \
             ON CONFLICT DO NOTHING",
        )
        .bind(row.id)
        .bind(&numbers)
        .bind(&variables)
        .bind(b.start_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(row)
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<BroadcastRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The broadcast queued with this idempotency key, if any.
pub async fn by_request_key(pool: &PgPool, key: &str) -> sqlx::Result<Option<BroadcastRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE request_key = $1"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Newest first, `limit` after the `(created_at, id)` cursor.
pub async fn list(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<BroadcastRow>> {
    match after {
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM broadcasts ORDER BY created_at DESC, id DESC LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(pool)
            .await
        }
        Some((at, id)) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM broadcasts WHERE (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $1"
            )))
            .bind(limit)
            .bind(at)
            .bind(id)
            .fetch_all(pool)
            .await
        }
    }
}

/// Where a broadcast's recipients are, by current state (of the recipient, then of its
/// message): every recipient is in exactly one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Counts {
    /// Not sent yet (queued, or being sent right now).
    pub pending: i64,
    /// Accepted by Twilio, not delivered yet.
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    /// Refused (by wadash's policy or Twilio) or failed on the way.
    pub failed: i64,
    pub undelivered: i64,
    pub canceled: i64,
}

/// How far a broadcast's messages got by the funnel's rule: every recipient whose message
/// reached at least that stage (see [`super::messages::reached_sent`]), so that its tiles
/// count as the overview's funnel does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Reached {
    #[sqlx(rename = "reached_sent")]
    pub sent: i64,
    #[sqlx(rename = "reached_delivered")]
    pub delivered: i64,
    #[sqlx(rename = "reached_read")]
    pub read: i64,
}

#[derive(sqlx::FromRow)]
struct CountsRow {
    #[sqlx(flatten)]
    counts: Counts,
    #[sqlx(flatten)]
    reached: Reached,
}

/// Where the recipients are ([`Counts`]) and how far they got ([`Reached`]), in one pass.
pub async fn counts_and_reached(pool: &PgPool, id: i64) -> sqlx::Result<(Counts, Reached)> {
    let row: CountsRow = sqlx::query_as(concat!(
        "SELECT \
           count(*) FILTER (WHERE r.state IN ('pending', 'sending')) AS pending, \
           count(*) FILTER (WHERE r.state = 'sent' AND (m.status IS NULL OR m.status NOT IN \
             ('delivered', 'read', 'failed', 'undelivered', 'canceled'))) AS sent, \
           count(*) FILTER (WHERE r.state = 'sent' AND m.status = 'delivered') AS delivered, \
           count(*) FILTER (WHERE r.state = 'sent' AND m.status = 'read') AS read, \
           count(*) FILTER (WHERE r.state = 'failed' \
             OR (r.state = 'sent' AND m.status IN ('failed', 'canceled'))) AS failed, \
           count(*) FILTER (WHERE r.state = 'sent' AND m.status = 'undelivered') AS undelivered, \
           count(*) FILTER (WHERE r.state = 'canceled') AS canceled, \
           count(*) FILTER (WHERE ",
        super::messages::reached_sent!("m."),
        ") AS reached_sent, count(*) FILTER (WHERE ",
        super::messages::reached_delivered!("m."),
        ") AS reached_delivered, count(*) FILTER (WHERE ",
        super::messages::reached_read!("m."),
        ") AS reached_read \
         FROM broadcast_recipients r LEFT JOIN messages m ON m.sid = r.message_sid \
         WHERE r.broadcast_id = $1"
    ))
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok((row.counts, row.reached))
}

pub async fn counts(pool: &PgPool, id: i64) -> sqlx::Result<Counts> {
    Ok(counts_and_reached(pool, id).await?.0)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RecipientRow {
    pub number: String,
    pub state: String,
    pub attempts: i32,
    pub message_sid: Option<String>,
    pub message_status: Option<String>,
    pub error_code: Option<i32>,
    pub error_reason: Option<String>,
    pub error_message: Option<String>,
    pub retryable: Option<bool>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Recipients in number order, `limit` after `after`, optionally only one bucket
/// (`pending`, `sent`, `delivered`, `read`, `failed`, `undelivered`, `canceled`).
pub async fn recipients(
    pool: &PgPool,
    id: i64,
    bucket: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<RecipientRow>> {
    sqlx::query_as(
        "SELECT r.number, r.state, r.attempts, r.message_sid, m.status AS message_status, \
           COALESCE(m.error_code, r.error_code) AS error_code, r.error_reason, \
           COALESCE(m.error_message, r.error_message) AS error_message, r.retryable, r.sent_at \
         FROM broadcast_recipients r LEFT JOIN messages m ON m.sid = r.message_sid \
         WHERE r.broadcast_id = $1 AND ($3::text IS NULL OR r.number > $3) \
           AND ($4::text IS NULL OR CASE \
             WHEN r.state IN ('pending', 'sending') THEN 'pending' \
             WHEN r.state IN ('failed', 'canceled') THEN r.state \
             WHEN m.status IN ('delivered', 'read', 'undelivered') THEN m.status \
             WHEN m.status IN ('failed', 'canceled') THEN 'failed' \
             ELSE 'sent' END = $4) \
         ORDER BY r.number LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .bind(after)
    .bind(bucket)
    .fetch_all(pool)
    .await
}

/// How many of a broadcast's recipients were handed to Twilio in the last `secs` seconds:
/// the current send rate, over that window.
pub async fn sent_within(pool: &PgPool, id: i64, secs: f64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM broadcast_recipients \
         WHERE broadcast_id = $1 AND sent_at > now() - make_interval(secs => $2)",
    )
    .bind(id)
    .bind(secs)
    .fetch_one(pool)
    .await
}

/// Moves scheduled broadcasts whose time has come to running.
pub async fn start_due(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE broadcasts SET status = 'running', updated_at = now() \
         WHERE status = 'scheduled' AND start_at <= now()",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// What a worker needs to send to one claimed recipient.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub broadcast_id: i64,
    pub number: String,
    pub variables: Option<serde_json::Value>,
    pub attempts: i32,
    pub claimed_at: DateTime<Utc>,
}

/// A sender with due broadcast work: the broadcast to serve next on it (a reminder's before
/// bulk ones, then the oldest), and how long until its reserved slots run out (negative or
/// zero: none reserved ahead).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueSender {
    pub sender: String,
    pub broadcast_id: i64,
    pub mps: f64,
    pub slots_end_in: f64,
}

pub async fn due_senders(pool: &PgPool) -> sqlx::Result<Vec<DueSender>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (b.sender) b.sender, b.id AS broadcast_id, b.mps, \
           COALESCE(extract(epoch FROM s.next_slot - clock_timestamp())::float8, 0) AS slots_end_in \
         FROM broadcasts b LEFT JOIN send_slots s ON s.sender = b.sender \
         WHERE b.status = 'running' AND EXISTS ( \
             SELECT 1 FROM broadcast_recipients r \
             WHERE r.broadcast_id = b.id AND r.state = 'pending' AND r.next_at <= now()) \
         ORDER BY b.sender, (b.reminder_id IS NULL), b.start_at, b.id",
    )
    .fetch_all(pool)
    .await
}

/// Claims up to `limit` due recipients of broadcast `id` for sending: each is marked
/// `sending` with the claim time and one more attempt, and committed, before Twilio is
/// called (the intent). Rows another worker holds are skipped.
pub async fn claim(pool: &PgPool, id: i64, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE broadcast_recipients r SET state = 'sending', claimed_at = clock_timestamp(), \
           attempts = r.attempts + 1 \
         FROM (SELECT broadcast_id, number FROM broadcast_recipients \
               WHERE broadcast_id = $1 AND state = 'pending' AND next_at <= now() \
               ORDER BY next_at, number LIMIT $2 FOR UPDATE SKIP LOCKED) due \
         WHERE r.broadcast_id = due.broadcast_id AND r.number = due.number \
           AND EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = $1 AND b.status = 'running') \
         RETURNING r.broadcast_id, r.number, r.variables, r.attempts, r.claimed_at",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Claims rows left `sending` for longer than `stale_secs` (their worker died, or its call to
/// Twilio ended without an answer): they are looked up at Twilio before anything is sent
/// again. The claim time is renewed so no other worker takes them meanwhile.
pub async fn claim_stale(pool: &PgPool, stale_secs: f64, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE broadcast_recipients r SET claimed_at = clock_timestamp() \
         FROM (SELECT broadcast_id, number, claimed_at FROM broadcast_recipients \
               WHERE state = 'sending' \
                 AND claimed_at < clock_timestamp() - make_interval(secs => $1) \
               ORDER BY claimed_at LIMIT $2 FOR UPDATE SKIP LOCKED) stale \
         WHERE r.broadcast_id = stale.broadcast_id AND r.number = stale.number \
         RETURNING r.broadcast_id, r.number, r.variables, r.attempts, stale.claimed_at",
    )
    .bind(stale_secs)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Twilio accepted the message.
/// `times`: the slot reserved for the send and when it really left (none for a send
/// recovered from Twilio).
pub async fn mark_sent(
    pool: &PgPool,
    broadcast_id: i64,
    number: &str,
    sid: &str,
    times: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcast_recipients SET state = 'sent', message_sid = $3, sent_at = now(), \
           slot_at = $4, left_at = $5, error_code = NULL, error_reason = NULL, \
           error_message = NULL, retryable = NULL \
         WHERE broadcast_id = $1 AND number = $2",
    )
    .bind(broadcast_id)
    .bind(number)
    .bind(sid)
    .bind(times.map(|t| t.0))
    .bind(times.map(|t| t.1))
    .execute(pool)
    .await?;
    Ok(())
}

/// Why a recipient was not sent.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Option<i32>,
    pub reason: Option<String>,
    pub message: String,
    pub retryable: bool,
}

pub async fn mark_failed(
    pool: &PgPool,
    broadcast_id: i64,
    number: &str,
    f: &Failure,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcast_recipients SET state = 'failed', error_code = $3, error_reason = $4, \
           error_message = $5, retryable = $6 \
         WHERE broadcast_id = $1 AND number = $2",
    )
    .bind(broadcast_id)
    .bind(number)
    .bind(f.code)
    .bind(&f.reason)
    .bind(&f.message)
    .bind(f.retryable)
    .execute(pool)
    .await?;
    Ok(())
}

/// Back to the queue, to be tried again after `delay_secs` (Twilio said not now, or nothing
/// was sent).
pub async fn requeue(
    pool: &PgPool,
    broadcast_id: i64,
    number: &str,
    delay_secs: f64,
    why: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcast_recipients SET state = 'pending', claimed_at = NULL, \
           next_at = now() + make_interval(secs => $3), error_message = $4 \
         WHERE broadcast_id = $1 AND number = $2 AND state = 'sending'",
    )
    .bind(broadcast_id)
    .bind(number)
    .bind(delay_secs)
    .bind(why)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks the broadcast completed when nothing is left to send.
pub async fn complete_if_done(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE broadcasts SET status = 'completed', completed_at = now(), updated_at = now() \
         WHERE id = $1 AND status = 'running' AND NOT EXISTS ( \
           SELECT 1 FROM broadcast_recipients \
           WHERE broadcast_id = $1 AND state IN ('pending', 'sending'))",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Pause, resume or cancel: sets `to` when the broadcast is in one of `from` (see
/// `BroadcastAction::allowed_from`). Returns the new row, or None when the broadcast is not in
/// a state the change applies to.
pub async fn set_status(
    pool: &PgPool,
    id: i64,
    to: BroadcastStatus,
    from: &[BroadcastStatus],
) -> sqlx::Result<Option<BroadcastRow>> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let mut tx = pool.begin().await?;
    let row: Option<BroadcastRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE broadcasts SET status = CASE WHEN $2 = 'running' AND start_at > now() \
           THEN 'scheduled' ELSE $2 END, updated_at = now(), paused_reason = NULL, \
           held_for = NULL, held_on = NULL, \
           completed_at = CASE WHEN $2 = 'canceled' THEN now() ELSE completed_at END \
         WHERE id = $1 AND status = ANY($3) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(to.as_str())
    .bind(&from)
    .fetch_optional(&mut *tx)
    .await?;
    if row.is_some() && to == BroadcastStatus::Canceled {
        sqlx::query(
            "UPDATE broadcast_recipients SET state = 'canceled' \
             WHERE broadcast_id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// Queues again the recipients whose failure is worth retrying: refused by Twilio with a
/// retryable error, or whose message failed on the way with one. Returns how many.
pub async fn retry_failed(pool: &PgPool, id: i64, retryable_codes: &[i32]) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE broadcast_recipients r SET state = 'pending', next_at = now(), claimed_at = NULL, \
           slot_at = NULL, left_at = NULL, \
           message_sid = NULL, error_code = NULL, error_reason = NULL, error_message = NULL, \
           retryable = NULL \
         WHERE r.broadcast_id = $1 AND ( \
           (r.state = 'failed' AND r.retryable) \
           OR (r.state = 'sent' AND EXISTS (SELECT 1 FROM messages m WHERE m.sid = r.message_sid \
               AND m.status IN ('failed', 'undelivered') AND m.error_code = ANY($2))))",
    )
    .bind(id)
    .bind(retryable_codes)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n > 0 {
        sqlx::query(
            "UPDATE broadcasts SET status = 'running', completed_at = NULL, updated_at = now() \
             WHERE id = $1 AND status = 'completed'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Pauses a running broadcast because Twilio refused the account itself; an operator resumes
/// it once the cause is fixed.
pub async fn pause_for(pool: &PgPool, id: i64, reason: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE broadcasts SET status = 'paused', paused_reason = $2, updated_at = now() \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(reason)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// An admin releases a held broadcast: it starts (or waits for its start time).
pub async fn release(pool: &PgPool, id: i64) -> sqlx::Result<Option<BroadcastRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE broadcasts SET status = CASE WHEN start_at > now() THEN 'scheduled' \
           ELSE 'running' END, paused_reason = NULL, held_for = NULL, held_on = NULL, updated_at = now() \
         WHERE id = $1 AND status = 'held' RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Holds running (or scheduled) broadcast `id` until what it waits `for` (`template` or
/// `sender`) named `on` clears, with the reason; true when this call held it.
pub async fn hold_until(
    conn: impl sqlx::PgExecutor<'_>,
    id: i64,
    held_for: &str,
    on: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE broadcasts SET status = 'held', paused_reason = $4, held_for = $2, \
           held_on = $3, updated_at = now() \
         WHERE id = $1 AND status IN ('running', 'scheduled')",
    )
    .bind(id)
    .bind(held_for)
    .bind(on)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// One broadcast held until something clears: (id, what it waits for, on what, its sender).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldUntil {
    pub id: i64,
    pub held_for: String,
    pub held_on: String,
    pub sender: String,
}

/// The broadcasts held until something clears.
pub async fn held_until(pool: &PgPool) -> sqlx::Result<Vec<HeldUntil>> {
    sqlx::query_as(
        "SELECT id, held_for, held_on, sender FROM broadcasts \
         WHERE status = 'held' AND held_for IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// Starts again (or schedules) broadcast `id` if it is still held for `held_for` on `on`;
/// true when this call resumed it.
pub async fn resume_held(pool: &PgPool, id: i64, held_for: &str, on: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE broadcasts SET status = CASE WHEN start_at > now() THEN 'scheduled' \
           ELSE 'running' END, paused_reason = NULL, held_for = NULL, held_on = NULL, \
           updated_at = now() \
         WHERE id = $1 AND status = 'held' AND held_for = $2 AND held_on = $3",
    )
    .bind(id)
    .bind(held_for)
    .bind(on)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Puts a claimed recipient back in the queue as it was before the claim (not an attempt:
/// nothing was sent), for when its broadcast is held.
pub async fn unclaim(pool: &PgPool, broadcast_id: i64, number: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE broadcast_recipients SET state = 'pending', claimed_at = NULL, \
           attempts = GREATEST(attempts - 1, 0) \
         WHERE broadcast_id = $1 AND number = $2 AND state = 'sending'",
    )
    .bind(broadcast_id)
    .bind(number)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records how the broadcast's CSV columns were mapped to its template's placeholders.
pub async fn set_mapping(
    conn: &mut PgConnection,
    id: i64,
    mapping: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE broadcasts SET variable_mapping = $2 WHERE id = $1")
        .bind(id)
        .bind(mapping)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
