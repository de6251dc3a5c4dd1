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
//! Under moderate concurrent traffic that alone leaves batches small: each commit is quick, so
//! few callbacks arrive meanwhile, and every transaction's fixed cost (a few hundred
//! microseconds of database CPU, a WAL flush, a wake-up of each process) is shared by few
//! callbacks. So a lane whose previous batch held more than one callback, and which finds fewer
//! than [`SMALL_BATCH`] waiting, lingers (`linger`) before taking them, like PostgreSQL's
//! `commit_delay`, until that many are there; it then takes whatever else arrived too. A lane
//! whose previous batch was a single callback does not, so light traffic is answered at once;
//! nor does one that finds a large batch waiting, so a saturated lane never idles.
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
                Gather {
                    max_batch: settings.max_batch,
                    linger: settings.linger,
                },
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
    gather: Gather,
    timeout: Duration,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(gather.max_batch);
    let db = Db {
        pool,
        timeout,
        metrics,
    };
    let mut previous = 0;
    while gather.next(&mut rx, &mut batch, previous).await > 0 {
        previous = batch.len();
        let (records, waiters) = batch.drain(..).map(|j| (j.record, j.done)).unzip();
        commit(&db, records, waiters).await;
    }
}

/// Below this many callbacks a batch's fixed cost (about 690,000 PostgreSQL instructions,
/// against about 150,000 per callback: bench/README.md) is more than a fifth of its total, so a
/// lane under concurrent traffic lingers for more.
const SMALL_BATCH: usize = 16;

/// How a lane collects its next batch.
#[derive(Debug, Clone, Copy)]
struct Gather {
    max_batch: usize,
    linger: Duration,
}

impl Gather {
    /// Waits for at least one item, then, if the previous batch held more than one (traffic is
    /// concurrent) and few are waiting, lingers for more until [`SMALL_BATCH`] are there or
    /// `linger` has passed, whichever comes first, and then also takes whatever else is
    /// already waiting (up to `max_batch`) without waiting for it.
    /// Returns how many items `batch` holds; 0 once the channel is closed and drained.
    async fn next<T>(
        &self,
        rx: &mut mpsc::Receiver<T>,
        batch: &mut Vec<T>,
        previous: usize,
    ) -> usize {
        if rx.recv_many(batch, self.max_batch).await == 0 {
            return 0;
        }
        if self.lingers(previous, batch.len()) {
            let until = tokio::time::Instant::now() + self.linger;
            let enough = self.enough();
            while batch.len() < enough {
                let more = rx.recv_many(batch, enough - batch.len());
                if !matches!(tokio::time::timeout_at(until, more).await, Ok(n) if n > 0) {
                    break;
                }
            }
            // What arrived while the lane waited beyond the first SMALL_BATCH rides along.
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        batch.len()
    }

    /// Whether to wait for more before committing `waiting` items after a batch of `previous`.
    fn lingers(&self, previous: usize, waiting: usize) -> bool {
        !self.linger.is_zero() && previous > 1 && waiting < self.enough()
    }

    /// How many waiting items end a linger.
    fn enough(&self) -> usize {
        SMALL_BATCH.min(self.max_batch)
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
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;

    use super::{Gather, SMALL_BATCH, lane_of};

    fn gather(max_batch: usize, linger_ms: u64) -> Gather {
        Gather {
            max_batch,
            linger: Duration::from_millis(linger_ms),
        }
    }

    #[test]
    fn a_lane_lingers_only_after_a_batch_of_several_and_only_while_few_wait() {
        let g = gather(512, 1);
        assert!(!g.lingers(0, 1), "the first callback goes at once");
        assert!(
            !g.lingers(1, 1),
            "light traffic: the last batch was one callback"
        );
        assert!(!g.lingers(1, 5), "the last batch was one callback");
        assert!(g.lingers(2, 1));
        assert!(g.lingers(40, SMALL_BATCH - 1));
        assert!(
            !g.lingers(40, SMALL_BATCH),
            "enough wait: a saturated lane never idles"
        );
        let small = gather(8, 1);
        assert!(small.lingers(7, 7));
        assert!(!small.lingers(7, 8), "a full batch goes at once");
        assert!(
            !gather(512, 0).lingers(7, 1),
            "a linger of zero never waits"
        );
    }

    #[tokio::test]
    async fn light_traffic_is_taken_at_once_and_concurrent_traffic_waits_for_more() {
        // Bounds are one-sided where timing matters: a sleep never ends early, and the "at
        // once" case is checked against a linger far longer than any scheduling delay.
        let long = gather(64, 5_000);
        let (tx, mut rx) = mpsc::channel(16);
        let mut batch = Vec::new();
        tx.send(1).await.unwrap();
        let t = Instant::now();
        assert_eq!(long.next(&mut rx, &mut batch, 1).await, 1);
        assert!(
            t.elapsed() < Duration::from_millis(5_000),
            "lingered after a batch of one"
        );

        batch.clear();
        let short = gather(64, 50);
        tx.send(2).await.unwrap();
        // The test's runtime has one thread: this task runs only once `next` waits, which it
        // does only while lingering (the first item is already there).
        let late = tx.clone();
        tokio::spawn(async move { late.send(3).await.unwrap() });
        let t = Instant::now();
        assert_eq!(short.next(&mut rx, &mut batch, 2).await, 2);
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            batch,
            [2, 3],
            "what arrived while lingering joins the batch"
        );

        batch.clear();
        for i in 0..4 {
            tx.send(i).await.unwrap();
        }
        assert_eq!(
            gather(3, 50).next(&mut rx, &mut batch, 2).await,
            3,
            "at most max_batch"
        );
        drop(tx);
        batch.clear();
        assert_eq!(
            long.next(&mut rx, &mut batch, 1).await,
            1,
            "the rest, then the end"
        );
        batch.clear();
        assert_eq!(long.next(&mut rx, &mut batch, 1).await, 0);
    }

    #[tokio::test]
    async fn a_burst_ends_the_linger_and_rides_along_up_to_the_largest_batch() {
        // One thread: the burst is sent in full once `next` waits, i.e. while it lingers.
        for (max_batch, expected) in [(64, 41), (20, 20)] {
            let g = gather(max_batch, 5_000);
            let (tx, mut rx) = mpsc::channel(64);
            tx.send(0).await.unwrap();
            let burst = tx.clone();
            tokio::spawn(async move {
                for i in 1..=40 {
                    burst.send(i).await.unwrap();
                }
            });
            let mut batch = Vec::new();
            let t = Instant::now();
            assert_eq!(g.next(&mut rx, &mut batch, 2).await, expected);
            assert!(
                t.elapsed() < Duration::from_millis(5_000),
                "waited out the linger although {SMALL_BATCH} were there"
            );
            assert_eq!(batch, (0..expected).collect::<Vec<_>>(), "in arrival order");
        }
    }

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
