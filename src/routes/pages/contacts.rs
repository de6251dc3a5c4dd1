//! `/contacts`: the people the business talks to. The list (filters in the URL, keyset
//! pages, a tag list), one contact with its consent history, previous numbers and 24-hour
//! window, the operator's forms (consent, tags and name, number change), and CSV import
//! (pasted into a form) and export. Everything goes through `crate::contacts`, as the API
//! does, so both validate and record alike.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format;
use super::{Chrome, CurrentUser, PageError, html};
use crate::contacts::view::{ContactView, cursor_of, parse_cursor};
use crate::contacts::{self, Action, Actor, ContactError, csv_io};
use crate::domain::PhoneNumber;
use crate::domain::Role;
use crate::domain::consent::ConsentSource;
use crate::domain::window::{self, Window};
use crate::state::AppState;
use crate::storage::contacts::{self as store, ContactFilter, ContactRow};

const PAGE: i64 = 50;
/// How many tags the list's tag cloud shows (the most used).
const TAG_CLOUD: usize = 60;
/// A pasted import of `csv_io::MAX_LINES` lines fits, with room to spare; the default form
/// limit (16 KiB) would refuse all but the smallest.
const IMPORT_FORM_LIMIT: usize = 16 * 1024 * 1024;
/// Notes end up in the append-only history; a limit keeps a stray paste out of it.
const NOTE_LIMIT: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The fixed paths first: `/contacts/{number}` would otherwise take them.
    cfg.route("/contacts", web::get().to(list))
        .route("/contacts/export.csv", web::get().to(export))
        .service(
            web::resource("/contacts/import")
                .app_data(web::FormConfig::default().limit(IMPORT_FORM_LIMIT))
                .route(web::get().to(import_form))
                .route(web::post().to(import)),
        )
        .route("/contacts/{number}", web::get().to(one))
        .route("/contacts/{number}/consent", web::post().to(consent))
        .route("/contacts/{number}/edit", web::post().to(edit))
        .route("/contacts/{number}/number", web::post().to(change_number));
}

/// A consent state as the pages show it: the CSS class suffix and the words.
fn consent_label(consent: &str) -> &'static str {
    match consent {
        "opted_in" => "opted in",
        "opted_out" => "opted out",
        "deauthorized" => "de-authorized",
        _ => "unknown",
    }
}

/// The list's and the contact page's filters and links, in the URL.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

const CONSENT_FILTERS: &[(&str, &str)] = &[
    ("opted_in", "opted in"),
    ("opted_out", "opted out"),
    ("unknown", "unknown"),
    ("deauthorized", "de-authorized"),
];

struct ContactItem {
    number: String,
    name: String,
    consent: String,
    consent_label: &'static str,
    window_left: String,
    tags: Vec<TagLink>,
    last_inbound: String,
    last_inbound_iso: String,
}

struct TagLink {
    tag: String,
    href: String,
    count: i64,
}

fn tag_link(tag: &str, count: i64) -> TagLink {
    TagLink {
        href: format!(
            "/contacts?{}",
            serde_urlencoded::to_string([("tag", tag)]).unwrap_or_default()
        ),
        tag: tag.to_owned(),
        count,
    }
}

fn item(c: ContactRow, now: DateTime<Utc>) -> ContactItem {
    let left = window::time_left(Window::at(c.last_inbound_at, now), now);
    let v = ContactView::new(c, now);
    ContactItem {
        consent_label: consent_label(&v.consent),
        tags: v.tags.iter().map(|t| tag_link(t, 0)).collect(),
        last_inbound: v
            .last_inbound_at
            .map_or_else(|| "never".to_owned(), |t| format::utc(&t)),
        last_inbound_iso: v
            .last_inbound_at
            .map(|t| format::iso(&t))
            .unwrap_or_default(),
        window_left: left,
        name: v.profile_name.unwrap_or_default(),
        number: v.number,
        consent: v.consent,
    }
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    tag: String,
    consent: String,
    consents: &'static [(&'static str, &'static str)],
    contacts: Vec<ContactItem>,
    tags: Vec<TagLink>,
    more_tags: usize,
    next: Option<String>,
    filtered: bool,
}

