//! Group commit: many concurrent webhook requests share one transaction, and each request is
//! answered only after the transaction holding its callback has committed.
//!
//! A commit costs a WAL flush (fsync) whatever its size, so one transaction per request caps
//! throughput at the disk's flush rate. Here handlers hand their record to a queue; a
//! dispatcher takes everything that is waiting (up to `max_batch`) as soon as one of
//! `concurrency` commit slots is free, so batches grow exactly when the database is the
//! bottleneck and stay at one record when traffic is light (no added latency).
//! Durability is unchanged: `synchronous_commit` stays on and nothing is acknowledged early.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::IngestSettings;
use crate::ingest::record::EventRecord;
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
    done: oneshot::Sender<Result<(), IngestError>>,
}

/// Handle used by request handlers; cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").finish_non_exhaustive()
    }
}

const MAX_ATTEMPTS: u32 = 3;

impl Ingestor {
    /// Starts the dispatcher. It ends, after committing everything queued, once every
    /// `Ingestor` clone has been dropped; await the handle for a clean shutdown.
    pub fn start(
        pool: PgPool,
        settings: IngestSettings,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(settings.queue);
        let handle = tokio::spawn(dispatch(pool, settings, metrics, rx));
        (Self { tx }, handle)
    }

    /// Stores `record` durably; returns once it is committed.
    pub async fn submit(&self, record: EventRecord) -> Result<(), IngestError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { record, done })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        wait.await.unwrap_or(Err(IngestError::ShuttingDown))
    }
}

async fn dispatch(
    pool: PgPool,
    settings: IngestSettings,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    // Signalled whenever a commit finishes (a stored permit, so no wake-up is ever lost).
    let finished = Arc::new(Notify::new());
    let mut batch: Vec<Job> = Vec::with_capacity(settings.max_batch);
    let mut closed = false;
    while !closed {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if batch.is_empty() && rx.recv_many(&mut batch, settings.max_batch).await == 0 {
            break; // every sender is gone and the queue is empty
        }
        // While another commit is running, a small batch would only add a commit's fixed
        // cost: keep gathering until the batch is worth a second transaction or the running
        // one finishes. With nothing in flight, go at once (no added latency when idle).
        while batch.len() < settings.min_parallel_batch
            && slots.available_permits() + 1 < settings.concurrency
        {
            let room = settings.max_batch - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => {
                    if n == 0 {
                        closed = true;
                        break;
                    }
                }
                () = finished.notified() => {}
            }
        }
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(settings.max_batch));
        let pool = pool.clone();
        let metrics = metrics.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            commit(&pool, &metrics, jobs).await;
            drop(slot);
            finished.notify_one();
        });
    }
    // Wait for the batches still committing.
    let _ = slots.acquire_many(settings.concurrency as u32).await;
}

async fn commit(pool: &PgPool, metrics: &Metrics, jobs: Vec<Job>) {
    let (records, waiters): (Vec<EventRecord>, Vec<_>) =
        jobs.into_iter().map(|j| (j.record, j.done)).unzip();
    match store(pool, metrics, &records).await {
        Ok(()) => waiters.into_iter().for_each(|w| {
            let _ = w.send(Ok(()));
        }),
        // A record the database refuses must not take its batch-mates down with it: store
        // them one by one so that only the offending request fails.
        Err(Failure::Permanent(_)) if records.len() > 1 => {
            for (record, w) in records.into_iter().zip(waiters) {
                let one = std::slice::from_ref(&record);
                let _ = w.send(store(pool, metrics, one).await.map_err(Failure::into_error));
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

async fn store(pool: &PgPool, metrics: &Metrics, records: &[EventRecord]) -> Result<(), Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match storage::events::apply_batch(pool, records).await {
            Ok(outcome) => {
                metrics.batch(records.len(), outcome.inserted);
                return Ok(());
            }
            // A pool timeout already waited the whole acquire timeout: answer rather than wait again.
            Err(e)
                if storage::is_transient(&e)
                    && !matches!(e, sqlx::Error::PoolTimedOut)
                    && attempt < MAX_ATTEMPTS =>
            {
                tracing::warn!(error = %e, attempt, size = records.len(), "batch failed, retrying");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(e) => {
                metrics.batch_failed();
                tracing::error!(error = %e, size = records.len(), "batch could not be stored");
                return Err(if storage::is_transient(&e) {
                    Failure::Transient(e.to_string())
                } else {
                    Failure::Permanent(e.to_string())
                });
            }
        }
    }
}
