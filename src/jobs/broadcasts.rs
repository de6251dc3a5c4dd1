//! The broadcast runner: every instance runs one, and they share the work through the
//! database.
//!
//! Each turn it starts scheduled broadcasts whose time has come, looks up stale `sending`
//! recipients at Twilio (see `broadcasts::delivery`), then serves every sender with due work
//! whose reserved slots are about to run out: it claims about a second's worth of due
//! recipients of one of that sender's running broadcasts — a reminder's before bulk ones,
//! then the oldest — (`FOR UPDATE SKIP LOCKED`, so two runners never claim the same row) and
//! reserves as many consecutive send slots of the sender in `send_slots`. Slots are spaced
//! `1 / (mps × pace)` apart and shared by every instance, so the sender's limit holds in total
//! however many instances run. Each recipient is sent at its slot by its own task. The runner
//! sleeps until the first sender needs its next batch (`LEAD` before its slots run out), so
//! sending never pauses between batches, a reminder due during a long broadcast on the same
//! sender goes out within about a second and a half (plus any one-off sends queued on it,
//! which take the same line: `sending::pacing`), and broadcasts on different senders run side
//! by side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::broadcasts::delivery;
pub use crate::config::RunnerSettings;
use crate::pricing::book::PriceBook;
use crate::storage::broadcasts::{self as store, BroadcastRow};
use crate::twilio::client::TwilioClient;

/// Seconds of sending claimed at a time.
const BATCH_SECONDS: f64 = 1.0;
const MAX_BATCH: i64 = 200;
/// The next batch is claimed this long before the current one's last slot.
const LEAD: Duration = Duration::from_millis(150);
/// How soon to look again when every sender with work has its next slots taken.
const BUSY_POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Runner {
    pool: PgPool,
    twilio: TwilioClient,
    prices: PriceBook,
    settings: RunnerSettings,
    /// Policy checks in flight at once, so that a large batch does not queue for every
    /// connection of the pool at the same moment.
    checks: Arc<tokio::sync::Semaphore>,
}

/// Policy checks in flight at once per runner.
const CHECKS: usize = 4;

/// Within one instance, consecutive sends of a sender leave at least one slot's spacing
/// between them even when the process was busy and several slots came due at once: the
/// shared slots say when a message may leave at the earliest, this keeps a late one from
/// leaving together with the next.
type Pacers = HashMap<String, Arc<tokio::sync::Mutex<Instant>>>;

pub fn start(runner: Runner, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut cache: HashMap<i64, Arc<BroadcastRow>> = HashMap::new();
        let mut pacers: Pacers = HashMap::new();
        loop {
            let pause = match runner.turn(&mut cache, &mut pacers).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "broadcast runner: a turn failed; trying again shortly");
                    Duration::from_secs(1)
                }
            };
            if crate::tasks::sleep(&shutdown, pause).await {
                break;
            }
        }
    })
}

impl Runner {
    pub fn new(
        pool: PgPool,
        twilio: TwilioClient,
        prices: PriceBook,
        settings: RunnerSettings,
    ) -> Self {
        Self {
            pool,
            twilio,
            prices,
            settings,
            checks: Arc::new(tokio::sync::Semaphore::new(CHECKS)),
        }
    }

    /// One turn; returns how long to wait before the next.
    pub async fn turn(
        &self,
        cache: &mut HashMap<i64, Arc<BroadcastRow>>,
        pacers: &mut Pacers,
    ) -> anyhow::Result<Duration> {
        store::start_due(&self.pool).await?;
        // Held for a template or a sender that a sync has since found approved or online
        // again: sending resumes.
        crate::broadcasts::holds::resume_cleared(&self.pool).await?;
        self.recover_stale(cache).await?;
        let senders = store::due_senders(&self.pool).await?;
        if senders.is_empty() {
            self.finish_running().await?;
            cache.clear();
            pacers.clear();
            return Ok(self.settings.idle);
        }
        // Serve every sender whose reserved slots run out within `LEAD` plus one slot (its
        // next slot is one spacing after its last); wake when the first of the others is.
        let turn_start = Instant::now();
        let mut wake = turn_start + self.settings.idle;
        for d in senders {
            let spacing = 1.0 / (d.mps * self.settings.pace);
            let ready_in = d.slots_end_in - spacing - LEAD.as_secs_f64();
            if ready_in > 0.0 {
                wake = wake.min(turn_start + Duration::from_secs_f64(ready_in));
                continue;
            }
            match self
                .send_batch(cache, pacers, d.broadcast_id, &d.sender, d.mps)
                .await
            {
                Ok(Some(w)) => wake = wake.min(w),
                // Nothing could be claimed (another runner holds the rows): look again soon.
                Ok(None) => wake = wake.min(Instant::now() + BUSY_POLL),
                Err(e) => {
                    tracing::warn!(sender = %d.sender, broadcast = d.broadcast_id, error = %e, "broadcast runner: a batch failed; the other senders go on");
                    wake = wake.min(Instant::now() + BUSY_POLL);
                }
            }
        }
        Ok(wake.saturating_duration_since(Instant::now()))
    }

