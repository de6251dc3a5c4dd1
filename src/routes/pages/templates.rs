//! The WhatsApp template pages: the catalogue (`/templates`, filters in the URL, keyset pages,
//! how the last sync went and a "Sync now" for admins) and one template
//! (`/templates/{sid}`: a preview of each content type with its samples filled in, WhatsApp's
//! approval and the history of its status and category, when wadash last sent with it, and
//! for admins "Submit to WhatsApp" and "Delete…": see [`super::template_actions`]). Thin over
//! [`crate::templates`]; the create form is [`super::template_new`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::format::{Stamp, count, duration_secs, plural};
use super::template_preview::{Preview, previews};
use super::{
    Chrome, CsrfOnly, CurrentUser, DoneQuery, PageError, Posted, done_redirect, html, html_with,
};
use crate::domain::Role;
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::templates::Filter;
use crate::templates::{SyncView, TemplateView};

const PAGE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/templates", web::get().to(list))
        .route("/templates/sync", web::post().to(sync_now));
    // Before `/templates/{sid}`, which would take `/templates/new`.
    super::template_new::configure(cfg);
    super::template_actions::configure(cfg);
    cfg.route("/templates/{sid}", web::get().to(one));
}

/// The statuses offered in the filter (Twilio may add others; they show as they come).
const STATUSES: &[&str] = &[
    "approved",
    "pending",
    "received",
    "rejected",
    "paused",
    "disabled",
    "unsubmitted",
];

const CATEGORIES: &[&str] = &["utility", "marketing", "authentication"];

/// The catalogue's query: its filters and the cursor (the last SID of the page before).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
struct ListQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    category: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    language: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl ListQuery {
    fn filter(&self) -> Filter {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Filter {
            status: given(&self.status).map(|s| s.to_lowercase()),
            category: given(&self.category).map(|s| s.to_lowercase()),
            language: given(&self.language),
            q: given(&self.q),
        }
    }

    /// The query string with `cursor` (none: the first page).
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut q = self.clone();
        q.cursor = cursor.unwrap_or_default().to_owned();
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }
}

/// A badge class for a WhatsApp status: the known ones coloured, any other plain.
fn badge(status: &str) -> &'static str {
    match status {
        "approved" => "status status-approved",
        "pending" | "received" | "in_appeal" => "status status-pending",
        "rejected" | "paused" | "disabled" => "status status-rejected",
        _ => "status",
    }
}

struct Row {
    sid: String,
    name: String,
    language: String,
    status: String,
    badge: &'static str,
    category: String,
    types: String,
    updated: Option<Stamp>,
    last_used: Option<Stamp>,
    /// Messages sent with it in the last 30 days ("" when none).
    recent: String,
}

impl Row {
    fn of(t: &TemplateView, recent: i64, tz: chrono_tz::Tz) -> Self {
        Self {
            sid: t.sid.clone(),
            name: t.name.clone(),
            language: t.language.clone(),
            badge: badge(&t.whatsapp.status),
            status: t.whatsapp.status.clone(),
            category: t.whatsapp.category.clone().unwrap_or_default(),
            types: type_names(&t.types),
            updated: Stamp::of(t.updated_at, tz),
            last_used: Stamp::of(t.last_used_at, tz),
            recent: recent_text(recent),
        }
    }
}

/// "3 sends in 30 days", or nothing.
fn recent_text(n: i64) -> String {
    if n == 0 {
        return String::new();
    }
    format!(
        "{} in {} days",
        plural(n, "send", "sends"),
        crate::templates::RECENT_DAYS
    )
}

fn type_names(types: &serde_json::Value) -> String {
    types
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// How the last syncs went, as the catalogue shows it.
struct SyncNote {
    last_ok: Option<Stamp>,
    /// Why the catalogue may be out of date, when it may be.
    stale: Option<String>,
    /// Twilio's (or the network's) last error, while syncs fail.
    error: Option<String>,
}

impl SyncNote {
    fn of(
        s: &SyncView,
        interval: std::time::Duration,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Self {
        let stale = if s.failures > 0 {
            Some(format!(
                "The last {} failed, so the catalogue may be out of date.",
                if s.failures == 1 {
                    "sync".to_owned()
                } else {
                    format!("{} syncs", count(s.failures.into()))
                }
            ))
        } else {
            match s.last_ok_at {
                None => Some("The catalogue has not been synced from Twilio yet.".to_owned()),
                Some(at) if is_old(at, interval, now) => Some(format!(
                    "The last good sync is older than three sync intervals ({}), so the catalogue may be out of date.",
                    duration_secs(interval.as_secs_f64() * 3.0)
                )),
                Some(_) => None,
            }
        };
        Self {
            last_ok: Stamp::of(s.last_ok_at, tz),
            stale,
            error: (s.failures > 0).then(|| s.last_error.clone()).flatten(),
        }
    }
}

/// Older than three sync intervals (never, when the job is off).
fn is_old(at: DateTime<Utc>, interval: std::time::Duration, now: DateTime<Utc>) -> bool {
    !interval.is_zero() && TimeDelta::from_std(interval * 3).is_ok_and(|three| now - at > three)
}

#[derive(Template)]
#[template(path = "templates.html")]
struct ListPage {
    chrome: Chrome,
    q: ListQuery,
    statuses: &'static [&'static str],
    categories: &'static [&'static str],
    rows: Vec<Row>,
    shown: String,
    first: Option<String>,
    next: Option<String>,
    filtered: bool,
    sync: SyncNote,
    notice: Option<String>,
}

