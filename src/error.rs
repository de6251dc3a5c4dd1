//! The JSON API's error type: `{"error": {"code": "...", "message": "..."}}` with a fitting
//! status. Client mistakes are described to the client; unexpected failures are logged with
//! their whole cause chain and shown to the client only as a generic message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("this action needs the {0} role")]
    Forbidden(crate::domain::Role),
    #[error("{0}")]
    NotFound(String),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// 429 with its own code and a `Retry-After` of so many seconds.
    #[error("{1}")]
    RetryLater(&'static str, String, u64),
    /// Any other status with its own code, e.g. Twilio refusing a message.
    #[error("{2}")]
    Other(StatusCode, &'static str, String),
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable => "unavailable",
            ApiError::Other(_, code, _) | ApiError::RetryLater(code, _, _) => code,
            ApiError::Unexpected(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_transient(&e) {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Unexpected(e.into())
        }
    }
}

/// Builds the JSON error body used everywhere (API and webhooks).
pub fn error_body(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "error": { "code": code, "message": message }
    }))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Other(status, _, _) => *status,
            ApiError::RetryLater(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unexpected(e) = self {
            tracing::error!(error = ?e, "unexpected error");
        }
        let mut resp = error_body(self.status_code(), self.code(), &self.to_string());
        match self {
            ApiError::Unauthorized => {
                resp.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Unavailable => {
                resp.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("1"),
                );
            }
            ApiError::RetryLater(_, _, secs) => {
                resp.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(*secs),
                );
            }
            _ => {}
        }
        resp
    }
}
