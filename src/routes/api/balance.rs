//! `GET /api/v1/balance`: the latest reading, the burn rate and the runway.

use actix_web::{HttpResponse, web};

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/balance", web::get().to(get));
}

async fn get(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(crate::balance::view::view(&state.pool, &state.balance, &state.credit).await?))
}
