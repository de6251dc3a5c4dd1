//! `GET /api/v1/alerts?state=` and `POST /api/v1/alerts/{id}/acknowledge`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::domain::alert_state::AlertState;
use crate::error::ApiError;
use crate::routes::roles::{Admin, Operator};
use crate::state::AppState;
use crate::storage::alerts;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/alerts", web::get().to(list))
        .route("/alert-rules", web::get().to(get_rules))
        .route("/alert-rules", web::put().to(put_rules))
        .route("/alerts/{id}/acknowledge", web::post().to(acknowledge));
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
}

async fn list(
    _: ApiCaller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(AlertState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state must be firing, acknowledged or resolved, got {s:?}"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let items = alerts::list(&state.pool, wanted, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn acknowledge(
    caller: ApiCaller<Operator>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = format!("api token #{}", caller.token_id);
    match crate::alerts::acknowledge(&state.pool, *path, &by).await? {
        Some(a) => Ok(HttpResponse::Ok().json(a)),
        None => match alerts::get(&state.pool, *path).await? {
            None => Err(ApiError::NotFound(format!("no alert {path}"))),
            Some(a) => Err(ApiError::Other(
                actix_web::http::StatusCode::CONFLICT,
                "invalid_state",
                format!("the alert is {}, not firing", a.state),
            )),
        },
    }
}

async fn get_rules(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(crate::alerts::rules::load(&state.pool).await?))
}

/// Replaces the rules; fields left out take their defaults.
async fn put_rules(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rules: crate::alerts::rules::Rules = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid alert rules: {e}")))?;
    rules.validate().map_err(ApiError::BadRequest)?;
    crate::alerts::rules::save(&state.pool, &rules).await?;
    tracing::info!(by = %format!("api token #{}", caller.token_id), "alert rules changed");
    Ok(HttpResponse::Ok().json(rules))
}
