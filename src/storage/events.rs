//! Writing events: the whole batch of callbacks in one statement, applying the state machine
//! to `messages` and appending to `message_events`.
//!
//! The batch is folded per message in memory with [`StatusState::apply`], then merged into
//! each stored row by the upsert below, which implements the same merge in SQL by comparing
//! `status_rank`. Because the merge is a maximum (commutative, associative, idempotent),
//! folding first and merging after gives the same row as applying callbacks one by one.
//!
//! The messages a batch actually changed are appended, as one row, to `live_log` in the same
//! statement, so live updates are exactly as durable as the change and cost one row a batch.
//!
//! A button tapped or a list item chosen (`MessageFacts::interactive`) is inserted into
//! `interactive_replies` by the same statement, once per message. A batch without taps (every
//! batch of status callbacks) uses the same statement without that insert: even over nothing,
//! it cost the server about 200,000 instructions a batch (bench/README.md, "Per-callback
//! cost, deterministic").
//!
//! The batch arrives as one array per column, unnested in the select list (`SELECT
//! unnest($1), unnest($2), …`), where PostgreSQL streams the elements row by row, rather than
//! in `FROM UNNEST(…)`, where a function scan first copies every element of every array into
//! a tuplestore. Both pair the arrays' elements by position and give the same rows; the
//! select-list form cost about 16,000 fewer server instructions per callback at batches of 32
//! (bench/README.md, "A quarter fewer server instructions per callback").
//!
//! Rows are written in `sid` order so that concurrent batches (from this or another instance)
//! lock messages in the same order; callers still retry deadlocks as transient.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::StatusState;
use crate::domain::interactive::InteractiveReply;
use crate::domain::record::{EventRecord, MessageFacts};

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Events newly stored; the rest were duplicates of stored events.
    pub inserted: u64,
}

struct Aggregate<'a> {
    direction: &'a str,
    facts: MessageFacts,
    state: StatusState,
    first_seen: DateTime<Utc>,
}

