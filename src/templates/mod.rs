//! WhatsApp templates: the catalogue synced from Twilio's Content API (every
//! `WADASH_TEMPLATE_SYNC_SECS` by one instance, and on demand), with WhatsApp's approval,
//! category and the history of both.

pub mod definition;
pub mod manage;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::alerts::channels::ChannelStore;
use crate::alerts::templates as alerts;
use crate::domain::template::{Change, TemplateRecord, UNSUBMITTED};
use crate::storage::sync_state;
use crate::storage::templates::{self, ChangeRow, Filter, SyncState, TemplateRow};
use crate::twilio::content::{ContentClient, Template};

/// What one sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    /// Templates at Twilio now.
    pub templates: usize,
    pub changes: Vec<Change>,
}

/// Twilio's template as wadash stores it: no approval means never submitted; an empty
/// category or rejection reason is none.
pub fn record(t: Template) -> TemplateRecord {
    let approval = t.whatsapp.unwrap_or_default();
    let non_empty = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    TemplateRecord {
        sid: t.sid,
        name: t.friendly_name,
        language: t.language,
        types: serde_json::Value::Object(t.types),
        variables: t.variables,
        status: non_empty(approval.status).unwrap_or_else(|| UNSUBMITTED.to_owned()),
        category: non_empty(approval.category),
        rejection_reason: non_empty(approval.rejection_reason),
        whatsapp_name: non_empty(approval.name),
        updated_at: t.date_updated.as_deref().and_then(parse_time),
    }
}

/// Twilio's dates: RFC 3339 in the Content API's answers, RFC 2822 in its documentation.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc2822(s))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Reads the whole catalogue from Twilio and stores it; a failure is recorded (the pages show
/// it, and the count of failures in a row) and returned.
#[tracing::instrument(name = "templates.sync", skip_all)]
pub async fn sync(pool: &PgPool, content: &ContentClient) -> anyhow::Result<Synced> {
    // Before the read: what wadash changes at Twilio from here on may be newer than the list.
    let mark = sync_state::mark(pool).await?;
    let fetched = match content.list_with_approvals().await {
        Ok(all) => all,
        Err(e) => {
            let failures = templates::record_failure(pool, &e.to_string()).await?;
            tracing::warn!(error = %e, failures, "the template catalogue could not be read");
            return Err(e.into());
        }
    };
    // The Content wadash creates for bots' choices is sent in sessions, not a template.
    let records: Vec<TemplateRecord> = fetched
        .into_iter()
        .filter(|t| {
            !t.friendly_name
                .starts_with(crate::domain::bot::CHOICE_CONTENT_PREFIX)
        })
        .map(record)
        .collect();
    let changes = templates::apply_catalogue(pool, &records, mark).await?;
    tracing::info!(
        templates = records.len(),
        changes = changes.len(),
        "template catalogue synced"
    );
    Ok(Synced {
        templates: records.len(),
        changes,
    })
}

/// A sync, then the alerts for what it changed (or for failing several times in a row).
pub async fn sync_and_alert(
    pool: &PgPool,
    content: &ContentClient,
    channels: &ChannelStore,
) -> anyhow::Result<Synced> {
    let result = sync(pool, content).await;
    let current = channels.current().await;
    let channels = &current.channels;
    match &result {
        Ok(s) => {
            alerts::on_changes(pool, channels, &s.changes).await?;
            alerts::on_sync(pool, channels, 0, None).await?;
        }
        Err(e) => {
            let failures = templates::sync_state(pool).await?.failures;
            alerts::on_sync(pool, channels, failures, Some(&e.to_string())).await?;
        }
    }
    result
}

/// A scheduled sync: done when this instance claims the interval's turn, else nothing.
pub async fn sync_if_due(
    pool: &PgPool,
    content: &ContentClient,
    channels: &ChannelStore,
    interval: std::time::Duration,
) -> anyhow::Result<Option<Synced>> {
    if !templates::claim_due(pool, interval).await? {
        return Ok(None);
    }
    sync_and_alert(pool, content, channels).await.map(Some)
}

