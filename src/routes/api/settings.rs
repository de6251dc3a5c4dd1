//! `GET/PUT/DELETE /api/v1/settings/twilio` (admin): which Twilio credentials are in force
//! and where they come from; replacing them at run time; removing an API-set override.
//! Secrets go in, never out.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::auth::ApiCaller;
use crate::credentials::CredentialSet;
use crate::credentials::manager::StoreError;
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings/twilio", web::get().to(show))
        .route("/settings/twilio", web::put().to(replace))
        .route("/settings/twilio", web::delete().to(remove));
}

async fn show(_: ApiCaller<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.credentials.status()))
}

async fn replace(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // serde's message for an unknown field names the field, never a value.
    let set: CredentialSet = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a JSON object with auth_token, auth_token_secondary, api_key, api_secret or account_sid ({})",
            e.classify_message()
        ))
    })?;
    let status = state.credentials.store(set).await.map_err(store_error)?;
    tracing::info!(
        token = caller.token_id,
        "Twilio credentials replaced through the API"
    );
    Ok(HttpResponse::Ok().json(status))
}

async fn remove(
    caller: ApiCaller<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = state.credentials.clear().await.map_err(store_error)?;
    tracing::info!(
        token = caller.token_id,
        "Twilio credentials set through the API removed"
    );
    Ok(HttpResponse::Ok().json(status))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::BadRequest(m),
        StoreError::NoSecretKey => {
            ApiError::Other(StatusCode::CONFLICT, "secret_key_missing", e.to_string())
        }
        StoreError::Conflict(m) => ApiError::Other(StatusCode::CONFLICT, "account_change", m),
        StoreError::Database(e) => e.into(),
    }
}

/// serde_json's error text without anything quoted from the input.
pub(super) trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> String {
        use serde_json::error::Category;
        match self.classify() {
            Category::Data => {
                let text = self.to_string();
                // "unknown field `x`, expected one of …" names a field: safe and useful.
                if text.starts_with("unknown field") {
                    text.split(", expected").next().unwrap_or("").to_owned()
                } else {
                    "a value has the wrong type".into()
                }
            }
            Category::Syntax | Category::Eof => "the body is not valid JSON".into(),
            Category::Io => "the body could not be read".into(),
        }
    }
}
