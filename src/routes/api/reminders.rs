//! `/api/v1/reminders`: one-off and recurring reminders.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::reminders::manage::{self, ReminderError};
use crate::reminders::{Action, ReminderInput};
use crate::routes::roles::Operator;
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

/// The API's answer to a reminder the service refused: the one place that maps them.
impl From<ReminderError> for ApiError {
    fn from(e: ReminderError) -> Self {
        match e {
            ReminderError::Invalid(e) => ApiError::BadRequest(e),
            ReminderError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ReminderError::NotAllowed {
                status,
                action: Action::Edit,
            } => ApiError::Other(
                actix_web::http::StatusCode::CONFLICT,
                "invalid_state",
                format!("this reminder is {status}; create a new one instead"),
            ),
            ReminderError::NotAllowed { .. } | ReminderError::Conflict(_) => ApiError::Other(
                actix_web::http::StatusCode::CONFLICT,
                "invalid_state",
                e.to_string(),
            ),
            ReminderError::Storage(e) => e.into(),
        }
    }
}

fn parse(body: &[u8]) -> Result<ReminderInput, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn create(
    caller: ApiCaller<Operator>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = parse(&body)?;
    let by = format!("api token #{}", caller.token_id);
    let row = manage::create(&state.pool, &input, &by, Utc::now()).await?;
    tracing::info!(reminder = row.id, by, "reminder created");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": row.id,
        "next_at": row.next_at,
        "status": row.status,
        "recurrence": row.recurrence,
        "timezone": row.timezone,
    })))
}

async fn get(
    _: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let reminder = manage::find(&state.pool, *path).await?;
    let runs = store::runs(&state.pool, reminder.id, 50).await?;
    Ok(HttpResponse::Ok().json(ReminderView {
        reminder,
        runs: Some(runs),
    }))
}

async fn list(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
    caller: ApiCaller<Operator>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = manage::find(&state.pool, *path).await?;
    // A closed reminder is refused before its body is read.
    manage::allow(&existing, Action::Edit)?;
    let input = parse(&body)?;
    let by = format!("api token #{}", caller.token_id);
    let row = manage::edit(&state.pool, &existing, &input, &by, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(ReminderView {
        reminder: row,
        runs: None,
    }))
}

/// Cancels: nothing more is sent; what was sent stays on record.
async fn cancel(
    caller: ApiCaller<Operator>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = manage::find(&state.pool, *path).await?;
    let by = format!("api token #{}", caller.token_id);
    manage::act(&state.pool, &existing, Action::Delete, &by, Utc::now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
