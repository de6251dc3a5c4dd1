//! `GET /api/v1/templates` (filters, cursor), `GET /api/v1/templates/{sid}` (with its history),
//! `POST /api/v1/templates/sync` (admin: read Twilio's catalogue now), and for admins
//! `POST /api/v1/templates` (create), `POST /api/v1/templates/{sid}/submit` and
//! `DELETE /api/v1/templates/{sid}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::templates::Filter;
use crate::templates::definition::Definition;
use crate::templates::manage::{self, ManageError};
use actix_web::http::StatusCode;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/templates", web::get().to(list))
        .route("/templates", web::post().to(create))
        .route("/templates/sync", web::post().to(sync))
        .route("/templates/{sid}", web::get().to(get))
        .route("/templates/{sid}", web::delete().to(delete))
        .route("/templates/{sid}/submit", web::post().to(submit));
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    category: Option<String>,
    language: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

async fn list(
    _: ApiCaller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = Filter {
        status: given(&query.status),
        category: given(&query.category),
        language: query.language.clone().filter(|s| !s.trim().is_empty()),
        q: query.q.clone().filter(|s| !s.trim().is_empty()),
    };
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty());
    if let Some(c) = cursor
        && !is_content_sid(c)
    {
        return Err(ApiError::BadRequest(format!(
            "cursor {c:?} is not one this API gave"
        )));
    }
    let limit = super::page_limit(query.limit, 100, 500)?;
    let (items, next) = crate::templates::page(&state.pool, &filter, cursor, limit).await?;
    let sync = crate::templates::sync_state(&state.pool).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "next_cursor": next,
        "sync": sync,
    })))
}

async fn get(
    _: ApiCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sid = path.into_inner();
    match crate::templates::detail(&state.pool, &sid).await? {
        None => Err(ApiError::NotFound(format!("no template {sid}"))),
        Some((template, history)) => Ok(HttpResponse::Ok().json(Detail { template, history })),
    }
}

/// Starts a sync and answers at once (202); the list's `sync` says how it went.
async fn sync(
    caller: ApiCaller<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let content = state.content.clone();
    tracing::info!(by = %format!("api token #{}", caller.token_id), "template sync asked for");
    let pool = state.pool.clone();
    let channels = state.alert_channels.clone();
    tokio::spawn(async move {
        // Failures are recorded in the sync's state (and alerted) and logged by `sync`.
        let _ = crate::templates::sync_and_alert(&pool, &content, &channels).await;
    });
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "sync": "started" })))
}

/// A template with its history.
#[derive(serde::Serialize)]
struct Detail {
    #[serde(flatten)]
    template: crate::templates::TemplateView,
    history: Vec<crate::storage::templates::ChangeRow>,
}

fn is_content_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("HX") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(i) => ApiError::Other(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_template",
                i.to_string(),
            ),
            ManageError::NotFound(sid) => ApiError::NotFound(format!("no template {sid}")),
            e @ ManageError::Taken { .. } => {
                ApiError::Other(StatusCode::CONFLICT, "template_exists", e.to_string())
            }
            ManageError::Twilio(t) => {
                ApiError::Other(StatusCode::BAD_GATEWAY, "twilio_error", t.to_string())
            }
            ManageError::Database(d) => d.into(),
        }
    }
}

/// Creates a template at Twilio (nothing is sent there when the definition is refused).
async fn create(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let def: Definition = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Other(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_template",
            format!("the template is not valid JSON of the documented shape: {e}"),
        )
    })?;
    let view = manage::create(&state.pool, &state.content, &def).await?;
    tracing::info!(by = %format!("api token #{}", caller.token_id), sid = %view.sid, "template created");
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize)]
struct SubmitBody {
    name: Option<String>,
    category: String,
}

async fn submit(
    caller: ApiCaller<Admin>,
    path: web::Path<String>,
    body: web::Json<SubmitBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sid = path.into_inner();
    let status = manage::submit(
        &state.pool,
        &state.content,
        &sid,
        body.name.as_deref(),
        &body.category,
    )
    .await?;
    tracing::info!(by = %format!("api token #{}", caller.token_id), %sid, "template submitted to WhatsApp");
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "sid": sid, "status": status })))
}

async fn delete(
    caller: ApiCaller<Admin>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sid = path.into_inner();
    manage::delete(&state.pool, &state.content, &sid).await?;
    tracing::info!(by = %format!("api token #{}", caller.token_id), %sid, "template deleted");
    Ok(HttpResponse::NoContent().finish())
}
