//! `message_costs`: each sent message's estimate, and the queue of messages whose actual price
//! is still to be fetched from Twilio.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

/// One group of outbound messages, as the database adds them up.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Group {
    pub day: NaiveDate,
    pub category: String,
    pub country: String,
    pub sender: String,
    pub broadcast_id: Option<i64>,
    pub messages: i64,
    /// Messages the table had no price for.
    pub unpriced: i64,
    pub estimated: Decimal,
    /// Messages whose actual price is known.
    pub actual_messages: i64,
    pub actual: Decimal,
    /// The estimate of the messages whose actual price is known.
    pub estimated_of_actual: Decimal,
    pub spend: Decimal,
}

/// Received messages of one day to one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundGroup {
    pub day: NaiveDate,
    pub sender: String,
    pub messages: i64,
}

/// Distinct recipients with a delivered or read message: overall and per broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    pub total: i64,
    pub by_broadcast: BTreeMap<i64, i64>,
}

/// What the database gave for a range.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub groups: Vec<Group>,
    pub inbound: Vec<InboundGroup>,
    pub reached: Reached,
    pub broadcast_names: BTreeMap<i64, String>,
    /// The estimates' currency (the table's).
    pub currency: Option<String>,
}

/// A message's cost as known when it was sent.
#[derive(Debug, Clone)]
pub struct NewCost {
    pub sid: String,
    pub sender: String,
    pub recipient: String,
    pub country: String,
    pub category: String,
    pub in_window: bool,
    pub broadcast_id: Option<i64>,
    /// None when the price table had no price for it.
    pub estimated: Option<(Decimal, String)>,
    pub created_at: DateTime<Utc>,
    /// When to first ask Twilio for its price.
    pub check_at: DateTime<Utc>,
    /// The template it was sent with (the template pages count its sends).
    pub content_sid: Option<String>,
}

/// Stores a message's estimate (once: a second record of the same sid changes nothing).
pub async fn insert(conn: &mut sqlx::PgConnection, c: &NewCost) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO message_costs (sid, created_at, sender, recipient, country, category, \
         in_window, broadcast_id, estimated, currency, next_check_at, content_sid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10, $11, $12) \
         ON CONFLICT (sid) DO NOTHING",
    )
    .bind(&c.sid)
    .bind(c.created_at)
    .bind(&c.sender)
    .bind(&c.recipient)
    .bind(&c.country)
    .bind(&c.category)
    .bind(c.in_window)
    .bind(c.broadcast_id)
    .bind(c.estimated.as_ref().map(|(d, _)| d.to_string()))
    .bind(c.estimated.as_ref().map(|(_, cur)| cur.as_str()))
    .bind(c.check_at)
    .bind(&c.content_sid)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message whose price is due to be fetched.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub sid: String,
    pub price_checks: i16,
    pub created_at: DateTime<Utc>,
    /// The message's current status (None if the message row is missing or has none).
    pub status: Option<String>,
}

/// Claims up to `limit` due messages for `lease_secs`: another instance skips them, and a
/// process that dies leaves them due again when the lease ends. A message found final has
/// its reach settled on the way (delivered or read: reached).
pub async fn claim_due(pool: &PgPool, limit: i64, lease_secs: f64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        r#"WITH due AS (
               SELECT sid FROM message_costs
               WHERE next_check_at IS NOT NULL AND next_check_at <= now()
               ORDER BY next_check_at LIMIT $1
               FOR UPDATE SKIP LOCKED)
           UPDATE message_costs c
           SET next_check_at = now() + make_interval(secs => $2),
               reached = CASE
                   WHEN m.delivered_at IS NOT NULL OR m.read_at IS NOT NULL THEN true
                   WHEN m.status IN ('failed', 'undelivered', 'canceled') THEN false
                   ELSE c.reached END
           FROM due LEFT JOIN messages m ON m.sid = due.sid
           WHERE c.sid = due.sid
           RETURNING c.sid, c.price_checks, c.created_at, m.status"#,
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(pool)
    .await
}

/// Sets when each message is looked at next (`None`: never again), counting a check at
/// Twilio where `checked` says so.
pub async fn reschedule(
    pool: &PgPool,
    next: &[(String, Option<DateTime<Utc>>, bool)],
) -> sqlx::Result<()> {
    if next.is_empty() {
        return Ok(());
    }
    let sids: Vec<&str> = next.iter().map(|(s, _, _)| s.as_str()).collect();
    let at: Vec<Option<DateTime<Utc>>> = next.iter().map(|(_, a, _)| *a).collect();
    let checked: Vec<bool> = next.iter().map(|(_, _, c)| *c).collect();
    sqlx::query(
        r#"UPDATE message_costs c
           SET next_check_at = n.at,
               price_checks = c.price_checks + CASE WHEN n.checked THEN 1 ELSE 0 END
           FROM UNNEST($1::text[], $2::timestamptz[], $3::bool[]) AS n(sid, at, checked)
           WHERE c.sid = n.sid AND c.actual IS NULL"#,
    )
    .bind(&sids)
    .bind(&at)
    .bind(&checked)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    day: NaiveDate,
    category: String,
    country: String,
    sender: String,
    broadcast_id: Option<i64>,
    messages: i64,
    unpriced: i64,
    estimated: String,
    actual_messages: i64,
    actual: String,
    estimated_of_actual: String,
    spend: String,
    currency: Option<String>,
}

