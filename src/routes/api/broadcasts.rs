//! `/api/v1/broadcasts`: preview, queue and follow broadcasts; pause, resume, cancel and
//! retry them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::broadcasts::audience::{self, AudienceBody, parse_audience};
use crate::broadcasts::lifecycle::{self, LifecycleError};
use crate::broadcasts::view::{check_bucket, list_cursor, view};
use crate::broadcasts::{self, BroadcastError, BroadcastRequest, results, taps};
use crate::domain::BroadcastStatus;
use crate::domain::{BroadcastAction, Role};
use crate::error::ApiError;
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::broadcasts::{self as store, BroadcastRow, RecipientRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/broadcasts")
            // 200,000 numbers or a CSV with variables: far above the default 256 KiB.
            .app_data(web::PayloadConfig::new(
                crate::routes::transfer::CSV_UPLOAD_MAX,
            ))
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .route("/broadcasts/{id}", web::get().to(get))
    .route("/broadcasts/{id}/recipients", web::get().to(recipients))
    .route("/broadcasts/{id}/recipients.csv", web::get().to(export))
    .route("/broadcasts/{id}/{action}", web::post().to(act));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    body: Option<String>,
    media_url: Option<serde_json::Value>,
    content_sid: Option<String>,
    content_variables: Option<serde_json::Value>,
    sender: Option<String>,
    start_at: Option<String>,
    audience: AudienceBody,
    /// The template's category for the cost estimate (marketing when absent).
    template_category: Option<crate::pricing::Category>,
    /// Which CSV column (or value for everyone) fills each placeholder:
    /// `{"1": {"column": "first_name"}, "2": {"value": "Monday"}}`. Optional: without it
    /// the CSV's columns are named after the placeholders, as before.
    variable_mapping: Option<broadcasts::mapping::Mapping>,
    /// Only show what would happen.
    #[serde(default)]
    preview: bool,
}

fn broadcast_error(e: BroadcastError) -> ApiError {
    match e {
        BroadcastError::Invalid(m) => ApiError::BadRequest(m),
        BroadcastError::Refused(r) => {
            ApiError::Other(StatusCode::CONFLICT, r.code(), r.to_string())
        }
        e @ BroadcastError::NoRecipients(_) => ApiError::Other(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_recipients",
            e.to_string(),
        ),
        BroadcastError::Duplicate(id) => ApiError::Other(
            StatusCode::CONFLICT,
            "duplicate_request",
            format!("this request was made already: broadcast #{id}"),
        ),
        e @ BroadcastError::Pricing(_) => {
            ApiError::Other(StatusCode::UNPROCESSABLE_ENTITY, "no_price", e.to_string())
        }
        BroadcastError::Database(e) => e.into(),
    }
}

/// A lifecycle refusal as the API answers it.
fn lifecycle_error(e: LifecycleError) -> ApiError {
    match e {
        e @ (LifecycleError::NotFound(_) | LifecycleError::UnknownAction(_)) => {
            ApiError::NotFound(e.to_string())
        }
        e @ LifecycleError::InvalidState { .. } => {
            ApiError::Other(StatusCode::CONFLICT, "invalid_state", e.to_string())
        }
        LifecycleError::Database(e) => e.into(),
    }
}

#[derive(Debug, Serialize)]
struct Created {
    id: i64,
    status: BroadcastStatus,
    recipients: usize,
    excluded: Vec<audience::Excluded>,
    estimated_cost: String,
    cost_currency: String,
    estimated_seconds: f64,
    start_at: chrono::DateTime<Utc>,
}

