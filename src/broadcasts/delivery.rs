//! Sending one queued recipient, exactly once.
//!
//! Twilio has no idempotency key for messages, so wadash records the intent before calling
//! Twilio (the row is `sending`, with the claim time, committed) and the MessageSid after.
//! Whatever happens in between — the process is killed, the request times out after Twilio
//! took it, Twilio answers 500 — the row stays `sending`. Such a row is picked up again only
//! after it went stale, and then first looked up at Twilio (messages to that number from
//! that sender since the claim, with the same body): if Twilio has it, it is recorded as
//! sent; only if Twilio has nothing is it sent again. Answers that prove nothing was sent
//! (429, 503, a refused request) put the row back in the queue or fail it at once.

use crate::pricing::book::PriceBook;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::{is_retryable, message_for};
use crate::sending::{self, SendError, SendOptions};
use crate::storage::broadcasts::{self as store, BroadcastRow, Claimed, Failure};
use crate::twilio::client::{CreateMessage, ListMessages, Sender, TwilioClient, TwilioError};

/// What became of one recipient (for counting and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Found at Twilio after an interruption: sent before, recorded now.
    Found,
    Failed,
    /// Back in the queue for later.
    Requeued,
    /// Unknown whether Twilio took it: left for the lookup.
    Unsure,
}

/// A claimed recipient checked against the send policy and ready to go.
#[derive(Debug)]
pub struct Ready {
    msg: CreateMessage,
    facts: crate::costs::CostFacts,
}

/// How the messages of `b` are sent: under the policy, priced in the broadcast's category.
fn options(b: &BroadcastRow) -> SendOptions {
    SendOptions {
        force: false,
        category: b
            .template_category
            .as_deref()
            .and_then(|c| crate::pricing::Category::parse(c).ok()),
        broadcast_id: Some(b.id),
        // The runner takes the slots of broadcast messages.
        ..Default::default()
    }
}

/// Builds and checks one claimed recipient's message before its slot comes (consent may have
/// changed since the broadcast was queued: a STOP meanwhile). `Err` carries what became of a
/// recipient that will not be sent.
pub async fn prepare(
    pool: &PgPool,
    b: &BroadcastRow,
    r: &Claimed,
) -> Result<Result<Ready, Outcome>, sqlx::Error> {
    let msg = match message_for(b, &r.number, r.variables.as_ref()) {
        Ok(m) => m,
        Err(e) => {
            return fail(pool, r, None, Some("invalid"), &e, false)
                .await
                .map(Err);
        }
    };
    let opts = options(b);
    match sending::authorize(pool, &msg, opts).await {
        Ok(allowed) => Ok(Ok(Ready {
            facts: sending::cost_facts(&msg, &opts, &allowed),
            msg,
        })),
        // The template was deleted or is no longer approved: the broadcast is held (and this
        // recipient waits in the queue) rather than failing everyone after it.
        Err(SendError::Refused(crate::sending::policy::Refusal::TemplateNotApproved {
            sid,
            ..
        })) => {
            store::unclaim(pool, r.broadcast_id, &r.number).await?;
            super::template_hold::hold(pool, r.broadcast_id, &sid).await?;
            Ok(Err(Outcome::Requeued))
        }
        // Twilio has the sender offline (or no longer lists it), or it was de-authorized here
        // while the recipient was claimed: the broadcast is held, never failed, until a sync
        // finds it online again or an admin moves the work.
        Err(SendError::Refused(
            refusal @ (crate::sending::policy::Refusal::SenderOffline { .. }
            | crate::sending::policy::Refusal::SenderDisabled { .. }),
        )) => {
            store::unclaim(pool, r.broadcast_id, &r.number).await?;
            if let Some((held, reason)) = super::holds::for_sender(&refusal) {
                super::holds::hold(pool, r.broadcast_id, &held, &reason).await?;
            }
            Ok(Err(Outcome::Requeued))
        }
        Err(SendError::Refused(refusal)) => fail(
            pool,
            r,
            None,
            Some(refusal.code()),
            &refusal.to_string(),
            false,
        )
        .await
        .map(Err),
        Err(e) => {
            store::requeue(pool, r.broadcast_id, &r.number, 5.0, &e.to_string()).await?;
            Ok(Err(Outcome::Requeued))
        }
    }
}