async fn list(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    done: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = query.into_inner();
    let cursor = Some(q.cursor.trim()).filter(|c| !c.is_empty());
    if let Some(c) = cursor
        && !is_content_sid(c)
    {
        return Err(PageError::BadRequest(format!(
            "the page asked for ({c:?}) is not one this list gave"
        )));
    }
    let (items, next) = crate::templates::page(&state.pool, &q.filter(), cursor, PAGE).await?;
    let sync = crate::templates::sync_state(&state.pool).await?;
    let sids: Vec<String> = items.iter().map(|t| t.sid.clone()).collect();
    let recent = crate::templates::recent_sends(&state.pool, &sids).await?;
    let page = ListPage {
        chrome: Chrome::for_user(&user, &state, "templates"),
        statuses: STATUSES,
        categories: CATEGORIES,
        shown: plural(items.len() as i64, "template", "templates"),
        rows: items
            .iter()
            .map(|t| Row::of(t, recent.get(&t.sid).copied().unwrap_or(0), user.tz))
            .collect(),
        first: cursor.map(|_| q.with_cursor(None)),
        next: next.map(|n| q.with_cursor(Some(&n))),
        filtered: !q.with_cursor(None).is_empty(),
        sync: SyncNote::of(&sync, state.template_sync, Utc::now(), user.tz),
        notice: done.notice(&[
            ("synced", "The catalogue was synced from Twilio."),
            (
                "sync-failed",
                "The sync failed; the catalogue is as it was (the error is below).",
            ),
            (
                "deleted",
                "Template deleted at Twilio: it has left the catalogue and the pickers.",
            ),
        ]),
        q,
    };
    html(&page)
}

/// "Sync now": reads Twilio's catalogue while the admin waits, then back to the list.
async fn sync_now(
    posted: Posted<CsrfOnly, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    tracing::info!(username = %posted.user.username, "template sync asked for");
    match crate::templates::sync_and_alert(&state.pool, &state.content, &state.alert_channels).await
    {
        Ok(_) => Ok(done_redirect("/templates", "synced")),
        // Recorded in the sync's state, which the list shows with its error.
        Err(_) => Ok(done_redirect("/templates", "sync-failed")),
    }
}

struct Variable {
    name: String,
    sample: String,
}

struct HistoryRow {
    field: String,
    from: String,
    to: String,
    when: Stamp,
}

/// The "Submit to WhatsApp" form as typed, with the error next to its field.
#[derive(Debug, Clone, Default)]
pub(super) struct SubmitFields {
    pub name: String,
    pub category: String,
    pub name_error: Option<String>,
    pub category_error: Option<String>,
}

/// What the template's page shows besides the template: a notice after an action, Twilio's
/// refusal of one, the submit form as typed.
#[derive(Debug, Default)]
pub(super) struct Extras {
    pub notice: Option<String>,
    pub error: Option<String>,
    pub submit: Option<SubmitFields>,
}

/// WhatsApp reviews a template submitted while it is never submitted, or again after a
/// rejection (Twilio takes a new request then).
fn submittable(status: &str) -> bool {
    matches!(status, "unsubmitted" | "rejected")
}

#[derive(Template)]
#[template(path = "template.html")]
struct DetailPage {
    chrome: Chrome,
    t: TemplateView,
    badge: &'static str,
    types: String,
    updated: Option<Stamp>,
    deleted: Option<Stamp>,
    last_used: Option<Stamp>,
    /// Messages sent with it in the last 30 days ("" when none).
    recent: String,
    previews: Vec<Preview>,
    variables: Vec<Variable>,
    history: Vec<HistoryRow>,
    notice: Option<String>,
    error: Option<String>,
    /// The submit form, for an admin while the template may be submitted.
    submit: Option<SubmitFields>,
    categories: &'static [&'static str],
}

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    done: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let extras = Extras {
        notice: done.notice(&[
            (
                "created",
                "Template created at Twilio. Submit it to WhatsApp for review before sending it outside a conversation's 24-hour window.",
            ),
            (
                "submitted",
                "Submitted to WhatsApp: its review usually takes minutes to a day; the status follows with the next sync.",
            ),
        ]),
        ..Extras::default()
    };
    render_detail(&user, &state, &path.into_inner(), extras, StatusCode::OK).await
}

