//! `/admin/senders` (admin): the business's WhatsApp senders. Add one, change its label,
//! status, throughput, sandbox join code or make it the default, or disable (de-authorize)
//! it. Validation is `crate::senders`', as for `/api/v1/senders`; the default sender can be
//! neither disabled nor un-defaulted until another sender is made the default.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::sender_health::{self, SyncNote, TwilioView};
use super::{Chrome, CurrentUser, PageError};
use crate::domain::SenderStatus;
use crate::routes::pages::{Allowed, CsrfOnly, Posted};
use crate::routes::roles::Admin;
use crate::senders::{self as service, JoinInstructions, SenderInput};
use crate::state::AppState;
use crate::storage::senders::{self as store, SenderRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/senders", web::get().to(page))
        .route("/admin/senders", web::post().to(add))
        .route("/admin/senders/{id}", web::post().to(change))
        .route("/admin/senders/{id}/disable", web::post().to(disable))
        .route("/admin/senders/{id}/restore", web::post().to(restore));
}

/// Messages per second for people: `80`, `0.333`.
pub(super) fn mps_text(mps: f64) -> String {
    if mps.fract() == 0.0 {
        format!("{mps:.0}")
    } else {
        let s = format!("{mps:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A sender's editable settings as the forms show them.
#[derive(Debug, Clone, Default)]
struct SenderFields {
    address: String,
    label: String,
    status: String,
    mps: String,
    join_code: String,
    make_default: bool,
}

struct SenderItem {
    id: i64,
    address: String,
    kind: String,
    status: String,
    is_default: bool,
    sandbox: bool,
    label: String,
    mps: String,
    join_code: String,
    join: Option<JoinInstructions>,
    /// The edit form's values (what was typed, after a refused edit).
    fields: SenderFields,
    /// The edit form is open (it was refused).
    open: bool,
    /// What Twilio says of it, when Twilio lists it.
    twilio: Option<TwilioView>,
}

fn fields_of(s: &SenderRow) -> SenderFields {
    SenderFields {
        address: s.address.clone(),
        label: s.label.clone(),
        status: s.status.as_str().to_owned(),
        mps: mps_text(s.mps),
        join_code: s.join_code.clone().unwrap_or_default(),
        make_default: s.is_default,
    }
}

#[derive(Template)]
#[template(path = "senders.html")]
struct SendersPage {
    chrome: Chrome,
    senders: Vec<SenderItem>,
    new: SenderFields,
    statuses: [&'static str; 3],
    sandbox_number: &'static str,
    notice: Option<String>,
    /// How the sender syncs from Twilio have gone.
    sync: SyncNote,
    /// The sender just disabled, offered to be restored: (id, address, status it had).
    undo: Option<(i64, String, String)>,
    error: Option<String>,
}

/// What a refused form leaves on the page.
enum Refused {
    Add(SenderFields),
    Change(i64, SenderFields),
    Other,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Refused)>,
) -> Result<HttpResponse, PageError> {
    render_with_undo(user, state, notice, refused, None).await
}

/// `disabled`: the sender just disabled and the status it had, to offer undoing it while it
/// is still disabled.
async fn render_with_undo(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Refused)>,
    disabled: Option<(i64, SenderStatus)>,
) -> Result<HttpResponse, PageError> {
    let rows = store::all(&state.pool).await?;
    let undo = disabled.and_then(|(id, was)| {
        rows.iter()
            .find(|s| s.id == id && s.status == SenderStatus::Disabled)
            .map(|s| (s.id, s.address.clone(), was.as_str().to_owned()))
    });
    let (status, error, refused) = match refused {
        Some((s, e, r)) => (s, Some(e), r),
        None => (StatusCode::OK, None, Refused::Other),
    };
    let senders = rows
        .iter()
        .map(|s| {
            let (fields, open) = match &refused {
                Refused::Change(id, typed) if *id == s.id => (typed.clone(), true),
                _ => (fields_of(s), false),
            };
            SenderItem {
                id: s.id,
                address: s.address.clone(),
                kind: s.kind.clone(),
                status: s.status.as_str().to_owned(),
                is_default: s.is_default,
                sandbox: s.kind == "sandbox",
                label: s.label.clone(),
                mps: mps_text(s.mps),
                join_code: s.join_code.clone().unwrap_or_default(),
                join: service::join_instructions(s),
                fields,
                open,
                twilio: sender_health::twilio_view(s, &state.public_url, user.tz),
            }
        })
        .collect();
    let new = match refused {
        Refused::Add(typed) => typed,
        _ => SenderFields {
            status: SenderStatus::Active.as_str().into(),
            ..SenderFields::default()
        },
    };
    crate::routes::pages::html_with(
        &SendersPage {
            chrome: Chrome::for_user(user, state, "senders"),
            senders,
            new,
            statuses: SenderStatus::ALL.map(SenderStatus::as_str),
            sandbox_number: service::SANDBOX_NUMBER,
            notice,
            sync: sender_health::sync_note_now(state, user.tz).await?,
            undo,
            error,
        },
        status,
    )
}

/// The page's query: a done action's notice, and after disabling, which sender and the status
/// it had (`?done=disabled&id=3&was=active`), for the undo button.
#[derive(Debug, Deserialize)]
struct PageQuery {
    done: Option<String>,
    id: Option<i64>,
    was: Option<String>,
}

async fn page(
    user: Allowed<Admin>,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = super::DoneQuery {
        done: query.done.clone(),
        id: query.id,
    };
    let was = match query.was.as_deref() {
        Some("pending") => SenderStatus::Pending,
        _ => SenderStatus::Active,
    };
    let disabled = query
        .id
        .filter(|_| query.done.as_deref() == Some("disabled"))
        .map(|id| (id, was));
    let notice = q.notice(&[
        ("added", "Sender added."),
        ("changed", "Sender changed."),
        (
            "disabled",
            "Sender disabled: nothing is sent from it any more; its history stays.",
        ),
        ("restored", "Sender restored to the status it had."),
        sender_health::NOTICES[0],
        sender_health::NOTICES[1],
    ]);
    render_with_undo(&user, &state, notice, None, disabled).await
}

fn done(what: &str) -> HttpResponse {
    super::done_redirect("/admin/senders", what)
}

#[derive(Deserialize)]
struct SenderForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    mps: String,
    #[serde(default)]
    join_code: String,
    /// The "make default" checkbox.
    make_default: Option<String>,
}

impl SenderForm {
    fn fields(&self) -> SenderFields {
        SenderFields {
            address: self.address.clone(),
            label: self.label.clone(),
            status: self.status.clone(),
            mps: self.mps.clone(),
            join_code: self.join_code.clone(),
            make_default: self.make_default.is_some(),
        }
    }
}

/// An empty field keeps the current (or kind's default) throughput; so does the shown
/// rounding of the current one, so saving a form unchanged changes nothing.
fn parse_mps(text: &str, current: Option<f64>) -> Result<Option<f64>, String> {
    let t = text.trim();
    if t.is_empty() || current.is_some_and(|c| mps_text(c) == t) {
        return Ok(None);
    }
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| format!("messages per second must be a number, got {t:?}"))
}

