//! `GET /api/v1/messaging-services` (the account's Messaging Services and the WhatsApp
//! senders in each, read from Twilio) and, for admins,
//! `POST /api/v1/messaging-services/{MG}/senders` `{sender_id}` and
//! `DELETE /api/v1/messaging-services/{MG}/senders/{sender_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::onboarding::services::{self, ServiceError};
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/messaging-services", web::get().to(list))
        .route(
            "/messaging-services/{service}/senders",
            web::post().to(attach),
        )
        .route(
            "/messaging-services/{service}/senders/{sender_id}",
            web::delete().to(detach),
        );
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadService(_) => ApiError::BadRequest(e.to_string()),
            ServiceError::NoSender(_) => ApiError::NotFound(e.to_string()),
            ServiceError::NotAtTwilio(_) => {
                ApiError::Other(StatusCode::CONFLICT, "sender_not_at_twilio", e.to_string())
            }
            ServiceError::Twilio(t) => {
                ApiError::Other(StatusCode::BAD_GATEWAY, "twilio_error", t.to_string())
            }
            ServiceError::Database(d) => d.into(),
        }
    }
}

async fn list(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = services::list(&state.pool, &state.messaging).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachBody {
    sender_id: i64,
}

async fn attach(
    _: ApiCaller<Admin>,
    path: web::Path<String>,
    body: web::Json<AttachBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let added = services::attach(&state.pool, &state.messaging, &path, body.sender_id).await?;
    Ok(HttpResponse::Created().json(added))
}

async fn detach(
    _: ApiCaller<Admin>,
    path: web::Path<(String, i64)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (service, id) = path.into_inner();
    services::detach(&state.pool, &state.messaging, &service, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