async fn list(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = query.into_inner();
    let consent = nonempty(&q.consent);
    if let Some(c) = consent.as_deref()
        && !CONSENT_FILTERS.iter().any(|(k, _)| *k == c)
    {
        return Err(PageError::BadRequest(format!(
            "consent must be opted_in, opted_out, unknown or deauthorized, got {c:?}"
        )));
    }
    let after = match nonempty(&q.cursor) {
        None => None,
        Some(c) => Some(
            parse_cursor(&c)
                .ok_or_else(|| PageError::BadRequest("the page link is not valid".into()))?,
        ),
    };
    let filter = ContactFilter {
        q: nonempty(&q.q),
        tag: nonempty(&q.tag).map(|t| t.to_lowercase()),
        consent: consent.clone(),
    };
    let (rows, all_tags) = tokio::try_join!(
        store::list(&state.pool, &filter, after, PAGE + 1),
        store::tags(&state.pool)
    )?;
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<ContactRow> = rows.into_iter().take(PAGE as usize).collect();
    let next = if more {
        rows.last().map(|last| {
            serde_urlencoded::to_string(ListQuery {
                cursor: Some(cursor_of(last)),
                ..q.clone()
            })
            .unwrap_or_default()
        })
    } else {
        None
    };
    let now = Utc::now();
    let more_tags = all_tags.len().saturating_sub(TAG_CLOUD);
    html(&ListPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        filtered: filter.q.is_some() || filter.tag.is_some() || filter.consent.is_some(),
        q: filter.q.unwrap_or_default(),
        tag: filter.tag.unwrap_or_default(),
        consent: filter.consent.unwrap_or_default(),
        consents: CONSENT_FILTERS,
        contacts: rows.into_iter().map(|c| item(c, now)).collect(),
        tags: all_tags
            .iter()
            .take(TAG_CLOUD)
            .map(|(t, n)| tag_link(t, *n))
            .collect(),
        more_tags,
        next,
    })
}

async fn export(user: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    tracing::info!(username = %user.username, "contacts CSV export");
    let mut resp = crate::routes::transfer::csv_download(
        "wadash-contacts.csv",
        "contact export",
        crate::contacts::csv_io::export_stream(state.pool.clone()),
    );
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

struct HistoryItem {
    change: String,
    change_label: &'static str,
    source: String,
    actor: String,
    detail: String,
    utc: String,
    iso: String,
}

fn change_label(change: &str) -> &'static str {
    match change {
        "opted_in" => "opted in",
        "opted_out" => "opted out",
        "deauthorized" => "de-authorized",
        "reauthorized" => "re-authorized",
        _ => "changed",
    }
}

struct PreviousItem {
    number: String,
    replaced_by: String,
    actor: String,
    utc: String,
}

/// What the operator typed into the contact page's forms, kept when one is refused. `None`
/// shows the contact's current value.
#[derive(Debug, Clone, Default)]
struct Typed {
    note: String,
    tags: Option<String>,
    name: Option<String>,
    new_number: String,
}

/// The values the contact page's forms show.
struct ContactForms {
    note: String,
    tags: String,
    name: String,
    new_number: String,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    chrome: Chrome,
    c: ContactItem,
    /// What the contact said (`opted_in`, `opted_out`, `unknown`), whatever the business's
    /// block: the consent buttons follow it.
    said: String,
    said_label: &'static str,
    deauthorized_since: Option<String>,
    first_inbound: String,
    /// `open`, `closed` or `unknown`.
    window: &'static str,
    window_expires: String,
    history: Vec<HistoryItem>,
    previous: Vec<PreviousItem>,
    forms: ContactForms,
    notice: Option<String>,
    error: Option<String>,
}

