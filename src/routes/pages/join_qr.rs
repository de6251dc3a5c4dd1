//! `/senders/{id}/join-qr.svg`: the sandbox's join link as a QR code, for anyone logged in
//! (people onboarding customers print or show it).

use actix_web::{HttpResponse, web};

use super::{CurrentUser, PageError};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/senders/{id}/join-qr.svg", web::get().to(qr));
}

async fn qr(
    _user: CurrentUser,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sender = crate::storage::senders::get(&state.pool, *path)
        .await?
        .ok_or_else(|| PageError::NotFound("no such sender".into()))?;
    let join = crate::senders::join_instructions(&sender)
        .ok_or_else(|| PageError::NotFound("this sender has no join code".into()))?;
    let svg =
        crate::senders::join_qr_svg(&join).map_err(|e| PageError::Internal(anyhow::anyhow!(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "private, max-age=300"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        ))
        .body(svg))
}
