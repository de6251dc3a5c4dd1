//! Checking the database after the run: every acknowledged callback stored exactly once, and
//! each message's current status the one the stored events imply.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::workload::{self, Milestone, Workload};

/// What the database holds compared with what the server acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Verification {
    /// Distinct callbacks (MessageSid, MessageStatus) sent at least once.
    pub distinct_callbacks: usize,
    /// Distinct callbacks with at least one 2xx answer.
    pub acknowledged: usize,
    /// Acknowledged and stored exactly once.
    pub acknowledged_stored_once: usize,
    /// Acknowledged but not in the database: data loss.
    pub acknowledged_missing: usize,
    /// (sid, status) pairs with more than one row: deduplication failed.
    pub duplicated_pairs: usize,
    /// Rows in excess of one per pair.
    pub duplicate_rows: usize,
    /// Never acknowledged (the sender was told to retry) and not stored. Not an error, but
    /// reported so that it is never silent.
    pub unacknowledged_missing: usize,
    /// Never acknowledged, yet stored (e.g. committed but the answer was lost). Harmless.
    pub unacknowledged_stored: usize,
    /// Rows for our messages with a status this run never sent.
    pub unexpected_rows: usize,
    /// Rows in `message_events` for message SIDs this run does not know (another run).
    pub foreign_rows: usize,
    /// Messages whose `messages` row disagrees with their stored events (current status,
    /// error code or milestone timestamps), or that have events but no row.
    pub state_mismatches: usize,
    pub messages_checked: usize,
    pub ok: bool,
}

impl Verification {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok,
            "distinct_callbacks": self.distinct_callbacks,
            "acknowledged": self.acknowledged,
            "acknowledged_stored_once": self.acknowledged_stored_once,
            "acknowledged_missing": self.acknowledged_missing,
            "duplicated_pairs": self.duplicated_pairs,
            "duplicate_rows": self.duplicate_rows,
            "unacknowledged_missing": self.unacknowledged_missing,
            "unacknowledged_stored": self.unacknowledged_stored,
            "unexpected_rows": self.unexpected_rows,
            "foreign_rows": self.foreign_rows,
            "state_mismatches": self.state_mismatches,
            "messages_checked": self.messages_checked,
        })
    }
}

/// `statuses` is the answer to each request of `work.requests`.
pub async fn verify(
    database_url: &str,
    work: &Workload,
    statuses: &[u16],
) -> anyhow::Result<Verification> {
    let mut conn = PgConnection::connect(database_url)
        .await
        .context("connecting to the database to verify")?;

    let n = work.callbacks.len();
    let mut sent = vec![false; n];
    let mut acked = vec![false; n];
    for (req, &status) in work.requests.iter().zip(statuses) {
        sent[req.callback] = true;
        if (200..300).contains(&status) {
            acked[req.callback] = true;
        }
    }

    let by_sid: HashMap<&str, usize> = work
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.sid.as_str(), i))
        .collect();
    let callback_of = |msg: usize, status: &str| -> Option<usize> {
        let m = &work.messages[msg];
        (m.first_callback..m.first_callback + m.callbacks)
            .find(|&c| work.callbacks[c].status == status)
    };

    let mut v = Verification::default();
    let mut rows = vec![0i64; n];
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT message_sid, status, count(*)::int8 FROM message_events \
         WHERE source = 'callback' GROUP BY message_sid, status",
    )
    .fetch_all(&mut conn)
    .await
    .context("counting message_events")?;
    for (sid, status, count) in counts {
        let Some(&msg) = by_sid.get(sid.as_str()) else {
            v.foreign_rows += count as usize;
            continue;
        };
        if count > 1 {
            v.duplicated_pairs += 1;
            v.duplicate_rows += (count - 1) as usize;
        }
        match callback_of(msg, &status) {
            Some(c) if sent[c] => rows[c] = count,
            _ => v.unexpected_rows += count as usize,
        }
    }

    for c in 0..n {
        if !sent[c] {
            continue;
        }
        v.distinct_callbacks += 1;
        match (acked[c], rows[c]) {
            (true, 0) => v.acknowledged_missing += 1,
            (true, 1) => v.acknowledged_stored_once += 1,
            (false, 0) => v.unacknowledged_missing += 1,
            (false, _) => v.unacknowledged_stored += 1,
            (true, _) => {} // counted in duplicated_pairs
        }
        if acked[c] {
            v.acknowledged += 1;
        }
    }

    // The current state of each message must follow from its stored events, whatever order
    // they arrived in: highest-ranked status, its error code, one milestone per stage seen.
    type Row = (String, Option<String>, Option<i32>, bool, bool, bool, bool);
    let states: Vec<Row> = sqlx::query_as(
        "SELECT sid, status, error_code, sent_at IS NOT NULL, delivered_at IS NOT NULL, \
         read_at IS NOT NULL, failed_at IS NOT NULL FROM messages",
    )
    .fetch_all(&mut conn)
    .await
    .context("reading messages")?;
    let mut state_of: HashMap<&str, &Row> = HashMap::with_capacity(states.len());
    for row in &states {
        state_of.insert(row.0.as_str(), row);
    }
    for (msg, m) in work.messages.iter().enumerate() {
        let stored: Vec<usize> = (m.first_callback..m.first_callback + m.callbacks)
            .filter(|&c| rows[c] > 0)
            .collect();
        if stored.is_empty() {
            continue;
        }
        v.messages_checked += 1;
        let Some(row) = state_of.get(m.sid.as_str()) else {
            v.state_mismatches += 1;
            continue;
        };
        let best = stored
            .iter()
            .map(|&c| &work.callbacks[c])
            .max_by_key(|c| workload::rank(c.status))
            .expect("non-empty");
        let has = |ms: Milestone| {
            stored
                .iter()
                .any(|&c| workload::milestone(work.callbacks[c].status) == Some(ms))
        };
        let expected = (
            Some(best.status),
            best.error_code.map(|c| c as i32),
            has(Milestone::Sent),
            has(Milestone::Delivered),
            has(Milestone::Read),
            has(Milestone::Failed),
        );
        let actual = (row.1.as_deref(), row.2, row.3, row.4, row.5, row.6);
        if expected != actual {
            if v.state_mismatches < 5 {
                eprintln!(
                    "state mismatch for {} (message {msg}): expected {expected:?}, stored {actual:?}",
                    m.sid
                );
            }
            v.state_mismatches += 1;
        }
    }
    conn.close().await.ok();

    v.ok = v.acknowledged > 0
        && v.acknowledged_missing == 0
        && v.duplicated_pairs == 0
        && v.unexpected_rows == 0
        && v.state_mismatches == 0
        && v.acknowledged_stored_once == v.acknowledged;
    Ok(v)
}
