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
    pub messaging_service_sid: Option<String>,
}

macro_rules! message_columns {
    () => {
        "sid, direction, from_addr, to_addr, body, media, profile_name, wa_id, status, \
         error_code, error_message, price::text AS price, price_unit, created_at, updated_at, \
         sent_at, delivered_at, read_at, failed_at, messaging_service_sid"
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub status: String,
    pub error_code: Option<i32>,
    pub source: String,
    /// The parameters as received: `params_json`, or `params` for an event the previous
    /// binary stored (migration `20261207000034`).
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

/// An event's parameters: `params_json` as this binary stores them, else `params` (rows a
/// binary before migration 20261207000034 stored). One place, so that the contract migration
/// that drops `params` changes one line.
macro_rules! event_params {
    () => {
        "COALESCE(params_json, params::json)"
    };
}

/// Every event of a message in the order it was received.
pub async fn events(pool: &PgPool, sid: &str) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(concat!(
        "SELECT id, status, error_code, source, ",
        event_params!(),
        " AS params, received_at FROM message_events \
         WHERE message_sid = $1 ORDER BY received_at, id",
    ))
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

/// A page's edge: the next page holds the messages older than it, or, for a `newer` cursor,
/// the ones newer than it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub sid: String,
    /// Pages towards the newest message.
    pub newer: bool,
}

impl Cursor {
    fn older_than(r: &MessageRow) -> Self {
        Self {
            created_at: r.created_at,
            sid: r.sid.clone(),
            newer: false,
        }
    }

    fn newer_than(r: &MessageRow) -> Self {
        Self {
            newer: true,
            ..Self::older_than(r)
        }
    }

    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let raw = format!(
            "{}{}|{}",
            if self.newer { "n" } else { "" },
            self.created_at.timestamp_micros(),
            self.sid
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Option<Self> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (newer, raw) = match raw.strip_prefix('n') {
            Some(rest) => (true, rest),
            None => (false, raw.as_str()),
        };
        let (micros, sid) = raw.split_once('|')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            sid: sid.to_owned(),
            newer,
        })
    }
}

/// Every filter but the number, and the keyset position, as `AND …` clauses.
fn push_conditions(q: &mut QueryBuilder<Postgres>, filter: &MessageFilter, at: Option<&Cursor>) {
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
    if let Some(c) = at {
        q.push(if c.newer {
            " AND (created_at, sid) > ("
        } else {
            " AND (created_at, sid) < ("
        })
        .push_bind(c.created_at)
        .push(", ")
        .push_bind(c.sid.clone())
        .push(")");
    }
}

/// Up to `limit` messages past `at` in its direction, nearest first: newest first from the
/// top or going older, oldest first going newer. Both walk the `(created_at, sid)` index
/// (one way or the other), so deep pages cost the same as the first one.
async fn fetch(
    pool: &PgPool,
    filter: &MessageFilter,
    at: Option<&Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    let order = if at.is_some_and(|c| c.newer) {
        " ORDER BY created_at ASC, sid ASC LIMIT "
    } else {
        " ORDER BY created_at DESC, sid DESC LIMIT "
    };
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    match &filter.number {
        None => {
            q.push(message_columns!()).push(" FROM messages WHERE true");
            push_conditions(&mut q, filter, at);
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
                push_conditions(&mut q, filter, at);
                q.push(order).push_bind(limit).push(")");
            }
            q.push(") AS m");
        }
    }
    q.push(order).push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}

/// One page of the message log, newest first, with the cursors of its neighbours.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<MessageRow>,
    /// The page of older messages, if there are any.
    pub older: Option<Cursor>,
    /// The page of newer messages, if this is not the newest page.
    pub newer: Option<Cursor>,
}

