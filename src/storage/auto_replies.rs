//! The automatic replies wadash gave to inbound messages, and their link to the messages
//! Twilio created for them.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::domain::bot::ChoiceSet;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplyRow {
    pub id: i64,
    pub inbound_sid: String,
    pub position: i16,
    pub reason: String,
    pub rule_id: Option<i64>,
    pub from_addr: String,
    pub to_addr: String,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub message_sid: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A bot's question with choices (`body` is their numbered text).
    pub choices: Option<Json<ChoiceSet>>,
}

const COLUMNS: &str = "id, inbound_sid, position, reason, rule_id, from_addr, to_addr, body, \
    media, message_sid, created_at, choices";

/// A reply about to be given.
#[derive(Debug, Clone)]
pub struct NewReply<'a> {
    pub inbound_sid: &'a str,
    pub position: i16,
    pub reason: &'a str,
    pub rule_id: Option<i64>,
    pub from_addr: &'a str,
    pub to_addr: &'a str,
    pub body: Option<&'a str>,
    pub media: &'a [String],
    pub choices: Option<&'a ChoiceSet>,
}

/// The replies already given to an inbound message (when its webhook is delivered again).
pub async fn for_inbound(
    conn: &mut PgConnection,
    inbound_sid: &str,
) -> sqlx::Result<Vec<ReplyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM auto_replies WHERE inbound_sid = $1 ORDER BY position"
    )))
    .bind(inbound_sid)
    .fetch_all(conn)
    .await
}

pub async fn insert(conn: &mut PgConnection, r: &NewReply<'_>) -> sqlx::Result<ReplyRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO auto_replies (inbound_sid, position, reason, rule_id, from_addr, to_addr, \
           body, media, choices) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    )))
    .bind(r.inbound_sid)
    .bind(r.position)
    .bind(r.reason)
    .bind(r.rule_id)
    .bind(r.from_addr)
    .bind(r.to_addr)
    .bind(r.body)
    .bind(r.media)
    .bind(r.choices.map(Json))
    .fetch_one(conn)
    .await
}

/// How a reply with choices was sent: with Content `content_sid`, or as numbered text
/// because of `error` (both None: its choices did not fit WhatsApp's interactive shapes).
pub async fn record_choices_sent(
    pool: &PgPool,
    id: i64,
    content_sid: Option<&str>,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE auto_replies SET content_sid = $2, choice_error = $3 WHERE id = $1")
        .bind(id)
        .bind(content_sid)
        .bind(error)
        .execute(pool)
        .await
        .map(drop)
}

/// The choices a contact answered by tapping: those of the reply sent as `replied_to` (the
/// tap's OriginalRepliedMessageSid) or, without it, the latest ones this sender gave this
/// contact.
pub async fn choices_answered(
    conn: &mut PgConnection,
    contact: &str,
    sender: &str,
    replied_to: Option<&str>,
) -> sqlx::Result<Option<ChoiceSet>> {
    let found: Option<Json<ChoiceSet>> = sqlx::query_scalar(
        "SELECT choices FROM auto_replies \
         WHERE choices IS NOT NULL AND to_addr = $1 AND from_addr = $2 \
           AND ($3::text IS NULL OR message_sid = $3) \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(contact)
    .bind(sender)
    .bind(replied_to)
    .fetch_optional(conn)
    .await?;
    Ok(found.map(|j| j.0))
}

/// Links reply `id` to the message Twilio created for it, once, and gives that message the
/// reply's body and media (status callbacks carry neither, and the create answer of a
/// Content send carries at most the question: a bot's choices show as their numbered text). Returns the reply's (from, to)
/// when this call linked it; later callbacks for the same reply find it linked and change
/// nothing. The change goes to the change log like a callback's (live pages, and the
/// roll-ups, which group by the sender this may fill in).
pub async fn link(
    pool: &PgPool,
    id: i64,
    message_sid: &str,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(concat!(
        "WITH r AS ( \
           UPDATE auto_replies SET message_sid = $2 \
           WHERE id = $1 AND message_sid IS NULL \
           RETURNING body, media, from_addr, to_addr, choices), \
         linked AS (UPDATE messages m SET \
           body = CASE WHEN r.choices IS NOT NULL THEN r.body \
             ELSE COALESCE(NULLIF(m.body, ''), r.body) END, \
           from_addr = COALESCE(m.from_addr, r.from_addr), \
           to_addr = COALESCE(m.to_addr, r.to_addr), \
           num_media = GREATEST(m.num_media, cardinality(r.media)), \
           media = CASE WHEN m.media = '[]'::jsonb \
             THEN (SELECT COALESCE(jsonb_agg(jsonb_build_object('url', u, 'content_type', NULL)), \
                   '[]'::jsonb) FROM unnest(r.media) AS u) \
             ELSE m.media END \
         FROM r WHERE m.sid = $2 \
         RETURNING m.sid, m.direction, m.status, m.error_code, m.from_addr, m.to_addr, \
                   m.created_at, r.from_addr::text AS reply_from, r.to_addr::text AS reply_to), \
         live AS (",
        live_log_messages!("linked"),
        ") SELECT reply_from, reply_to FROM linked",
    ))
    .bind(id)
    .bind(message_sid)
    .fetch_optional(pool)
    .await
}
