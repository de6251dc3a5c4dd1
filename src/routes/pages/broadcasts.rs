//! `/broadcasts`: one message to many people from the dashboard. The list, the form (text,
//! media, template, sender, audience, start time), a preview of who is left out and why and
//! what it costs, the confirmation that queues it, and the broadcast's own page: its funnel
//! live, the current send rate, every recipient's fate, the results as CSV, and the operator's
//! pause / resume / cancel / retry. Everything goes through `crate::broadcasts` and the API's
//! helpers, so the pages and the API validate and act alike.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Chrome, CurrentUser, PageError, format, html};
use crate::broadcasts::audience::{self, Excluded};
use crate::broadcasts::{self, Audience, BroadcastError, BroadcastRequest, Preview};
use crate::domain::Role;
use crate::domain::error_codes;
use crate::error::ApiError;
use crate::reminders::{parse_at, schedule};
use crate::routes::api::broadcasts::{AudienceBody, BUCKETS, control, parse_audience, view};
use crate::state::AppState;
use crate::storage::broadcasts::{self as store, BroadcastRow, Counts, RecipientRow};

const PAGE: i64 = 50;
const RECIPIENTS_PAGE: i64 = 100;
/// A pasted audience of `audience::MAX_RECIPIENTS` numbers (or a CSV with a few variables per
/// row) fits; the default form limit (16 KiB) would refuse all but the smallest.
const FORM_LIMIT: usize = 16 * 1024 * 1024;
/// How many exclusions a page lists; the rest are counted (the CSV has every recipient).
const EXCLUDED_SHOWN: usize = 500;
/// The window the current send rate is measured over.
const RATE_WINDOW_SECS: f64 = 10.0;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let form = || web::FormConfig::default().limit(FORM_LIMIT);
    // The fixed paths first: `/broadcasts/{id}` would otherwise take them.
    cfg.service(
        web::resource("/broadcasts")
            .app_data(form())
            .route(web::get().to(list))
            .route(web::post().to(confirm)),
    )
    .service(
        web::resource("/broadcasts/new")
            .app_data(form())
            .route(web::get().to(new_form))
            .route(web::post().to(back_to_edit)),
    )
    .service(
        web::resource("/broadcasts/preview")
            .app_data(form())
            .route(web::post().to(preview)),
    )
    .route("/broadcasts/{id}", web::get().to(one))
    .route("/broadcasts/{id}/results.csv", web::get().to(results))
    .route("/broadcasts/{id}/{action}", web::post().to(act));
}

/// Why a recipient was left out, in words (the stored reasons are codes; see
/// [`audience::Excluded`]).
pub fn explain_reason(reason: &str) -> String {
    match reason {
        "recipient_opted_out" => "opted out: they asked to get no more messages".into(),
        "recipient_deauthorized" => "de-authorized: the business blocked this contact".into(),
        "recipient_number_changed" => "number changed: the contact moved to another number".into(),
        "outside_service_window" => {
            "outside the 24-hour window for free-form text: use a template".into()
        }
        "invalid" => "invalid: the message could not be made for this number".into(),
        r => {
            if let Some(rest) = r.strip_prefix("invalid") {
                format!("invalid number{rest}")
            } else if let Some(line) = r.strip_prefix("duplicate of line ") {
                format!("duplicate: already listed on line {line}")
            } else {
                r.to_owned()
            }
        }
    }
}

/// A status as the pages show it.
fn status_label(status: &str) -> &'static str {
    match status {
        "scheduled" => "scheduled",
        "running" => "sending",
        "paused" => "paused",
        "held" => "held for an admin",
        "canceled" => "canceled",
        "completed" => "completed",
        _ => "unknown",
    }
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Debug, Deserialize)]
struct ListQuery {
    cursor: Option<String>,
}

struct ListItem {
    id: i64,
    name: String,
    status: String,
    status_label: &'static str,
    created_by: String,
    created: String,
    created_iso: String,
    start: String,
    start_iso: String,
    recipients: i64,
    /// Recipients no longer waiting, of all, 0–100.
    progress: i64,
    progress_text: String,
    counts: Counts,
}

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct ListPage {
    chrome: Chrome,
    items: Vec<ListItem>,
    next: Option<String>,
    paged: bool,
}