/// The messages upsert and its live-log row: the first part of both statements below.
macro_rules! upsert_and_live {
    () => {
        concat!(
            r#"
WITH upsert AS (
    INSERT INTO messages AS m (
        sid, direction, account_sid, messaging_service_sid, from_addr, to_addr, body,
        num_media, media, profile_name, wa_id, status, status_rank, error_code, error_message,
        sent_at, delivered_at, read_at, failed_at, created_at, updated_at)
    SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),
        unnest($5::text[]), unnest($6::text[]), unnest($7::text[]), unnest($8::int4[]),
        unnest($9::jsonb[]), unnest($10::text[]), unnest($11::text[]), unnest($12::text[]),
        unnest($13::int2[]), unnest($14::int4[]), unnest($15::text[]),
        unnest($16::timestamptz[]), unnest($17::timestamptz[]), unnest($18::timestamptz[]),
        unnest($19::timestamptz[]), unnest($20::timestamptz[]), now()
    ON CONFLICT (sid) DO UPDATE SET
        account_sid = COALESCE(m.account_sid, EXCLUDED.account_sid),
        messaging_service_sid = COALESCE(m.messaging_service_sid, EXCLUDED.messaging_service_sid),
        from_addr = COALESCE(m.from_addr, EXCLUDED.from_addr),
        to_addr = COALESCE(m.to_addr, EXCLUDED.to_addr),
        body = COALESCE(m.body, EXCLUDED.body),
        num_media = GREATEST(m.num_media, EXCLUDED.num_media),
        media = CASE WHEN m.media = '[]'::jsonb THEN EXCLUDED.media ELSE m.media END,
        profile_name = COALESCE(m.profile_name, EXCLUDED.profile_name),
        wa_id = COALESCE(m.wa_id, EXCLUDED.wa_id),
        status = CASE WHEN EXCLUDED.status_rank > m.status_rank THEN EXCLUDED.status ELSE m.status END,
        status_rank = GREATEST(m.status_rank, EXCLUDED.status_rank),
        error_code = CASE
            WHEN EXCLUDED.status_rank > m.status_rank THEN EXCLUDED.error_code
            WHEN EXCLUDED.status_rank = m.status_rank THEN COALESCE(m.error_code, EXCLUDED.error_code)
            ELSE m.error_code END,
        error_message = CASE
            WHEN EXCLUDED.status_rank > m.status_rank THEN EXCLUDED.error_message
            WHEN EXCLUDED.status_rank = m.status_rank THEN COALESCE(m.error_message, EXCLUDED.error_message)
            ELSE m.error_message END,
        sent_at = LEAST(m.sent_at, EXCLUDED.sent_at),
        delivered_at = LEAST(m.delivered_at, EXCLUDED.delivered_at),
        read_at = LEAST(m.read_at, EXCLUDED.read_at),
        failed_at = LEAST(m.failed_at, EXCLUDED.failed_at),
        updated_at = now()
    -- Write a new row version only when the callback changes something: duplicates and
    -- stale reports cost no heap update and no WAL, and updated_at means "last changed".
    WHERE EXCLUDED.status_rank > m.status_rank
       OR (EXCLUDED.status_rank = m.status_rank
           AND ((m.error_code IS NULL AND EXCLUDED.error_code IS NOT NULL)
             OR (m.error_message IS NULL AND EXCLUDED.error_message IS NOT NULL)))
       OR LEAST(m.sent_at, EXCLUDED.sent_at) IS DISTINCT FROM m.sent_at
       OR LEAST(m.delivered_at, EXCLUDED.delivered_at) IS DISTINCT FROM m.delivered_at
       OR LEAST(m.read_at, EXCLUDED.read_at) IS DISTINCT FROM m.read_at
       OR LEAST(m.failed_at, EXCLUDED.failed_at) IS DISTINCT FROM m.failed_at
       OR (m.account_sid IS NULL AND EXCLUDED.account_sid IS NOT NULL)
       OR (m.messaging_service_sid IS NULL AND EXCLUDED.messaging_service_sid IS NOT NULL)
       OR (m.from_addr IS NULL AND EXCLUDED.from_addr IS NOT NULL)
       OR (m.to_addr IS NULL AND EXCLUDED.to_addr IS NOT NULL)
       OR (m.body IS NULL AND EXCLUDED.body IS NOT NULL)
       OR (m.profile_name IS NULL AND EXCLUDED.profile_name IS NOT NULL)
       OR (m.wa_id IS NULL AND EXCLUDED.wa_id IS NOT NULL)
       OR EXCLUDED.num_media > m.num_media
       OR (m.media = '[]'::jsonb AND EXCLUDED.media <> '[]'::jsonb)
    RETURNING m.sid, m.direction, m.status, m.error_code, m.from_addr, m.to_addr, m.created_at
),
-- One change-log row per batch for live updates (src/live) and the roll-ups.
live AS ("#,
            live_log_messages!("upsert"),
            ")"
        )
    };
}

/// Taps and list selections (src/domain/interactive.rs); the first report of one wins.
/// Only in the statement for batches that carry one: executor set-up for an insert, even over
/// nothing, costs about as much as storing several callbacks.
macro_rules! tapped {
    () => {
        r#",
tapped AS (
    INSERT INTO interactive_replies (message_sid, kind, payload, title, description,
        message_type, replied_to_sid, replied_to_sender, truncated, received_at)
    SELECT unnest($28::text[]), unnest($29::text[]), unnest($30::text[]), unnest($31::text[]),
        unnest($32::text[]), unnest($33::text[]), unnest($34::text[]), unnest($35::text[]),
        unnest($36::bool[]), unnest($37::timestamptz[])
    ON CONFLICT (message_sid) DO NOTHING
)"#
    };
}

