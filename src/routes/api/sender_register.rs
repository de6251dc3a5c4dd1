//! `POST /api/v1/senders/register`, `/senders/{id}/verify`, `/senders/{id}/verify/resend` and
//! `/senders/{id}/check` (admin): registering a WhatsApp number at Twilio, a thin adapter on
//! `crate::onboarding::register`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::onboarding::input::RegisterInput;
use crate::onboarding::register::{self, Context, RegisterError};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::twilio::client::TwilioError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/senders/register", web::post().to(register_sender))
        .route("/senders/{id}/verify", web::post().to(verify))
        .route("/senders/{id}/verify/resend", web::post().to(resend))
        .route("/senders/{id}/check", web::post().to(check));
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        let text = e.to_string();
        match e {
            RegisterError::Invalid(i) => {
                let code = if i.field == "code" {
                    "invalid_code"
                } else {
                    "invalid_registration"
                };
                ApiError::Other(StatusCode::UNPROCESSABLE_ENTITY, code, text)
            }
            RegisterError::Taken { .. } => {
                ApiError::Other(StatusCode::CONFLICT, "registration_exists", text)
            }
            RegisterError::Registered { .. } => {
                ApiError::Other(StatusCode::CONFLICT, "sender_exists", text)
            }
            RegisterError::NotFound(m) => ApiError::NotFound(m),
            RegisterError::WrongStep(_) => {
                ApiError::Other(StatusCode::CONFLICT, "wrong_step", text)
            }
            RegisterError::SelfSignup(_) => {
                ApiError::Other(StatusCode::BAD_GATEWAY, "self_signup_required", text)
            }
            RegisterError::Refused(_) => {
                ApiError::Other(StatusCode::BAD_GATEWAY, "twilio_error", text)
            }
            RegisterError::Unreachable {
                source: TwilioError::Timeout(_),
                ..
            } => ApiError::Other(StatusCode::GATEWAY_TIMEOUT, "twilio_timeout", text),
            RegisterError::Unreachable { .. } => {
                ApiError::Other(StatusCode::BAD_GATEWAY, "twilio_unavailable", text)
            }
            RegisterError::Database(d) => d.into(),
        }
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::Other(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_registration",
            format!("the body is not JSON of the documented shape: {e}"),
        )
    })
}

async fn register_sender(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input: RegisterInput = json_body(&body)?;
    let by = format!("api token #{}", caller.token_id);
    let ctx = Context {
        pool: &state.pool,
        messaging: &state.messaging,
        public_url: &state.public_url,
        mps: crate::senders::DEFAULT_MPS,
        by: &by,
    };
    let status = register::register(&ctx, &input).await?;
    Ok(HttpResponse::Accepted().json(status))
}

#[derive(serde::Deserialize)]
struct VerifyBody {
    #[serde(default)]
    code: String,
}

async fn verify(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let b: VerifyBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Other(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
            format!("the body must be {{\"code\": \"123456\"}}: {e}"),
        )
    })?;
    let status = register::verify(&state.pool, &state.messaging, *path, &b.code).await?;
    Ok(HttpResponse::Accepted().json(status))
}

async fn resend(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = register::resend(&state.pool, &state.messaging, *path).await?;
    Ok(HttpResponse::Accepted().json(status))
}

async fn check(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = register::check(&state.pool, &state.messaging, *path).await?;
    Ok(HttpResponse::Ok().json(status))
}
