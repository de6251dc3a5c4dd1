//! Reading messages: one message with its events, filtered pages, funnel counts.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub sid: String,
    pub direction: String,
    pub from_addr: Option<String>,
    pub to_addr: Option<String>,
    pub body: Option<String>,
    pub media: serde_json::Value,
    pub profile_name: Option<String>,
    pub wa_id: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    /// Text so that the exact decimal Twilio reported is passed on untouched.
    pub price: Option<String>,
    pub price_unit: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

macro_rules! message_columns {
    () => {
        "sid, direction, from_addr, to_addr, body, media, profile_name, wa_id, status, \
         error_code, error_message, price::text AS price, price_unit, created_at, updated_at, \
         sent_at, delivered_at, read_at, failed_at"
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub status: String,
    pub error_code: Option<i32>,
    pub source: String,
    pub params: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

pub async fn get(pool: &PgPool, sid: &str) -> sqlx::Result<Option<MessageRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE sid = $1"
    ))
    .bind(sid)
    .fetch_optional(pool)
    .await
}

/// Every event of a message in the order it was received.
pub async fn events(pool: &PgPool, sid: &str) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, status, error_code, source, params, received_at FROM message_events \
         WHERE message_sid = $1 ORDER BY received_at, id",
    )
    .bind(sid)
    .fetch_all(pool)
    .await
}

/// Filters for a page of messages. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<String>,
    pub direction: Option<String>,
    /// Matches either party; compare against `whatsapp:+…` and bare `+…` forms.
    pub number: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the body.
    pub text: Option<String>,
    pub error_code: Option<i32>,
    /// The sending number (`whatsapp:+…`) or Messaging Service (`MG…`) of outbound messages.
    pub sender: Option<String>,
}

/// Position after which the next page starts (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub sid: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}|{}", self.created_at.timestamp_micros(), self.sid);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Option<Self> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (micros, sid) = raw.split_once('|')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            sid: sid.to_owned(),
        })
    }
}

