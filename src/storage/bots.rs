//! Bot connections, bot conversations (session and hand-off state), hand-offs and bot turns.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A bot connection as stored; `secrets` is sealed text, never shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BotRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub config: sqlx::types::Json<serde_json::Value>,
    pub secrets: Option<String>,
    pub endpoint: Option<String>,
    pub timeout_ms: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, kind, config, secrets, endpoint, timeout_ms, created_at, updated_at";

/// A bot's settings as written (secrets already sealed).
#[derive(Debug, Clone)]
pub struct NewBot {
    pub name: String,
    pub kind: String,
    pub config: serde_json::Value,
    pub secrets: Option<String>,
    pub endpoint: Option<String>,
    pub timeout_ms: i32,
}

pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<BotRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bots ORDER BY name"
    )))
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<BotRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bots WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// [`get`] inside a transaction.
pub async fn get_in(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<BotRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bots WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn insert(pool: &PgPool, b: &NewBot) -> sqlx::Result<BotRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO bots (name, kind, config, secrets, endpoint, timeout_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(&b.name)
    .bind(&b.kind)
    .bind(sqlx::types::Json(&b.config))
    .bind(&b.secrets)
    .bind(&b.endpoint)
    .bind(b.timeout_ms)
    .fetch_one(pool)
    .await
}

pub async fn update(pool: &PgPool, id: i64, b: &NewBot) -> sqlx::Result<Option<BotRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE bots SET name = $2, kind = $3, config = $4, secrets = $5, endpoint = $6, \
           timeout_ms = $7, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&b.name)
    .bind(&b.kind)
    .bind(sqlx::types::Json(&b.config))
    .bind(&b.secrets)
    .bind(&b.endpoint)
    .bind(b.timeout_ms)
    .fetch_optional(pool)
    .await
}

/// Deletes a bot; `Err` with a foreign-key violation (23503) while a rule uses it.
pub async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM bots WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Names of the rules that hand messages to bot `id`.
pub async fn rules_using(pool: &PgPool, id: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM reply_rules WHERE bot_id = $1 ORDER BY position")
        .bind(id)
        .fetch_all(pool)
        .await
}

/// One conversation's bot state.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq)]
pub struct ConversationRow {
    pub number: String,
    pub sender: String,
    pub bot_id: Option<i64>,
    pub session_id: Option<String>,
    pub session_started_at: Option<DateTime<Utc>>,
    pub last_turn_at: Option<DateTime<Utc>>,
    pub fallbacks: i32,
    pub handoff_since: Option<DateTime<Utc>>,
    pub handoff_reason: Option<String>,
}

const CONV_COLUMNS: &str = "number, sender, bot_id, session_id, session_started_at, \
    last_turn_at, fallbacks, handoff_since, handoff_reason";

/// The conversation of `number` with `sender`, locked until the transaction ends.
pub async fn lock_conversation(
    conn: &mut PgConnection,
    number: &str,
    sender: &str,
) -> sqlx::Result<Option<ConversationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLUMNS} FROM bot_conversations WHERE number = $1 AND sender = $2 \
         FOR UPDATE"
    )))
    .bind(number)
    .bind(sender)
    .fetch_optional(conn)
    .await
}

/// Every conversation of `number` (one per sender it wrote to).
pub async fn conversations_of(
    conn: &mut PgConnection,
    number: &str,
) -> sqlx::Result<Vec<ConversationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLUMNS} FROM bot_conversations WHERE number = $1 ORDER BY sender"
    )))
    .bind(number)
    .fetch_all(conn)
    .await
}

/// Starts or continues the bot session: `session_id` (new when `new_session`), this turn's
/// time; a new session starts with no fallbacks.
pub async fn record_turn_start(
    conn: &mut PgConnection,
    number: &str,
    sender: &str,
    bot_id: i64,
    session_id: &str,
    new_session: bool,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO bot_conversations (number, sender, bot_id, session_id, session_started_at, \
           last_turn_at) VALUES ($1, $2, $3, $4, $6, $6) \
         ON CONFLICT (number, sender) DO UPDATE SET bot_id = $3, session_id = $4, \
           session_started_at = CASE WHEN $5 THEN $6 \
             ELSE bot_conversations.session_started_at END, \
           fallbacks = CASE WHEN $5 THEN 0 ELSE bot_conversations.fallbacks END, \
           last_turn_at = $6, updated_at = now()",
    )
    .bind(number)
    .bind(sender)
    .bind(bot_id)
    .bind(session_id)
    .bind(new_session)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the fallbacks-in-a-row count after a bot's answer.
