//! One broadcast's page: its funnel (live), the current send rate, the button taps (live),
//! every recipient's fate, the results as CSV, and the operator's pause / resume / cancel /
//! retry / release.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::super::{Chrome, CurrentUser, PageError, format, html};
use super::{
    ExcludedItem, excluded_items, explain_reason, find, path_id, progress, rate, status_label,
};
use crate::broadcasts::audience::Excluded;
use crate::broadcasts::lifecycle::{self, LifecycleError};
use crate::broadcasts::results;
use crate::broadcasts::taps::ButtonTally;
use crate::broadcasts::view::{BUCKETS, check_bucket, view};
use crate::domain::error_codes;
use crate::domain::{BroadcastAction, BroadcastStatus, Role};
use crate::routes::pages::{CsrfOnly, Posted};
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::broadcasts::{self as store, BroadcastRow, Counts, Reached, RecipientRow};
use crate::storage::interactive::InteractiveRow;

const RECIPIENTS_PAGE: i64 = 100;
/// The window the current send rate is measured over.
const RATE_WINDOW_SECS: f64 = 10.0;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(super) struct OneQuery {
    /// A bucket of recipients (see `BUCKETS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// `live`: only the part live updates replace.
    #[serde(default, skip_serializing)]
    fragment: Option<String>,
    /// The action just done, for a notice.
    #[serde(default, skip_serializing)]
    done: Option<String>,
}

/// A tile of the broadcast's funnel. Sent, delivered and read count the recipients whose
/// message reached at least that stage, as the overview's funnel does, with how many are in
/// exactly that state now beside; the other tiles are states a message ends in (or has not
/// left).
#[derive(Debug, PartialEq, Eq)]
struct Stage {
    bucket: &'static str,
    label: &'static str,
    value: String,
    share: String,
    width: i64,
    class: &'static str,
    /// Recipients in exactly this state now, for a stage counted cumulatively.
    now: Option<String>,
}

struct BucketLink {
    label: &'static str,
    count: i64,
    href: String,
    current: bool,
}

struct RecipientItem {
    number: String,
    state: String,
    message_status: String,
    sid: String,
    error_code: String,
    /// What the code means and what to do, when known.
    error_help: String,
    reason: String,
    message: String,
    attempts: i32,
    /// The buttons the recipient tapped on the message, (title, payload), each once.
    taps: Vec<(String, String)>,
}

/// A button an operator may press now: (action, label, dangerous).
type Control = (&'static str, &'static str, bool);

#[derive(Template)]
#[template(path = "broadcast.html", blocks = ["live"])]
struct BroadcastPage {
    chrome: Chrome,
    b: BroadcastRow,
    status_label: &'static str,
    created: format::Stamp,
    start: format::Stamp,
    completed: Option<format::Stamp>,
    mps: String,
    estimated_cost: Option<format::Money>,
    audience: String,
    media: Vec<String>,
    recipients_text: String,
    stages: Vec<Stage>,
    progress: i64,
    progress_text: String,
    rate_now: String,
    controls: Vec<Control>,
    buckets: Vec<BucketLink>,
    bucket: String,
    rows: Vec<RecipientItem>,
    next: Option<String>,
    excluded: Vec<ExcludedItem>,
    excluded_count: usize,
    notice: Option<String>,
    error: Option<String>,
    /// Recipients who tapped each button (empty: its message has none).
    buttons: Vec<ButtonRow>,
}

/// A button's line in the taps table.
struct ButtonRow {
    title: String,
    payload: String,
    kind: &'static str,
    taps: String,
    share: String,
    width: i64,
    offered: bool,
}

fn button_rows(tallies: Vec<ButtonTally>, total: i64) -> Vec<ButtonRow> {
    tallies
        .into_iter()
        .map(|t| ButtonRow {
            title: t.title.unwrap_or_default(),
            payload: t.payload.unwrap_or_default(),
            kind: if t.kind == "list" {
                "list item"
            } else {
                "button"
            },
            taps: format::count(t.recipients),
            share: format::percent(t.recipients, total),
            width: if total > 0 {
                t.recipients * 100 / total
            } else {
                0
            },
            offered: t.offered,
        })
        .collect()
}