/// The contact page, with a notice, or with a refused form's error and input.
async fn render(
    user: &CurrentUser,
    state: &AppState,
    number: &PhoneNumber,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Typed)>,
) -> Result<HttpResponse, PageError> {
    let contact = store::get(&state.pool, number.as_str())
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no contact has the number {number}")))?;
    let (history, previous) = tokio::try_join!(
        store::history(&state.pool, contact.id),
        store::retired_of(&state.pool, contact.id)
    )?;
    let now = Utc::now();
    let window = match Window::at(contact.last_inbound_at, now) {
        Window::Open { .. } => "open",
        Window::Closed { .. } => "closed",
        Window::Unknown => "unknown",
    };
    let window_expires = Window::expires_at(contact.last_inbound_at)
        .map(|t| format::utc(&t))
        .unwrap_or_default();
    let deauthorized_since = contact.deauthorized_at.map(|t| format::utc(&t));
    let first_inbound = contact
        .first_inbound_at
        .map_or_else(|| "never".to_owned(), |t| format::utc(&t));
    let (status, error, typed) = match refused {
        Some((status, error, typed)) => (status, Some(error), typed),
        None => (StatusCode::OK, None, Typed::default()),
    };
    let forms = ContactForms {
        note: typed.note,
        tags: typed.tags.unwrap_or_else(|| contact.tags.join(", ")),
        name: typed
            .name
            .unwrap_or_else(|| contact.profile_name.clone().unwrap_or_default()),
        new_number: typed.new_number,
    };
    let said = contact.consent.clone();
    let mut resp = html(&ContactPage {
        chrome: Chrome::for_user(user, state, "contacts"),
        said_label: consent_label(&said),
        said,
        c: item(contact, now),
        deauthorized_since,
        first_inbound,
        window,
        window_expires,
        history: history
            .into_iter()
            .map(|h| HistoryItem {
                change_label: change_label(&h.change),
                utc: format::utc(&h.at),
                iso: format::iso(&h.at),
                actor: h.actor.unwrap_or_default(),
                detail: match (h.detail, h.message_sid) {
                    (Some(d), Some(sid)) => format!("{d} ({sid})"),
                    (Some(d), None) => d,
                    (None, Some(sid)) => sid,
                    (None, None) => String::new(),
                },
                source: h.source,
                change: h.change,
            })
            .collect(),
        previous: previous
            .into_iter()
            .map(|p| PreviousItem {
                utc: format::utc(&p.retired_at),
                actor: p.actor.unwrap_or_default(),
                number: p.number,
                replaced_by: p.replaced_by,
            })
            .collect(),
        forms,
        notice,
        error,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

fn path_number(raw: &str) -> Result<PhoneNumber, PageError> {
    PhoneNumber::parse(raw)
        .map_err(|_| PageError::NotFound(format!("no contact has the number {raw:?}")))
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = path_number(&path)?;
    let notice = q.done.as_deref().map(|d| {
        match d {
            "consent" => "Consent updated.",
            "edit" => "Tags and name saved.",
            "number" => "Number changed. The old number is refused for sending from now on.",
            _ => "Done.",
        }
        .to_owned()
    });
    render(&user, &state, &number, notice, None).await
}

fn back_to(number: &PhoneNumber, done: &str) -> HttpResponse {
    super::done_redirect(&format!("/contacts/{number}"), done)
}

/// A refused form: the page again with the error and what was typed, or an error page
/// when the contact itself is the problem.
async fn refuse(
    user: &CurrentUser,
    state: &AppState,
    number: &PhoneNumber,
    e: ContactError,
    typed: Typed,
) -> Result<HttpResponse, PageError> {
    let message = e.to_string();
    let status = match e {
        ContactError::Invalid(_) => StatusCode::BAD_REQUEST,
        ContactError::NumberTaken(_) => StatusCode::CONFLICT,
        ContactError::NotFound(_) => return Err(PageError::NotFound(message)),
        ContactError::Database(db) => return Err(db.into()),
    };
    render(user, state, number, None, Some((status, message, typed))).await
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    /// `opt-out`, `opt-in`, `deauthorize` or `reauthorize` (the button pressed).
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

async fn consent(
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<ConsentForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let number = path_number(&path)?;
    let form = form.into_inner();
    let typed = Typed {
        note: form.note.clone(),
        ..Typed::default()
    };
    let Some(action) = Action::parse(&form.action) else {
        let e = ContactError::Invalid(format!(
            "unknown consent action {:?}; use opt-out, opt-in, deauthorize or reauthorize",
            form.action
        ));
        return refuse(&user, &state, &number, e, typed).await;
    };
    let note = form.note.trim();
    if note.chars().count() > NOTE_LIMIT {
        let e = ContactError::Invalid(format!("the note is limited to {NOTE_LIMIT} characters"));
        return refuse(&user, &state, &number, e, typed).await;
    }
    let actor = Actor {
        source: ConsentSource::Dashboard,
        name: &user.username,
        note: Some(note).filter(|n| !n.is_empty()),
    };
    match contacts::act(&state.pool, &number, action, actor).await {
        Ok(_) => Ok(back_to(&number, "consent")),
        Err(e) => refuse(&user, &state, &number, e, typed).await,
    }
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    csrf: String,
    /// Comma-separated.
    #[serde(default)]
    tags: String,
    #[serde(default)]
    profile_name: String,
}

async fn edit(
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<EditForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let number = path_number(&path)?;
    let form = form.into_inner();
    let typed = Typed {
        tags: Some(form.tags.clone()),
        name: Some(form.profile_name.clone()),
        ..Typed::default()
    };
    let tags = match contacts::normalize_tags(form.tags.split(',')) {
        Ok(t) => t,
        Err(e) => {
            return refuse(&user, &state, &number, ContactError::Invalid(e), typed).await;
        }
    };
    if store::get(&state.pool, number.as_str()).await?.is_none() {
        return Err(PageError::NotFound(format!(
            "no contact has the number {number}"
        )));
    }
    match contacts::update(&state.pool, &number, Some(tags), Some(&form.profile_name)).await {
        Ok(_) => {
            tracing::info!(username = %user.username, %number, "contact tags and name changed");
            Ok(back_to(&number, "edit"))
        }
        Err(e) => refuse(&user, &state, &number, e, typed).await,
    }
}

#[derive(Deserialize)]
struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_number: String,
}

async fn change_number(
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<NumberForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let number = path_number(&path)?;
    let form = form.into_inner();
    let typed = Typed {
        new_number: form.new_number.clone(),
        ..Typed::default()
    };
    let new = match contacts::parse_number(&form.new_number) {
        Ok(n) => n,
        Err(e) => return refuse(&user, &state, &number, e, typed).await,
    };
    match contacts::change_number(&state.pool, &number, &new, &user.username).await {
        Ok(_) => Ok(back_to(&new, "number")),
        Err(e) => refuse(&user, &state, &number, e, typed).await,
    }
}

#[derive(Template)]
#[template(path = "contacts_import.html")]
struct ImportPage {
    chrome: Chrome,
    csv: String,
    errors: Vec<csv_io::LineError>,
    done: Option<(usize, usize, usize)>,
    max_lines: usize,
}

#[derive(Deserialize)]
struct ImportedQuery {
    imported: Option<usize>,
    created: Option<usize>,
    updated: Option<usize>,
}

async fn import_form(
    user: CurrentUser,
    q: web::Query<ImportedQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.require(Role::Operator)?;
    html(&ImportPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        csv: String::new(),
        errors: Vec::new(),
        done: q
            .imported
            .map(|n| (n, q.created.unwrap_or(0), q.updated.unwrap_or(0))),
        max_lines: csv_io::MAX_LINES,
    })
}

#[derive(Deserialize)]
struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

async fn import(
    user: CurrentUser,
    form: web::Form<ImportForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let text = form.into_inner().csv;
    let report = if text.trim().is_empty() {
        csv_io::ImportReport {
            errors: vec![csv_io::LineError {
                line: 1,
                message: "paste the CSV text, starting with its header row".into(),
            }],
            ..Default::default()
        }
    } else {
        match csv_io::parse(text.as_bytes()) {
            Ok(lines) => csv_io::import(&state.pool, &lines, &user.username).await?,
            Err(errors) => csv_io::ImportReport {
                errors,
                ..Default::default()
            },
        }
    };
    if report.errors.is_empty() {
        tracing::info!(
            username = %user.username,
            imported = report.imported,
            created = report.created,
            "contacts imported"
        );
        return Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!(
                    "/contacts/import?imported={}&created={}&updated={}",
                    report.imported, report.created, report.updated
                ),
            ))
            .finish());
    }
    let mut resp = html(&ImportPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        csv: text,
        errors: report.errors,
        done: None,
        max_lines: csv_io::MAX_LINES,
    })?;
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}
