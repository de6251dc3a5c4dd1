//! Polls Twilio's `Balance.json` and keeps every reading. Any number of instances run it; a
//! transaction-level advisory lock and the time of the last reading make it one poll per
//! interval in all.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::twilio::client::TwilioClient;

/// Advisory lock key of the balance poll ("wadash balance").
const LOCK: i64 = 0x7761_6461_7368_0b01;

#[derive(Clone)]
pub struct BalancePoller {
    pub pool: PgPool,
    pub twilio: TwilioClient,
    pub interval: Duration,
    pub levels: crate::balance::Levels,
    pub channels: crate::alerts::channels::ChannelStore,
}

pub fn start(
    poller: BalancePoller,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if poller.interval.is_zero() {
        return None;
    }
    let check = poller.interval.min(Duration::from_secs(5)) / 2;
    Some(super::every(
        "balance",
        check.max(Duration::from_millis(100)),
        shutdown,
        move || {
            let poller = poller.clone();
            async move {
                poller.poll_once().await?;
                Ok(())
            }
        },
    ))
}

impl BalancePoller {
    /// Takes a reading if the last one is at least an interval old and no other instance is
    /// taking one. Returns whether it read.
    pub async fn poll_once(&self) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(false);
        }
        let last = crate::storage::balance::last_read_at(&mut tx).await?;
        let due = last.is_none_or(|t| {
            chrono::Utc::now() - t
                >= chrono::TimeDelta::from_std(self.interval).unwrap_or(chrono::TimeDelta::MAX)
        });
        if !due {
            return Ok(false);
        }
        let b = self.twilio.fetch_balance().await?;
        match (b.balance, b.currency.as_deref()) {
            (Some(balance), Some(currency)) => {
                crate::storage::balance::insert(
                    &mut tx,
                    balance,
                    currency,
                    b.account_sid.as_deref(),
                )
                .await?;
                tx.commit().await?;
                let (before, after) =
                    crate::balance::status::reassess(&self.pool, &self.levels, chrono::Utc::now())
                        .await?;
                let shown = format!("{} {currency}", crate::balance::money(balance));
                let channels = self.channels.current().await;
                crate::alerts::on_credit_level(
                    &self.pool,
                    &channels.channels,
                    before,
                    after,
                    &shown,
                )
                .await?;
                Ok(true)
            }
            _ => {
                // A subaccount: its parent holds the balance.
                tracing::debug!("Twilio reports no balance for this account (a subaccount?)");
                Ok(false)
            }
        }
    }
}
