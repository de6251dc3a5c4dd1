//! `POST /api/v1/senders/sync` (admin): reads Twilio's WhatsApp senders now (the sync the job
//! runs every `WADASH_SENDER_SYNC_SECS`) and answers 202 with its outcome — the senders at
//! Twilio and what changed — or 502 `sender_sync_failed` with Twilio's error (recorded: the
//! senders page then calls its data stale).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::onboarding::sync::{SyncContext, sync_and_alert};
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/senders/sync", web::post().to(sync));
}

async fn sync(
    caller: ApiCaller<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    tracing::info!(by = %format!("api token #{}", caller.token_id), "sender sync asked for");
    let ctx = SyncContext::of_instance(&state.public_url);
    match sync_and_alert(&state.pool, &state.messaging, &state.alert_channels, &ctx).await {
        Ok(synced) => Ok(HttpResponse::Accepted().json(synced.to_json())),
        Err(e) => Err(ApiError::Other(
            StatusCode::BAD_GATEWAY,
            "sender_sync_failed",
            format!("Twilio's WhatsApp senders could not be read: {e}"),
        )),
    }
}
