//! WhatsApp senders as Twilio sees them, on the dashboard: the Twilio part of each row of
//! `/admin/senders` (status badge, quality rating, messaging limit, offline reasons, a warning
//! when its webhooks point elsewhere, when it was last synced, and a stale notice while the
//! sender sync fails), "Sync now" (`POST /admin/senders/sync`, admin), and a sender's own page
//! (`/admin/senders/{id}`, admin) with its settings, Twilio's state and its history. Thin over
//! [`crate::onboarding::sync`] and the stored senders.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::format::{Stamp, count};
use super::{Allowed, Chrome, CsrfOnly, DoneQuery, PageError, Posted, done_redirect};
use crate::domain::sender_health;
use crate::onboarding::sync::{SyncContext, sync_and_alert};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::pending_work::Through;
use crate::storage::senders::SenderRow;
use crate::storage::sync_state::{self, Sync, SyncState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Digits only, so that `/admin/senders/new` (the onboarding wizard) is not taken.
    cfg.route("/admin/senders/sync", web::post().to(sync_now))
        .route("/admin/senders/{id:\\d+}", web::get().to(one));
}

/// A badge class for Twilio's status: online green, offline or gone red, on its way blue.
fn badge(status: &str) -> &'static str {
    match status {
        s if sender_health::is_online(s) => "status status-approved",
        "OFFLINE" | sender_health::GONE => "status status-rejected",
        "CREATING" | "PENDING_VERIFICATION" | "VERIFYING" | "TWILIO_REVIEW" | "DRAFT" => {
            "status status-pending"
        }
        _ => "status",
    }
}

/// One of Twilio's offline reasons, its link kept only when it is https.
pub(super) struct ReasonView {
    pub code: String,
    pub message: String,
    pub link: Option<String>,
}

fn https_only(u: &str) -> Option<String> {
    reqwest::Url::parse(u.trim())
        .ok()
        .filter(|url| url.scheme() == "https" && url.host_str().is_some())
        .map(|url| url.to_string())
}

/// What Twilio says of one sender, as the pages show it.
pub(super) struct TwilioView {
    pub status: String,
    pub badge: &'static str,
    pub sid: String,
    pub quality: String,
    pub limit: String,
    pub reasons: Vec<ReasonView>,
    /// Why its webhooks are not wadash's and what to set them to, when they are not.
    pub webhooks_warning: Option<String>,
    pub synced: Option<Stamp>,
    pub gone: Option<Stamp>,
}

/// Twilio's view of `s`; None for a sender Twilio's Senders API never listed (the sandbox, a
/// Messaging Service, a number added by hand).
pub(super) fn twilio_view(
    s: &SenderRow,
    public_url: &str,
    tz: chrono_tz::Tz,
) -> Option<TwilioView> {
    let t = &s.twilio;
    if t.twilio_sid.is_none() && t.twilio_status.is_none() {
        return None;
    }
    let status = match t.twilio_gone_at {
        Some(_) => sender_health::GONE.to_owned(),
        None => t.twilio_status.clone().unwrap_or_default(),
    };
    let base = public_url.trim_end_matches('/');
    let now = |u: &Option<String>| {
        u.clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "nothing".into())
    };
    Some(TwilioView {
        badge: badge(&status),
        status,
        sid: t.twilio_sid.clone().unwrap_or_default(),
        quality: t.quality_rating.clone().unwrap_or_default(),
        limit: t.messaging_limit.clone().unwrap_or_default(),
        reasons: t
            .offline_reasons
            .0
            .iter()
            .map(|r| ReasonView {
                code: r.code.clone(),
                message: r.message.clone(),
                link: https_only(&r.more_info),
            })
            .collect(),
        webhooks_warning: (t.webhooks_ok == Some(false)).then(|| {
            format!(
                "Its webhooks point elsewhere: set them to {base}/wa and {base}/sts (they are now {} for messages and {} for status callbacks).",
                now(&t.callback_url),
                now(&t.status_callback_url)
            )
        }),
        synced: Stamp::of(t.twilio_synced_at, tz),
        gone: Stamp::of(t.twilio_gone_at, tz),
    })
}

/// How the sender syncs have gone, as the pages show it.
pub(super) struct SyncNote {
    pub last_ok: Option<Stamp>,
    /// Why Twilio's view may be out of date, while syncs fail.
    pub stale: Option<String>,
    pub error: Option<String>,
}