/// Sends a prepared recipient now and records the answer.
/// When a broadcast message was to leave and when it did, recorded with its recipient.
#[derive(Debug, Clone, Copy)]
pub struct SendTimes {
    /// The send slot reserved for it in `send_slots` (the database's clock).
    pub slot_at: chrono::DateTime<chrono::Utc>,
    /// When the pacer let it go to Twilio.
    pub left_at: chrono::DateTime<chrono::Utc>,
}

pub async fn send(
    pool: &PgPool,
    client: &TwilioClient,
    prices: &PriceBook,
    r: &Claimed,
    ready: Ready,
    times: SendTimes,
) -> Result<Outcome, sqlx::Error> {
    let sender = match &ready.msg.sender {
        Sender::From(a) => a.as_str().to_owned(),
        Sender::MessagingService(mg) => mg.clone(),
    };
    let msg = &ready.msg;
    match client.create_message(msg).await {
        Ok(resource) => {
            let times = Some((times.slot_at, times.left_at));
            store::mark_sent(pool, r.broadcast_id, &r.number, &resource.sid, times).await?;
            if let Err(e) = sending::record(pool, prices, msg, &resource, &ready.facts).await {
                // The recipient is sent; the message row comes with its first callback.
                tracing::warn!(sid = %resource.sid, error = %e, "broadcast message sent but its first event not stored");
            }
            Ok(Outcome::Sent)
        }
        Err(e) => on_error(pool, r, &sender, e).await,
    }
}

async fn on_error(
    pool: &PgPool,
    r: &Claimed,
    sender: &str,
    e: TwilioError,
) -> Result<Outcome, sqlx::Error> {
    match &e {
        // Twilio did not take the message: try again after a pause, and hold every
        // instance's sends from this sender for a second.
        TwilioError::Api { status: 429, .. } | TwilioError::Api { status: 503, .. } => {
            crate::storage::send_slots::hold(pool, sender, 1.0).await?;
            let delay = backoff(r.attempts);
            store::requeue(pool, r.broadcast_id, &r.number, delay, &e.to_string()).await?;
            Ok(Outcome::Requeued)
        }
        // The account itself is refused: every other recipient would fail the same way.
        TwilioError::Api { status, code, .. }
            if *status == 401 || code.is_some_and(|c| super::ACCOUNT_CODES.contains(&c)) =>
        {
            store::requeue(pool, r.broadcast_id, &r.number, 0.0, &e.to_string()).await?;
            if store::pause_for(pool, r.broadcast_id, &e.to_string()).await? {
                tracing::error!(broadcast = r.broadcast_id, error = %e, "Twilio refused the account: broadcast paused");
            }
            Ok(Outcome::Requeued)
        }
        TwilioError::Api {
            status,
            code,
            message,
            ..
        } if (400..500).contains(status) => {
            let retryable = is_retryable(*code);
            let code = code.and_then(|c| i32::try_from(c).ok());
            fail(pool, r, code, None, message, retryable).await
        }
        TwilioError::Invalid(m) => fail(pool, r, None, Some("invalid"), m, false).await,
        // 5xx, a timeout or a broken connection: Twilio may have taken it. Leave the row
        // `sending`; the lookup decides.
        _ => {
            tracing::warn!(broadcast = r.broadcast_id, error = %e, "unsure whether Twilio took a broadcast message; it will be looked up");
            Ok(Outcome::Unsure)
        }
    }
}

async fn fail(
    pool: &PgPool,
    r: &Claimed,
    code: Option<i32>,
    reason: Option<&str>,
    message: &str,
    retryable: bool,
) -> Result<Outcome, sqlx::Error> {
    store::mark_failed(
        pool,
        r.broadcast_id,
        &r.number,
        &Failure {
            code,
            reason: reason.map(str::to_owned),
            message: message.to_owned(),
            retryable,
        },
    )
    .await?;
    Ok(Outcome::Failed)
}