    /// Claims about a second's worth of due recipients of broadcast `id`, reserves their
    /// slots on `sender` and sends each at its slot; returns when the next batch of this
    /// sender should be claimed (none when nothing could be claimed).
    async fn send_batch(
        &self,
        cache: &mut HashMap<i64, Arc<BroadcastRow>>,
        pacers: &mut Pacers,
        id: i64,
        sender: &str,
        mps: f64,
    ) -> anyhow::Result<Option<Instant>> {
        let batch = ((mps * BATCH_SECONDS).ceil() as i64).clamp(1, MAX_BATCH);
        let claimed = store::claim(&self.pool, id, batch).await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let b = self.broadcast(cache, id).await?;
        let spacing = 1.0 / (mps * self.settings.pace);
        let n = claimed.len();
        let reserved =
            crate::storage::send_slots::reserve(&self.pool, sender, n as i64, spacing).await?;
        let first_slot = reserved.first;
        let first = Instant::now() + Duration::from_secs_f64(reserved.wait_secs.max(0.0));
        let pacer = pacers
            .entry(sender.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Instant::now())))
            .clone();
        let gap = Duration::from_secs_f64(spacing);
        for (i, r) in claimed.into_iter().enumerate() {
            let at = first + Duration::from_secs_f64(spacing * i as f64);
            // The slot as the database reserved it (its clock), recorded with the send.
            let slot_at = first_slot
                + chrono::TimeDelta::from_std(Duration::from_secs_f64(spacing * i as f64))
                    .unwrap_or_default();
            let (pool, client, b) = (self.pool.clone(), self.twilio.clone(), b.clone());
            let prices = self.prices.clone();
            let pacer = pacer.clone();
            let checks = self.checks.clone();
            tokio::spawn(async move {
                // The policy check (database work) happens before the slot, so that what is
                // left at the slot is only the call to Twilio.
                let permit = checks.acquire_owned().await;
                let checked = delivery::prepare(&pool, &b, &r).await;
                drop(permit);
                let ready = match checked {
                    Ok(Ok(ready)) => ready,
                    Ok(Err(_)) => return,
                    Err(e) => {
                        tracing::warn!(broadcast = b.id, error = %e, "a broadcast recipient could not be checked; the lookup will settle it");
                        return;
                    }
                };
                tokio::time::sleep_until(at).await;
                let left_at = {
                    // Fair (FIFO) lock: sends leave in slot order, one gap apart at least,
                    // counted from when each really left (a late wake-up delays the next).
                    let mut next = pacer.lock().await;
                    tokio::time::sleep_until((*next).max(Instant::now())).await;
                    *next = Instant::now() + gap;
                    chrono::Utc::now()
                };
                let times = delivery::SendTimes { slot_at, left_at };
                if let Err(e) = delivery::send(&pool, &client, &prices, &r, ready, times).await {
                    tracing::warn!(broadcast = b.id, error = %e, "a broadcast recipient could not be updated; the lookup will settle it");
                }
            });
        }
        let last = first + Duration::from_secs_f64(spacing * (n - 1) as f64);
        Ok(Some(last.checked_sub(LEAD).unwrap_or(last)))
    }

    async fn broadcast(
        &self,
        cache: &mut HashMap<i64, Arc<BroadcastRow>>,
        id: i64,
    ) -> anyhow::Result<Arc<BroadcastRow>> {
        if let Some(b) = cache.get(&id) {
            return Ok(b.clone());
        }
        let b = Arc::new(
            store::get(&self.pool, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("broadcast {id} vanished"))?,
        );
        cache.insert(id, b.clone());
        Ok(b)
    }

    async fn recover_stale(
        &self,
        cache: &mut HashMap<i64, Arc<BroadcastRow>>,
    ) -> anyhow::Result<()> {
        let stale =
            store::claim_stale(&self.pool, self.settings.stale_after.as_secs_f64(), 50).await?;
        for r in stale {
            let b = self.broadcast(cache, r.broadcast_id).await?;
            delivery::recover(&self.pool, &self.twilio, &self.prices, &b, &r).await?;
        }
        Ok(())
    }

    async fn finish_running(&self) -> anyhow::Result<()> {
        let running: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM broadcasts WHERE status = 'running'")
                .fetch_all(&self.pool)
                .await?;
        for id in running {
            if store::complete_if_done(&self.pool, id).await? {
                tracing::info!(broadcast = id, "broadcast completed");
            }
        }
        Ok(())
    }
}
