//! `/contacts/{number}`: one contact with its consent history, previous numbers and 24-hour
//! window, and the operator's forms (consent, tags and name, number change), which show the
//! page again with the error and what was typed when refused.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{ContactItem, consent_label, item};
use crate::contacts::{self, Action, Actor, ContactError};
use crate::domain::PhoneNumber;
use crate::domain::consent::ConsentSource;
use crate::domain::window::Window;
use crate::routes::pages::format;
use crate::routes::pages::{Chrome, CurrentUser, PageError, Posted};
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::contacts as store;

/// Notes end up in the append-only history; a limit keeps a stray paste out of it.
const NOTE_LIMIT: usize = 500;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts/{number}", web::get().to(one))
        .route("/contacts/{number}/consent", web::post().to(consent))
        .route("/contacts/{number}/edit", web::post().to(edit))
        .route("/contacts/{number}/number", web::post().to(change_number));
}

struct HistoryItem {
    change: String,
    change_label: &'static str,
    source: String,
    actor: String,
    detail: String,
    when: format::Stamp,
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
    when: format::Stamp,
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
    deauthorized_since: Option<format::Stamp>,
    first_inbound: Option<format::Stamp>,
    /// `open`, `closed` or `unknown`.
    window: &'static str,
    window_expires: Option<format::Stamp>,
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
    let tz = user.tz;
    let window_expires = format::Stamp::of(Window::expires_at(contact.last_inbound_at), tz);
    let deauthorized_since = format::Stamp::of(contact.deauthorized_at, tz);
    let first_inbound = format::Stamp::of(contact.first_inbound_at, tz);
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
    crate::routes::pages::html_with(
        &ContactPage {
            chrome: Chrome::for_user(user, state, "contacts"),
            said_label: consent_label(&said),
            said,
            c: item(contact, now, tz),
            deauthorized_since,
            first_inbound,
            window,
            window_expires,
            history: history
                .into_iter()
                .map(|h| HistoryItem {
                    change_label: change_label(&h.change),
                    when: format::Stamp::new(h.at, tz),
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
                    when: format::Stamp::new(p.retired_at, tz),
                    actor: p.actor.unwrap_or_default(),
                    number: p.number,
                    replaced_by: p.replaced_by,
                })
                .collect(),
            forms,
            notice,
            error,
        },
        status,
    )
}

fn path_number(raw: &str) -> Result<PhoneNumber, PageError> {
    PhoneNumber::parse(raw)
        .map_err(|_| PageError::NotFound(format!("no contact has the number {raw:?}")))
}

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<crate::routes::pages::DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = path_number(&path)?;
    let notice = q.notice(&[
        ("consent", "Consent updated."),
        ("edit", "Tags and name saved."),
        (
            "number",
            "Number changed. The old number is refused for sending from now on.",
        ),
    ]);
    render(&user, &state, &number, notice, None).await
}

fn back_to(number: &PhoneNumber, done: &str) -> HttpResponse {
    crate::routes::pages::done_redirect(&format!("/contacts/{number}"), done)
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
    Posted { user, form, .. }: Posted<ConsentForm, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = path_number(&path)?;
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
    Posted { user, form, .. }: Posted<EditForm, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = path_number(&path)?;
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
    Posted { user, form, .. }: Posted<NumberForm, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = path_number(&path)?;
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

crate::routes::pages::guard::csrf_forms!(ConsentForm, EditForm, NumberForm);
