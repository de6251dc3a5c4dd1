//! Plumbing for background tasks: the shutdown signal they watch, and running a task
//! periodically. Used by the jobs and by the features that keep their own tasks (alerts, live
//! updates, credentials), so none of them needs the jobs module.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells running jobs to stop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves when shutdown is requested.
    pub async fn stopped(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits up to `period`; true when the job should stop instead of running again.
    pub async fn sleep(&mut self, period: Duration) -> bool {
        if *self.0.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => false,
            _ = self.0.changed() => true,
        }
    }
}

/// Runs `tick` every `period` until shutdown. A tick that fails is logged and the next one
/// runs on schedule: a job never dies of a passing error.
pub fn every<F, Fut>(
    name: &'static str,
    period: Duration,
    shutdown: Shutdown,
    tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    paced(name, period, move |_| period, shutdown, tick)
}

/// Like [`every`], but the wait after each tick is `pause_after(how long the tick took)`, for
/// jobs whose work grows with traffic; the first tick comes after `first`.
pub fn paced<F, Fut, P>(
    name: &'static str,
    first: Duration,
    pause_after: P,
    mut shutdown: Shutdown,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
    P: Fn(Duration) -> Duration + Send + 'static,
{
    tokio::spawn(async move {
        let mut pause = first;
        while !shutdown.sleep(pause).await {
            let started = std::time::Instant::now();
            if let Err(e) = tick().await {
                tracing::warn!(job = name, error = %format!("{e:#}"), "background job failed; it runs again at its next interval");
            }
            pause = pause_after(started.elapsed());
        }
    })
}