fn stages(c: &Counts, r: &Reached, total: i64) -> Vec<Stage> {
    let stage = |bucket, label, value: i64, class, now: Option<i64>| Stage {
        bucket,
        label,
        value: format::count(value),
        share: format::percent(value, total),
        width: if total > 0 { value * 100 / total } else { 0 },
        class,
        now: now.map(format::count),
    };
    vec![
        stage("pending", "Waiting", c.pending, "", None),
        stage("sent", "Sent", r.sent, "", Some(c.sent)),
        stage(
            "delivered",
            "Delivered",
            r.delivered,
            "ok",
            Some(c.delivered),
        ),
        stage("read", "Read", r.read, "ok", Some(c.read)),
        stage("failed", "Failed", c.failed, "bad", None),
        stage("undelivered", "Undelivered", c.undelivered, "bad", None),
        stage("canceled", "Canceled", c.canceled, "", None),
    ]
}

fn bucket_count(c: &Counts, bucket: &str) -> i64 {
    match bucket {
        "pending" => c.pending,
        "sent" => c.sent,
        "delivered" => c.delivered,
        "read" => c.read,
        "failed" => c.failed,
        "undelivered" => c.undelivered,
        "canceled" => c.canceled,
        _ => 0,
    }
}

/// The buttons that apply in this state (the transition table's), retry only when some
/// recipients failed.
fn controls(status: BroadcastStatus, c: &Counts) -> Vec<Control> {
    [
        (BroadcastAction::Pause, "Pause", false),
        (BroadcastAction::Resume, "Resume", false),
        (BroadcastAction::Release, "Release (admin)", false),
        (BroadcastAction::Cancel, "Cancel", true),
        (BroadcastAction::Retry, "Retry failed recipients", false),
    ]
    .into_iter()
    .filter(|(action, _, _)| status.allows(*action))
    .filter(|(action, _, _)| *action != BroadcastAction::Retry || c.failed + c.undelivered > 0)
    .map(|(action, label, dangerous)| (action.as_str(), label, dangerous))
    .collect()
}

fn audience_words(a: &serde_json::Value) -> String {
    if let Some(n) = a.get("numbers").and_then(|n| n.as_i64()) {
        format!("{} listed", format::plural(n, "number", "numbers"))
    } else if let Some(t) = a.get("tag").and_then(|t| t.as_str()) {
        format!("contacts tagged {t}")
    } else if a.get("all_opted_in").is_some() {
        "all opted-in contacts".into()
    } else {
        "–".into()
    }
}

fn recipient_item(r: RecipientRow, taps: Vec<InteractiveRow>) -> RecipientItem {
    let mut tapped: Vec<(String, String)> = Vec::new();
    for t in taps {
        let payload = t.payload.unwrap_or_default();
        if !tapped.iter().any(|(_, p)| *p == payload) {
            tapped.push((t.title.unwrap_or_default(), payload));
        }
    }
    let error_help = r
        .error_code
        .and_then(error_codes::lookup)
        .map(|i| format!("{} {}", i.meaning, i.action))
        .unwrap_or_default();
    RecipientItem {
        error_code: r.error_code.map(|c| c.to_string()).unwrap_or_default(),
        error_help,
        reason: r
            .error_reason
            .as_deref()
            .map(explain_reason)
            .unwrap_or_default(),
        message: r.error_message.unwrap_or_default(),
        sid: r.message_sid.unwrap_or_default(),
        message_status: r.message_status.unwrap_or_default(),
        number: r.number,
        state: r.state,
        attempts: r.attempts,
        taps: tapped,
    }
}

