//! Alerts about WhatsApp templates, through the alert channels like any other: a template
//! WhatsApp rejected, paused or disabled (`template_blocked`), one Meta moved to another
//! category (`template_category`), one deleted at Twilio (`template_deleted`) — each naming
//! the broadcasts and reminders that use it — and a catalogue that could not be read
//! several times in a row (`template_sync`). One open alert per template and kind; a blocked
//! or deleted template that comes back resolves its alert.

use sqlx::PgPool;

use crate::config::Channels;
use crate::domain::template::{Change, ChangeField};
use crate::storage::alerts::{self, AlertRow};
use crate::storage::pending_work::{self, Through};
use crate::storage::templates;

pub const BLOCKED: &str = "template_blocked";
pub const CATEGORY: &str = "template_category";
pub const DELETED: &str = "template_deleted";
pub const SYNC: &str = "template_sync";

/// Failed syncs in a row before `template_sync` fires.
pub const SYNC_FAILURES: i32 = 3;

/// "used by broadcasts #3, #5 and reminder #2", or that nothing still to send uses it.
pub fn usage(broadcasts: &[i64], reminders: &[i64]) -> String {
    let list = |noun: &str, ids: &[i64]| -> Option<String> {
        if ids.is_empty() {
            return None;
        }
        let ids: Vec<String> = ids.iter().map(|i| format!("#{i}")).collect();
        let s = if ids.len() == 1 { "" } else { "s" };
        Some(format!("{noun}{s} {}", ids.join(", ")))
    };
    let parts: Vec<String> = [list("broadcast", broadcasts), list("reminder", reminders)]
        .into_iter()
        .flatten()
        .collect();
    match parts.len() {
        0 => "no broadcast or reminder still to send uses it".to_owned(),
        _ => format!("used by {}", parts.join(" and ")),
    }
}

fn severity_of(status: &str) -> &'static str {
    match status {
        "disabled" | "rejected" => "critical",
        _ => "warning",
    }
}

/// Raises and resolves the alerts for what one sync changed.
pub async fn on_changes(
    pool: &PgPool,
    channels: &Channels,
    changes: &[Change],
) -> sqlx::Result<Vec<AlertRow>> {
    let mut out = Vec::new();
    if changes.is_empty() {
        return Ok(out);
    }
    let mut tx = pool.begin().await?;
    for c in changes {
        let to = c.to.as_deref().unwrap_or_default();
        let from = c.from.as_deref().unwrap_or("none");
        let resolve = match c.field {
            ChangeField::Status if !c.alerts() && to == "approved" => Some(BLOCKED),
            ChangeField::Presence if !c.alerts() => Some(DELETED),
            _ => None,
        };
        if let Some(kind) = resolve {
            out.extend(alerts::resolve(&mut tx, kind, &c.sid, &channels.names_for(kind)).await?);
            continue;
        }
        if !c.alerts() {
            continue;
        }
        let name = templates::name_of(&mut tx, &c.sid)
            .await?
            .unwrap_or_else(|| c.sid.clone());
        let (broadcasts, reminders) =
            pending_work::using(&mut tx, Through::Template, &c.sid).await?;
        let used = usage(&broadcasts, &reminders);
        let (kind, severity, message) = match c.field {
            ChangeField::Status => (
                BLOCKED,
                severity_of(to),
                format!(
                    "Template {name} ({}) is {to} at WhatsApp (was {from}); {used}",
                    c.sid
                ),
            ),
            ChangeField::Category => (
                CATEGORY,
                "warning",
                format!(
                    "Meta moved template {name} ({}) from {from} to {to}, which changes its price; {used}",
                    c.sid
                ),
            ),
            ChangeField::Presence => (
                DELETED,
                "warning",
                format!("Template {name} ({}) was deleted at Twilio; {used}", c.sid),
            ),
        };
        out.extend(
            alerts::fire(
                &mut tx,
                kind,
                &c.sid,
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

/// Raises `template_sync` after [`SYNC_FAILURES`] failed syncs in a row; a sync that works
/// resolves it.
pub async fn on_sync(
    pool: &PgPool,
    channels: &Channels,
    failures: i32,
    error: Option<&str>,
) -> sqlx::Result<Option<AlertRow>> {
    super::on_sync_failures(pool, channels, SYNC, SYNC_FAILURES, failures, error, |e| {
        format!(
            "Twilio's template catalogue could not be read {failures} times in a row ({e}); sends use the statuses last read"
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_what_still_uses_a_template() {
        assert_eq!(
            usage(&[3, 5], &[2]),
            "used by broadcasts #3, #5 and reminder #2"
        );
        assert_eq!(usage(&[], &[7, 8]), "used by reminders #7, #8");
        assert_eq!(
            usage(&[], &[]),
            "no broadcast or reminder still to send uses it"
        );
    }
}
