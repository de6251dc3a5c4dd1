//! Retiring a sender on the dashboard (admin): `/admin/senders/{id}/deauthorize` and
//! `/admin/senders/{id}/replace` — GET shows the confirmation with what uses the sender (and,
//! for "Change number", the senders that may take over), POST does it and shows what was held
//! or moved and the contacts with an open 24-hour window on the old number. Thin over
//! [`crate::onboarding::retire`], like the JSON API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Allowed, Chrome, CsrfOnly, CurrentUser, PageError, Posted};
use crate::onboarding::retire::{self, Deauthorized, Replaced, RetireError, Usage};
use crate::routes::roles::Admin;
use crate::sending::policy;
use crate::state::AppState;
use crate::storage::senders as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/admin/senders/{id:\\d+}/deauthorize",
        web::get().to(deauthorize_page),
    )
    .route(
        "/admin/senders/{id:\\d+}/deauthorize",
        web::post().to(deauthorize),
    )
    .route(
        "/admin/senders/{id:\\d+}/replace",
        web::get().to(replace_page),
    )
    .route("/admin/senders/{id:\\d+}/replace", web::post().to(replace));
}

/// Which of the two the page is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Deauthorize,
    Replace,
}

#[derive(Template)]
#[template(path = "sender_retire.html")]
struct RetirePage {
    chrome: Chrome,
    action: Action,
    uses: Usage,
    /// Senders that may take over: (id, address).
    candidates: Vec<(i64, String)>,
    held: Option<Deauthorized>,
    moved: Option<Replaced>,
    error: Option<String>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    id: i64,
    action: Action,
    done: (Option<Deauthorized>, Option<Replaced>),
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, PageError> {
    let uses = match retire::usage(&state.pool, id).await {
        Ok(u) => u,
        Err(RetireError::Database(e)) => return Err(e.into()),
        Err(e) => return Err(PageError::NotFound(e.to_string())),
    };
    let candidates = store::all(&state.pool)
        .await?
        .into_iter()
        .filter(|s| s.id != id && policy::check_sender(&s.address, Some(s)).is_ok())
        .map(|s| (s.id, s.address))
        .collect();
    let (status, error) = match refused {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    super::html_with(
        &RetirePage {
            chrome: Chrome::for_user(user, state, "senders"),
            action,
            uses,
            candidates,
            held: done.0,
            moved: done.1,
            error,
        },
        status,
    )
}

/// The status a refusal is shown with.
fn refusal(e: RetireError) -> Result<(StatusCode, String), PageError> {
    let status = match &e {
        RetireError::NoSender(_) => StatusCode::NOT_FOUND,
        RetireError::SameSender => StatusCode::BAD_REQUEST,
        RetireError::Twilio(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::CONFLICT,
    };
    if let RetireError::Database(d) = e {
        return Err(d.into());
    }
    Ok((status, e.to_string()))
}

async fn deauthorize_page(
    user: Allowed<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    render(
        &user,
        &state,
        *path,
        Action::Deauthorize,
        (None, None),
        None,
    )
    .await
}

async fn deauthorize(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = *path;
    match retire::deauthorize(&state.pool, &state.messaging, id).await {
        Ok(done) => {
            tracing::info!(admin = %user.username, sender = %done.address, "sender de-authorized");
            render(
                &user,
                &state,
                id,
                Action::Deauthorize,
                (Some(done), None),
                None,
            )
            .await
        }
        Err(e) => {
            let refused = refusal(e)?;
            render(
                &user,
                &state,
                id,
                Action::Deauthorize,
                (None, None),
                Some(refused),
            )
            .await
        }
    }
}

async fn replace_page(
    user: Allowed<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    render(&user, &state, *path, Action::Replace, (None, None), None).await
}

#[derive(Deserialize)]
struct ReplaceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    with: String,
}

super::guard::csrf_forms!(ReplaceForm);

async fn replace(
    Posted { user, form, .. }: Posted<ReplaceForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = *path;
    if form.with.trim().is_empty() {
        let refused = (
            StatusCode::BAD_REQUEST,
            "Choose the sender to move the work to.".to_owned(),
        );
        return render(
            &user,
            &state,
            id,
            Action::Replace,
            (None, None),
            Some(refused),
        )
        .await;
    }
    match retire::replace(&state.pool, id, &form.with).await {
        Ok(done) => {
            tracing::info!(admin = %user.username, from = %done.from, to = %done.to, "sender's work moved");
            render(&user, &state, id, Action::Replace, (None, Some(done)), None).await
        }
        Err(e) => {
            let refused = refusal(e)?;
            render(
                &user,
                &state,
                id,
                Action::Replace,
                (None, None),
                Some(refused),
            )
            .await
        }
    }
}
