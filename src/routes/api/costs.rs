//! `GET /api/v1/costs?from=YYYY-MM-DD&to=YYYY-MM-DD`: spend over a range of days (UTC, both
//! included; the last 30 days by default) by day, category, country, sender and broadcast,
//! with cost per user reached and the estimate against what Twilio charged
//! ([`crate::costs::report`]).

use actix_web::{HttpResponse, web};

use super::auth::ApiCaller;
use crate::costs::{self, Range, RangeQuery};
use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/costs", web::get().to(get));
}

async fn get(
    _: ApiCaller,
    q: web::Query<RangeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let range = Range::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        chrono::Utc::now().date_naive(),
    )
    .map_err(ApiError::BadRequest)?;
    let report = costs::report_for(&state.pool, &state.prices, range).await?;
    Ok(HttpResponse::Ok().json(report))
}
