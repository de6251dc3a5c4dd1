//! The price fetcher: asks Twilio what each message sent through wadash actually cost.
//!
//! Status callbacks carry no price, and Twilio fills a message's `price` only some time after
//! it is sent, so every interval the job claims messages whose turn has come
//! (`storage::costs::claim_due`, a lease with SKIP LOCKED: instances share the work) and:
//! - a message that is not final yet waits, longer the older it is, without asking Twilio;
//! - a final message (or one old enough that it will not change) is fetched from Twilio; its
//!   price is stored on the message and as the actual cost (`storage::messages::set_prices`),
//!   or, when Twilio has none yet, it is asked again after a back-off that doubles;
//! - after [`MAX_CHECKS`] answers without a price, or when Twilio does not know the message,
//!   wadash stops asking and the cost page keeps the estimate.
//!
//! Lookups are capped per interval (`WADASH_PRICE_FETCH_PER_SEC` × the interval), so a large
//! broadcast is priced over time instead of using up the account's API concurrency.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use crate::config::PriceFetchSettings;
use crate::domain::MessageStatus;
use crate::storage::{costs, messages};
use crate::twilio::client::{TwilioClient, TwilioError};

/// Messages claimed per round.
const CLAIM: i64 = 100;
/// Lookups in flight at once.
const PARALLEL: usize = 4;
/// A claim's lease: a process that dies mid-round leaves its rows due again after this.
const LEASE_SECS: f64 = 300.0;
/// Answers without a price before wadash stops asking.
pub const MAX_CHECKS: i16 = 8;
/// A message not final after this long is fetched anyway (Twilio has billed what it will).
pub const FETCH_ANYWAY_AFTER: TimeDelta = TimeDelta::hours(24);

/// What to do with a claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Fetch,
    /// Not final yet: look again then.
    Wait(DateTime<Utc>),
}

/// Whether to fetch a message now, from its current status and age.
pub fn step(status: Option<&str>, created_at: DateTime<Utc>, now: DateTime<Utc>) -> Step {
    let age = now - created_at;
    let is_final = status.is_some_and(|s| MessageStatus::parse(s).is_final());
    if is_final || age >= FETCH_ANYWAY_AFTER {
        return Step::Fetch;
    }
    // About as long again as the message has existed: few looks at a message that stays
    // `sent` for hours, a quick one for the usual few seconds.
    let wait = age.clamp(TimeDelta::seconds(5), TimeDelta::hours(1));
    Step::Wait(now + wait)
}

/// When to ask again after Twilio answered without a price for the `checks`-th time (None:
/// stop asking).
pub fn retry_after_no_price(checks: i16, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (checks < MAX_CHECKS).then(|| now + TimeDelta::minutes(1 << checks.clamp(0, 8)))
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    pub looked_up: u64,
    pub priced: u64,
    pub waiting: u64,
    pub given_up: u64,
    pub failed: u64,
}

pub struct PriceFetcher {
    pub pool: PgPool,
    pub twilio: TwilioClient,
    pub settings: PriceFetchSettings,
}

impl PriceFetcher {
    /// Works through what is due, up to the interval's lookup budget.
    pub async fn run(&self) -> anyhow::Result<RunOutcome> {
        let budget =
            (self.settings.per_second as u64 * self.settings.interval.as_secs().max(1)).max(1);
        let mut out = RunOutcome::default();
        while out.looked_up < budget {
            let claim = CLAIM.min((budget - out.looked_up) as i64);
            let due = costs::claim_due(&self.pool, claim, LEASE_SECS).await?;
            let n = due.len() as i64;
            self.round(due, &mut out).await?;
            if n < claim {
                break;
            }
        }
        if out != RunOutcome::default() {
            tracing::debug!(?out, "price fetch run");
        }
        Ok(out)
    }

