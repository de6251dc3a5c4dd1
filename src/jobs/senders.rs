//! The sender sync: reads Twilio's WhatsApp senders once per `WADASH_SENDER_SYNC_SECS` across
//! all instances (the turn is claimed in the database), stores them with their history and
//! raises the alerts for what changed.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::onboarding::sync::SyncContext;
use crate::twilio::messaging::MessagingClient;

pub fn start(
    pool: PgPool,
    messaging: MessagingClient,
    channels: crate::alerts::channels::ChannelStore,
    ctx: SyncContext,
    interval: Duration,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        tracing::info!("the WhatsApp senders are not synced (sender_sync_secs = 0)");
        return None;
    }
    // The first look comes at once, so a fresh start shows Twilio's senders within seconds.
    Some(super::paced(
        "sender sync",
        Duration::from_millis(300),
        move |_| super::templates::check_every(interval),
        shutdown,
        move || {
            let (pool, messaging, channels, ctx) = (
                pool.clone(),
                messaging.clone(),
                channels.clone(),
                ctx.clone(),
            );
            async move {
                crate::onboarding::sync::sync_if_due(&pool, &messaging, &channels, &ctx, interval)
                    .await
                    .map(drop)
            }
        },
    ))
}
