//! `/api/v1/rules`: automatic-reply rules, in evaluation order. Admins edit them.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::replies::rules::{self, RuleInput};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::reply_rules as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rules", web::get().to(list))
        .route("/rules", web::post().to(create))
        .route("/rules/{id}", web::get().to(get))
        .route("/rules/{id}", web::put().to(replace))
        .route("/rules/{id}", web::delete().to(delete))
        .route("/rules/{id}/move", web::post().to(move_rule));
}

fn parse_body(body: &[u8]) -> Result<RuleInput, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn list(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = store::all(&state.pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn create(
    _: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rule = rules::validate(&parse_body(&body)?).map_err(ApiError::BadRequest)?;
    rules::check_bot(&state.pool, &rule)
        .await?
        .map_err(ApiError::BadRequest)?;
    let row = store::insert(&state.pool, &rule).await?;
    Ok(HttpResponse::Created().json(row))
}

async fn get(
    _: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = store::get(&state.pool, *path)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rule {path}")))?;
    Ok(HttpResponse::Ok().json(row))
}

async fn replace(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rule = rules::validate(&parse_body(&body)?).map_err(ApiError::BadRequest)?;
    rules::check_bot(&state.pool, &rule)
        .await?
        .map_err(ApiError::BadRequest)?;
    let row = store::update(&state.pool, *path, &rule)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rule {path}")))?;
    Ok(HttpResponse::Ok().json(row))
}

async fn delete(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if store::delete(&state.pool, *path).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no rule {path}")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    /// `up` or `down`.
    direction: String,
}

async fn move_rule(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Json<MoveBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let up = match body.direction.as_str() {
        "up" => true,
        "down" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "direction must be up or down, got {other:?}"
            )));
        }
    };
    store::get(&state.pool, *path)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rule {path}")))?;
    store::move_rule(&state.pool, *path, up).await?;
    Ok(HttpResponse::Ok().json(store::all(&state.pool).await?))
}
