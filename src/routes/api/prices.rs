//! `/api/v1/prices`: the price table (anyone reads it, admins replace it with a CSV upload)
//! and the cost estimate of one message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::domain::{Direction, PhoneNumber};
use crate::error::ApiError;
use crate::pricing::{self, Breakdown, Category, LineError};
use crate::routes::price_estimate::{self, EstimateFailure, EstimateRequest};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::prices as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/prices")
            .app_data(web::PayloadConfig::new(
                crate::routes::transfer::PRICE_BOOK_MAX,
            ))
            .route(web::get().to(list))
            .route(web::put().to(upload)),
    )
    .route("/prices/estimate", web::post().to(estimate));
}

async fn list(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = store::all(&state.pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Serialize)]
struct UploadErrors {
    errors: Vec<LineError>,
}

/// Replaces the whole table with a CSV (`effective_from,kind,country,category,amount,currency`).
/// Every line is checked first: with any error, nothing changes and every bad line is listed.
async fn upload(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let prices = match pricing::parse(&body) {
        Ok(p) => p,
        Err(errors) => {
            return Ok(
                HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(UploadErrors { errors })
            );
        }
    };
    let by = format!("api token #{}", caller.token_id);
    let mut tx = state.pool.begin().await?;
    store::replace(&mut tx, &prices, Some(&by)).await?;
    tx.commit().await?;
    state.prices.invalidate().await;
    tracing::info!(rows = prices.len(), %by, "price table replaced");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rows": prices.len() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EstimateBody {
    to: String,
    /// Absent: a free-form (service) message.
    template_category: Option<Category>,
    #[serde(default)]
    in_window: bool,
    /// RFC 3339; now when absent.
    at: Option<String>,
    direction: Option<Direction>,
    #[serde(default)]
    failed: bool,
    /// Before 2025-07-01 only: a conversation of this category is already open.
    #[serde(default)]
    conversation_open: bool,
}

#[derive(Debug, Serialize)]
struct EstimateView {
    country: &'static str,
    #[serde(flatten)]
    breakdown: Breakdown,
}

async fn estimate(
    _: ApiCaller,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let b: EstimateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let request = EstimateRequest {
        to: PhoneNumber::parse(&b.to).map_err(|e| ApiError::BadRequest(format!("to: {e}")))?,
        template: b.template_category,
        in_window: b.in_window,
        direction: b.direction.unwrap_or(Direction::Outbound),
        failed: b.failed,
        conversation_open: b.conversation_open,
        at: super::parse_time("at", b.at.as_deref())?.unwrap_or_else(Utc::now),
    };
    let e = price_estimate::estimate(&state.pool, &request)
        .await
        .map_err(|e| match e {
            EstimateFailure::NoPrice(e) => {
                ApiError::Other(StatusCode::UNPROCESSABLE_ENTITY, "no_price", e.to_string())
            }
            EstimateFailure::Database(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(EstimateView {
        country: e.country,
        breakdown: e.breakdown,
    }))
}