/// The events. Their parameters go into `params_json` as received: `json` only validates the
/// text, where `jsonb` parsed it into a tree at about four times the cost, the largest single
/// item of a callback's server work (migration `20261207000034`); `params` keeps its default.
/// An event already stored (the same callback again) is skipped by the lookup in
/// `NOT EXISTS`; `OFFSET 0` keeps that lookup a per-event probe of the primary key whatever
/// the table's statistics say (never a hash anti-join over the whole table in a cached generic
/// plan). No `ON CONFLICT`: a speculative insertion costs a lock and a WAL record per event.
/// The same callback committed by another transaction between the statement's snapshot and
/// its insert (two instances storing one duplicate at once) fails the statement with a unique
/// violation on `message_events_pkey`, which [`lost_a_race`] recognises: the batch is retried
/// and then skips it.
macro_rules! events_insert {
    () => {
        r#"
INSERT INTO message_events (message_sid, status, error_code, source, params_json, dedup_key, received_at)
SELECT e.sid, e.status, e.code, e.source, e.params::json, e.key, e.at
FROM (SELECT unnest($21::text[]) AS sid, unnest($22::text[]) AS status,
             unnest($23::int4[]) AS code, unnest($24::text[]) AS source,
             unnest($25::text[]) AS params, unnest($26::bytea[]) AS key,
             unnest($27::timestamptz[]) AS at) AS e
WHERE NOT EXISTS (
    SELECT FROM message_events d WHERE d.message_sid = e.sid AND d.dedup_key = e.key OFFSET 0)
"#
    };
}

/// A batch with a tap or a list selection (only `/wa` has them).
const APPLY_BATCH: &str = concat!(upsert_and_live!(), tapped!(), events_insert!());

/// Every other batch, status callbacks included: parameters `$1`–`$27` only.
const APPLY_BATCH_WITHOUT_TAPS: &str = concat!(upsert_and_live!(), events_insert!());

/// The constraint an event lost a race on (see [`events_insert`]).
const EVENTS_KEY: &str = "message_events_pkey";

/// Whether `err` is another transaction having stored one of the batch's events first: the
/// batch can be retried as it is, and will skip that event.
pub fn lost_a_race(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some(EVENTS_KEY))
}

/// The `interactive_replies` rows of a batch, as the statement's arrays.
#[derive(Default)]
struct Taps<'a> {
    sid: Vec<&'a str>,
    kind: Vec<&'static str>,
    payload: Vec<Option<String>>,
    title: Vec<Option<String>>,
    description: Vec<Option<String>>,
    message_type: Vec<Option<String>>,
    replied_to_sid: Vec<Option<String>>,
    replied_to_sender: Vec<Option<String>>,
    truncated: Vec<bool>,
    at: Vec<DateTime<Utc>>,
}

impl<'a> Taps<'a> {
    fn push(&mut self, sid: &'a str, tap: InteractiveReply, at: DateTime<Utc>) {
        self.sid.push(sid);
        self.kind.push(tap.kind.as_str());
        self.payload.push(tap.payload);
        self.title.push(tap.title);
        self.description.push(tap.description);
        self.message_type.push(tap.message_type);
        self.replied_to_sid.push(tap.replied_to_sid);
        self.replied_to_sender.push(tap.replied_to_sender);
        self.truncated.push(tap.truncated);
        self.at.push(at);
    }
}

/// A column of the batch, or `None` (a NULL array) when every value in it is NULL: the
/// server then receives no array at all, and `unnest` of a NULL array beside the others
/// yields NULL on every row. Status callbacks carry no body, profile name or WhatsApp id, and
/// most carry no error, so most batches send several columns this way.
fn unless_all_null<T>(column: Vec<Option<T>>) -> Option<Vec<Option<T>>> {
    column.iter().any(Option::is_some).then_some(column)
}

