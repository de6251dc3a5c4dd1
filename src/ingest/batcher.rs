//! Group commit: many concurrent webhook requests share one transaction, and each request is
//! answered only after the transaction holding its callback has committed.
//!
//! A commit costs a WAL flush (fsync) whatever its size, so one transaction per request caps
//! throughput at the disk's flush rate. Here handlers hand their record to the queue of its
//! lane (chosen by the message's sid); each of the `concurrency` lanes takes everything that is
//! waiting (up to `max_batch`) as soon as its previous batch has committed, so batches grow
//! exactly when the database is the bottleneck and stay at one record when traffic is light
//! (no added latency).
//!
//! Why lanes rather than several commit slots sharing one queue: two batches in flight that
//! hold callbacks of the same message wait for each other's row lock (measured: about a tenth
//! of the backends' time under the benchmark), and each extra transaction adds a fixed cost of
//! a few hundred microseconds of database CPU, so fewer, larger batches are cheaper per
//! callback. Lanes keep concurrent batches disjoint and are one per two cores by default.
//! Durability is unchanged: `synchronous_commit` stays on and nothing is acknowledged early.
//!
//! A batch gets `batch_timeout` for its statement and commit. A database that hangs (frozen,
//! or a network that drops packets without a reset) would otherwise hold the lane, and every
//! webhook queued behind it, forever: past the timeout the batch's connection is closed
//! without waiting for it, its callbacks are answered as not stored (they may still commit,
//! and Twilio's retry is deduplicated), and the lane goes on with a fresh connection.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::IngestSettings;
use crate::domain::record::EventRecord;
use crate::metrics::Metrics;
use crate::storage;

/// Why a record was not stored; the webhook answers 503 so that the sender may retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

struct Job {
    record: EventRecord,
    done: Waiter,
}

/// Handle used by request handlers; cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    lanes: Arc<[mpsc::Sender<Job>]>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

const MAX_ATTEMPTS: u32 = 3;

impl Ingestor {
    /// Starts one writer per lane. They end, after committing everything queued, once every
    /// `Ingestor` clone has been dropped; await the handle for a clean shutdown.
    pub fn start(
        pool: PgPool,
        settings: IngestSettings,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let lanes = settings.concurrency.max(1);
        let per_lane = settings.queue.div_ceil(lanes).max(1);
        let mut senders = Vec::with_capacity(lanes);
        let mut writers = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let (tx, rx) = mpsc::channel(per_lane);
            senders.push(tx);
            writers.push(tokio::spawn(lane(
                pool.clone(),
                settings.max_batch,
                settings.batch_timeout,
                metrics.clone(),
                rx,
            )));
        }
        let handle = tokio::spawn(async move {
            for w in writers {
                let _ = w.await;
            }
        });
        (
            Self {
                lanes: senders.into(),
            },
            handle,
        )
    }

    /// Stores `record` durably; returns once it is committed.
    pub async fn submit(&self, record: EventRecord) -> Result<(), IngestError> {
        let (done, wait) = oneshot::channel();
        let lane = &self.lanes[lane_of(record.sid.as_str(), self.lanes.len())];
        lane.send(Job { record, done })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        wait.await.unwrap_or(Err(IngestError::ShuttingDown))
    }
}

/// The lane of a message: every callback of one message goes to the same lane, so batches
/// committing at the same time never touch the same `messages` row and never wait for each
/// other's row locks (nor deadlock).
fn lane_of(sid: &str, lanes: usize) -> usize {
    // FNV-1a: tiny, and evenly spread over Twilio's random hex sids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sid.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % lanes as u64) as usize
}

/// One lane: takes everything waiting (up to `max_batch`) as soon as its previous batch has
/// committed, so batches grow exactly while the database is busy and stay at one record when
/// traffic is light (no added latency). One transaction per lane is in flight: a batch is one
/// statement and its commit, in a single round trip.
async fn lane(
    pool: PgPool,
    max_batch: usize,
    timeout: Duration,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let db = Db {
        pool,
        timeout,
        metrics,
    };
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let (records, waiters) = batch.drain(..).map(|j| (j.record, j.done)).unzip();
        commit(&db, records, waiters).await;
    }
}

