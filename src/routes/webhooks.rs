//! `POST /wa` (inbound messages) and `POST /sts` (status callbacks): the contract with Twilio.
//!
//! Order of checks: size (413), content type (415), form syntax (400), signature (403),
//! fields (400), then durable storage (503 if the database cannot take it). A 2xx is sent only
//! after the callback's transaction has committed.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use crate::error::error_body;
use crate::metrics::Outcome;
use crate::state::AppState;
use crate::twilio::signature::{self, SignedBody};
use crate::twilio::webhook::{self, Webhook};

/// Largest webhook body accepted. Twilio's bodies are a few kilobytes at most.
pub const MAX_BODY: usize = 64 * 1024;

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/wa", web::post().to(inbound))
        .route("/sts", web::post().to(status));
}

async fn inbound(req: HttpRequest, body: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    handle(Webhook::Inbound, req, body, state).await
}

async fn status(req: HttpRequest, body: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    handle(Webhook::Status, req, body, state).await
}

struct Reject {
    outcome: Outcome,
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn reject(
    outcome: Outcome,
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Reject {
    Reject {
        outcome,
        status,
        code,
        message: message.into(),
    }
}

async fn handle(
    hook: Webhook,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let result = accept(hook, &req, payload, &state).await;
    let elapsed = started.elapsed();
    match result {
        Ok(()) => {
            state.metrics.webhook(hook, Outcome::Accepted, elapsed);
            match hook {
                Webhook::Inbound => HttpResponse::Ok()
                    .content_type("application/xml")
                    .body(EMPTY_TWIML),
                Webhook::Status => HttpResponse::NoContent().finish(),
            }
        }
        Err(r) => {
            state.metrics.webhook(hook, r.outcome, elapsed);
            let mut resp = error_body(r.status, r.code, &r.message);
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                resp.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("1"),
                );
            }
            resp
        }
    }
}

async fn accept(
    hook: Webhook,
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<(), Reject> {
    let too_large = || {
        reject(
            Outcome::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("webhook bodies are limited to {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }

    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(reject(
            Outcome::UnsupportedMediaType,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected application/x-www-form-urlencoded as Twilio sends, got {:?}",
                if mime.is_empty() { "nothing" } else { mime }
            ),
        ));
    }

    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(MAX_BODY));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            reject(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read the body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }

    let params = crate::twilio::form::parse(&body).map_err(|e| {
        reject(
            Outcome::BadRequest,
            StatusCode::BAD_REQUEST,
            "malformed_form",
            format!("the body is not a valid form: {e}"),
        )
    })?;
    if params
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(reject(
            Outcome::BadRequest,
            StatusCode::BAD_REQUEST,
            "malformed_form",
            "NUL characters are not allowed in webhook fields",
        ));
    }

    let Some(sig) = req
        .headers()
        .get("X-Twilio-Signature")
        .and_then(|v| v.to_str().ok())
    else {
        tracing::warn!(route = hook.route(), peer = ?req.peer_addr(), "webhook rejected: no X-Twilio-Signature header");
        return Err(forbidden());
    };
    let url = match req.query_string() {
        "" => format!("{}{}", state.public_url, req.path()),
        q => format!("{}{}?{}", state.public_url, req.path(), q),
    };
    let valid = state
        .webhook_keys
        .with_tokens(|tokens| signature::is_valid(tokens, sig, &url, SignedBody::Form(&params)));
    if !valid {
        tracing::warn!(route = hook.route(), peer = ?req.peer_addr(), url = %url, "webhook rejected: X-Twilio-Signature does not match (check WADASH_PUBLIC_URL and the auth token)");
        return Err(forbidden());
    }

    let record = webhook::parse(hook, &params, chrono::Utc::now()).map_err(|e| {
        reject(
            Outcome::BadRequest,
            StatusCode::BAD_REQUEST,
            "invalid_webhook",
            e.to_string(),
        )
    })?;
    state.ingestor.submit(record).await.map_err(|e| {
        reject(
            Outcome::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("not stored, please retry: {e}"),
        )
    })
}

fn forbidden() -> Reject {
    reject(
        Outcome::BadSignature,
        StatusCode::FORBIDDEN,
        "invalid_signature",
        "X-Twilio-Signature is missing or does not match this request",
    )
}
