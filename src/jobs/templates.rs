//! The template sync: reads Twilio's template catalogue once per `WADASH_TEMPLATE_SYNC_SECS`
//! across all instances (the turn is claimed in the database) and stores it with its history.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::twilio::content::ContentClient;

/// How often an instance looks whether a sync's turn has come (templates, senders): a fraction of the
/// interval, so a sync is late by at most that much when the instance that did the last one
/// has gone.
pub(super) fn check_every(interval: Duration) -> Duration {
    (interval / 5).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

pub fn start(
    pool: PgPool,
    content: ContentClient,
    channels: crate::alerts::channels::ChannelStore,
    interval: Duration,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        tracing::info!("the template catalogue is not synced (template_sync_secs = 0)");
        return None;
    }
    // The first look comes at once, so a fresh start has its catalogue within seconds.
    Some(super::paced(
        "template sync",
        Duration::from_millis(200),
        move |_| check_every(interval),
        shutdown,
        move || {
            let (pool, content, channels) = (pool.clone(), content.clone(), channels.clone());
            async move {
                crate::templates::sync_if_due(&pool, &content, &channels, interval)
                    .await
                    .map(drop)
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_look_for_their_turn_often_enough_and_not_too_often() {
        assert_eq!(
            check_every(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(check_every(Duration::from_secs(30)), Duration::from_secs(6));
        assert_eq!(check_every(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