/// (share done 0–100, "12 of 40 done · 30.0 %").
fn progress(recipients: i64, pending: i64) -> (i64, String) {
    let done = recipients - pending;
    let share = if recipients > 0 {
        done * 100 / recipients
    } else {
        0
    };
    (
        share,
        format!(
            "{} of {} done · {}",
            done,
            recipients,
            format::percent(done, recipients)
        ),
    )
}

async fn list(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            crate::routes::api::contacts::parse_cursor(c)
                .ok_or_else(|| PageError::BadRequest("the page link is not valid".into()))?,
        ),
    };
    let rows = store::list(&state.pool, after, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<BroadcastRow> = rows.into_iter().take(PAGE as usize).collect();
    let next = more.then(|| rows.last()).flatten().map(|b| {
        serde_urlencoded::to_string([(
            "cursor",
            format!(
                "{},{}",
                b.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                b.id
            ),
        )])
        .unwrap_or_default()
    });
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let v = view(&state, row).await?;
        let (progress, progress_text) = progress(v.recipients, v.counts.pending);
        let b = v.broadcast;
        items.push(ListItem {
            id: b.id,
            status_label: status_label(&b.status),
            created_by: b.created_by.unwrap_or_default(),
            created: format::utc(&b.created_at),
            created_iso: format::iso(&b.created_at),
            start: format::utc(&b.start_at),
            start_iso: format::iso(&b.start_at),
            recipients: v.recipients,
            progress,
            progress_text,
            counts: v.counts,
            name: b.name,
            status: b.status,
        });
    }
    html(&ListPage {
        chrome: Chrome::for_user(&user, &state, "broadcasts"),
        items,
        next,
        paged: after.is_some(),
    })
}

// ---------------------------------------------------------------------------------------
// The form and the preview

/// What the operator typed, carried from the form to the preview and back.
#[derive(Debug, Clone, Default, Deserialize)]
struct BroadcastForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    body: String,
    /// One URL per line.
    #[serde(default)]
    media: String,
    #[serde(default)]
    content_sid: String,
    /// Empty, or the template's category for the cost estimate.
    #[serde(default)]
    template_category: String,
    /// A JSON object.
    #[serde(default)]
    content_variables: String,
    #[serde(default)]
    sender: String,
    /// `paste`, `tag` or `all`.
    #[serde(default)]
    audience: String,
    /// Numbers, or CSV text with a `number` column.
    #[serde(default)]
    numbers: String,
    #[serde(default)]
    tag: String,
    /// `datetime-local`: a wall time in `timezone`.
    #[serde(default)]
    start_local: String,
    #[serde(default)]
    timezone: String,
    /// Made for each preview and carried to "Confirm": confirming twice (a double click, a
    /// resubmitted form) finds the first broadcast instead of queuing another.
    #[serde(default)]
    request_key: String,
}

impl BroadcastForm {
    fn blank(default_sender: String) -> Self {
        Self {
            sender: default_sender,
            audience: "paste".into(),
            timezone: "UTC".into(),
            ..Self::default()
        }
    }

    /// The form's fields as (name, value), for the preview's hidden inputs.
    fn hidden(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("name", &self.name),
            ("body", &self.body),
            ("media", &self.media),
            ("content_sid", &self.content_sid),
            ("template_category", &self.template_category),
            ("content_variables", &self.content_variables),
            ("sender", &self.sender),
            ("audience", &self.audience),
            ("numbers", &self.numbers),
            ("tag", &self.tag),
            ("start_local", &self.start_local),
            ("timezone", &self.timezone),
            ("request_key", &self.request_key),
        ]
    }

    fn media_urls(&self) -> Vec<String> {
        self.media
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The broadcast asked for, or what is wrong with the form.
    fn request(&self, created_by: &str) -> Result<BroadcastRequest, String> {
        let audience = match self.audience.as_str() {
            "paste" => {
                if self.numbers.trim().is_empty() {
                    return Err(
                        "paste at least one number (or a CSV), or choose another audience".into(),
                    );
                }
                Audience::Listed(audience::parse_pasted(&self.numbers)?)
            }
            "tag" => {
                if self.tag.trim().is_empty() {
                    return Err("choose the tag whose contacts get the broadcast".into());
                }
                parse_audience(AudienceBody {
                    tag: Some(self.tag.clone()),
                    ..AudienceBody::default()
                })?
            }
            "all" => parse_audience(AudienceBody {
                all_opted_in: Some(true),
                ..AudienceBody::default()
            })?,
            _ => {
                return Err(
                    "choose the audience: numbers pasted, contacts with a tag, or all opted-in contacts"
                        .into(),
                );
            }
        };
        let content_variables = match nonempty(&self.content_variables) {
            None => None,
            Some(text) => Some(serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                format!("the template variables must be a JSON object such as {{\"1\": \"Ada\"}}: {e}")
            })?),
        };
        let start_at = match nonempty(&self.start_local) {
            None => None,
            Some(local) => {
                let zone = nonempty(&self.timezone).unwrap_or_else(|| "UTC".into());
                let tz = schedule::parse_tz(&zone).map_err(|e| format!("start time: {e}"))?;
                Some(parse_at(&local, tz).map_err(|e| format!("start time: {e}"))?)
            }
        };
        Ok(BroadcastRequest {
            name: nonempty(&self.name),
            body: nonempty(&self.body).map(|_| self.body.clone()),
            media: self.media_urls(),
            content_sid: nonempty(&self.content_sid),
            content_variables,
            sender: nonempty(&self.sender),
            start_at,
            audience,
            created_by: created_by.to_owned(),
            reminder_id: None,
            request_key: nonempty(&self.request_key).map(|k| format!("page:{k}")),
            template_category: crate::pricing::Category::parse(self.template_category.trim()).ok(),
        })
    }
}

