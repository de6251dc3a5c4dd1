//! Alerts: conditions an ops team must hear about, one open alert per condition (firing,
//! acknowledged, resolved), delivered to the configured channels — a signed JSON webhook
//! (Slack-compatible `text`) and WhatsApp messages to ops numbers through wadash itself —
//! with retries.
//!
//! The credit levels raise `credit_low` and `credit_critical`; the rules ([`evaluate`]) raise
//! the rest. Channels come from the environment with what admins saved laid over them
//! ([`channels`]); every page shows the open alerts from a per-instance snapshot ([`open`]).

pub mod channels;
pub mod delivery;
pub mod evaluate;
pub mod open;
pub mod rules;
pub mod senders;
pub mod templates;

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::balance::Level;
use crate::storage::alerts::{self, AlertRow};

pub use crate::config::Channels;

/// A periodic sync from Twilio that failed `failures` times in a row with `error` (`None`: it
/// worked): raises alert `kind` with `message` once `threshold` is reached, resolves it on a
/// sync that works.
pub(crate) async fn on_sync_failures(
    pool: &PgPool,
    channels: &Channels,
    kind: &str,
    threshold: i32,
    failures: i32,
    error: Option<&str>,
    message: impl FnOnce(&str) -> String,
) -> sqlx::Result<Option<AlertRow>> {
    let mut conn = pool.acquire().await?;
    let names = channels.names_for(kind);
    match error {
        None => alerts::resolve(&mut conn, kind, "", &names).await,
        Some(e) if failures >= threshold => {
            alerts::fire(&mut conn, kind, "", "warning", &message(e), &names).await
        }
        Some(_) => Ok(None),
    }
}

/// What a credit level change does to the credit alerts: (kind, fire?) in order. One credit
/// alert is open at a time, the one of the level: critical supersedes low (low is resolved as
/// critical fires), and coming back from critical to low resolves critical and raises low.
pub fn credit_changes(before: Level, after: Level) -> Vec<(&'static str, bool)> {
    let kind = |level| match level {
        Level::Ok => None,
        Level::Low => Some("credit_low"),
        Level::Critical => Some("credit_critical"),
    };
    if kind(before) == kind(after) {
        return Vec::new();
    }
    kind(before)
        .map(|k| (k, false))
        .into_iter()
        .chain(kind(after).map(|k| (k, true)))
        .collect()
}

/// Raises and resolves the credit alerts for a level change.
pub async fn on_credit_level(
    pool: &PgPool,
    channels: &Channels,
    before: Level,
    after: Level,
    balance: &str,
) -> sqlx::Result<Vec<AlertRow>> {
    let mut tx = pool.begin().await?;
    let mut changed = Vec::new();
    for (kind, fire) in credit_changes(before, after) {
        let names = channels.names_for(kind);
        let row = if fire {
            let (severity, what) = match kind {
                "credit_critical" => ("critical", "critically low"),
                _ => ("warning", "low"),
            };
            let message = format!("Twilio credit is {what}: {balance} left");
            alerts::fire(&mut tx, kind, "", severity, &message, &names).await?
        } else {
            alerts::resolve(&mut tx, kind, "", &names).await?
        };
        changed.extend(row);
    }
    tx.commit().await?;
    Ok(changed)
}

/// Acknowledges a firing alert for `by`; `None` if it is not firing.
pub async fn acknowledge(pool: &PgPool, id: i64, by: &str) -> sqlx::Result<Option<AlertRow>> {
    let mut tx = pool.begin().await?;
    let row = alerts::acknowledge(&mut tx, id, by).await?;
    tx.commit().await?;
    Ok(row)
}

/// Why a test alert was not sent.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("no channel is configured: set a webhook or WhatsApp ops numbers first")]
    NoChannel,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Sends a test notification through the real delivery path: a test alert (kind `test`,
/// born resolved, so it never shows as open) with a delivery queued to every channel. The
/// top-up hook only when asked, since its receiver may recharge the account on a call.
pub async fn send_test(
    pool: &PgPool,
    channels: &Channels,
    by: &str,
    include_topup: bool,
) -> Result<AlertRow, TestError> {
    let mut names = channels.names();
    if include_topup && channels.topup_url.is_some() {
        names.push("topup".to_owned());
    }
    if names.is_empty() {
        return Err(TestError::NoChannel);
    }
    let message = format!("Test alert sent by {by}: this channel receives wadash alerts");
    let mut tx = pool.begin().await?;
    let row = alerts::insert_test(&mut tx, &message, &names).await?;
    tx.commit().await?;
    Ok(row)
}

/// The webhook's JSON: a Slack-compatible `text` and the alert itself.
pub fn webhook_body(a: &AlertRow, event: &str) -> String {
    let mark = match (event, a.severity.as_str()) {
        _ if a.kind == "test" => "TEST",
        ("resolved", _) => "RESOLVED",
        (_, "critical") => "CRITICAL",
        _ => "WARNING",
    };
    serde_json::json!({
        "text": format!("[{mark}] {} (wadash)", a.message),
        "event": event,
        "alert": a,
    })
    .to_string()
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: a receiver recomputes it, compares
/// in constant time and refuses old timestamps, so a captured request cannot be replayed.
pub fn signature(secret: &SecretString, timestamp: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", crate::domain::hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_level_changes_fire_and_resolve_the_right_alerts() {
        use Level::*;
        assert_eq!(credit_changes(Ok, Low), vec![("credit_low", true)]);
        assert_eq!(
            credit_changes(Ok, Critical),
            vec![("credit_critical", true)]
        );
        assert_eq!(
            credit_changes(Low, Critical),
            vec![("credit_low", false), ("credit_critical", true)]
        );
        assert_eq!(
            credit_changes(Critical, Low),
            vec![("credit_critical", false), ("credit_low", true)]
        );
        assert_eq!(
            credit_changes(Critical, Ok),
            vec![("credit_critical", false)]
        );
        assert_eq!(credit_changes(Low, Ok), vec![("credit_low", false)]);
        for level in [Ok, Low, Critical] {
            assert_eq!(credit_changes(level, level), vec![]);
        }
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let secret = SecretString::from("s3cret".to_owned());
        let a = signature(&secret, 1_700_000_000, "{\"text\":\"x\"}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64, "{a}");
        assert_ne!(a, signature(&secret, 1_700_000_001, "{\"text\":\"x\"}"));
        assert_ne!(a, signature(&secret, 1_700_000_000, "{\"text\":\"y\"}"));
        assert_eq!(a, signature(&secret, 1_700_000_000, "{\"text\":\"x\"}"));
    }
}