/// Stores a batch of events in one statement (hence one implicit transaction).
pub async fn apply_batch<'e, E: PgExecutor<'e>>(
    executor: E,
    records: &[EventRecord],
) -> sqlx::Result<BatchOutcome> {
    if records.is_empty() {
        return Ok(BatchOutcome::default());
    }

    let mut per_sid: BTreeMap<&str, Aggregate<'_>> = BTreeMap::new();
    for r in records {
        let agg = per_sid.entry(r.sid.as_str()).or_insert_with(|| Aggregate {
            direction: r.direction.as_str(),
            facts: MessageFacts::default(),
            state: StatusState::default(),
            first_seen: r.received_at,
        });
        agg.facts.fill_from(&r.facts);
        agg.state.apply(&r.report);
        agg.first_seen = agg.first_seen.min(r.received_at);
    }

    let n = per_sid.len();
    let mut sid = Vec::with_capacity(n);
    let mut direction = Vec::with_capacity(n);
    let mut account_sid = Vec::with_capacity(n);
    let mut service_sid = Vec::with_capacity(n);
    let mut from = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    let mut num_media = Vec::with_capacity(n);
    let mut media = Vec::with_capacity(n);
    let mut profile = Vec::with_capacity(n);
    let mut wa_id = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut rank = Vec::with_capacity(n);
    let mut err_code = Vec::with_capacity(n);
    let mut err_msg = Vec::with_capacity(n);
    let mut sent_at = Vec::with_capacity(n);
    let mut delivered_at = Vec::with_capacity(n);
    let mut read_at = Vec::with_capacity(n);
    let mut failed_at = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut taps = Taps::default();
    for (s, agg) in per_sid {
        sid.push(s);
        direction.push(agg.direction);
        rank.push(agg.state.rank());
        status.push(agg.state.status.as_ref().map(|s| s.as_str().to_owned()));
        err_code.push(agg.state.error_code);
        err_msg.push(agg.state.error_message);
        sent_at.push(agg.state.sent_at);
        delivered_at.push(agg.state.delivered_at);
        read_at.push(agg.state.read_at);
        failed_at.push(agg.state.failed_at);
        created_at.push(agg.first_seen);
        let f = agg.facts;
        if let Some(tap) = f.interactive {
            taps.push(s, tap, agg.first_seen);
        }
        account_sid.push(f.account_sid);
        service_sid.push(f.messaging_service_sid);
        from.push(f.from);
        to.push(f.to);
        body.push(f.body);
        num_media.push(f.num_media);
        media.push(serde_json::to_value(&f.media).expect("media serialise"));
        profile.push(f.profile_name);
        wa_id.push(f.wa_id);
    }

    let mut events: Vec<&EventRecord> = records.iter().collect();
    events.sort_by(|a, b| (a.sid.as_str(), &a.dedup_key).cmp(&(b.sid.as_str(), &b.dedup_key)));
    events.dedup_by(|a, b| a.sid == b.sid && a.dedup_key == b.dedup_key);
    let m = events.len();
    let mut ev_sid = Vec::with_capacity(m);
    let mut ev_status = Vec::with_capacity(m);
    let mut ev_code = Vec::with_capacity(m);
    let mut ev_source = Vec::with_capacity(m);
    let mut ev_params = Vec::with_capacity(m);
    let mut ev_key = Vec::with_capacity(m);
    let mut ev_at = Vec::with_capacity(m);
    for e in events {
        ev_sid.push(e.sid.as_str());
        ev_status.push(e.report.status.as_str());
        ev_code.push(e.report.error_code);
        ev_source.push(e.source.as_str());
        ev_params.push(e.params.as_str());
        ev_key.push(&e.dedup_key[..]);
        ev_at.push(e.received_at);
    }

    let with_taps = !taps.sid.is_empty();
    let query = sqlx::query(if with_taps {
        APPLY_BATCH
    } else {
        APPLY_BATCH_WITHOUT_TAPS
    })
    .bind(sid)
    .bind(direction)
    .bind(unless_all_null(account_sid))
    .bind(unless_all_null(service_sid))
    .bind(unless_all_null(from))
    .bind(unless_all_null(to))
    .bind(unless_all_null(body))
    .bind(num_media)
    .bind(media)
    .bind(unless_all_null(profile))
    .bind(unless_all_null(wa_id))
    .bind(unless_all_null(status))
    .bind(rank)
    .bind(unless_all_null(err_code))
    .bind(unless_all_null(err_msg))
    .bind(unless_all_null(sent_at))
    .bind(unless_all_null(delivered_at))
    .bind(unless_all_null(read_at))
    .bind(unless_all_null(failed_at))
    .bind(created_at)
    .bind(ev_sid)
    .bind(ev_status)
    .bind(unless_all_null(ev_code))
    .bind(ev_source)
    .bind(ev_params)
    .bind(ev_key)
    .bind(ev_at);
    let query = if with_taps {
        query
            .bind(taps.sid)
            .bind(taps.kind)
            .bind(taps.payload)
            .bind(taps.title)
            .bind(taps.description)
            .bind(taps.message_type)
            .bind(taps.replied_to_sid)
            .bind(taps.replied_to_sender)
            .bind(taps.truncated)
            .bind(taps.at)
    } else {
        query
    };
    let done = query.execute(executor).await?;
    Ok(BatchOutcome {
        inserted: done.rows_affected(),
    })
}