/// Every filter but the number, and the keyset position, as `AND …` clauses.
fn push_conditions(q: &mut QueryBuilder<Postgres>, filter: &MessageFilter, after: Option<&Cursor>) {
    if let Some(s) = &filter.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(d) = &filter.direction {
        q.push(" AND direction = ").push_bind(d.clone());
    }
    if let Some(t) = filter.since {
        q.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = filter.until {
        q.push(" AND created_at < ").push_bind(t);
    }
    if let Some(text) = &filter.text {
        q.push(" AND body ILIKE ")
            .push_bind(format!("%{}%", super::escape_like(text)));
    }
    if let Some(code) = filter.error_code {
        q.push(" AND error_code = ").push_bind(code);
    }
    if let Some(sender) = &filter.sender {
        q.push(" AND direction = 'outbound' AND (from_addr = ")
            .push_bind(sender.clone())
            .push(" OR messaging_service_sid = ")
            .push_bind(sender.clone())
            .push(")");
    }
    if let Some(c) = after {
        q.push(" AND (created_at, sid) < (")
            .push_bind(c.created_at)
            .push(", ")
            .push_bind(c.sid.clone())
            .push(")");
    }
}

/// A page of messages, newest first, using keyset pagination on `(created_at, sid)` so that
/// deep pages cost the same as the first one.
pub async fn list(
    pool: &PgPool,
    filter: &MessageFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> sqlx::Result<(Vec<MessageRow>, Option<Cursor>)> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    match &filter.number {
        None => {
            q.push(message_columns!()).push(" FROM messages WHERE true");
            push_conditions(&mut q, filter, after);
        }
        Some(n) => {
            // "Either party" as four index-ordered scans (sender or recipient, with or without
            // the whatsapp: prefix), each stopping after one page, merged: an OR over two
            // columns would read every message of the number before sorting.
            let bare = n.trim_start_matches("whatsapp:").to_owned();
            let wa = format!("whatsapp:{bare}");
            q.push(message_columns!()).push(" FROM (");
            let branches = [
                ("from_addr", &bare),
                ("from_addr", &wa),
                ("to_addr", &bare),
                ("to_addr", &wa),
            ];
            for (i, (column, value)) in branches.into_iter().enumerate() {
                if i > 0 {
                    q.push(" UNION ALL ");
                }
                q.push("(SELECT * FROM messages WHERE ")
                    .push(column)
                    .push(" = ")
                    .push_bind(value.clone());
                push_conditions(&mut q, filter, after);
                q.push(" ORDER BY created_at DESC, sid DESC LIMIT ")
                    .push_bind(limit + 1)
                    .push(")");
            }
            q.push(") AS m");
        }
    }
    q.push(" ORDER BY created_at DESC, sid DESC LIMIT ")
        .push_bind(limit + 1);
    let mut rows: Vec<MessageRow> = q.build_query_as().fetch_all(pool).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| Cursor {
            created_at: r.created_at,
            sid: r.sid.clone(),
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// Outbound messages by the furthest stage they reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromRow, serde::Serialize)]
pub struct Funnel {
    pub total: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub undelivered: i64,
}

impl std::ops::AddAssign for Funnel {
    fn add_assign(&mut self, o: Funnel) {
        self.total += o.total;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.read += o.read;
        self.failed += o.failed;
        self.undelivered += o.undelivered;
    }
}

/// The delivery funnel of outbound messages created in `[since, until)`. A stage counts every
/// message that reached at least that stage, even if its own callback was lost (a `read`
/// message was necessarily delivered and sent).
pub async fn funnel(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    sender: Option<&str>,
) -> sqlx::Result<Funnel> {
    sqlx::query_as(
        "SELECT count(*) AS total, \
           count(*) FILTER (WHERE sent_at IS NOT NULL OR delivered_at IS NOT NULL OR read_at IS NOT NULL \
                            OR status IN ('sent', 'delivered', 'read')) AS sent, \
           count(*) FILTER (WHERE delivered_at IS NOT NULL OR read_at IS NOT NULL \
                            OR status IN ('delivered', 'read')) AS delivered, \
           count(*) FILTER (WHERE read_at IS NOT NULL OR status = 'read') AS read, \
           count(*) FILTER (WHERE status = 'failed') AS failed, \
           count(*) FILTER (WHERE status = 'undelivered') AS undelivered \
         FROM messages \
         WHERE direction = 'outbound' \
           AND ($1::timestamptz IS NULL OR created_at >= $1) \
           AND ($2::timestamptz IS NULL OR created_at < $2) \
           AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)",
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_one(pool)
    .await
}

/// Stores the prices Twilio charged, `(sid, price, unit)`, price as Twilio writes it (a
/// decimal string, negative for a charge), on the message and as its actual cost (which
/// takes it off the price fetcher's queue). A price already stored is kept.
pub async fn set_prices(
    pool: &PgPool,
    prices: &[(String, String, Option<String>)],
) -> sqlx::Result<u64> {
    let valid: Vec<&(String, String, Option<String>)> = prices
        .iter()
        .filter(|(_, p, _)| p.parse::<rust_decimal::Decimal>().is_ok())
        .collect();
    if valid.is_empty() {
        return Ok(0);
    }
    let sids: Vec<&str> = valid.iter().map(|(s, _, _)| s.as_str()).collect();
    let amounts: Vec<&str> = valid.iter().map(|(_, p, _)| p.as_str()).collect();
    let units: Vec<Option<&str>> = valid.iter().map(|(_, _, u)| u.as_deref()).collect();
    Ok(sqlx::query(
        r#"WITH p AS (
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) AS p(sid, price, unit)),
           costs AS (
               UPDATE message_costs c
               SET actual = abs(p.price::numeric), actual_currency = p.unit, next_check_at = NULL
               FROM p WHERE c.sid = p.sid AND c.actual IS NULL)
           UPDATE messages m SET price = p.price::numeric, price_unit = p.unit
           FROM p WHERE m.sid = p.sid AND m.price IS NULL"#,
    )
    .bind(&sids)
    .bind(&amounts)
    .bind(&units)
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            sid: "SM1|x".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("!!"), None);
        assert_eq!(Cursor::decode("bm9waXBl"), None);
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(crate::storage::escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}

/// Where an inbound location message was shared (its coordinates are only in the raw
/// parameters).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LocationRow {
    pub sid: String,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub label: Option<String>,
}

pub async fn inbound_locations(pool: &PgPool, sids: &[String]) -> sqlx::Result<Vec<LocationRow>> {
    sqlx::query_as(
        "SELECT message_sid AS sid, params->>'Latitude' AS latitude, \
           params->>'Longitude' AS longitude, \
           COALESCE(params->>'Label', params->>'Address') AS label \
         FROM message_events \
         WHERE message_sid = ANY($1) AND source = 'inbound' AND params ? 'Latitude'",
    )
    .bind(sids)
    .fetch_all(pool)
    .await
}
