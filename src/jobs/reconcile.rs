//! Reconciliation: repairing lost status callbacks by asking Twilio.
//!
//! Every interval, one instance queues the outbound messages that are still not settled
//! (delivered, read, failed, undelivered or canceled) some time after they were created
//! (`storage::reconcile_queue::fill`); then every instance claims due messages from the queue
//! and fetches them from Twilio. What Twilio reports goes through the same state machine as a
//! callback, as an event of source `poll`, so a lookup can only move a message forward.
//! Settled messages leave the queue, with the price Twilio charged; the others are looked up
//! again after a back-off that doubles, until they are older than the give-up age.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::ReconcileSettings;
use crate::domain::record::{EventRecord, MessageFacts};
use crate::domain::{Direction, EventSource, MessageSid, MessageStatus};
use crate::metrics::Metrics;
use crate::storage::{messages, reconcile_queue};
use crate::twilio::client::{MessageResource, TwilioClient, TwilioError};

/// Messages claimed per round; a pass runs rounds until nothing is due.
const CLAIM: i64 = 100;
/// Lookups in flight at once (Twilio's REST API limits concurrency per account).
const PARALLEL: usize = 4;
/// The queue filler advances at most this far per transaction, so a first start on a large
/// database catches up in many short steps instead of one long scan.
const FILL_SPAN_HOURS: i64 = 1;
/// Longest wait between two lookups of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    pub queued: u64,
    pub looked_up: u64,
    pub failed: u64,
    pub events_stored: u64,
    pub settled: u64,
    pub given_up: u64,
}

pub struct Reconciler {
    pub pool: PgPool,
    pub twilio: TwilioClient,
    pub settings: ReconcileSettings,
    pub metrics: Arc<Metrics>,
}

impl Reconciler {
    /// Fills the queue (if no other instance is doing it) and works through what is due.
    pub async fn pass(&self) -> anyhow::Result<PassOutcome> {
        let mut out = PassOutcome::default();
        let now = Utc::now();
        let after = chrono::Duration::from_std(self.settings.after)?;
        let lookback = chrono::Duration::from_std(self.settings.give_up_after)?;
        // Catch up in bounded steps: each step is one short transaction over at most
        // FILL_SPAN_HOURS of messages. `None` means another instance is filling.
        while let Some(step) = reconcile_queue::fill(
            &self.pool,
            now - after,
            lookback,
            chrono::Duration::hours(FILL_SPAN_HOURS),
        )
        .await?
        {
            out.queued += step.queued;
            if step.caught_up {
                break;
            }
        }

        loop {
            let claimed =
                reconcile_queue::claim(&self.pool, CLAIM, self.settings.after, MAX_BACKOFF).await?;
            if claimed.is_empty() {
                break;
            }
            let give_up_before = Utc::now() - lookback;
            let (stale, live): (Vec<_>, Vec<_>) = claimed
                .into_iter()
                .partition(|c| c.created_at < give_up_before);
            if !stale.is_empty() {
                let sids: Vec<String> = stale.into_iter().map(|c| c.sid).collect();
                tracing::warn!(count = sids.len(), first = %sids[0], "reconciliation gives up on messages that never settled");
                out.given_up += reconcile_queue::remove(&self.pool, &sids).await?;
            }
            let round = self
                .look_up(live.into_iter().map(|c| c.sid).collect())
                .await?;
            out.looked_up += round.looked_up;
            out.failed += round.failed;
            out.events_stored += round.events_stored;
            out.settled += round.settled;
            // Rows that failed were pushed back by their claim; they are not due again
            // within this pass, so the loop ends once the due rows are exhausted.
        }
        self.metrics
            .reconciled(out.looked_up, out.failed, out.events_stored, out.given_up);
        if out.settled > 0 {
            // Messages that settled only through a lookup: their callbacks were lost. The
            // alert evaluator reads this.
            crate::storage::instance_settings::put(
                &self.pool,
                crate::alerts::evaluate::LOST_KEY,
                &format!("{}|{}", Utc::now().to_rfc3339(), out.settled),
            )
            .await?;
        }
        if out.looked_up > 0 || out.queued > 0 {
            tracing::info!(
                queued = out.queued,
                looked_up = out.looked_up,
                repaired = out.events_stored,
                settled = out.settled,
                failed = out.failed,
                "reconciliation pass"
            );
        }
        Ok(out)
    }

