//! The sender sync: reads Twilio's WhatsApp senders (Senders API) once per
//! `WADASH_SENDER_SYNC_SECS` across all instances, and on demand, and stores their status,
//! offline reasons, quality rating, messaging limit and webhooks with their history — senders
//! created in Twilio's Console appear here — then raises the alerts for what changed.

use sqlx::PgPool;

use crate::alerts::channels::ChannelStore;
use crate::alerts::senders as alerts;
use crate::domain::sender_health::{Change, OfflineReason, SenderRecord};
use crate::storage::sender_registrations;
use crate::storage::sender_twilio;
use crate::storage::sync_state::{self, Sync};
use crate::twilio::messaging::{MessagingClient, Sender};

/// What one sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    /// WhatsApp senders at Twilio now.
    pub senders: usize,
    pub changes: Vec<Change>,
}

/// What the sync needs besides the pool and the client.
#[derive(Debug, Clone)]
pub struct SyncContext {
    /// `WADASH_PUBLIC_URL`: where the webhooks should point (unknown without it).
    pub public_url: Option<String>,
    /// Messages per second given to a sender found at Twilio for the first time.
    pub mps: f64,
}

impl SyncContext {
    /// How an instance syncs: webhooks are wadash's when they point at its public URL, and a
    /// sender found at Twilio for the first time gets the default throughput.
    pub fn of_instance(public_url: &str) -> Self {
        Self {
            public_url: Some(public_url.to_owned()),
            mps: crate::senders::DEFAULT_MPS,
        }
    }
}

impl Synced {
    /// The outcome as the JSON API and the CLI report it: the senders at Twilio and each
    /// change (`address`, `field`, `from`, `to`, whether it `alerts`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "senders": self.senders,
            "changes": self.changes.iter().map(|c| serde_json::json!({
                "address": c.address,
                "field": c.field.as_str(),
                "from": c.from,
                "to": c.to,
                "alerts": c.alerts(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Twilio's sender as wadash stores it; an empty text is none.
pub fn record(s: Sender) -> SenderRecord {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    SenderRecord {
        display_name: non_empty(s.profile["name"].as_str().map(str::to_owned)),
        twilio_sid: s.sid,
        address: s.sender_id,
        status: s.status,
        offline_reasons: s
            .offline_reasons
            .into_iter()
            .map(|r| OfflineReason {
                code: r.code,
                message: r.message,
                more_info: r.more_info,
            })
            .collect(),
        quality_rating: non_empty(s.properties.quality_rating),
        messaging_limit: non_empty(s.properties.messaging_limit),
        callback_url: non_empty(s.webhook.callback_url),
        status_callback_url: non_empty(s.webhook.status_callback_url),
        waba_id: non_empty(s.configuration.waba_id),
        profile: s.profile,
        messaging_service_sid: None,
    }
}

/// Reads every WhatsApp sender from Twilio and stores them; a failure is recorded and
/// returned. Senders whose id is not `whatsapp:+…` are left out (Twilio lists only WhatsApp
/// senders for `Channel=whatsapp`; anything else is not ours to import).
#[tracing::instrument(name = "senders.sync", skip_all)]
pub async fn sync(
    pool: &PgPool,
    messaging: &MessagingClient,
    ctx: &SyncContext,
) -> anyhow::Result<(Synced, Vec<SenderRecord>)> {
    // Before the read: what wadash changes at Twilio from here on may be newer than the list.
    let mark = sync_state::mark(pool).await?;
    let fetched = match messaging.list_senders().await {
        Ok(all) => all,
        Err(e) => {
            let failures = sync_state::record_failure(pool, Sync::Senders, &e.to_string()).await?;
            tracing::warn!(error = %e, failures, "the WhatsApp senders could not be read");
            return Err(e.into());
        }
    };
    let mut records: Vec<SenderRecord> = fetched
        .into_iter()
        .map(record)
        .filter(|r| crate::domain::WhatsAppAddress::parse(&r.address).is_ok())
        .collect();
    let services = service_of_each(messaging).await;
    if let Some(of) = &services {
        for r in &mut records {
            r.messaging_service_sid = of.get(&r.twilio_sid).cloned();
        }
    }
    let changes: Vec<Change> = sender_twilio::apply(
        pool,
        &records,
        ctx.public_url.as_deref(),
        ctx.mps,
        services.is_some(),
        mark,
    )
    .await?
    .into_iter()
    .map(|(_, c)| c)
    .collect();
    // A number registered with the wizard that Twilio now has online is done, even if nobody
    // came back to the wizard to see it.
    let registered = sender_registrations::close_online(pool).await?;
    if registered > 0 {
        tracing::info!(
            registrations = registered,
            "wizard registrations found online and closed"
        );
    }
    tracing::info!(
        senders = records.len(),
        changes = changes.len(),
        "WhatsApp senders synced"
    );
    Ok((
        Synced {
            senders: records.len(),
            changes,
        },
        records,
    ))
}

/// Which Messaging Service each sender (`XE…`) is in, or None when the services could not be
/// read: the senders' own state is still synced, and the services they were last seen in
/// are kept.
async fn service_of_each(
    messaging: &MessagingClient,
) -> Option<std::collections::HashMap<String, String>> {
    let read = async {
        let mut of = std::collections::HashMap::new();
        for service in messaging.list_services().await? {
            for s in messaging.list_channel_senders(&service.sid).await? {
                of.insert(s.sid, service.sid.clone());
            }
        }
        Ok::<_, crate::twilio::client::TwilioError>(of)
    };
    match read.await {
        Ok(of) => Some(of),
        Err(e) => {
            tracing::warn!(error = %e, "the Messaging Services could not be read; the senders' services are kept as they were");
            None
        }
    }
}

/// A sync, then the alerts for what it changed (or for failing several times in a row).
pub async fn sync_and_alert(
    pool: &PgPool,
    messaging: &MessagingClient,
    channels: &ChannelStore,
    ctx: &SyncContext,
) -> anyhow::Result<Synced> {
    let result = sync(pool, messaging, ctx).await;
    let current = channels.current().await;
    let channels = &current.channels;
    match result {
        Ok((synced, records)) => {
            let reasons_of = |address: &str| {
                records
                    .iter()
                    .find(|r| r.address == address)
                    .map(|r| r.offline_reasons.clone())
                    .unwrap_or_default()
            };
            alerts::on_changes(pool, channels, &synced.changes, reasons_of).await?;
            alerts::on_sync(pool, channels, 0, None).await?;
            Ok(synced)
        }
        Err(e) => {
            let failures = sync_state::get(pool, Sync::Senders).await?.failures;
            alerts::on_sync(pool, channels, failures, Some(&e.to_string())).await?;
            Err(e)
        }
    }
}

/// A scheduled sync: done when this instance claims the interval's turn, else nothing.
pub async fn sync_if_due(
    pool: &PgPool,
    messaging: &MessagingClient,
    channels: &ChannelStore,
    ctx: &SyncContext,
    interval: std::time::Duration,
) -> anyhow::Result<Option<Synced>> {
    if !sync_state::claim_due(pool, Sync::Senders, interval).await? {
        return Ok(None);
    }
    sync_and_alert(pool, messaging, channels, ctx)
        .await
        .map(Some)
}
