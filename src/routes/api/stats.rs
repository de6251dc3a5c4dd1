//! `GET /api/v1/stats/funnel`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use super::parse_time;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::messages;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats/funnel", web::get().to(funnel));
}

#[derive(Debug, Deserialize)]
struct Window {
    since: Option<String>,
    until: Option<String>,
}

async fn funnel(
    _: ApiCaller,
    q: web::Query<Window>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let since = parse_time("since", q.since.as_deref())?;
    let until = parse_time("until", q.until.as_deref())?;
    let f = messages::funnel(&state.pool, since, until, None).await?;
    Ok(HttpResponse::Ok().json(f))
}
