//! Delivering alerts: every instance runs this job; deliveries are claimed with `FOR UPDATE
//! SKIP LOCKED` and retried with a doubling delay (5 s … 5 min), ten times at most.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::channels::ChannelStore;
use super::{Channels, signature, webhook_body};
use crate::storage::alerts::{self, Due};

const MAX_ATTEMPTS: i32 = 10;

/// An error and its causes in one line (a refused address is a cause of reqwest's error).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[derive(Clone)]
pub struct Deliverer {
    pub pool: PgPool,
    /// Read on every pass that has work, so channels saved by an admin apply at once.
    pub channels: ChannelStore,
    /// Checks each hook's destination (`crate::outbound`) and follows no redirect.
    pub http: crate::outbound::Client,
    /// Sends the WhatsApp alerts.
    pub twilio: crate::twilio::client::TwilioClient,
    pub sender: crate::twilio::client::Sender,
    pub prices: crate::pricing::book::PriceBook,
    /// How a WhatsApp alert takes its sender's slot. Its wait is kept short (a claimed
    /// delivery must finish well within its claim); a busy sender is tried again later.
    pub pacing: crate::config::SendPacing,
}

/// Longest a WhatsApp alert waits for its sender's slot (a claim lasts 5 s at first).
const ALERT_SLOT_WAIT: Duration = Duration::from_secs(1);

pub fn start(d: Deliverer, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    crate::tasks::every(
        "alert deliveries",
        Duration::from_secs(1),
        shutdown,
        move || {
            let d = d.clone();
            async move {
                d.run_once().await?;
                Ok(())
            }
        },
    )
}

impl Deliverer {
    /// Delivers what is due; returns how many were delivered.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let due = alerts::claim_due(&self.pool, 20).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let channels = self.channels.current().await;
        let mut sent = 0;
        for d in due {
            let result = self.deliver(&channels.channels, &d).await;
            let give_up = d.attempts >= MAX_ATTEMPTS;
            match &result {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(alert = d.alert_id, channel = %d.channel, attempts = d.attempts, error = %e, "alert not delivered")
                }
            }
            alerts::delivered(&self.pool, &d, result.err().as_deref(), give_up).await?;
        }
        Ok(sent)
    }

    async fn deliver(&self, channels: &Channels, d: &Due) -> Result<(), String> {
        let a = alerts::get(&self.pool, d.alert_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the alert is gone")?;
        if d.channel == "webhook" || d.channel == "topup" {
            let (url, secret) = match d.channel.as_str() {
                "webhook" => (&channels.webhook_url, &channels.webhook_secret),
                _ => (&channels.topup_url, &channels.topup_secret),
            };
            let (Some(url), Some(secret)) = (url, secret) else {
                return Err(format!(
                    "no {} URL and secret are configured any more",
                    d.channel
                ));
            };
            let body = webhook_body(&a, &d.event);
            let ts = chrono::Utc::now().timestamp();
            let resp = self
                .http
                .post(url)
                .map_err(|e| format!("the {} URL is refused: {e}", d.channel))?
                .header("Content-Type", "application/json")
                .header("X-Wadash-Timestamp", ts.to_string())
                .header("X-Wadash-Signature", signature(secret, ts, &body))
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "the webhook could not be reached: {}",
                        error_chain(&e.without_url())
                    )
                })?;
            return match resp.status() {
                s if s.is_success() => Ok(()),
                s => Err(format!("the webhook answered {s}")),
            };
        }
        if let Some(number) = d.channel.strip_prefix("whatsapp:") {
            let text = match d.event.as_str() {
                _ if a.kind == "test" => format!("wadash test: {}", a.message),
                "resolved" => format!("wadash: resolved: {}", a.message),
                _ => format!("wadash {}: {}", a.severity, a.message),
            };
            let req = crate::sending::SendRequest {
                to: number.to_owned(),
                body: Some(text),
                ..Default::default()
            };
            // Ops numbers are told even outside their 24-hour window (Twilio decides).
            let opts = crate::sending::SendOptions {
                force: true,
                pacing: crate::config::SendPacing {
                    max_wait: self.pacing.max_wait.min(ALERT_SLOT_WAIT),
                    ..self.pacing
                },
                ..Default::default()
            };
            return crate::sending::send_request(
                &self.twilio,
                &self.pool,
                &self.prices,
                &self.sender,
                &req,
                opts,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        }
        Err(format!("unknown channel {:?}", d.channel))
    }
}