async fn create(
    caller: ApiCaller<Operator>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_key = match req.headers().get("Idempotency-Key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
                    )
                })?;
            Some(format!("api:{key}"))
        }
    };
    let b: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let audience = parse_audience(b.audience).map_err(ApiError::BadRequest)?;
    let start_at = super::parse_time("start_at", b.start_at.as_deref())?;
    let media = super::messages::media_urls(b.media_url)?;
    let content_variables = match b.content_variables {
        Some(serde_json::Value::String(s)) => Some(
            serde_json::from_str(&s)
                .map_err(|e| ApiError::BadRequest(format!("content_variables: {e}")))?,
        ),
        other => other.filter(|v| !v.is_null()),
    };
    let req = BroadcastRequest {
        name: b.name,
        body: b.body,
        media,
        content_sid: b.content_sid,
        content_variables,
        sender: b.sender,
        start_at,
        audience,
        created_by: format!("api token #{}", caller.token_id),
        reminder_id: None,
        request_key,
        template_category: b.template_category,
        mapping: b.variable_mapping,
    };
    let now = Utc::now();
    if b.preview {
        let p = broadcasts::preview(&state.pool, &state.default_sender, &req, now)
            .await
            .map_err(broadcast_error)?;
        return Ok(HttpResponse::Ok().json(p));
    }
    let (row, p) = match broadcasts::create(
        &state.pool,
        &state.default_sender,
        state.broadcast_reserve,
        &req,
        now,
    )
    .await
    {
        Ok(created) => created,
        // The same Idempotency-Key again: the broadcast it made, not a second one.
        Err(BroadcastError::Duplicate(id)) => {
            let row = find(&state, id).await?;
            return Ok(HttpResponse::Ok().json(view(&state.pool, row).await?));
        }
        Err(e) => return Err(broadcast_error(e)),
    };
    Ok(HttpResponse::Created().json(Created {
        id: row.id,
        status: row.status,
        recipients: p.recipient_count,
        excluded: p.excluded,
        estimated_cost: p.estimated_cost.to_string(),
        cost_currency: p.cost_currency,
        estimated_seconds: p.estimated_seconds,
        start_at: row.start_at,
    }))
}

async fn find(state: &AppState, id: i64) -> Result<BroadcastRow, ApiError> {
    lifecycle::get(&state.pool, id)
        .await
        .map_err(lifecycle_error)
}

/// One broadcast with its button taps (docs/api.md).
#[derive(Debug, Serialize)]
struct Detail {
    #[serde(flatten)]
    view: crate::broadcasts::view::BroadcastView,
    /// Recipients who tapped each button of its message, every button of a catalogued
    /// template listed.
    buttons: Vec<taps::ButtonTally>,
}

async fn get(
    _: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, *path).await?;
    let buttons = taps::tallies(&state.pool, &row).await?;
    Ok(HttpResponse::Ok().json(Detail {
        view: view(&state.pool, row).await?,
        buttons,
    }))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list(
    _: ApiCaller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::page_limit(query.limit, 50, 200)?;
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            crate::contacts::view::parse_cursor(c)
                .ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    let rows = store::list(&state.pool, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<BroadcastRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| rows.last()).flatten().map(list_cursor);
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        items.push(view(&state.pool, r).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Debug, Deserialize)]
struct RecipientQuery {
    /// `pending`, `sent`, `delivered`, `read`, `failed`, `undelivered`, `canceled`.
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn recipients(
    _: ApiCaller,
    path: web::Path<i64>,
    query: web::Query<RecipientQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, *path).await?;
    let limit = super::page_limit(query.limit, 100, 1000)?;
    let bucket = query.status.as_deref().filter(|s| !s.is_empty());
    check_bucket(bucket).map_err(ApiError::BadRequest)?;
    let items: Vec<RecipientRow> = store::recipients(
        &state.pool,
        row.id,
        bucket,
        query.cursor.as_deref().filter(|c| !c.is_empty()),
        limit + 1,
    )
    .await?;
    let more = items.len() as i64 > limit;
    let items: Vec<RecipientRow> = items.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| items.last().map(|r| r.number.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

async fn export(
    _: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, *path).await?;
    Ok(crate::routes::transfer::csv_download(
        &results::filename(row.id),
        "broadcast export",
        results::csv_chunks(state.pool.clone(), row.id),
    ))
}

async fn act(
    caller: ApiCaller<Operator>,
    path: web::Path<(i64, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    if action == BroadcastAction::Release.as_str() {
        // Spending past the reserve is an admin's decision.
        caller.require(Role::Admin)?;
    }
    let by = format!("api token #{}", caller.token_id);
    let row = lifecycle::control(&state.pool, id, &action, &by)
        .await
        .map_err(lifecycle_error)?;
    Ok(HttpResponse::Ok().json(view(&state.pool, row).await?))
}