    async fn look_up(&self, sids: Vec<String>) -> anyhow::Result<PassOutcome> {
        let mut out = PassOutcome::default();
        let results: Vec<(String, Result<MessageResource, TwilioError>)> =
            futures_util::stream::iter(sids)
                .map(|sid| async move {
                    let r = self.twilio.fetch_message(&sid).await;
                    (sid, r)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut records = Vec::new();
        let mut done = Vec::new();
        let mut prices = Vec::new();
        for (sid, result) in results {
            out.looked_up += 1;
            match result {
                Ok(resource) => {
                    let status = MessageStatus::parse(&resource.status);
                    if status.is_final() {
                        done.push(sid.clone());
                        if let Some(price) = resource.price.clone() {
                            prices.push((sid.clone(), price, resource.price_unit.clone()));
                        }
                    }
                    match poll_record(&resource, Utc::now()) {
                        Ok(r) => records.push(r),
                        Err(e) => {
                            tracing::warn!(%sid, error = %e, "Twilio's answer for a message could not be used");
                            out.failed += 1;
                        }
                    }
                }
                Err(TwilioError::Api { status: 404, .. }) => {
                    tracing::warn!(%sid, "Twilio does not know this message; it is no longer looked up");
                    done.push(sid);
                }
                Err(e) => {
                    out.failed += 1;
                    tracing::warn!(%sid, error = %e, "reconciliation lookup failed; it is retried later");
                }
            }
        }
        if !records.is_empty() {
            out.events_stored = crate::storage::events::apply_batch(&self.pool, &records)
                .await?
                .inserted;
        }
        messages::set_prices(&self.pool, &prices).await?;
        out.settled = reconcile_queue::remove(&self.pool, &done).await?;
        Ok(out)
    }
}

/// Starts the job (unless its interval is zero).
pub fn start(
    reconciler: Reconciler,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if reconciler.settings.interval.is_zero() {
        tracing::info!("reconciliation is off (reconcile_interval_secs = 0)");
        return None;
    }
    let interval = reconciler.settings.interval;
    let reconciler = Arc::new(reconciler);
    Some(super::every("reconcile", interval, shutdown, move || {
        let r = reconciler.clone();
        async move { r.pass().await.map(|_| ()) }
    }))
}

/// The event that records what a lookup found.
pub fn poll_record(r: &MessageResource, now: DateTime<Utc>) -> Result<EventRecord, String> {
    let sid = MessageSid::parse(&r.sid)?;
    let mut pairs: Vec<(String, String)> = vec![
        ("Sid".into(), r.sid.clone()),
        ("Status".into(), r.status.clone()),
    ];
    let fields: [(&str, &Option<String>); 10] = [
        ("To", &r.to),
        ("From", &r.from),
        ("Direction", &r.direction),
        ("ErrorMessage", &r.error_message),
        ("Price", &r.price),
        ("PriceUnit", &r.price_unit),
        ("MessagingServiceSid", &r.messaging_service_sid),
        ("DateCreated", &r.date_created),
        ("DateSent", &r.date_sent),
        ("DateUpdated", &r.date_updated),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            pairs.push((k.to_owned(), v.clone()));
        }
    }
    if let Some(code) = r.error_code {
        pairs.push(("ErrorCode".into(), code.to_string()));
    }
    let direction = match r.direction.as_deref() {
        Some("inbound") => Direction::Inbound,
        _ => Direction::Outbound,
    };
    // Twilio's last-change time is when the reported status was reached, to the second.
    let at = r
        .date_updated
        .as_deref()
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| *d <= now)
        .unwrap_or(now);
    let facts = MessageFacts {
        messaging_service_sid: r.messaging_service_sid.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        body: r.body.clone().filter(|b| !b.is_empty()),
        ..MessageFacts::default()
    };
    Ok(EventRecord::new(
        sid,
        direction,
        facts,
        r.report(at),
        EventSource::Poll,
        &pairs,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(status: &str, updated: &str) -> MessageResource {
        serde_json::from_value(serde_json::json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "status": status,
            "to": "whatsapp:+919900000000",
            "from": "whatsapp:+14155238886",
            "direction": "outbound-api",
            "error_code": if status == "failed" { Some(63016) } else { None },
            "price": "-0.00500",
            "price_unit": "USD",
            "date_updated": updated,
        }))
        .unwrap()
    }

    #[test]
    fn a_lookup_becomes_a_poll_event_at_twilios_change_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = poll_record(
            &resource("delivered", "Tue, 24 Nov 2026 09:58:30 +0000"),
            now,
        )
        .unwrap();
        assert_eq!(r.source, EventSource::Poll);
        assert_eq!(r.direction, Direction::Outbound);
        assert_eq!(r.report.status, MessageStatus::Delivered);
        assert_eq!(r.report.at.to_rfc3339(), "2026-11-24T09:58:30+00:00");
        assert!(r.params.contains("\"Price\":\"-0.00500\""), "{}", r.params);
        let failed = poll_record(&resource("failed", "garbage"), now).unwrap();
        assert_eq!(failed.report.error_code, Some(63016));
        assert_eq!(
            failed.report.at, now,
            "an unreadable date falls back to now"
        );
    }

    #[test]
    fn the_same_answer_twice_is_one_event() {
        let now = Utc::now();
        let a = poll_record(&resource("sent", "Tue, 24 Nov 2026 09:58:30 +0000"), now).unwrap();
        let b = poll_record(&resource("sent", "Tue, 24 Nov 2026 09:58:30 +0000"), now).unwrap();
        let c = poll_record(
            &resource("delivered", "Tue, 24 Nov 2026 09:59:00 +0000"),
            now,
        )
        .unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
    }
}
