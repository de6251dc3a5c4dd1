//! The broadcaster: created once per instance, outside the HTTP workers.
//!
//! Every poll interval it reads the change-log rows of transactions that finished since the
//! last read ([`live_log::window`]) and sends each, in log order, to every subscriber. The
//! horizon is advanced *before* sending, so a subscriber that catches up from the database
//! up to the horizon and then reads the channel sees every row at least once (it drops
//! positions it has already sent). A subscriber more than the channel's capacity behind is
//! told so and must reload.
//!
//! A hook registered for a kind ([`LiveHub::before_sending`]) runs before rows of that kind
//! are sent, so that an in-memory copy (the open alerts) is current by the time a browser
//! reacts to the event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::storage::live_log::{self, Position};

/// Batches a browser may fall behind before it is told to reload.
pub const CAPACITY: usize = 1024;
/// How long change-log rows are kept for clients that reconnect.
pub const RETENTION: Duration = Duration::from_secs(3600);

/// Work to finish before rows of a kind reach subscribers.
pub type Hook = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    pub pos: Position,
    pub kind: String,
    pub payload: String,
}

struct Inner {
    pool: PgPool,
    tx: broadcast::Sender<Arc<LiveEvent>>,
    horizon: Mutex<u64>,
    shutdown: CancellationToken,
    hooks: Mutex<Vec<(&'static str, Hook)>>,
}

#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("horizon", &self.horizon())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// A hub positioned at the current end of the log (history is not replayed).
    pub async fn new(
        pool: PgPool,
        shutdown: CancellationToken,
        capacity: usize,
    ) -> sqlx::Result<Self> {
        let horizon = live_log::current_horizon(&pool).await?;
        let (tx, _) = broadcast::channel(capacity.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                tx,
                horizon: Mutex::new(horizon),
                shutdown,
                hooks: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.inner.tx.subscribe()
    }

    /// Everything of transactions before this has been sent to subscribers.
    pub fn horizon(&self) -> u64 {
        *self.inner.horizon.lock().expect("horizon lock")
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// A signal that fires when the instance shuts down (streams end then).
    pub fn shutdown(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Runs `hook` (to completion) before rows of `kind` are sent to subscribers.
    pub fn before_sending(&self, kind: &'static str, hook: Hook) {
        self.inner
            .hooks
            .lock()
            .expect("hooks lock")
            .push((kind, hook));
    }

    /// One read of the log; returns how many rows were sent.
    pub async fn poll_once(&self) -> sqlx::Result<usize> {
        let from = self.horizon();
        let started = std::time::Instant::now();
        let (rows, horizon) = live_log::window(&self.inner.pool, from).await?;
        tracing::debug!(
            rows = rows.len(),
            from,
            horizon,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "live poll"
        );
        *self.inner.horizon.lock().expect("horizon lock") = horizon;
        let n = rows.len();
        let due: Vec<Hook> = self
            .inner
            .hooks
            .lock()
            .expect("hooks lock")
            .iter()
            .filter(|(kind, _)| rows.iter().any(|r| r.kind == *kind))
            .map(|(_, hook)| hook.clone())
            .collect();
        for hook in due {
            hook().await;
        }
        for r in rows {
            // No subscribers is not an error.
            let _ = self.inner.tx.send(Arc::new(LiveEvent {
                pos: r.pos,
                kind: r.kind,
                payload: r.payload,
            }));
        }
        Ok(n)
    }

    /// Polls every `period` until shutdown; prunes old rows about once a minute.
    pub fn start(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        let shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let prune_every =
                (Duration::from_secs(60).as_millis() / period.as_millis().max(1)).max(1) as u64;
            let mut ticks = 0u64;
            let mut failing = false;
            loop {
                if crate::tasks::sleep(&shutdown, period).await {
                    break;
                }
                match hub.poll_once().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("live updates: reading the change log again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "live updates: cannot read the change log; retrying");
                    }
                    Err(_) => {}
                }
                ticks += 1;
                if ticks.is_multiple_of(prune_every)
                    && let Err(e) = live_log::prune(&hub.inner.pool, RETENTION).await
                {
                    tracing::warn!(error = %e, "live updates: pruning the change log failed");
                }
            }
        })
    }
}
