//! Keeps the overview's roll-ups current (`storage::rollups`: five-minute buckets summed from
//! ten-second slices).
//!
//! One instance at a time (a session advisory lock) reads the change log after its saved
//! position, collects the creation slices of the messages that changed and recomputes those
//! slices from `messages`, then their buckets from the slices. Callbacks mostly concern
//! messages of the last few seconds, so a pass reads a slice or two of messages, however long
//! the traffic has lasted (a change to a message older than a day recomputes its whole bucket).
//! The first run — or a run after the change log was pruned past its position — recomputes
//! everything, an hour at a time. Recomputing is idempotent, so reading a change twice is
//! harmless and a crash loses nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::storage::live_log::{self, Position};
use crate::storage::rollups;

const LOCK: i64 = 0x7761_6461_7368_726f;
/// The change-log position this binary has processed (in `instance_settings`). Not the
/// previous binary's [`PREVIOUS_POSITION_KEY`]: that one does not keep slices, so a position
/// it saved says nothing about them (migration 20261207000035).
pub const POSITION_KEY: &str = "rollup_slices_position";
/// The position of binaries before slices. When this binary finds only that one (the first
/// pass after an upgrade), the buckets before the slices are current up to it: the pass
/// fills the slices of the last day and goes on from that position, instead of recomputing
/// all history while holding the lock that both binaries' passes take.
const PREVIOUS_POSITION_KEY: &str = "rollup_position";
/// Change-log rows read per step.
const STEP: i64 = 5000;
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One changed message of a `messages` change-log row: only its creation time is read.
#[derive(serde::Deserialize)]
struct Changed<'a> {
    #[serde(borrow, default)]
    created_at: Option<std::borrow::Cow<'a, str>>,
}