/// The template's page (also after a refused submit or delete, with `status`).
pub(super) async fn render_detail(
    user: &CurrentUser,
    state: &AppState,
    sid: &str,
    extras: Extras,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let Some((t, history)) = crate::templates::detail(&state.pool, sid).await? else {
        return Err(PageError::NotFound(format!("There is no template {sid}.")));
    };
    let dash = |v: Option<String>| v.unwrap_or_else(|| "–".to_owned());
    let recent = crate::templates::recent_sends(&state.pool, std::slice::from_ref(&t.sid))
        .await?
        .get(&t.sid)
        .copied()
        .unwrap_or(0);
    let may_submit =
        user.role.allows(Role::Admin) && t.deleted_at.is_none() && submittable(&t.whatsapp.status);
    let submit = may_submit.then(|| {
        extras.submit.unwrap_or_else(|| SubmitFields {
            name: super::template_form::whatsapp_name(&t.name),
            category: t.whatsapp.category.clone().unwrap_or_default(),
            ..SubmitFields::default()
        })
    });
    let page = DetailPage {
        chrome: Chrome::for_user(user, state, "templates"),
        badge: badge(&t.whatsapp.status),
        types: type_names(&t.types),
        updated: Stamp::of(t.updated_at, user.tz),
        deleted: Stamp::of(t.deleted_at, user.tz),
        last_used: Stamp::of(t.last_used_at, user.tz),
        recent: recent_text(recent),
        previews: previews(&t.types, &t.variables),
        variables: t
            .variables
            .iter()
            .map(|(k, v)| Variable {
                name: format!("{{{{{k}}}}}"),
                sample: v.clone(),
            })
            .collect(),
        history: history
            .into_iter()
            .map(|c| HistoryRow {
                field: c.field,
                from: dash(c.old_value),
                to: dash(c.new_value),
                when: Stamp::new(c.changed_at, user.tz),
            })
            .collect(),
        notice: extras.notice,
        error: extras.error,
        submit,
        categories: crate::templates::manage::CATEGORIES,
        t,
    };
    html_with(&page, status)
}

fn is_content_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("HX") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(failures: i32, ok_ago_secs: Option<i64>) -> SyncView {
        let now = Utc::now();
        SyncView {
            last_ok_at: ok_ago_secs.map(|s| now - TimeDelta::seconds(s)),
            last_attempt_at: Some(now),
            last_error: Some("Twilio answered 503".into()),
            failures,
        }
    }

    #[test]
    fn the_catalogue_is_stale_after_a_failure_or_three_intervals_without_a_good_sync() {
        let five_min = std::time::Duration::from_secs(300);
        let tz = chrono_tz::UTC;
        let now = Utc::now();
        let fresh = SyncNote::of(&view(0, Some(600)), five_min, now, tz);
        assert!(fresh.stale.is_none() && fresh.error.is_none());
        let old = SyncNote::of(&view(0, Some(901)), five_min, now, tz);
        assert!(old.stale.unwrap().contains("three sync intervals (15 min)"));
        assert!(old.error.is_none(), "no failure, no error shown");
        let failed = SyncNote::of(&view(2, Some(10)), five_min, now, tz);
        assert!(failed.stale.unwrap().contains("last 2 syncs failed"));
        assert_eq!(failed.error.as_deref(), Some("Twilio answered 503"));
        let off = SyncNote::of(&view(0, Some(86_400)), std::time::Duration::ZERO, now, tz);
        assert!(
            off.stale.is_none(),
            "with the job off, age alone is not stale"
        );
        assert!(
            SyncNote::of(&view(0, None), five_min, now, tz)
                .stale
                .is_some()
        );
    }

    #[test]
    fn the_query_keeps_its_filters_across_pages_and_lowercases_status() {
        let q = ListQuery {
            status: "Approved".into(),
            q: "sale & more".into(),
            cursor: "HX1".into(),
            ..Default::default()
        };
        assert_eq!(q.filter().status.as_deref(), Some("approved"));
        assert_eq!(q.filter().category, None);
        assert_eq!(q.with_cursor(None), "status=Approved&q=sale+%26+more");
        assert_eq!(
            q.with_cursor(Some("HX2")),
            "status=Approved&q=sale+%26+more&cursor=HX2"
        );
        assert_eq!(badge("paused"), "status status-rejected");
        assert_eq!(badge("something_new"), "status");
    }
}