/// 2, 4, 8 … seconds, at most five minutes.
fn backoff(attempts: i32) -> f64 {
    (2f64.powi(attempts.clamp(1, 8))).min(300.0)
}

/// Looks a stale recipient up at Twilio: recorded as sent when Twilio has the message, back
/// in the queue when it has not. A failed lookup leaves it for the next try.
pub async fn recover(
    pool: &PgPool,
    client: &TwilioClient,
    prices: &PriceBook,
    b: &BroadcastRow,
    r: &Claimed,
) -> Result<Outcome, sqlx::Error> {
    let msg = match message_for(b, &r.number, r.variables.as_ref()) {
        Ok(m) => m,
        Err(e) => return fail(pool, r, None, Some("invalid"), &e, false).await,
    };
    match find_at_twilio(client, &msg, r.claimed_at).await {
        Ok(Some(resource)) => {
            tracing::info!(broadcast = r.broadcast_id, sid = %resource.sid, "an interrupted send was found at Twilio; recorded, not sent again");
            store::mark_sent(pool, r.broadcast_id, &r.number, &resource.sid, None).await?;
            // Whether the window was open when it was sent is no longer known: priced as
            // closed, the upper bound.
            let opts = options(b);
            let facts = crate::costs::CostFacts {
                category: crate::costs::category_of(&msg, opts.category),
                in_window: false,
                broadcast_id: opts.broadcast_id,
            };
            if let Err(e) = sending::record(pool, prices, &msg, &resource, &facts).await {
                tracing::warn!(sid = %resource.sid, error = %e, "recovered message not stored");
            }
            Ok(Outcome::Found)
        }
        Ok(None) => {
            store::requeue(
                pool,
                r.broadcast_id,
                &r.number,
                0.0,
                "interrupted before Twilio took it",
            )
            .await?;
            Ok(Outcome::Requeued)
        }
        Err(e) => {
            tracing::warn!(broadcast = r.broadcast_id, error = %e, "could not look up an interrupted send; trying later");
            Ok(Outcome::Unsure)
        }
    }
}

/// Seconds of clock difference tolerated between this host and Twilio (whose times have a
/// one-second resolution).
const CLOCK_SLACK: TimeDelta = TimeDelta::seconds(5);

/// The message Twilio created for `msg` since `since`, if any.
pub async fn find_at_twilio(
    client: &TwilioClient,
    msg: &CreateMessage,
    since: DateTime<Utc>,
) -> Result<Option<crate::twilio::client::MessageResource>, TwilioError> {
    let from = match &msg.sender {
        Sender::From(a) => Some(a.as_str().to_owned()),
        Sender::MessagingService(_) => None,
    };
    let filter = ListMessages {
        to: Some(msg.to.as_str().to_owned()),
        from,
        sent_on_or_after: Some((since - TimeDelta::days(1)).date_naive()),
        page_size: 100,
        max_pages: 5,
    };
    let found = client.list_messages(&filter).await?;
    Ok(found.into_iter().find(|m| {
        let created = m
            .date_created
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc));
        let recent = created.is_some_and(|c| c >= since - CLOCK_SLACK);
        let same_service = match &msg.sender {
            Sender::MessagingService(mg) => m.messaging_service_sid.as_deref() == Some(mg),
            Sender::From(_) => true,
        };
        let same_body = match (&msg.body, &m.body) {
            (Some(a), Some(b)) => a == b,
            // Templates and media-only messages: Twilio fills the body in itself.
            (None, _) => true,
            (Some(_), None) => false,
        };
        recent && same_service && same_body && m.direction.as_deref() != Some("inbound")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), 2.0);
        assert_eq!(backoff(3), 8.0);
        assert_eq!(backoff(20), 256.0);
        assert!(backoff(0) >= 2.0);
    }
}