pub(super) fn sync_note(s: &SyncState, tz: chrono_tz::Tz) -> SyncNote {
    SyncNote {
        last_ok: Stamp::of(s.last_ok_at, tz),
        stale: (s.failures > 0).then(|| {
            format!(
                "The last {} of Twilio's senders failed, so what is shown of Twilio may be stale.",
                if s.failures == 1 {
                    "sync".to_owned()
                } else {
                    format!("{} syncs", count(s.failures.into()))
                }
            )
        }),
        error: (s.failures > 0).then(|| s.last_error.clone()).flatten(),
    }
}

pub(super) async fn sync_note_now(
    state: &AppState,
    tz: chrono_tz::Tz,
) -> Result<SyncNote, PageError> {
    Ok(sync_note(
        &sync_state::get(&state.pool, Sync::Senders).await?,
        tz,
    ))
}

/// The notices after "Sync now".
pub(super) const NOTICES: [(&str, &str); 2] = [
    ("synced", "Twilio's WhatsApp senders were synced."),
    (
        "sync-failed",
        "The sync failed; what is shown of Twilio is as it was (the error is below).",
    ),
];

/// "Sync now": reads Twilio's senders while the admin waits, then back to the list.
async fn sync_now(
    posted: Posted<CsrfOnly, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    tracing::info!(username = %posted.user.username, "sender sync asked for");
    let ctx = SyncContext::of_instance(&state.public_url);
    match sync_and_alert(&state.pool, &state.messaging, &state.alert_channels, &ctx).await {
        Ok(_) => Ok(done_redirect("/admin/senders", "synced")),
        // Recorded in the sync's state, which the page shows with its error.
        Err(_) => Ok(done_redirect("/admin/senders", "sync-failed")),
    }
}

struct HistoryRow {
    field: String,
    from: String,
    to: String,
    when: Stamp,
}

#[derive(Template)]
#[template(path = "sender.html")]
struct SenderPage {
    chrome: Chrome,
    s: SenderRow,
    mps: String,
    twilio: Option<TwilioView>,
    sync: SyncNote,
    history: Vec<HistoryRow>,
    /// Broadcasts still to send and reminders still to come on it.
    broadcasts: Vec<i64>,
    reminders: Vec<i64>,
    notice: Option<String>,
}

async fn one(
    user: Allowed<Admin>,
    path: web::Path<i64>,
    done: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let s = crate::storage::senders::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender {id}")))?;
    let history = crate::storage::sender_twilio::history(&state.pool, id)
        .await?
        .into_iter()
        .map(|h| HistoryRow {
            field: h.field.replace('_', " "),
            from: h.old_value.unwrap_or_else(|| "–".into()),
            to: h.new_value.unwrap_or_else(|| "–".into()),
            when: Stamp::new(h.changed_at, user.tz),
        })
        .collect();
    let mut conn = state.pool.acquire().await?;
    let (broadcasts, reminders) =
        crate::storage::pending_work::using(&mut conn, Through::Sender, &s.address).await?;
    drop(conn);
    let page = SenderPage {
        chrome: Chrome::for_user(&user, &state, "senders"),
        mps: super::senders::mps_text(s.mps),
        twilio: twilio_view(&s, &state.public_url, user.tz),
        sync: sync_note_now(&state, user.tz).await?,
        history,
        broadcasts,
        reminders,
        notice: done.notice(&NOTICES),
        s,
    };
    super::html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_links_are_kept() {
        assert_eq!(
            https_only("https://www.twilio.com/docs/errors/63112").as_deref(),
            Some("https://www.twilio.com/docs/errors/63112")
        );
        assert_eq!(https_only("javascript:alert(1)"), None);
        assert_eq!(https_only("http://www.twilio.com/docs/errors/63112"), None);
        assert_eq!(https_only(""), None);
    }

    #[test]
    fn the_badge_follows_twilio_s_status() {
        assert_eq!(badge("ONLINE"), "status status-approved");
        assert_eq!(badge("ONLINE:UPDATING"), "status status-approved");
        assert_eq!(badge("OFFLINE"), "status status-rejected");
        assert_eq!(badge(sender_health::GONE), "status status-rejected");
        assert_eq!(badge("VERIFYING"), "status status-pending");
        assert_eq!(badge("SOMETHING_NEW"), "status");
    }

    #[test]
    fn the_stale_notice_counts_failed_syncs() {
        let ok = sync_note(&SyncState::default(), chrono_tz::UTC);
        assert!(ok.stale.is_none() && ok.error.is_none());
        let failed = sync_note(
            &SyncState {
                failures: 2,
                last_error: Some("HTTP 503".into()),
                ..Default::default()
            },
            chrono_tz::UTC,
        );
        assert!(failed.stale.unwrap().contains("last 2 syncs"));
        assert_eq!(failed.error.as_deref(), Some("HTTP 503"));
    }
}