/// Creation slices named in a `messages` change-log payload (`[{"created_at": …}, …]`).
///
/// Read into borrowed fields, skipping the others, rather than into a `serde_json::Value`:
/// a pass reads every change since the last one (about 9,000 messages a second under load),
/// and building a map per message kept a runtime thread busy for tens of milliseconds once
/// a second, long enough to delay the callbacks waiting on that core (bench/README.md,
/// "What the open loop's stalls are").
pub fn slices_in(payload: &str, into: &mut BTreeSet<DateTime<Utc>>) {
    let Ok(items) = serde_json::from_str::<Vec<Changed<'_>>>(payload) else {
        return;
    };
    for it in items {
        if let Some(t) = it
            .created_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        {
            into.insert(rollups::slice_of(t.with_timezone(&Utc)));
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Buckets rewritten.
    pub buckets: usize,
    /// Messages read to recompute them (a slice's or a bucket's messages each).
    pub messages_read: i64,
}

/// One pass, or `None` if another instance runs it.
pub async fn run_once(pool: &PgPool) -> anyhow::Result<Option<Pass>> {
    // A session lock rather than a transaction's: the work is many short transactions (see
    // `rollups::recompute`).
    crate::storage::with_session_lock(pool, LOCK, pass(pool)).await
}

async fn position(pool: &PgPool, key: &str) -> anyhow::Result<Option<Position>> {
    let saved: Option<String> =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(saved.as_deref().and_then(Position::parse))
}

async fn pass(pool: &PgPool) -> anyhow::Result<Pass> {
    // The database's clock places the slices' horizon, the same for every instance.
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
    let pruned = live_log::pruned_before(pool).await?;
    let horizon = live_log::current_horizon(pool).await?;
    let (done, next) = match position(pool, POSITION_KEY).await? {
        Some(pos) if pos.xid >= pruned => {
            let rows = live_log::after(pool, pos, horizon, STEP).await?;
            let mut slices = BTreeSet::new();
            for r in rows.iter().filter(|r| r.kind == "messages") {
                slices_in(&r.payload, &mut slices);
            }
            let next = rows.last().map_or(pos, |r| r.pos);
            (rollups::recompute_changed(pool, &slices, now).await?, next)
        }
        _ => match position(pool, PREVIOUS_POSITION_KEY).await? {
            Some(previous) if previous.xid >= pruned => {
                // Buckets are current up to `previous`; changes after it come through the log.
                let floor = rollups::slice_floor(now);
                let recent: Vec<_> = rollups::all_ranges(pool)
                    .await?
                    .into_iter()
                    .filter(|r| r.1 > floor)
                    .map(|(a, b)| (a.max(floor), b))
                    .collect();
                tracing::info!(
                    since = %floor,
                    "filling the overview roll-ups' slices after an upgrade"
                );
                (rollups::recompute(pool, &recent, now).await?, previous)
            }
            _ => {
                // Everything before `horizon` is in `messages` now; later changes come through
                // the log from this position on.
                let all = rollups::all_ranges(pool).await?;
                tracing::info!(
                    hours = all.len(),
                    "computing every bucket of the overview roll-ups, an hour at a time"
                );
                let next = Position {
                    xid: horizon,
                    id: 0,
                };
                (rollups::recompute(pool, &all, now).await?, next)
            }
        },
    };
    rollups::prune_slices(pool, now).await?;
    let ranges = rollups::buckets_of(&done.buckets);
    if !ranges.is_empty() {
        // Tell live pages that figures changed (the overview refreshes on it).
        let list: Vec<[String; 2]> = ranges
            .iter()
            .map(|(a, b)| [a.to_rfc3339(), b.to_rfc3339()])
            .collect();
        sqlx::query("INSERT INTO live_log (kind, payload) VALUES ('stats', $1)")
            .bind(serde_json::json!({ "ranges": list }))
            .execute(pool)
            .await?;
    }
    sqlx::query(
        r#"INSERT INTO instance_settings (key, value) VALUES ($1, $2)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"#,
    )
    .bind(POSITION_KEY)
    .bind(next.to_string())
    .execute(pool)
    .await?;
    Ok(Pass {
        buckets: ranges
            .iter()
            .map(|(a, b)| ((*b - *a).num_seconds() / rollups::BUCKET.num_seconds()) as usize)
            .sum(),
        messages_read: done.messages_read,
    })
}

/// How long to wait after a pass that took `took`: [`INTERVAL`], or four times the pass when
/// that is longer. A pass re-reads every message of the slices that changed, so when changes
/// are spread over many slices (read receipts for a large broadcast of the last hour, or a
/// backlog after an outage) one pass can take seconds; the job then stays busy at most a fifth
/// of the time instead of keeping a database backend busy without pause, and the overview
/// trails by a few seconds more.
/// Changes wait in the log meanwhile, so nothing is skipped.
pub fn pause_after(took: Duration) -> Duration {
    INTERVAL.max(took.saturating_mul(4))
}

pub fn start(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    super::paced("rollup", INTERVAL, pause_after, shutdown, move || {
        let pool = pool.clone();
        async move { run_once(&pool).await.map(|_| ()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_pass_spaces_out_the_next_ones() {
        assert_eq!(pause_after(Duration::from_millis(40)), INTERVAL);
        assert_eq!(pause_after(Duration::from_millis(250)), INTERVAL);
        assert_eq!(pause_after(Duration::from_secs(3)), Duration::from_secs(12));
    }

    #[test]
    fn slices_come_from_the_payload() {
        let mut h = BTreeSet::new();
        slices_in(
            r#"[{"sid":"SM1","created_at":"2026-11-24T10:17:42.123+00:00"},{"sid":"SM2","created_at":"2026-11-24T10:59:59Z"},{"sid":"SM3"}]"#,
            &mut h,
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h.first().unwrap().to_rfc3339(), "2026-11-24T10:17:40+00:00");
        assert_eq!(h.last().unwrap().to_rfc3339(), "2026-11-24T10:59:50+00:00");
        slices_in("not json", &mut h);
        slices_in(r#"{"ranges": []}"#, &mut h);
        slices_in(
            r#"[{"created_at": null}, {"created_at": "yesterday"}, {}]"#,
            &mut h,
        );
        assert_eq!(h.len(), 2);
        // An escaped string is read too (borrowed where it can be, copied where it must).
        slices_in(
            r#"[{"created_at":"2026-11-24T11:00:00\u002B00:00"}]"#,
            &mut h,
        );
        assert_eq!(h.len(), 3);
    }
}
