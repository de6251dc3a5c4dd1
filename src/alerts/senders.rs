//! Alerts about WhatsApp senders from the sender sync, through the alert channels like any
//! other: a sender gone `OFFLINE` (with Twilio's reasons), its quality rating dropped, its
//! messaging limit changed, its webhooks pointing away from this wadash, or gone from Twilio —
//! each naming the broadcasts and reminders that use the sender — and a sender list that could
//! not be read several times in a row (`sender_sync`). One open alert per sender and kind; a
//! sender that recovers resolves its alert.

use sqlx::PgPool;

use super::templates::usage;
use crate::config::Channels;
use crate::domain::sender_health::{Change, ChangeField, OfflineReason};
use crate::storage::alerts::{self, AlertRow};
use crate::storage::pending_work::{self, Through};

pub const OFFLINE: &str = "sender_offline";
pub const QUALITY: &str = "sender_quality";
pub const LIMIT: &str = "sender_limit";
pub const WEBHOOKS: &str = "sender_webhooks";
pub const GONE: &str = "sender_gone";
pub const SYNC: &str = "sender_sync";

/// Failed syncs in a row before `sender_sync` fires.
pub const SYNC_FAILURES: i32 = 3;

fn kind_of(field: ChangeField) -> &'static str {
    match field {
        ChangeField::Status => OFFLINE,
        ChangeField::QualityRating => QUALITY,
        ChangeField::MessagingLimit => LIMIT,
        ChangeField::Webhooks => WEBHOOKS,
        ChangeField::Presence => GONE,
    }
}

/// "63112: The Meta account was disabled; …", or nothing when Twilio gave no reason.
fn reasons_text(reasons: &[OfflineReason]) -> String {
    let each: Vec<String> = reasons
        .iter()
        .map(|r| match (r.code.is_empty(), r.message.is_empty()) {
            (false, false) => format!("{}: {}", r.code, r.message),
            (true, false) => r.message.clone(),
            _ => r.code.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    if each.is_empty() {
        "Twilio gave no reason".to_owned()
    } else {
        format!("Twilio says {}", each.join("; "))
    }
}

/// Raises and resolves the alerts for what one sync changed. `reasons_of` gives a sender's
/// offline reasons by address.
pub async fn on_changes(
    pool: &PgPool,
    channels: &Channels,
    changes: &[Change],
    reasons_of: impl Fn(&str) -> Vec<OfflineReason>,
) -> sqlx::Result<Vec<AlertRow>> {
    let mut out = Vec::new();
    if changes.is_empty() {
        return Ok(out);
    }
    let mut tx = pool.begin().await?;
    for c in changes {
        let kind = kind_of(c.field);
        let subject = c.address.as_str();
        if c.recovers() {
            out.extend(alerts::resolve(&mut tx, kind, subject, &channels.names_for(kind)).await?);
            continue;
        }
        if !c.alerts() {
            continue;
        }
        let (broadcasts, reminders) =
            pending_work::using(&mut tx, Through::Sender, subject).await?;
        let used = usage(&broadcasts, &reminders);
        let from = c.from.as_deref().unwrap_or("none");
        let to = c.to.as_deref().unwrap_or_default();
        let (severity, message) = match c.field {
            ChangeField::Status => (
                "critical",
                format!(
                    "Sender {subject} is OFFLINE at WhatsApp (was {from}): {}; {used}",
                    reasons_text(&reasons_of(subject))
                ),
            ),
            ChangeField::QualityRating => (
                "warning",
                format!(
                    "Sender {subject}'s quality rating dropped from {from} to {to}: WhatsApp may lower its messaging limit; {used}"
                ),
            ),
            ChangeField::MessagingLimit => (
                "warning",
                format!("Sender {subject}'s messaging limit changed from {from} to {to}; {used}"),
            ),
            ChangeField::Webhooks => (
                "critical",
                format!(
                    "Sender {subject}'s webhooks at Twilio do not point at this wadash (WADASH_PUBLIC_URL + /wa and /sts): its messages and delivery callbacks go elsewhere; {used}"
                ),
            ),
            ChangeField::Presence => (
                "critical",
                format!("Sender {subject} is no longer at Twilio; {used}"),
            ),
        };
        out.extend(
            alerts::fire(
                &mut tx,
                kind,
                subject,
                severity,
                &message,
                &channels.names_for(kind),
            )
            .await?,
        );
    }
    tx.commit().await?;
    Ok(out)
}

/// Raises `sender_sync` after [`SYNC_FAILURES`] failed syncs in a row; a sync that works
/// resolves it.
pub async fn on_sync(
    pool: &PgPool,
    channels: &Channels,
    failures: i32,
    error: Option<&str>,
) -> sqlx::Result<Option<AlertRow>> {
    super::on_sync_failures(pool, channels, SYNC, SYNC_FAILURES, failures, error, |e| {
        format!(
            "Twilio's list of WhatsApp senders could not be read {failures} times in a row ({e}); their status on wadash may be stale"
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_reasons_read_as_twilio_gave_them() {
        let r = |code: &str, message: &str| OfflineReason {
            code: code.into(),
            message: message.into(),
            more_info: String::new(),
        };
        assert_eq!(
            reasons_text(&[
                r("63112", "The Meta account was disabled"),
                r("", "Display name rejected")
            ]),
            "Twilio says 63112: The Meta account was disabled; Display name rejected"
        );
        assert_eq!(reasons_text(&[]), "Twilio gave no reason");
    }
}