async fn render_one(
    user: &CurrentUser,
    state: &AppState,
    id: i64,
    q: OneQuery,
    error: Option<(StatusCode, String)>,
) -> Result<HttpResponse, PageError> {
    let row = find(state, id).await?;
    let bucket = q
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    check_bucket(bucket.as_deref()).map_err(PageError::BadRequest)?;
    let live = q.fragment.as_deref() == Some("live");
    let cursor = q.cursor.clone().filter(|c| !c.is_empty());
    let tallies = crate::broadcasts::taps::tallies(&state.pool, &row).await?;
    let (v, sent_recently) = tokio::try_join!(
        view(&state.pool, row),
        store::sent_within(&state.pool, id, RATE_WINDOW_SECS)
    )?;
    // The live fragment replaces only the funnel: the recipients are left alone.
    let (rows, next) = if live {
        (Vec::new(), None)
    } else {
        let rows = store::recipients(
            &state.pool,
            id,
            bucket.as_deref(),
            cursor.as_deref(),
            RECIPIENTS_PAGE + 1,
        )
        .await?;
        let more = rows.len() as i64 > RECIPIENTS_PAGE;
        let rows: Vec<RecipientRow> = rows.into_iter().take(RECIPIENTS_PAGE as usize).collect();
        let next = more.then(|| rows.last()).flatten().map(|last| {
            serde_urlencoded::to_string(OneQuery {
                status: bucket.clone(),
                cursor: Some(last.number.clone()),
                ..OneQuery::default()
            })
            .unwrap_or_default()
        });
        (rows, next)
    };
    let sids: Vec<String> = rows.iter().filter_map(|r| r.message_sid.clone()).collect();
    let mut answers = crate::storage::interactive::answers_to(&state.pool, &sids).await?;
    let c = &v.counts;
    let (progress, progress_text) = progress(v.recipients, c.pending);
    let mut buckets = vec![BucketLink {
        label: "all",
        count: v.recipients,
        href: format!("/broadcasts/{id}"),
        current: bucket.is_none(),
    }];
    buckets.extend(BUCKETS.iter().map(|b| BucketLink {
        label: b,
        count: bucket_count(c, b),
        href: format!(
            "/broadcasts/{id}?{}",
            serde_urlencoded::to_string([("status", b)]).unwrap_or_default()
        ),
        current: bucket.as_deref() == Some(*b),
    }));
    let excluded: Vec<Excluded> =
        serde_json::from_value(v.broadcast.excluded.clone()).unwrap_or_default();
    let notice = q.done.as_deref().map(|d| {
        match d.parse() {
            Ok(BroadcastAction::Pause) => "Paused: nothing more is sent until it is resumed.",
            Ok(BroadcastAction::Resume) => "Resumed.",
            Ok(BroadcastAction::Cancel) => {
                "Canceled: the recipients still waiting will not get it."
            }
            Ok(BroadcastAction::Retry) => {
                "The recipients whose failure may pass were queued again."
            }
            Ok(BroadcastAction::Release) | Err(_) => "Done.",
        }
        .to_owned()
    });
    let (status, error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let b = v.broadcast;
    let page = BroadcastPage {
        chrome: Chrome::for_user(user, state, "broadcasts"),
        status_label: status_label(b.status),
        created: format::Stamp::new(b.created_at, user.tz),
        start: format::Stamp::new(b.start_at, user.tz),
        completed: format::Stamp::of(b.completed_at, user.tz),
        mps: rate(b.mps),
        estimated_cost: b
            .estimated_cost
            .as_deref()
            .and_then(|c| format::Money::parse(c, "USD")),
        audience: audience_words(&b.audience),
        media: b
            .media
            .iter()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .cloned()
            .collect(),
        recipients_text: format::count(v.recipients),
        stages: stages(c, &v.reached, v.recipients),
        progress,
        progress_text,
        rate_now: format!(
            "{:.1} messages per second",
            sent_recently as f64 / RATE_WINDOW_SECS
        ),
        controls: controls(b.status, c),
        buckets,
        bucket: bucket.unwrap_or_default(),
        rows: rows
            .into_iter()
            .map(|r| {
                let taps = r
                    .message_sid
                    .as_ref()
                    .and_then(|sid| answers.remove(sid))
                    .unwrap_or_default();
                recipient_item(r, taps)
            })
            .collect(),
        next,
        excluded_count: excluded.len(),
        excluded: excluded_items(&excluded),
        notice,
        error,
        buttons: button_rows(tallies, v.recipients),
        b,
    };
    let mut resp = if live {
        html(&page.as_live())?
    } else {
        html(&page)?
    };
    *resp.status_mut() = status;
    Ok(resp)
}

pub(super) async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    query: web::Query<OneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path_id(&path)?;
    render_one(&user, &state, id, query.into_inner(), None).await
}