/// The page at `at` (the newest page without one). Going newer past the top lands on the
/// newest page, full, rather than on a short page of the few newest messages.
pub async fn page(
    pool: &PgPool,
    filter: &MessageFilter,
    at: Option<&Cursor>,
    limit: i64,
) -> sqlx::Result<Page> {
    let mut at = at;
    let mut rows = fetch(pool, filter, at, limit + 1).await?;
    if at.is_some_and(|c| c.newer) {
        if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.reverse();
            return Ok(Page {
                older: rows.last().map(Cursor::older_than),
                newer: rows.first().map(Cursor::newer_than),
                rows,
            });
        }
        at = None;
        rows = fetch(pool, filter, None, limit + 1).await?;
    }
    let older = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(Cursor::older_than)
    } else {
        None
    };
    let newer = at.and_then(|_| rows.first().map(Cursor::newer_than));
    Ok(Page { rows, older, newer })
}

/// A page of messages, newest first, and the cursor of the next (older) page.
pub async fn list(
    pool: &PgPool,
    filter: &MessageFilter,
    at: Option<&Cursor>,
    limit: i64,
) -> sqlx::Result<(Vec<MessageRow>, Option<Cursor>)> {
    let p = page(pool, filter, at, limit).await?;
    Ok((p.rows, p.older))
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

/// The funnel's rule, in one place: a message reached a stage when it has that stage's
/// milestone or a later one, or its status is that stage or a later one (a `read` message was
/// necessarily delivered and sent, even if those callbacks were lost). `$m` is the table's
/// alias with its dot (`"m."`), or `""`.
macro_rules! reached_sent {
    ($m:literal) => {
        concat!(
            "(",
            $m,
            "sent_at IS NOT NULL OR ",
            $m,
            "delivered_at IS NOT NULL OR ",
            $m,
            "read_at IS NOT NULL OR ",
            $m,
            "status IN ('sent', 'delivered', 'read'))"
        )
    };
}
macro_rules! reached_delivered {
    ($m:literal) => {
        concat!(
            "(",
            $m,
            "delivered_at IS NOT NULL OR ",
            $m,
            "read_at IS NOT NULL OR ",
            $m,
            "status IN ('delivered', 'read'))"
        )
    };
}
macro_rules! reached_read {
    ($m:literal) => {
        concat!("(", $m, "read_at IS NOT NULL OR ", $m, "status = 'read')")
    };
}
pub(crate) use {reached_delivered, reached_read, reached_sent};

/// The delivery funnel of outbound messages created in `[since, until)`. A stage counts every
/// message that reached at least that stage, even if its own callback was lost (a `read`
/// message was necessarily delivered and sent).
pub async fn funnel(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    sender: Option<&str>,
) -> sqlx::Result<Funnel> {
    sqlx::query_as(concat!(
        "SELECT count(*) AS total, count(*) FILTER (WHERE ",
        reached_sent!(""),
        ") AS sent, count(*) FILTER (WHERE ",
        reached_delivered!(""),
        ") AS delivered, count(*) FILTER (WHERE ",
        reached_read!(""),
        ") AS read, \
           count(*) FILTER (WHERE status = 'failed') AS failed, \
           count(*) FILTER (WHERE status = 'undelivered') AS undelivered \
         FROM messages \
         WHERE direction = 'outbound' \
           AND ($1::timestamptz IS NULL OR created_at >= $1) \
           AND ($2::timestamptz IS NULL OR created_at < $2) \
           AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)",
    ))
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
            newer: false,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        let n = Cursor { newer: true, ..c };
        assert_eq!(Cursor::decode(&n.encode()), Some(n));
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
    sqlx::query_as(concat!(
        "SELECT sid, p->>'Latitude' AS latitude, p->>'Longitude' AS longitude, \
           COALESCE(p->>'Label', p->>'Address') AS label \
         FROM (SELECT message_sid AS sid, ",
        event_params!(),
        " AS p \
                 FROM message_events WHERE message_sid = ANY($1) AND source = 'inbound' \
                 OFFSET 0) e \
         WHERE p->>'Latitude' IS NOT NULL",
    ))
    .bind(sids)
    .fetch_all(pool)
    .await
}