fn decimal(s: &str) -> sqlx::Result<Decimal> {
    s.parse()
        .map_err(|e: rust_decimal::Error| sqlx::Error::Decode(e.to_string().into()))
}

/// Everything the cost report needs for messages created in `[from, to)`: three scans run at
/// once on the `created_at` indexes of `message_costs` and of inbound `messages` (a range
/// covering most of a table is read sequentially instead, as it should be), then the names
/// of the broadcasts found. All of them read one snapshot, so that a message stored while
/// the report is read counts in all of its figures or in none (users reached never exceed
/// the messages counted).
#[tracing::instrument(skip(pool))]
pub async fn report_inputs(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Inputs> {
    let [mut a, mut b, mut c] = crate::storage::snapshot::shared::<3>(pool).await?;
    let groups_q = sqlx::query_as::<_, GroupRow>(
        r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS day, category, country,
                  sender::text AS sender, broadcast_id,
                  count(*) AS messages,
                  count(*) FILTER (WHERE estimated IS NULL AND actual IS NULL) AS unpriced,
                  COALESCE(sum(estimated), 0)::text AS estimated,
                  count(actual) AS actual_messages,
                  COALESCE(sum(actual), 0)::text AS actual,
                  COALESCE(sum(estimated) FILTER (WHERE actual IS NOT NULL), 0)::text
                      AS estimated_of_actual,
                  COALESCE(sum(COALESCE(actual, estimated)), 0)::text AS spend,
                  min(currency) AS currency
           FROM message_costs
           WHERE created_at >= $1 AND created_at < $2
           GROUP BY 1, 2, 3, 4, 5"#,
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *a);
    let inbound_q = sqlx::query_as::<_, (NaiveDate, Option<String>, i64)>(
        r#"SELECT (created_at AT TIME ZONE 'UTC')::date, to_addr::text, count(*)
           FROM messages
           WHERE direction = 'inbound' AND created_at >= $1 AND created_at < $2
           GROUP BY 1, 2"#,
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *b);
    // Who was reached: recipients with a delivered or read message, overall and per
    // broadcast, in one pass. Settled rows say so themselves; only the unsettled ones (on
    // their own partial index) are looked up in `messages`.
    let reached_q = sqlx::query_as::<_, (Option<i64>, bool, i64)>(
        r#"SELECT broadcast_id, GROUPING(broadcast_id) = 1, count(DISTINCT recipient)
           FROM (
               SELECT recipient, broadcast_id FROM message_costs
               WHERE created_at >= $1 AND created_at < $2 AND reached
               UNION ALL
               SELECT c.recipient, c.broadcast_id
               FROM message_costs c JOIN messages m ON m.sid = c.sid
               WHERE c.created_at >= $1 AND c.created_at < $2 AND c.reached IS NULL
                 AND (m.delivered_at IS NOT NULL OR m.read_at IS NOT NULL)
           ) r
           GROUP BY GROUPING SETS ((), (broadcast_id))"#,
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *c);
    // Three independent scans on three connections at once: the page waits for the longest.
    let (rows, inbound, reached_rows) = tokio::try_join!(groups_q, inbound_q, reached_q)?;
    let mut currency = None;
    let mut groups = Vec::with_capacity(rows.len());
    for r in rows {
        currency = currency.or(r.currency);
        groups.push(Group {
            day: r.day,
            category: r.category,
            country: r.country,
            sender: r.sender,
            broadcast_id: r.broadcast_id,
            messages: r.messages,
            unpriced: r.unpriced,
            estimated: decimal(&r.estimated)?,
            actual_messages: r.actual_messages,
            actual: decimal(&r.actual)?,
            estimated_of_actual: decimal(&r.estimated_of_actual)?,
            spend: decimal(&r.spend)?,
        });
    }
    let mut reached = Reached::default();
    for (id, is_total, n) in reached_rows {
        match (is_total, id) {
            (true, _) => reached.total = n,
            (false, Some(id)) => {
                reached.by_broadcast.insert(id, n);
            }
            (false, None) => {}
        }
    }
    let ids: Vec<i64> = groups.iter().filter_map(|g| g.broadcast_id).collect();
    let names: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM broadcasts WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *a)
            .await?;
    Ok(Inputs {
        groups,
        inbound: inbound
            .into_iter()
            .map(|(day, sender, messages)| InboundGroup {
                day,
                sender: sender.unwrap_or_default(),
                messages,
            })
            .collect(),
        reached,
        broadcast_names: names.into_iter().collect::<BTreeMap<_, _>>(),
        currency,
    })
}

/// One message's cost as stored: what it was estimated at and, once known, charged.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct MessageCost {
    pub category: String,
    pub country: String,
    pub in_window: bool,
    pub broadcast_id: Option<i64>,
    /// Exact decimal text; None when the table had no price.
    pub estimated: Option<String>,
    pub currency: Option<String>,
    /// What Twilio charged, once fetched.
    pub actual: Option<String>,
    pub actual_currency: Option<String>,
}

/// The cost of the message `sid`, if wadash sent it.
pub async fn of_message(pool: &PgPool, sid: &str) -> sqlx::Result<Option<MessageCost>> {
    sqlx::query_as(
        "SELECT category, country, in_window, broadcast_id, \
         trim_scale(estimated)::text AS estimated, currency, \
         trim_scale(actual)::text AS actual, actual_currency \
         FROM message_costs WHERE sid = $1",
    )
    .bind(sid)
    .fetch_optional(pool)
    .await
}
