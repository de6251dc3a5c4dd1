//! `GET /api/v1/templates` (filters, cursor), `GET /api/v1/templates/{sid}` (with its history)
//! and `POST /api/v1/templates/sync` (admin: read Twilio's catalogue now).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::templates::Filter;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/templates", web::get().to(list))
        .route("/templates/sync", web::post().to(sync))
        .route("/templates/{sid}", web::get().to(get));
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