/// A template as the API (and the pages) show it.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateView {
    pub sid: String,
    pub name: String,
    pub language: String,
    pub types: serde_json::Value,
    pub variables: BTreeMap<String, String>,
    pub whatsapp: WhatsAppView,
    pub updated_at: Option<DateTime<Utc>>,
    pub synced_at: DateTime<Utc>,
    /// Set when Twilio no longer has it.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When wadash last sent with it (noted at most once a minute), if ever.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhatsAppView {
    pub status: String,
    pub category: Option<String>,
    pub rejection_reason: Option<String>,
}

impl From<TemplateRow> for TemplateView {
    fn from(r: TemplateRow) -> Self {
        Self {
            sid: r.sid,
            name: r.name,
            language: r.language,
            types: r.types.0,
            variables: r.variables.0,
            whatsapp: WhatsAppView {
                status: r.status,
                category: r.category,
                rejection_reason: r.rejection_reason,
            },
            updated_at: r.updated_at,
            synced_at: r.synced_at,
            deleted_at: r.deleted_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// How the catalogue's syncs have gone, as shown beside it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncView {
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Failed syncs in a row.
    pub failures: i32,
}

impl From<SyncState> for SyncView {
    fn from(s: SyncState) -> Self {
        Self {
            last_ok_at: s.last_ok_at,
            last_attempt_at: s.last_attempt_at,
            last_error: s.last_error,
            failures: s.failures,
        }
    }
}

/// One page of the catalogue and the cursor of the next (the last SID shown, when more follow).
pub async fn page(
    pool: &PgPool,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<(Vec<TemplateView>, Option<String>)> {
    let mut rows = templates::list(pool, filter, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(|r| r.sid.clone())).flatten();
    Ok((rows.into_iter().map(TemplateView::from).collect(), next))
}

/// One template with its history, oldest change first.
pub async fn detail(
    pool: &PgPool,
    sid: &str,
) -> sqlx::Result<Option<(TemplateView, Vec<ChangeRow>)>> {
    let Some(row) = templates::get(pool, sid).await? else {
        return Ok(None);
    };
    let history = templates::history(pool, sid).await?;
    Ok(Some((row.into(), history)))
}

/// The window "recent sends" counts over.
pub const RECENT_DAYS: i64 = 30;

/// How many messages wadash sent with each of `sids` in the last [`RECENT_DAYS`] days.
pub async fn recent_sends(
    pool: &PgPool,
    sids: &[String],
) -> sqlx::Result<std::collections::HashMap<String, i64>> {
    let since = Utc::now() - chrono::TimeDelta::days(RECENT_DAYS);
    templates::sends_since(pool, sids, since).await
}

pub async fn sync_state(pool: &PgPool) -> sqlx::Result<SyncView> {
    templates::sync_state(pool).await.map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_never_submitted_is_unsubmitted_with_no_category() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "sid": "HX0123456789abcdef0123456789abcdef", "friendly_name": "hello",
            "language": "en", "types": {"twilio/text": {"body": "hi"}},
            "date_updated": "2026-12-01T10:00:00Z"
        }))
        .unwrap();
        let r = record(t);
        assert_eq!(r.status, "unsubmitted");
        assert_eq!(r.category, None);
        assert_eq!(r.updated_at, Some("2026-12-01T10:00:00Z".parse().unwrap()));
    }

    #[test]
    fn twilios_empty_strings_are_none_and_dates_parse_in_either_form() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "sid": "HX0123456789abcdef0123456789abcdef",
            "approval_requests": {"name": "", "category": "", "status": "unsubmitted", "rejection_reason": ""},
            "date_updated": "Tue, 01 Dec 2026 10:00:00 +0000"
        }))
        .unwrap();
        let r = record(t);
        assert_eq!(
            (r.category, r.rejection_reason, r.whatsapp_name),
            (None, None, None)
        );
        assert!(r.updated_at.is_some());
    }
}
