//! `/admin/messaging-services` (admin): the account's Messaging Services at Twilio with the
//! WhatsApp senders in each; put a sender Twilio lists into a service, or take it out.
//! A thin adapter over `crate::onboarding::services`, like `/api/v1/messaging-services`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, CurrentUser, DoneQuery, PageError};
use crate::onboarding::services::{self, ServiceError, ServiceView};
use crate::routes::pages::{Allowed, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::senders as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/messaging-services", web::get().to(page))
        .route(
            "/admin/messaging-services/{service}/attach",
            web::post().to(attach),
        )
        .route(
            "/admin/messaging-services/{service}/detach",
            web::post().to(detach),
        );
}

#[derive(Template)]
#[template(path = "messaging_services.html")]
struct ServicesPage {
    chrome: Chrome,
    services: Vec<ServiceView>,
    /// Senders Twilio lists, which a service may take: (id, address).
    candidates: Vec<(i64, String)>,
    notice: Option<String>,
    error: Option<String>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, PageError> {
    let (services, read_error) = match services::list(&state.pool, &state.messaging).await {
        Ok(s) => (s, None),
        Err(ServiceError::Database(e)) => return Err(e.into()),
        Err(e) => (
            Vec::new(),
            Some(format!(
                "Twilio's Messaging Services could not be read: {e}"
            )),
        ),
    };
    let candidates = store::all(&state.pool)
        .await?
        .into_iter()
        .filter(|s| s.twilio.twilio_sid.is_some() && s.twilio.twilio_gone_at.is_none())
        .map(|s| (s.id, s.address))
        .collect();
    let (status, error) = match refused {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, read_error),
    };
    crate::routes::pages::html_with(
        &ServicesPage {
            chrome: Chrome::for_user(user, state, "senders"),
            services,
            candidates,
            notice,
            error,
        },
        status,
    )
}

async fn page(
    user: Allowed<Admin>,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let notice = query.notice(&[
        ("attached", "Sender put into the Messaging Service."),
        ("detached", "Sender taken out of the Messaging Service."),
    ]);
    render(&user, &state, notice, None).await
}

#[derive(Deserialize)]
struct SenderForm {
    #[serde(default)]
    csrf: String,
    sender_id: i64,
}

crate::routes::pages::guard::csrf_forms!(SenderForm);

/// The page again with what went wrong, or the done notice.
async fn answer(
    user: &CurrentUser,
    state: &AppState,
    result: Result<(), ServiceError>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let e = match result {
        Ok(()) => return Ok(super::done_redirect("/admin/messaging-services", done)),
        Err(ServiceError::Database(e)) => return Err(e.into()),
        Err(e) => e,
    };
    let status = match e {
        ServiceError::BadService(_) => StatusCode::BAD_REQUEST,
        ServiceError::NoSender(_) => StatusCode::NOT_FOUND,
        ServiceError::NotAtTwilio(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    render(user, state, None, Some((status, e.to_string()))).await
}

async fn attach(
    Posted { user, form, .. }: Posted<SenderForm, Admin>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let result = services::attach(&state.pool, &state.messaging, &path, form.sender_id)
        .await
        .map(drop);
    answer(&user, &state, result, "attached").await
}

async fn detach(
    Posted { user, form, .. }: Posted<SenderForm, Admin>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let result = services::detach(&state.pool, &state.messaging, &path, form.sender_id).await;
    answer(&user, &state, result, "detached").await
}
