//! The automatic replies wadash gave to inbound messages, and their link to the messages
//! Twilio created for them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

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
}

const COLUMNS: &str = "id, inbound_sid, position, reason, rule_id, from_addr, to_addr, body, \
    media, message_sid, created_at";

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
           body, media) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(r.inbound_sid)
    .bind(r.position)
    .bind(r.reason)
    .bind(r.rule_id)
    .bind(r.from_addr)
    .bind(r.to_addr)
    .bind(r.body)
    .bind(r.media)
    .fetch_one(conn)
    .await
}

/// Links reply `id` to the message Twilio created for it, once, and gives that message the
/// reply's body and media (status callbacks carry neither). Returns the reply's (from, to)
/// when this call linked it; later callbacks for the same reply find it linked and change
/// nothing.
pub async fn link(
    pool: &PgPool,
    id: i64,
    message_sid: &str,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "WITH r AS ( \
           UPDATE auto_replies SET message_sid = $2 \
           WHERE id = $1 AND message_sid IS NULL \
           RETURNING body, media, from_addr, to_addr) \
         UPDATE messages m SET \
           body = COALESCE(m.body, r.body), \
           from_addr = COALESCE(m.from_addr, r.from_addr), \
           to_addr = COALESCE(m.to_addr, r.to_addr), \
           num_media = GREATEST(m.num_media, cardinality(r.media)), \
           media = CASE WHEN m.media = '[]'::jsonb \
             THEN (SELECT COALESCE(jsonb_agg(jsonb_build_object('url', u, 'content_type', NULL)), \
                   '[]'::jsonb) FROM unnest(r.media) AS u) \
             ELSE m.media END \
         FROM r WHERE m.sid = $2 \
         RETURNING r.from_addr::text, r.to_addr::text",
    )
    .bind(id)
    .bind(message_sid)
    .fetch_optional(pool)
    .await
}