pub async fn set_fallbacks(
    conn: &mut PgConnection,
    number: &str,
    sender: &str,
    fallbacks: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE bot_conversations SET fallbacks = $3, updated_at = now() \
         WHERE number = $1 AND sender = $2",
    )
    .bind(number)
    .bind(sender)
    .bind(fallbacks)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts the conversation in the "needs a human" queue (no-op when it already is), records
/// the hand-off and tells live pages. Returns whether it was newly handed off.
pub async fn hand_off(
    conn: &mut PgConnection,
    number: &str,
    sender: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    let bot_id: Option<Option<i64>> = sqlx::query_scalar(
        "INSERT INTO bot_conversations (number, sender, handoff_since, handoff_reason) \
           VALUES ($1, $2, now(), $3) \
         ON CONFLICT (number, sender) DO UPDATE SET handoff_since = now(), handoff_reason = $3, \
           fallbacks = 0, updated_at = now() \
           WHERE bot_conversations.handoff_since IS NULL \
         RETURNING bot_id",
    )
    .bind(number)
    .bind(sender)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(bot_id) = bot_id else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO bot_handoffs (number, sender, bot_id, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(number)
    .bind(sender)
    .bind(bot_id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    announce(conn, number).await?;
    Ok(true)
}

/// Gives every conversation of `number` back to the bot: out of the queue, a fresh session at
/// the next message. Returns how many were waiting.
pub async fn give_back(conn: &mut PgConnection, number: &str) -> sqlx::Result<u64> {
    let n = sqlx::query(
        "UPDATE bot_conversations SET handoff_since = NULL, handoff_reason = NULL, \
           fallbacks = 0, session_id = NULL, last_turn_at = NULL, updated_at = now() \
         WHERE number = $1 AND handoff_since IS NOT NULL",
    )
    .bind(number)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0 {
        sqlx::query(
            "UPDATE bot_handoffs SET given_back_at = now() \
             WHERE number = $1 AND given_back_at IS NULL",
        )
        .bind(number)
        .execute(&mut *conn)
        .await?;
        announce(conn, number).await?;
    }
    Ok(n)
}

/// Tells live pages (the hand-off queue) that a conversation entered or left it.
async fn announce(conn: &mut PgConnection, number: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO live_log (kind, payload) VALUES ('handoffs', $1)")
        .bind(serde_json::json!({ "number": number }))
        .execute(conn)
        .await?;
    Ok(())
}

/// A conversation waiting for a human.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct HandoffRow {
    pub number: String,
    pub sender: String,
    pub since: DateTime<Utc>,
    pub reason: String,
    pub bot_name: Option<String>,
}

/// The "needs a human" queue, longest waiting first.
pub async fn queue(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<HandoffRow>> {
    sqlx::query_as(
        "SELECT c.number::text, c.sender::text, c.handoff_since AS since, \
           COALESCE(c.handoff_reason, '') AS reason, b.name AS bot_name \
         FROM bot_conversations c LEFT JOIN bots b ON b.id = c.bot_id \
         WHERE c.handoff_since IS NOT NULL ORDER BY c.handoff_since LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn queue_len(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM bot_conversations WHERE handoff_since IS NOT NULL")
        .fetch_one(pool)
        .await
}

/// A turn about to be asked of a bot.
#[derive(Debug, Clone)]
pub struct NewTurn<'a> {
    pub inbound_sid: &'a str,
    pub bot_id: i64,
    pub bot_name: &'a str,
    pub number: &'a str,
    pub sender: &'a str,
    pub session_id: &'a str,
}

/// Records a pending turn; false when the message already had one (a webhook delivered
/// twice: the first delivery asks the bot).
pub async fn insert_turn(conn: &mut PgConnection, t: &NewTurn<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO bot_turns (inbound_sid, bot_id, bot_name, number, sender, session_id) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (inbound_sid) DO NOTHING",
    )
    .bind(t.inbound_sid)
    .bind(t.bot_id)
    .bind(t.bot_name)
    .bind(t.number)
    .bind(t.sender)
    .bind(t.session_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// What came of a turn.
#[derive(Debug, Clone)]
pub struct TurnResult<'a> {
    pub outcome: &'a str,
    pub intent: Option<&'a str>,
    pub confidence: Option<f64>,
    pub parameters: Option<&'a serde_json::Value>,
    pub signal: Option<&'a str>,
    pub error: Option<&'a str>,
    pub latency_ms: Option<i32>,
}

pub async fn finish_turn(
    conn: &mut PgConnection,
    inbound_sid: &str,
    r: &TurnResult<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE bot_turns SET outcome = $2, intent = $3, confidence = $4, parameters = $5, \
           signal = $6, error = $7, latency_ms = $8, answered_at = now() \
         WHERE inbound_sid = $1",
    )
    .bind(inbound_sid)
    .bind(r.outcome)
    .bind(r.intent)
    .bind(r.confidence)
    .bind(r.parameters.map(sqlx::types::Json))
    .bind(r.signal)
    .bind(r.error)
    .bind(r.latency_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the message was given to a bot (`Some`), and whether its answer went out late.
pub async fn turn_late(conn: &mut PgConnection, inbound_sid: &str) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar("SELECT late FROM bot_turns WHERE inbound_sid = $1")
        .bind(inbound_sid)
        .fetch_optional(conn)
        .await
}

/// Marks a turn as answered through the REST client apart from the webhook's answer: the bot
/// answered after the reply budget, or its answer has choices (sent with a Content SID).
pub async fn mark_late(pool: &PgPool, inbound_sid: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE bot_turns SET late = true WHERE inbound_sid = $1")
        .bind(inbound_sid)
        .execute(pool)
        .await?;
    Ok(())
}

/// A bot turn as the conversation page shows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct TurnRow {
    pub inbound_sid: String,
    pub bot_name: String,
    pub session_id: String,
    pub outcome: String,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub parameters: Option<sqlx::types::Json<serde_json::Value>>,
    pub signal: Option<String>,
    pub error: Option<String>,
    pub latency_ms: Option<i32>,
    pub late: bool,
    pub created_at: DateTime<Utc>,
}