/// What a lane stores with.
struct Db {
    pool: PgPool,
    /// Longest time for one attempt's statement and commit.
    timeout: Duration,
    metrics: Arc<Metrics>,
}

type Waiter = oneshot::Sender<Result<(), IngestError>>;

/// Stores the batch in one statement, retrying transient failures; answers every waiter.
async fn commit(db: &Db, records: Vec<EventRecord>, waiters: Vec<Waiter>) {
    match store(db, &records).await {
        Ok(()) => waiters.into_iter().for_each(|w| {
            let _ = w.send(Ok(()));
        }),
        // A record the database refuses must not take its batch-mates down with it: store
        // them one by one so that only the offending request fails.
        Err(Failure::Permanent(_)) if records.len() > 1 => {
            for (record, w) in records.into_iter().zip(waiters) {
                let one = std::slice::from_ref(&record);
                let _ = w.send(store(db, one).await.map_err(Failure::into_error));
            }
        }
        Err(f) => {
            let err = f.into_error();
            waiters.into_iter().for_each(|w| {
                let _ = w.send(Err(err.clone()));
            });
        }
    }
}

enum Failure {
    Transient(String),
    Permanent(String),
}

impl Failure {
    fn into_error(self) -> IngestError {
        match self {
            Failure::Transient(e) | Failure::Permanent(e) => IngestError::Unavailable(e),
        }
    }
}

async fn store(db: &Db, records: &[EventRecord]) -> Result<(), Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(db, records).await {
            Ok(outcome) => {
                db.metrics.batch(records.len(), outcome.inserted);
                return Ok(());
            }
            // A pool timeout already waited the whole acquire timeout, and a batch timeout
            // the whole batch timeout: answer rather than wait again.
            // Another transaction storing one of the batch's events first (two instances given
            // the same duplicate at once): the retry skips that event.
            Err(e) if storage::events::lost_a_race(&e) && attempt < MAX_ATTEMPTS => {
                tracing::info!(
                    attempt,
                    size = records.len(),
                    "an event of the batch was stored by another transaction meanwhile, retrying"
                );
            }
            Err(e)
                if storage::is_transient(&e)
                    && !matches!(e, sqlx::Error::PoolTimedOut)
                    && !timed_out(&e)
                    && attempt < MAX_ATTEMPTS =>
            {
                tracing::warn!(error = %e, attempt, size = records.len(), "batch failed, retrying");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(e) => {
                db.metrics.batch_failed();
                tracing::error!(error = %e, size = records.len(), "batch could not be stored");
                return Err(
                    if storage::is_transient(&e) || storage::events::lost_a_race(&e) {
                        Failure::Transient(e.to_string())
                    } else {
                        Failure::Permanent(e.to_string())
                    },
                );
            }
        }
    }
}

fn timed_out(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// One attempt: a connection (within the pool's acquire timeout), then the statement and its
/// commit within the batch timeout. A connection that runs out of time is closed, not
/// returned to the pool: it may be mid-statement on a server that no longer answers.
async fn attempt_once(
    db: &Db,
    records: &[EventRecord],
) -> sqlx::Result<storage::events::BatchOutcome> {
    let mut conn = db.pool.acquire().await?;
    match tokio::time::timeout(
        db.timeout,
        storage::events::apply_batch(&mut *conn, records),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => {
            // Dropping the detached connection closes its socket at once, without the
            // goodbye a hung server would never read.
            drop(conn.detach());
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the database did not commit within {} ms",
                    db.timeout.as_millis()
                ),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    #[test]
    fn one_lane_takes_everything() {
        for sid in ["SM0", "MMabc", ""] {
            assert_eq!(lane_of(sid, 1), 0);
        }
    }

    #[test]
    fn a_message_always_has_the_same_lane_and_sids_spread_evenly() {
        let lanes = 4;
        let mut per_lane = [0usize; 4];
        for i in 0..4000u32 {
            // Twilio sids: a prefix and 32 hex digits.
            let sid = format!(
                "SM{:032x}",
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            );
            let lane = lane_of(&sid, lanes);
            assert_eq!(lane, lane_of(&sid, lanes));
            per_lane[lane] += 1;
        }
        for n in per_lane {
            assert!((800..=1200).contains(&n), "uneven lanes: {per_lane:?}");
        }
    }
}
