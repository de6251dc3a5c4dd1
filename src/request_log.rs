//! Request logging: client errors as warnings, server errors as errors, the rest at debug so
//! the hot path does not pay for a log line per callback. Each request but Twilio's webhooks
//! runs in a `request` span (method and route pattern), so what its handler logs says which
//! request it belongs to.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument as _;

pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    // Twilio's webhooks, the hot path, go without a span (a few µs of CPU per callback,
    // measured with bench/ingest); their handlers log the message's sid themselves.
    let res = if matches!(path.as_str(), "/sts" | "/wa") {
        next.call(req).await?
    } else {
        // The route's pattern (`/contacts/{number}`), not the path: no phone number rides
        // along on every line a handler logs.
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let span = tracing::info_span!("request", %method, route);
        next.call(req).instrument(span).await?
    };
    let status = res.status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::error!(%method, %path, status = status.as_u16(), ms, "request failed");
    } else if status.is_client_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), ms, "request refused");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), ms, "request");
    }
    Ok(res)
}
