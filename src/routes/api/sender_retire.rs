//! `POST /api/v1/senders/{id}/deauthorize` `{confirm: true}` and
//! `POST /api/v1/senders/{id}/replace` `{with}` (admin): thin over
//! [`crate::onboarding::retire`]. Without `confirm`, de-authorizing answers 409
//! `confirmation_required` with what uses the sender, the confirmation the dashboard shows.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::onboarding::retire::{self, RetireError};
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/senders/{id}/deauthorize", web::post().to(deauthorize))
        .route("/senders/{id}/replace", web::post().to(replace));
}

impl From<RetireError> for ApiError {
    fn from(e: RetireError) -> Self {
        let status = match &e {
            RetireError::NoSender(_) => return ApiError::NotFound(e.to_string()),
            RetireError::SameSender => StatusCode::BAD_REQUEST,
            RetireError::DefaultSender(_)
            | RetireError::AlreadyDisabled(_)
            | RetireError::NotUsable { .. } => StatusCode::CONFLICT,
            RetireError::Twilio(_) => StatusCode::BAD_GATEWAY,
            RetireError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let RetireError::Database(d) = e {
            return d.into();
        }
        ApiError::Other(status, e.code(), e.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeauthorizeBody {
    #[serde(default)]
    confirm: bool,
}

/// An empty body is a request without confirmation.
fn parse<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn deauthorize(
    caller: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: DeauthorizeBody = parse(&body)?;
    let id = path.into_inner();
    if !body.confirm {
        let uses = retire::usage(&state.pool, id).await?;
        return Ok(HttpResponse::Conflict().json(serde_json::json!({
            "error": {
                "code": "confirmation_required",
                "message": "de-authorizing removes the sender at Twilio and holds its work: \
                            send {\"confirm\": true} to go ahead",
            },
            "uses": uses,
        })));
    }
    let done = retire::deauthorize(&state.pool, &state.messaging, id).await?;
    tracing::info!(token = caller.token_id, sender = %done.address, "sender de-authorized through the API");
    Ok(HttpResponse::Ok().json(done))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    with: Option<serde_json::Value>,
}

async fn replace(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: ReplaceBody = parse(&body)?;
    let with = match body.with {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s,
        _ => {
            return Err(ApiError::BadRequest(
                "with: the sender to move the work to, by id or address, is required".into(),
            ));
        }
    };
    let done = retire::replace(&state.pool, path.into_inner(), &with).await?;
    Ok(HttpResponse::Ok().json(done))
}
