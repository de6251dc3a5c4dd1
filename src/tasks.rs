//! Plumbing for background tasks: the shutdown signal they watch (a [`CancellationToken`]),
//! and running a task periodically. Used by the jobs and by the features that keep their own
//! tasks (alerts, live updates, credentials), so none of them needs the jobs module.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Waits up to `period`; true when the task should stop (`shutdown` is cancelled, now or
/// during the wait) instead of running again.
pub async fn sleep(shutdown: &CancellationToken, period: Duration) -> bool {
    shutdown
        .run_until_cancelled(tokio::time::sleep(period))
        .await
        .is_none()
}

/// Runs `tick` every `period` until shutdown, each tick in a `job` span. A tick that fails is
/// logged and the next one runs on schedule: a job never dies of a passing error.
pub fn every<F, Fut>(
    name: &'static str,
    period: Duration,
    shutdown: CancellationToken,
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
    shutdown: CancellationToken,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
    P: Fn(Duration) -> Duration + Send + 'static,
{
    tokio::spawn(async move {
        let mut pause = first;
        while !sleep(&shutdown, pause).await {
            let started = std::time::Instant::now();
            // Each tick in a `job` span: what the job logs says which job it was.
            let span = tracing::info_span!("job", job = name);
            if let Err(e) = tick().instrument(span).await {
                tracing::warn!(job = name, error = %format!("{e:#}"), "background job failed; it runs again at its next interval");
            }
            pause = pause_after(started.elapsed());
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn sleep_ends_early_when_cancelled() {
        let token = CancellationToken::new();
        assert!(!sleep(&token, Duration::from_millis(1)).await);
        let waiting = tokio::spawn({
            let token = token.clone();
            async move { sleep(&token, Duration::from_secs(3600)).await }
        });
        token.cancel();
        let stop = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(stop.unwrap().unwrap(), "a cancelled wait says stop");
        assert!(
            sleep(&token, Duration::ZERO).await,
            "once cancelled, always stop"
        );
    }

    #[tokio::test]
    async fn every_runs_until_shutdown() {
        let token = CancellationToken::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let job = every("test", Duration::from_millis(5), token.clone(), {
            let ticks = ticks.clone();
            move || {
                ticks.fetch_add(1, Ordering::SeqCst);
                async { anyhow::bail!("a failing tick does not end the job") }
            }
        });
        while ticks.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        token.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), job).await;
        ended.unwrap().unwrap();
    }
}