pub(super) async fn results(
    user: CurrentUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path_id(&path)?;
    let row = find(&state, id).await?;
    tracing::info!(username = %user.username, broadcast = row.id, "broadcast results CSV");
    let mut resp = crate::routes::transfer::csv_download(
        &results::filename(row.id),
        "broadcast export",
        results::csv_chunks(state.pool.clone(), row.id),
    );
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// Pause, resume, cancel or retry; back to the broadcast's page, or the page with a 409 when
/// the broadcast is not in a state the action applies to.
pub(super) async fn act(
    Posted { user, .. }: Posted<CsrfOnly, Operator>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (raw, action) = path.into_inner();
    if action == BroadcastAction::Release.as_str() {
        user.require(Role::Admin)?;
    }
    let id = path_id(&raw)?;
    match lifecycle::control(&state.pool, id, &action, &user.username).await {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!(
                    "/broadcasts/{id}?{}",
                    serde_urlencoded::to_string([("done", &action)]).unwrap_or_default()
                ),
            ))
            .finish()),
        Err(e @ LifecycleError::InvalidState { .. }) => {
            let refused = (StatusCode::CONFLICT, e.to_string());
            render_one(&user, &state, id, OneQuery::default(), Some(refused)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_follow_the_state() {
        let none = Counts::default();
        let failed = Counts {
            failed: 1,
            ..Counts::default()
        };
        let actions = |s: &str, c| {
            controls(s.parse().unwrap(), c)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(actions("running", &none), ["pause", "cancel"]);
        assert_eq!(actions("scheduled", &none), ["pause", "cancel"]);
        assert_eq!(actions("paused", &none), ["resume", "cancel"]);
        assert_eq!(actions("held", &none), ["release", "cancel"]);
        assert!(actions("completed", &none).is_empty());
        assert_eq!(actions("completed", &failed), ["retry"]);
        assert!(actions("canceled", &failed).is_empty());
        assert_eq!(actions("running", &failed), ["pause", "cancel", "retry"]);
        assert_eq!(actions("paused", &failed), ["resume", "cancel", "retry"]);
    }

    #[test]
    fn tiles_count_reached_at_least_with_the_exact_state_beside() {
        // 1,000 recipients: 10 waiting, 20 accepted by Twilio and no further, 300 delivered,
        // 600 read, 40 failed (15 of them after being sent), 20 undelivered (all sent), 10
        // canceled before sending.
        let c = Counts {
            pending: 10,
            sent: 20,
            delivered: 300,
            read: 600,
            failed: 40,
            undelivered: 20,
            canceled: 10,
        };
        let r = Reached {
            sent: 12 + 300 + 600 + 15 + 20,
            delivered: 900,
            read: 600,
        };
        let t = stages(&c, &r, 1000);
        let tile = |b: &str| t.iter().find(|s| s.bucket == b).unwrap();
        assert_eq!(tile("sent").value, "947");
        assert_eq!(tile("sent").share, "94.7 %");
        assert_eq!(tile("sent").now.as_deref(), Some("20"));
        assert_eq!(tile("delivered").value, "900");
        assert_eq!(
            tile("delivered").share,
            "90.0 %",
            "not 30.0 %: read ones were delivered"
        );
        assert_eq!(tile("delivered").now.as_deref(), Some("300"));
        assert_eq!(tile("read").value, "600");
        assert_eq!(tile("read").width, 60);
        assert_eq!(tile("failed").value, "40");
        assert_eq!(tile("failed").now, None);
        assert_eq!(tile("pending").share, "1.0 %");
        let done = stages(
            &c,
            &Reached {
                sent: 1000,
                delivered: 1000,
                read: 1000,
            },
            1000,
        );
        assert_eq!(done[3].share, "100 %");
        let nothing = stages(&Counts::default(), &Reached::default(), 0);
        assert!(nothing.iter().all(|s| s.share == "–" && s.width == 0));
    }
}