struct ExcludedItem {
    number: String,
    reason: String,
}

fn excluded_items(excluded: &[Excluded]) -> Vec<ExcludedItem> {
    excluded
        .iter()
        .take(EXCLUDED_SHOWN)
        .map(|e| ExcludedItem {
            number: e.number.clone(),
            reason: explain_reason(&e.reason),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "broadcast_new.html")]
struct FormPage {
    chrome: Chrome,
    f: BroadcastForm,
    /// (address, label), the default sender first.
    senders: Vec<(String, String)>,
    /// Existing tags with how many contacts have each.
    tags: Vec<(String, i64)>,
    error: Option<String>,
    /// When nobody is left: who was left out, and why.
    excluded: Vec<ExcludedItem>,
}

/// The senders to choose from: the current default first, then the other active ones.
async fn sender_options(state: &AppState) -> Result<Vec<(String, String)>, PageError> {
    let (default, others) = super::send::sender_choices(state).await?;
    let mut out = vec![(default, "default".to_owned())];
    out.extend(others);
    Ok(out)
}

async fn render_form(
    user: &CurrentUser,
    state: &AppState,
    f: BroadcastForm,
    refused: Option<(StatusCode, String, Vec<ExcludedItem>)>,
) -> Result<HttpResponse, PageError> {
    let (senders, tags) = tokio::try_join!(sender_options(state), async {
        crate::storage::contacts::tags(&state.pool)
            .await
            .map_err(PageError::from)
    })?;
    let (status, error, excluded) = match refused {
        Some((s, e, x)) => (s, Some(e), x),
        None => (StatusCode::OK, None, Vec::new()),
    };
    let mut resp = html(&FormPage {
        chrome: Chrome::for_user(user, state, "broadcasts"),
        f,
        senders,
        tags,
        error,
        excluded,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn new_form(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.require(Role::Operator)?;
    let (default, _) = super::send::sender_choices(&state).await?;
    render_form(&user, &state, BroadcastForm::blank(default), None).await
}

/// "Back to edit" from the preview: the form again, as it was filled.
async fn back_to_edit(
    user: CurrentUser,
    form: web::Form<BroadcastForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    render_form(&user, &state, form.into_inner(), None).await
}

/// A refusal as the API would answer it: its status, the message, and who was left out.
fn refusal(e: BroadcastError) -> Result<(StatusCode, String, Vec<ExcludedItem>), PageError> {
    let message = e.to_string();
    Ok(match e {
        BroadcastError::Invalid(_) => (StatusCode::BAD_REQUEST, message, Vec::new()),
        BroadcastError::Refused(_) => (StatusCode::CONFLICT, message, Vec::new()),
        BroadcastError::NoRecipients(excluded) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
            excluded_items(&excluded),
        ),
        BroadcastError::Duplicate(_) => (StatusCode::CONFLICT, message, Vec::new()),
        BroadcastError::Pricing(_) => (StatusCode::UNPROCESSABLE_ENTITY, message, Vec::new()),
        BroadcastError::Database(db) => return Err(db.into()),
    })
}

#[derive(Template)]
#[template(path = "broadcast_preview.html")]
struct PreviewPage<'a> {
    chrome: Chrome,
    name: String,
    body: String,
    media: Vec<String>,
    content_sid: String,
    hidden: Vec<(&'static str, &'a str)>,
    sender: String,
    mps: String,
    recipients: usize,
    excluded_count: usize,
    excluded: Vec<ExcludedItem>,
    cost: String,
    currency: String,
    duration: String,
    /// Empty when it starts at once.
    start: String,
    start_iso: String,
    start_local: String,
}

/// How long sending takes, in words.
fn duration_words(secs: f64) -> String {
    if secs < 1.0 {
        "under a second".into()
    } else {
        format::duration_secs(secs)
    }
}

/// A rate in messages per second, without needless decimals.
fn rate(mps: f64) -> String {
    if (mps - mps.round()).abs() < 1e-9 {
        format!("{mps:.0}")
    } else {
        format!("{mps:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

fn render_preview(
    user: &CurrentUser,
    state: &AppState,
    f: &BroadcastForm,
    p: &Preview,
    now: DateTime<Utc>,
) -> Result<HttpResponse, PageError> {
    let later = p.start_at > now + chrono::TimeDelta::seconds(5);
    let start_local = match (later, schedule::parse_tz(&f.timezone)) {
        (true, Ok(tz)) if tz != chrono_tz::UTC => p
            .start_at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        _ => String::new(),
    };
    html(&PreviewPage {
        chrome: Chrome::for_user(user, state, "broadcasts"),
        name: nonempty(&f.name).unwrap_or_else(|| "Untitled broadcast".into()),
        body: f.body.clone(),
        media: f.media_urls(),
        content_sid: f.content_sid.trim().to_owned(),
        hidden: f.hidden(),
        sender: p.sender.clone(),
        mps: rate(p.mps),
        recipients: p.recipient_count,
        excluded_count: p.excluded.len(),
        excluded: excluded_items(&p.excluded),
        cost: p.estimated_cost.to_string(),
        currency: p.cost_currency.clone(),
        duration: duration_words(p.estimated_seconds),
        start: if later {
            format::utc(&p.start_at)
        } else {
            String::new()
        },
        start_iso: format::iso(&p.start_at),
        start_local,
    })
}

async fn preview(
    user: CurrentUser,
    form: web::Form<BroadcastForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let mut f = form.into_inner();
    // A fresh key for each preview: its "Confirm" queues at most one broadcast.
    let mut key = [0u8; 16];
    rand::fill(&mut key);
    f.request_key = crate::domain::hex(&key);
    let req = match f.request(&user.username) {
        Ok(r) => r,
        Err(m) => {
            return render_form(&user, &state, f, Some((StatusCode::BAD_REQUEST, m, vec![]))).await;
        }
    };
    let now = Utc::now();
    match broadcasts::preview(&state.pool, &state.default_sender, &req, now).await {
        // Nothing could be confirmed: the form again, with who was left out.
        Ok(p) if p.recipients.is_empty() => {
            let refused = refusal(BroadcastError::NoRecipients(p.excluded))?;
            render_form(&user, &state, f, Some(refused)).await
        }
        Ok(p) => render_preview(&user, &state, &f, &p, now),
        Err(e) => {
            let refused = refusal(e)?;
            render_form(&user, &state, f, Some(refused)).await
        }
    }
}

/// "Confirm and send": validated again (contacts may have changed since the preview), queued.
async fn confirm(
    user: CurrentUser,
    form: web::Form<BroadcastForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let f = form.into_inner();
    let req = match f.request(&user.username) {
        Ok(r) => r,
        Err(m) => {
            return render_form(&user, &state, f, Some((StatusCode::BAD_REQUEST, m, vec![]))).await;
        }
    };
    match broadcasts::create(
        &state.pool,
        &state.default_sender,
        state.broadcast_reserve,
        &req,
        Utc::now(),
    )
    .await
    {
        // Confirmed twice: the first confirmation's broadcast.
        Err(BroadcastError::Duplicate(id)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/broadcasts/{id}")))
            .finish()),
        Ok((row, p)) => {
            tracing::info!(
                broadcast = row.id,
                recipients = p.recipient_count,
                username = %user.username,
                "broadcast queued from the dashboard"
            );
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/broadcasts/{}", row.id)))
                .finish())
        }
        Err(e) => {
            let refused = refusal(e)?;
            render_form(&user, &state, f, Some(refused)).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// One broadcast

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct OneQuery {
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

struct Stage {
    bucket: &'static str,
    label: &'static str,
    value: i64,
    share: String,
    width: i64,
    class: &'static str,
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
}

/// A button an operator may press now: (action, label, dangerous).
type Control = (&'static str, &'static str, bool);

#[derive(Template)]
#[template(path = "broadcast.html", blocks = ["live"])]
struct BroadcastPage {
    chrome: Chrome,
    b: BroadcastRow,
    status_label: &'static str,
    created: String,
    created_iso: String,
    start: String,
    start_iso: String,
    completed: String,
    completed_iso: String,
    mps: String,
    estimated_cost: String,
    audience: String,
    media: Vec<String>,
    recipients: i64,
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
}

fn path_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::NotFound(format!("no broadcast {raw:?}")))
}

async fn find(state: &AppState, id: i64) -> Result<BroadcastRow, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no broadcast {id}")))
}

fn stages(c: &Counts, total: i64) -> Vec<Stage> {
    let stage = |bucket, label, value: i64, class| Stage {
        bucket,
        label,
        value,
        share: format::percent(value, total),
        width: if total > 0 { value * 100 / total } else { 0 },
        class,
    };
    vec![
        stage("pending", "Waiting", c.pending, ""),
        stage("sent", "Sent", c.sent, ""),
        stage("delivered", "Delivered", c.delivered, "ok"),
        stage("read", "Read", c.read, "ok"),
        stage("failed", "Failed", c.failed, "bad"),
        stage("undelivered", "Undelivered", c.undelivered, "bad"),
        stage("canceled", "Canceled", c.canceled, ""),
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

/// The buttons that apply in this state (the store refuses the others anyway).
fn controls(status: &str, c: &Counts) -> Vec<Control> {
    let mut out = Vec::new();
    if matches!(status, "running" | "scheduled") {
        out.push(("pause", "Pause", false));
    }
    if status == "paused" {
        out.push(("resume", "Resume", false));
    }
    if status == "held" {
        out.push(("release", "Release (admin)", false));
    }
    if matches!(status, "running" | "scheduled" | "paused" | "held") {
        out.push(("cancel", "Cancel", true));
    }
    if status != "canceled" && c.failed + c.undelivered > 0 {
        out.push(("retry", "Retry failed recipients", false));
    }
    out
}

fn audience_words(a: &serde_json::Value) -> String {
    if let Some(n) = a.get("numbers").and_then(|n| n.as_i64()) {
        format!("{n} numbers listed")
    } else if let Some(t) = a.get("tag").and_then(|t| t.as_str()) {
        format!("contacts tagged {t}")
    } else if a.get("all_opted_in").is_some() {
        "all opted-in contacts".into()
    } else {
        "–".into()
    }
}

fn recipient_item(r: RecipientRow) -> RecipientItem {
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
    if let Some(b) = bucket.as_deref()
        && !BUCKETS.contains(&b)
    {
        return Err(PageError::BadRequest(format!(
            "status must be one of {}",
            BUCKETS.join(", ")
        )));
    }
    let live = q.fragment.as_deref() == Some("live");
    let cursor = q.cursor.clone().filter(|c| !c.is_empty());
    let (v, sent_recently) = tokio::try_join!(
        view(state, row),
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
        match d {
            "pause" => "Paused: nothing more is sent until it is resumed.",
            "resume" => "Resumed.",
            "cancel" => "Canceled: the recipients still waiting will not get it.",
            "retry" => "The recipients whose failure may pass were queued again.",
            _ => "Done.",
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
        status_label: status_label(&b.status),
        created: format::utc(&b.created_at),
        created_iso: format::iso(&b.created_at),
        start: format::utc(&b.start_at),
        start_iso: format::iso(&b.start_at),
        completed: b.completed_at.map(|t| format::utc(&t)).unwrap_or_default(),
        completed_iso: b.completed_at.map(|t| format::iso(&t)).unwrap_or_default(),
        mps: rate(b.mps),
        estimated_cost: b
            .estimated_cost
            .clone()
            .map(|c| format!("{c} USD"))
            .unwrap_or_else(|| "–".into()),
        audience: audience_words(&b.audience),
        media: b
            .media
            .iter()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .cloned()
            .collect(),
        recipients: v.recipients,
        stages: stages(c, v.recipients),
        progress,
        progress_text,
        rate_now: format!(
            "{:.1} messages per second",
            sent_recently as f64 / RATE_WINDOW_SECS
        ),
        controls: controls(&b.status, c),
        buckets,
        bucket: bucket.unwrap_or_default(),
        rows: rows.into_iter().map(recipient_item).collect(),
        next,
        excluded_count: excluded.len(),
        excluded: excluded_items(&excluded),
        notice,
        error,
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

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    query: web::Query<OneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path_id(&path)?;
    render_one(&user, &state, id, query.into_inner(), None).await
}

async fn results(
    user: CurrentUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path_id(&path)?;
    let row = find(&state, id).await?;
    tracing::info!(username = %user.username, broadcast = row.id, "broadcast results CSV");
    let mut resp = crate::routes::api::broadcasts::results_csv(state.pool.clone(), row.id);
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// Pause, resume, cancel or retry; back to the broadcast's page, or the page with a 409 when
/// the broadcast is not in a state the action applies to.
async fn act(
    user: CurrentUser,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let (raw, action) = path.into_inner();
    if action == "release" {
        user.require(Role::Admin)?;
    }
    let id = path_id(&raw)?;
    let row = find(&state, id).await?;
    // Retrying a canceled broadcast would queue recipients nothing sends.
    if action == "retry" && row.status == "canceled" {
        let e = (
            StatusCode::CONFLICT,
            "a canceled broadcast cannot retry".to_owned(),
        );
        return render_one(&user, &state, id, OneQuery::default(), Some(e)).await;
    }
    match control(&state, row, &action, &user.username).await {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!(
                    "/broadcasts/{id}?{}",
                    serde_urlencoded::to_string([("done", &action)]).unwrap_or_default()
                ),
            ))
            .finish()),
        Err(ApiError::Other(status, _, message)) => {
            render_one(
                &user,
                &state,
                id,
                OneQuery::default(),
                Some((status, message)),
            )
            .await
        }
        Err(ApiError::NotFound(m)) => Err(PageError::NotFound(m)),
        Err(ApiError::BadRequest(m)) => Err(PageError::BadRequest(m)),
        Err(ApiError::Unavailable) => Err(PageError::Unavailable),
        Err(e) => Err(PageError::Internal(anyhow::anyhow!(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exclusion_reason_reads_as_words() {
        for (code, words) in [
            ("recipient_opted_out", "opted out"),
            ("recipient_deauthorized", "de-authorized"),
            ("recipient_number_changed", "number changed"),
            ("outside_service_window", "use a template"),
            (
                "invalid (line 2): not E.164",
                "invalid number (line 2): not E.164",
            ),
            ("duplicate of line 1", "already listed on line 1"),
        ] {
            assert!(
                explain_reason(code).contains(words),
                "{code}: {}",
                explain_reason(code)
            );
        }
        assert_eq!(explain_reason("something new"), "something new");
    }

    #[test]
    fn buttons_follow_the_state() {
        let none = Counts::default();
        let failed = Counts {
            failed: 1,
            ..Counts::default()
        };
        let actions = |s, c| controls(s, c).iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(actions("running", &none), ["pause", "cancel"]);
        assert_eq!(actions("scheduled", &none), ["pause", "cancel"]);
        assert_eq!(actions("paused", &none), ["resume", "cancel"]);
        assert_eq!(actions("held", &none), ["release", "cancel"]);
        assert!(actions("completed", &none).is_empty());
        assert_eq!(actions("completed", &failed), ["retry"]);
        assert!(actions("canceled", &failed).is_empty());
    }

    #[test]
    fn rates_and_durations_read_naturally() {
        assert_eq!(rate(50.0), "50");
        assert_eq!(rate(1.0 / 3.0), "0.33");
        assert_eq!(rate(2.5), "2.5");
        assert_eq!(duration_words(0.4), "under a second");
        assert_eq!(duration_words(90.0), "1 min 30 s");
        assert_eq!(progress(40, 10), (75, "30 of 40 done · 75.0 %".into()));
        assert_eq!(progress(0, 0).0, 0);
    }
}
