//! One-off sends take their sender's next send slot, so that they keep to the sender's limit
//! together with broadcasts, and go ahead of a broadcast's queue.
//!
//! Broadcasts and one-off sends share each sender's line of slots in `send_slots`, spaced
//! `1 / (mps × pace)` apart. The broadcast runner reserves only about a second of slots at a
//! time (see `jobs::broadcasts`), so a one-off send waits behind at most that second, never
//! behind the rest of the broadcast: the runner's next batch starts after it. When the line is
//! longer than [`SendPacing::max_wait`] (one-off sends alone faster than the sender allows,
//! e.g. the sandbox's one message every three seconds), the send is refused with the time
//! until the line is free, and nothing is sent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub use crate::config::SendPacing;
use crate::storage::send_slots;

use super::SendError;

/// Seconds between two slots of a sender of `mps` messages per second.
pub fn spacing(mps: f64, pace: f64) -> f64 {
    1.0 / (mps * pace)
}

/// Takes the next slot of `sender` and waits for it; returns the slot (the database's
/// clock). Refused with [`SendError::Busy`] when the slot is further away than the pacing
/// allows.
pub async fn wait_for_slot(
    pool: &PgPool,
    sender: &str,
    mps: f64,
    pacing: SendPacing,
) -> Result<DateTime<Utc>, SendError> {
    let taken = send_slots::reserve_within(
        pool,
        sender,
        1,
        spacing(mps, pacing.pace),
        pacing.max_wait.as_secs_f64(),
    )
    .await
    .map_err(SendError::Database)?;
    match taken {
        Ok(slot) => {
            sleep_secs(slot.wait_secs).await;
            Ok(slot.first)
        }
        // A retry is taken once the line is within the wait again.
        Err(free_in) => Err(SendError::Busy {
            sender: sender.to_owned(),
            retry_after: Duration::from_secs_f64(
                (free_in - pacing.max_wait.as_secs_f64()).ceil().max(1.0),
            ),
        }),
    }
}

/// What became of an automatic reply's slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplySlot {
    /// Its slots were taken and the first came (or the answer waited for it).
    OnTime,
    /// The sender's line is longer than a reply may wait: nothing was taken (a slot far
    /// ahead would hold the line for a message that leaves now), the answer goes at once.
    LineTooLong { free_in: f64 },
    /// The database did not answer in time: the answer goes at once.
    NoAnswer,
}

/// Takes `count` slots of `sender` for the automatic replies of one inbound message and
/// waits for the first, if it comes within the pacing's wait and before `latest`; Twilio
/// sends a TwiML answer's messages at once. Never later than `latest`, even when the database
/// is slow: the replies are already stored, and the answer must carry them.
pub async fn wait_for_reply_slots(
    pool: &PgPool,
    sender: &str,
    count: usize,
    pacing: SendPacing,
    latest: tokio::time::Instant,
) -> sqlx::Result<ReplySlot> {
    let now = tokio::time::Instant::now();
    let max_wait = pacing
        .max_wait
        .min(latest.saturating_duration_since(now))
        .as_secs_f64();
    let take = async {
        let row = crate::storage::senders::by_address(pool, sender).await?;
        let mps = mps_of(sender, row.as_ref());
        send_slots::reserve_within(
            pool,
            sender,
            count as i64,
            spacing(mps, pacing.pace),
            max_wait,
        )
        .await
    };
    match tokio::time::timeout_at(latest, take).await {
        Err(_) => Ok(ReplySlot::NoAnswer),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Err(free_in))) => Ok(ReplySlot::LineTooLong { free_in }),
        Ok(Ok(Ok(slot))) => {
            let due =
                tokio::time::Instant::now() + Duration::from_secs_f64(slot.wait_secs.max(0.0));
            tokio::time::sleep_until(due.min(latest)).await;
            Ok(ReplySlot::OnTime)
        }
    }
}

/// The sender's limit in messages per second: as registered, else Twilio's default for its
/// kind.
pub fn mps_of(address: &str, row: Option<&crate::storage::senders::SenderRow>) -> f64 {
    match row {
        Some(r) if r.mps > 0.0 => r.mps,
        _ if address == crate::senders::SANDBOX_NUMBER => crate::senders::SANDBOX_MPS,
        _ => crate::senders::DEFAULT_MPS,
    }
}

async fn sleep_secs(secs: f64) {
    if secs > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_is_the_inverse_of_the_paced_rate() {
        assert!((spacing(80.0, 1.0) - 0.0125).abs() < 1e-12);
        assert!((spacing(1.0 / 3.0, 1.0) - 3.0).abs() < 1e-9);
        assert!(spacing(80.0, 0.985) > spacing(80.0, 1.0));
    }

    #[test]
    fn unknown_senders_get_their_kinds_default() {
        assert_eq!(
            mps_of("whatsapp:+15550001111", None),
            crate::senders::DEFAULT_MPS
        );
        assert_eq!(
            mps_of(crate::senders::SANDBOX_NUMBER, None),
            crate::senders::SANDBOX_MPS
        );
    }
}