/// Saving can still fail on the database's own rules: another sender with the address, or
/// another default set at the same moment.
fn save_refusal(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(if db.constraint() == Some("senders_default_idx") {
                "another sender was made the default at the same moment; try again".into()
            } else {
                "a sender with this address already exists".into()
            })
        }
        _ => None,
    }
}

async fn add(
    Posted { user, form, .. }: Posted<SenderForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let typed = form.fields();
    let refuse = |status, e: String| {
        render(
            &user,
            &state,
            None,
            Some((status, e, Refused::Add(typed.clone()))),
        )
    };
    let mps = match parse_mps(&form.mps, None) {
        Ok(m) => m,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e).await,
    };
    let input = SenderInput {
        address: Some(form.address.clone()),
        label: Some(form.label.clone()),
        status: Some(form.status.clone()),
        join_code: Some(form.join_code.clone()),
        mps,
        is_default: Some(form.make_default.is_some()),
    };
    let new = match service::validate_new(&input) {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e).await,
    };
    let mut tx = state.pool.begin().await?;
    let row = match store::insert(&mut tx, &new).await {
        Ok(r) => r,
        Err(e) => match save_refusal(&e) {
            Some(m) => return refuse(StatusCode::CONFLICT, m).await,
            None => return Err(e.into()),
        },
    };
    tx.commit().await?;
    tracing::info!(admin = %user.username, sender = %row.address, status = %row.status, "sender added");
    Ok(done("added"))
}

async fn find(state: &AppState, id: i64) -> Result<SenderRow, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender {id}")))
}

