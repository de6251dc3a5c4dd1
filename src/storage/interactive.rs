//! Reading interactive replies (`interactive_replies`, written with their message by
//! src/storage/events.rs): the taps of a page of messages, the taps that answered given
//! messages, and a broadcast's taps per button.

use std::collections::HashMap;

use sqlx::PgPool;

/// A stored tap or list selection.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InteractiveRow {
    pub message_sid: String,
    /// `button` or `list`.
    pub kind: String,
    pub payload: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub message_type: Option<String>,
    pub replied_to_sid: Option<String>,
    pub replied_to_sender: Option<String>,
    pub truncated: bool,
}

/// The taps and selections among the messages `sids`, by message SID.
pub async fn for_messages(
    pool: &PgPool,
    sids: &[String],
) -> sqlx::Result<HashMap<String, InteractiveRow>> {
    if sids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<InteractiveRow> = sqlx::query_as(
        "SELECT message_sid, kind, payload, title, description, message_type, replied_to_sid, \
           replied_to_sender, truncated \
         FROM interactive_replies WHERE message_sid = ANY($1)",
    )
    .bind(sids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.message_sid.clone(), r))
        .collect())
}

/// The taps answering each of the messages `sids` (those that carried the buttons), oldest
/// first, by the SID of the message tapped.
pub async fn answers_to(
    pool: &PgPool,
    sids: &[String],
) -> sqlx::Result<HashMap<String, Vec<InteractiveRow>>> {
    if sids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<InteractiveRow> = sqlx::query_as(
        "SELECT message_sid, kind, payload, title, description, message_type, replied_to_sid,            replied_to_sender, truncated          FROM interactive_replies WHERE replied_to_sid = ANY($1)          ORDER BY received_at, message_sid",
    )
    .bind(sids)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<InteractiveRow>> = HashMap::new();
    for r in rows {
        if let Some(to) = r.replied_to_sid.clone() {
            out.entry(to).or_default().push(r);
        }
    }
    Ok(out)
}

/// How many of a broadcast's recipients tapped one button (or chose one list item).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TapCount {
    pub kind: String,
    pub payload: Option<String>,
    /// The title most of them saw (titles may carry variables).
    pub title: Option<String>,
    /// Recipients, each counted once however often they tapped it.
    pub recipients: i64,
}

/// The taps answering broadcast `id`'s messages, per button: linked by the tap's
/// `OriginalRepliedMessageSid` to a recipient's message. Most tapped first.
pub async fn broadcast_taps(pool: &PgPool, id: i64) -> sqlx::Result<Vec<TapCount>> {
    sqlx::query_as(
        "SELECT t.kind, t.payload, mode() WITHIN GROUP (ORDER BY t.title) AS title, \
           count(DISTINCT r.number) AS recipients \
         FROM broadcast_recipients r \
         JOIN interactive_replies t ON t.replied_to_sid = r.message_sid \
         WHERE r.broadcast_id = $1 AND r.message_sid IS NOT NULL \
         GROUP BY t.kind, t.payload \
         ORDER BY recipients DESC, t.payload",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