const TURN_COLUMNS: &str = "inbound_sid, bot_name, session_id, outcome, intent, confidence, \
    parameters, signal, error, latency_ms, late, created_at";

/// The bot turns of `number`'s latest messages, newest first.
pub async fn turns_of(pool: &PgPool, number: &str, limit: i64) -> sqlx::Result<Vec<TurnRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TURN_COLUMNS} FROM bot_turns WHERE number = $1 \
         ORDER BY created_at DESC LIMIT $2"
    )))
    .bind(number)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn turn(pool: &PgPool, inbound_sid: &str) -> sqlx::Result<Option<TurnRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TURN_COLUMNS} FROM bot_turns WHERE inbound_sid = $1"
    )))
    .bind(inbound_sid)
    .fetch_optional(pool)
    .await
}

/// Bot and human share of conversations since `since`, for the overview.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Split {
    /// Contacts a bot talked with.
    pub bot: i64,
    /// Contacts handed to a human.
    pub handed_off: i64,
}

pub async fn split_since(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Split> {
    sqlx::query_as(
        "SELECT (SELECT count(DISTINCT number) FROM bot_turns WHERE created_at >= $1) AS bot, \
           (SELECT count(DISTINCT number) FROM bot_handoffs WHERE at >= $1) AS handed_off",
    )
    .bind(since)
    .fetch_one(pool)
    .await
}

/// The sender `number` last wrote to (`whatsapp:+…`), if it ever wrote.
pub async fn last_sender_of(pool: &PgPool, number: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT to_addr::text FROM messages WHERE from_addr = $1 AND to_addr IS NOT NULL \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(format!("whatsapp:{number}"))
    .fetch_optional(pool)
    .await
}

/// The bot turns of these inbound messages.
pub async fn turns_for(pool: &PgPool, sids: &[String]) -> sqlx::Result<Vec<TurnRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TURN_COLUMNS} FROM bot_turns WHERE inbound_sid = ANY($1)"
    )))
    .bind(sids)
    .fetch_all(pool)
    .await
}

/// [`conversations_of`] on the pool.
pub async fn conversations_of_number(
    pool: &PgPool,
    number: &str,
) -> sqlx::Result<Vec<(ConversationRow, Option<String>)>> {
    let mut conn = pool.acquire().await?;
    let rows = conversations_of(&mut conn, number).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name = match r.bot_id {
            Some(id) => {
                sqlx::query_scalar("SELECT name FROM bots WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            None => None,
        };
        out.push((r, name));
    }
    Ok(out)
}

/// Whether any bot is configured (the overview shows its bot panel only then).
pub async fn any(pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM bots)")
        .fetch_one(pool)
        .await
}