async fn change(
    Posted { user, form, .. }: Posted<SenderForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let existing = find(&state, *path).await?;
    let mut typed = form.fields();
    typed.address = existing.address.clone();
    let refuse = |status, e: String| {
        render(
            &user,
            &state,
            None,
            Some((status, e, Refused::Change(existing.id, typed.clone()))),
        )
    };
    let status = form.status.trim();
    if existing.is_default && !status.is_empty() && status != SenderStatus::Active.as_str() {
        let e = format!(
            "{} is the default sender and must stay active: make another sender the default first",
            existing.address
        );
        return refuse(StatusCode::CONFLICT, e).await;
    }
    let mps = match parse_mps(&form.mps, Some(existing.mps)) {
        Ok(m) => m,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e).await,
    };
    let input = SenderInput {
        address: None,
        label: Some(form.label.clone()),
        status: Some(form.status.clone()),
        // Only the sandbox's form has the field; an empty one clears the code.
        join_code: Some(form.join_code.clone()),
        mps,
        // The default sender's form has no checkbox: it stays the default until another
        // sender is made the default.
        is_default: Some(existing.is_default || form.make_default.is_some()),
    };
    let new = match service::validate_update(&existing, &input) {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e).await,
    };
    let mut tx = state.pool.begin().await?;
    let row = match store::update(&mut tx, existing.id, &new).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(PageError::NotFound(format!("no sender {}", existing.id))),
        Err(e) => match save_refusal(&e) {
            Some(m) => return refuse(StatusCode::CONFLICT, m).await,
            None => return Err(e.into()),
        },
    };
    tx.commit().await?;
    tracing::info!(admin = %user.username, sender = %row.address, status = %row.status, "sender changed");
    Ok(done("changed"))
}

/// De-authorizes a sender: nothing is sent from it any more; its history stays.
async fn disable(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let existing = find(&state, *path).await?;
    if existing.is_default {
        return render(
            &user,
            &state,
            None,
            Some((
                StatusCode::CONFLICT,
                format!(
                    "{} is the default sender and cannot be disabled: make another sender the default first",
                    existing.address
                ),
                Refused::Other,
            )),
        )
        .await;
    }
    let input = SenderInput {
        status: Some(SenderStatus::Disabled.as_str().into()),
        ..Default::default()
    };
    let new = service::validate_update(&existing, &input).map_err(PageError::BadRequest)?;
    let mut tx = state.pool.begin().await?;
    let row = store::update(&mut tx, existing.id, &new)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender {}", existing.id)))?;
    tx.commit().await?;
    tracing::info!(admin = %user.username, sender = %row.address, "sender disabled");
    Ok(HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!(
                "/admin/senders?done=disabled&id={}&was={}",
                row.id,
                existing.status.as_str()
            ),
        ))
        .finish())
}

#[derive(Deserialize)]
struct RestoreForm {
    #[serde(default)]
    csrf: String,
    /// The status it had before it was disabled: `active` or `pending`.
    #[serde(default)]
    status: String,
}

/// Undoes a disable: the sender gets back the status it had (active or pending).
async fn restore(
    Posted { user, form, .. }: Posted<RestoreForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let existing = find(&state, *path).await?;
    let status = match form.status.as_str() {
        s @ ("active" | "pending") => s,
        other => {
            return Err(PageError::BadRequest(format!(
                "a sender is restored to active or pending, not {other:?}"
            )));
        }
    };
    let input = SenderInput {
        status: Some(status.into()),
        ..Default::default()
    };
    let new = service::validate_update(&existing, &input).map_err(PageError::BadRequest)?;
    let mut tx = state.pool.begin().await?;
    let row = store::update(&mut tx, existing.id, &new)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender {}", existing.id)))?;
    tx.commit().await?;
    tracing::info!(admin = %user.username, sender = %row.address, status = %row.status, "sender restored");
    Ok(done("restored"))
}

crate::routes::pages::guard::csrf_forms!(SenderForm, RestoreForm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_reads_naturally_and_an_unchanged_field_keeps_the_exact_value() {
        assert_eq!(mps_text(80.0), "80");
        assert_eq!(mps_text(service::SANDBOX_MPS), "0.333");
        assert_eq!(mps_text(2.5), "2.5");
        assert_eq!(parse_mps("0.333", Some(service::SANDBOX_MPS)), Ok(None));
        assert_eq!(parse_mps(" ", Some(80.0)), Ok(None));
        assert_eq!(parse_mps("40", Some(80.0)), Ok(Some(40.0)));
        assert!(parse_mps("fast", None).is_err());
        assert!(parse_mps("NaN", None).is_err());
    }
}
