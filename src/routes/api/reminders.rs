//! `/api/v1/reminders`: one-off and recurring reminders.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::auth::ApiCaller;
use crate::domain::Role;
use crate::error::ApiError;
use crate::reminders::{self, ReminderInput};
use crate::state::AppState;
use crate::storage::reminders::{self as store, ReminderRow, RunRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reminders", web::get().to(list))
        .route("/reminders", web::post().to(create))
        .route("/reminders/{id}", web::get().to(get))
        .route("/reminders/{id}", web::patch().to(update))
        .route("/reminders/{id}", web::delete().to(cancel));
}

#[derive(Debug, Serialize)]
struct ReminderView {
    #[serde(flatten)]
    reminder: ReminderRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<Vec<RunRow>>,
}

fn parse(body: &[u8]) -> Result<ReminderInput, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn create(
    caller: ApiCaller,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let input = parse(&body)?;
    let by = format!("api token #{}", caller.token_id);
    let new = reminders::validate(&input, None, &by, Utc::now()).map_err(ApiError::BadRequest)?;
    let row = store::insert(&state.pool, &new).await?;
    tracing::info!(reminder = row.id, by, "reminder created");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": row.id,
        "next_at": row.next_at,
        "status": row.status,
        "recurrence": row.recurrence,
        "timezone": row.timezone,
    })))
}

async fn find(state: &AppState, id: i64) -> Result<ReminderRow, ApiError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no reminder {id}")))
}

async fn get(
    caller: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let reminder = find(&state, *path).await?;
    let runs = store::runs(&state.pool, reminder.id, 50).await?;
    Ok(HttpResponse::Ok().json(ReminderView {
        reminder,
        runs: Some(runs),
    }))
}

async fn list(caller: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let items: Vec<ReminderView> = store::list(&state.pool, 500)
        .await?
        .into_iter()
        .map(|reminder| ReminderView {
            reminder,
            runs: None,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn update(
    caller: ApiCaller,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let existing = find(&state, *path).await?;
    if matches!(existing.status.as_str(), "canceled" | "done") {
        return Err(ApiError::Other(
            actix_web::http::StatusCode::CONFLICT,
            "invalid_state",
            format!(
                "this reminder is {}; create a new one instead",
                existing.status
            ),
        ));
    }
    let input = parse(&body)?;
    let by = format!("api token #{}", caller.token_id);
    let new = reminders::validate(&input, Some(&existing), &by, Utc::now())
        .map_err(ApiError::BadRequest)?;
    let row = store::update(&state.pool, existing.id, &new)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no reminder {}", existing.id)))?;
    Ok(HttpResponse::Ok().json(ReminderView {
        reminder: row,
        runs: None,
    }))
}

/// Cancels: nothing more is sent; what was sent stays on record.
async fn cancel(
    caller: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let existing = find(&state, *path).await?;
    store::cancel(&state.pool, existing.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