    async fn round(&self, due: Vec<costs::Due>, out: &mut RunOutcome) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut next: Vec<(String, Option<DateTime<Utc>>, bool)> = Vec::new();
        let mut fetch = Vec::new();
        for d in due {
            match step(d.status.as_deref(), d.created_at, now) {
                Step::Fetch => fetch.push(d),
                Step::Wait(at) => {
                    out.waiting += 1;
                    next.push((d.sid, Some(at), false));
                }
            }
        }
        let results: Vec<(costs::Due, Result<_, TwilioError>)> = futures_util::stream::iter(fetch)
            .map(|d| async move {
                let r = self.twilio.fetch_message(&d.sid).await;
                (d, r)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut prices = Vec::new();
        for (d, result) in results {
            out.looked_up += 1;
            match result {
                Ok(resource) => match resource
                    .price
                    .filter(|p| crate::costs::charged(p).is_some())
                {
                    Some(price) => {
                        out.priced += 1;
                        prices.push((d.sid, price, resource.price_unit));
                    }
                    None => {
                        let at = retry_after_no_price(d.price_checks, now);
                        if at.is_none() {
                            out.given_up += 1;
                        }
                        next.push((d.sid, at, true));
                    }
                },
                Err(TwilioError::Api { status: 404, .. }) => {
                    tracing::warn!(sid = %d.sid, "Twilio does not know this message; its price is not asked again");
                    out.given_up += 1;
                    next.push((d.sid, None, true));
                }
                Err(e) => {
                    out.failed += 1;
                    tracing::warn!(sid = %d.sid, error = %e, "price lookup failed; it is retried later");
                    next.push((d.sid, Some(now + TimeDelta::minutes(1)), false));
                }
            }
        }
        messages::set_prices(&self.pool, &prices).await?;
        costs::reschedule(&self.pool, &next).await?;
        Ok(())
    }
}

/// Starts the job (unless its interval is zero).
pub fn start(
    fetcher: PriceFetcher,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if fetcher.settings.interval.is_zero() {
        tracing::info!("actual prices are not fetched (price_fetch_secs = 0)");
        return None;
    }
    let interval = fetcher.settings.interval;
    let fetcher = Arc::new(fetcher);
    Some(super::every("price fetch", interval, shutdown, move || {
        let f = fetcher.clone();
        async move { f.run().await.map(|_| ()) }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn final_messages_are_fetched_and_others_wait_longer_the_older_they_are() {
        let now = t("2026-11-24T10:00:00Z");
        for s in ["delivered", "read", "failed", "undelivered"] {
            assert_eq!(step(Some(s), now, now), Step::Fetch, "{s}");
        }
        assert_eq!(
            step(Some("sent"), t("2026-11-24T09:59:59Z"), now),
            Step::Wait(now + TimeDelta::seconds(5))
        );
        assert_eq!(
            step(Some("sent"), t("2026-11-24T09:50:00Z"), now),
            Step::Wait(now + TimeDelta::minutes(10))
        );
        assert_eq!(
            step(Some("sent"), t("2026-11-24T00:00:00Z"), now),
            Step::Wait(now + TimeDelta::hours(1))
        );
        assert_eq!(
            step(None, t("2026-11-24T00:00:00Z"), now),
            Step::Wait(now + TimeDelta::hours(1))
        );
        assert_eq!(
            step(Some("sent"), t("2026-11-23T09:00:00Z"), now),
            Step::Fetch
        );
    }

    #[test]
    fn a_missing_price_is_asked_again_with_a_doubling_back_off_then_given_up() {
        let now = t("2026-11-24T10:00:00Z");
        assert_eq!(
            retry_after_no_price(0, now),
            Some(now + TimeDelta::minutes(1))
        );
        assert_eq!(
            retry_after_no_price(3, now),
            Some(now + TimeDelta::minutes(8))
        );
        assert_eq!(
            retry_after_no_price(MAX_CHECKS - 1, now),
            Some(now + TimeDelta::minutes(128))
        );
        assert_eq!(retry_after_no_price(MAX_CHECKS, now), None);
    }
}
