//! `POST /wa` (inbound messages) and `POST /sts` (status callbacks): the contract with Twilio.
//!
//! Order of checks: size (413), content type (415), a free body slot (503), the body within
//! its timeout (408, connection closed), form syntax (400), signature (403), fields (400),
//! then durable storage (503 if the database cannot take it). A 2xx is sent only after the
//! callback's transaction has committed.
//!
//! Time is bounded everywhere Twilio waits (`config::WebhookSettings`): the body must arrive
//! within the body timeout, and from then on the commit within the deadline, else 503. What
//! follows a commit (routing, automatic replies) never turns the answer into an error for lack
//! of time: by [`ANSWER_WITHIN`] of the request's arrival the answer goes out without the
//! reply. So a hung database costs a webhook at most body timeout + deadline (10 s by
//! default), inside Twilio's 15 s. The body is taken into memory as it arrives, never
//! reserved from `Content-Length`, and only `max_bodies` are read at once (fewer from one
//! peer address).
//!
//! A stored inbound message is then routed (src/replies): its contact and consent are
//! updated and the TwiML answer carries any automatic reply. A message routed to a bot is
//! asked of the bot (src/bots) within the reply budget (`WADASH_BOT_REPLY_BUDGET_MS`): an
//! answer in time goes back as TwiML, a later one through the REST client once it comes. A
//! status callback for an automatic reply (`/sts?reply=<id>`) links the reply to the message
//! Twilio created.
//!
//! `wadash doctor`'s probe (`/sts?wadash_doctor_probe=<nonce>`, `crate::domain::probe`) goes
//! through the same checks up to the signature and is then answered with what wadash saw,
//! never stored and not counted as an accepted callback (a badly signed one counts as the bad
//! signature it is).

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use crate::domain::probe::{self, ProbeAnswer, SignatureSeen};
use crate::error::error_body;
use crate::metrics::Outcome;
use crate::replies::InboundMessage;
use crate::state::AppState;
use crate::twilio::signature::{self, SignedBody};
use crate::twilio::webhook::{self, Webhook};

/// Largest webhook body accepted. Twilio's bodies are a few kilobytes at most.
pub const MAX_BODY: usize = 64 * 1024;

/// Twilio gives up on a webhook after 15 s: every answer is sent within this much of the
/// request's arrival, whatever the database does.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(12);

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
    /// Close the connection after answering (the body was not read to its end).
    close: bool,
    /// A doctor probe's diagnosis, added to the error body.
    probe: Option<Box<ProbeAnswer>>,
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
        close: false,
        probe: None,
    }
}

impl Reject {
    /// The body was not read to its end: the connection is closed after the answer.
    fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

async fn handle(
    hook: Webhook,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let body = match receive(&req, payload, &state).await {
        Ok(b) => b,
        Err(r) => return respond(hook, &state, started, Err(r)),
    };
    let deadline = state.webhook_limits.deadline;
    let answer_by = tokio::time::Instant::from_std(started) + ANSWER_WITHIN;
    let commit_by = (tokio::time::Instant::now() + deadline).min(answer_by);
    // Past the deadline nothing is promised: the callback may or may not be committed, so the
    // answer is 503 and Twilio's retry is deduplicated. Never a 2xx for an uncommitted one.
    let accepted = match tokio::time::timeout_at(commit_by, accept(hook, &req, &body, &state)).await
    {
        Ok(a) => a,
        Err(_) => {
            tracing::warn!(
                route = hook.route(),
                ?deadline,
                "webhook not stored within its deadline (database slow or unreachable)"
            );
            Err(reject(
                Outcome::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "not confirmed as stored within {} ms, please retry",
                    deadline.as_millis()
                ),
            ))
        }
    };
    // Committed: what follows may not turn the answer into an error for lack of time. The
    // routing and reply-linking futures are large (database queries, bot calls) and only
    // some requests need them: boxed, they do not make every status callback's future —
    // which actix moves into place for each request — that large.
    let result = match accepted {
        Ok(Accepted::Inbound(msg)) => {
            match tokio::time::timeout_at(answer_by, Box::pin(answer(&state, &msg, answer_by)))
                .await
            {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(sid = %msg.sid, "inbound message stored, but routing ran out of time: answered without a reply");
                    Ok(None)
                }
            }
        }
        Ok(Accepted::Probe(answer)) => {
            return HttpResponse::Ok().json(serde_json::json!({ "probe": answer }));
        }
        Ok(Accepted::Status { sid, reply }) => {
            if let Some(id) = reply {
                // Its own task, so that running out of time here never cuts linking (and the
                // reply's cost) in half; the callback itself is committed.
                let linking = tokio::spawn({
                    let state = state.clone();
                    async move { link_reply(&state, id, &sid).await }
                });
                if tokio::time::timeout_at(answer_by, linking).await.is_err() {
                    tracing::warn!(
                        reply = id,
                        "linking an automatic reply goes on after the answer"
                    );
                }
            }
            Ok(None)
        }
        Err(r) => Err(r),
    };
    respond(hook, &state, started, result)
}

fn respond(
    hook: Webhook,
    state: &AppState,
    started: Instant,
    result: Result<Option<String>, Reject>,
) -> HttpResponse {
    let elapsed = started.elapsed();
    match result {
        Ok(twiml) => {
            state.metrics.webhook(hook, Outcome::Accepted, elapsed);
            match hook {
                Webhook::Inbound => HttpResponse::Ok()
                    .content_type("application/xml")
                    .body(twiml.unwrap_or_else(|| EMPTY_TWIML.to_owned())),
                Webhook::Status => HttpResponse::NoContent().finish(),
            }
        }
        Err(r) => {
            state.metrics.webhook(hook, r.outcome, elapsed);
            let mut resp = match r.probe {
                Some(answer) => HttpResponse::build(r.status).json(serde_json::json!({
                    "error": { "code": r.code, "message": r.message },
                    "probe": answer,
                })),
                None => error_body(r.status, r.code, &r.message),
            };
            if r.status == StatusCode::REQUEST_TIMEOUT || r.close {
                // The rest of the body is not read: the connection cannot be reused.
                resp.head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
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

/// What a stored webhook leads to.
enum Accepted {
    Inbound(InboundMessage),
    /// A status callback; `reply` when it reports an automatic reply (`/sts?reply=<id>`).
    Status {
        sid: String,
        reply: Option<i64>,
    },
    /// A doctor probe with a valid signature: answered, not stored.
    Probe(Box<ProbeAnswer>),
}

/// Routes a stored inbound message (contact, consent, automatic replies) and writes the
/// TwiML answer. The message itself is already committed; routing is retried briefly, and a
/// 503 tells Twilio the answer could not be given.
async fn answer(
    state: &AppState,
    msg: &InboundMessage,
    answer_by: tokio::time::Instant,
) -> Result<Option<String>, Reject> {
    let mut attempt = 0;
    let routed = loop {
        match crate::replies::route(
            &state.pool,
            &state.replies,
            &state.bots.settings,
            &state.reply_patterns,
            msg,
        )
        .await
        {
            Ok(routed) => break routed,
            Err(e) if attempt < 2 && crate::storage::is_transient(&e) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(sid = %msg.sid, error = %e, "inbound message stored but not routed");
                return Err(reject(
                    Outcome::Unavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the message was stored but could not be answered, please retry",
                ));
            }
        }
    };
    let mut rows = routed.rows;
    if let Some(call) = routed.bot {
        rows.extend(ask_bot(state, call, answer_by).await);
    }
    if rows.is_empty() {
        return Ok(None);
    }
    // The replies take their sender's next send slots like every send, so a broadcast on the
    // same sender makes room for them; the answer waits for the first slot while the webhook
    // has time (a second is kept for the answer itself).
    let latest = answer_by - std::time::Duration::from_secs(1);
    match crate::sending::pacing::wait_for_reply_slots(
        &state.pool,
        &msg.to,
        rows.len(),
        state.pacing,
        latest,
    )
    .await
    {
        Ok(crate::sending::pacing::ReplySlot::OnTime) => {}
        Ok(crate::sending::pacing::ReplySlot::LineTooLong { free_in }) => {
            tracing::warn!(sid = %msg.sid, sender = %msg.to, free_in_secs = free_in, "automatic reply answered without a send slot: the sender's slots are taken further ahead than a reply may wait");
        }
        Ok(crate::sending::pacing::ReplySlot::NoAnswer) => {
            tracing::warn!(sid = %msg.sid, "automatic reply answered without a send slot: the database did not answer in time");
        }
        // The replies are stored: they go out unpaced rather than not at all.
        Err(e) => {
            tracing::warn!(sid = %msg.sid, error = %e, "automatic reply answered without a send slot")
        }
    }
    let messages = crate::replies::twiml_messages(&rows, &state.public_url);
    if state.simulator_mode {
        // Without Twilio, the simulator plays its part: it creates the reply messages the
        // TwiML asks for and reports their status to the callback URL.
        crate::replies::simulate_twiml_replies(state.twilio.clone(), &state.public_url, rows);
    }
    Ok(Some(crate::twilio::twiml::messaging_response(&messages)))
}

/// Asks the bot for a routed message and returns its replies if they come within the reply
/// budget (and well before the webhook must be answered); else the webhook answers without
/// them and they are sent through the REST client when the bot has answered. An answer with
/// choices goes through the REST client too, whole and in order (a Content SID cannot be
/// given in TwiML).
async fn ask_bot(
    state: &AppState,
    call: crate::bots::route::BotCall,
    answer_by: tokio::time::Instant,
) -> Vec<crate::storage::auto_replies::ReplyRow> {
    // A second is kept for the send slot and the answer itself.
    let budget_end = (tokio::time::Instant::now() + state.bots.settings.reply_budget)
        .min(answer_by - std::time::Duration::from_secs(2));
    let sid = call.inbound_sid.clone();
    let asking = tokio::spawn({
        let bots = state.bots.clone();
        async move { bots.converse(&call).await }
    });
    match crate::bots::runtime::within_budget(asking, budget_end).await {
        Ok(Ok(Ok(rows))) if rows.iter().any(|r| r.choices.is_some()) => {
            // Marked like a late answer first, so that a webhook delivered again does not
            // give it as TwiML.
            if let Err(e) = crate::storage::bots::mark_late(&state.pool, &sid).await {
                tracing::warn!(%sid, error = %e, "a bot turn with choices was not marked as sent apart");
            }
            let state = state.clone();
            tokio::spawn(async move {
                crate::replies::deliver::deliver(outbox(&state), rows).await;
            });
            Vec::new()
        }
        Ok(Ok(Ok(rows))) => rows,
        Ok(Ok(Err(e))) => {
            tracing::error!(%sid, error = %e, "the bot's answer could not be stored: no answer");
            Vec::new()
        }
        Ok(Err(e)) => {
            tracing::error!(%sid, error = %e, "asking the bot failed: no answer");
            Vec::new()
        }
        Err(asking) => {
            tracing::info!(%sid, "the bot is slower than the reply budget: its answer goes through the REST client");
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::storage::bots::mark_late(&state.pool, &sid).await {
                    tracing::warn!(%sid, error = %e, "a late bot turn was not marked late");
                }
                match asking.await {
                    Ok(Ok(rows)) => crate::replies::deliver::deliver(outbox(&state), rows).await,
                    Ok(Err(e)) => {
                        tracing::error!(%sid, error = %e, "the bot's late answer could not be stored")
                    }
                    Err(e) => tracing::error!(%sid, error = %e, "asking the bot failed"),
                }
            });
            Vec::new()
        }
    }
}

/// Where replies sent through the REST client go.
fn outbox(state: &AppState) -> crate::replies::deliver::Outbox<'_> {
    crate::replies::deliver::Outbox {
        client: &state.twilio,
        content: &state.content,
        pool: &state.pool,
        prices: &state.prices,
    }
}

async fn link_reply(state: &AppState, reply: i64, sid: &str) {
    match crate::storage::auto_replies::link(&state.pool, reply, sid).await {
        Ok(Some((from, to))) => price_reply(state, sid, from, &to).await,
        Ok(None) => {}
        // The callback itself is stored; only the reply's body is missing from its message.
        Err(e) => {
            tracing::warn!(reply, %sid, error = %e, "could not link an automatic reply to its message")
        }
    }
}

/// An automatic reply is a message Twilio sends and charges for like any other: a free-form
/// answer inside the window the inbound message opened. Priced once, when it is linked.
async fn price_reply(state: &AppState, sid: &str, from: String, to: &str) {
    let facts = crate::costs::CostFacts {
        category: crate::pricing::Category::Service,
        in_window: true,
        broadcast_id: None,
    };
    let stored = async {
        let table = state.prices.table().await?;
        let cost = crate::costs::new_cost(&table, sid, from, to, &facts, chrono::Utc::now());
        let mut conn = state.pool.acquire().await?;
        crate::storage::costs::insert(&mut conn, &cost).await
    };
    if let Err(e) = stored.await {
        tracing::warn!(%sid, error = %e, "an automatic reply's estimated cost was not stored");
    }
}

/// Reads the body: size and type checked first, then a free body slot, then the bytes as
/// they arrive, within the body timeout.
async fn receive(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<web::Bytes, Reject> {
    let too_large = || {
        reject(
            Outcome::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("webhook bodies are limited to {MAX_BODY} bytes"),
        )
        .closing()
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
        )
        .closing());
    }

    let _slot = match state
        .webhook_bodies
        .try_take(req.peer_addr().map(|a| a.ip()))
    {
        Ok(slot) => slot,
        Err(full) => {
            let (limit, whose) = match full {
                crate::limits::Full::Total => (state.webhook_limits.max_bodies, "in all"),
                crate::limits::Full::Peer => (
                    state.webhook_limits.max_bodies_per_peer,
                    "from this address",
                ),
            };
            tracing::warn!(route = req.path(), peer = ?req.peer_addr(), limit, whose, "webhook refused: too many bodies being received at once");
            return Err(reject(
                Outcome::Unavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("too many webhook bodies are being received at once {whose}, please retry"),
            )
            .closing());
        }
    };
    let timeout = state.webhook_limits.body_timeout;
    let read = async {
        // Grown as bytes arrive: a Content-Length promise reserves nothing.
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                reject(
                    Outcome::BadRequest,
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("could not read the body: {e}"),
                )
                .closing()
            })?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(body) => body,
        Err(_) => {
            tracing::warn!(route = req.path(), peer = ?req.peer_addr(), ?timeout, "webhook body not received in time; connection closed");
            Err(reject(
                Outcome::BodyTimeout,
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {} ms", timeout.as_millis()),
            ))
        }
    }
}

/// Checks a received webhook and stores it durably.
async fn accept(
    hook: Webhook,
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<Accepted, Reject> {
    let params = crate::twilio::form::parse(body).map_err(|e| {
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

    // One prefix comparison on a query string that is empty for Twilio's own callbacks.
    let probe_nonce = match hook {
        Webhook::Status => probe::nonce_of(req.query_string()),
        Webhook::Inbound => None,
    };
    let checked_url = || match req.query_string() {
        "" => format!("{}{}", state.public_url, req.path()),
        q => format!("{}{}?{}", state.public_url, req.path(), q),
    };
    let Some(sig) = req
        .headers()
        .get("X-Twilio-Signature")
        .and_then(|v| v.to_str().ok())
    else {
        tracing::warn!(route = hook.route(), peer = ?req.peer_addr(), "webhook rejected: no X-Twilio-Signature header");
        let mut r = forbidden();
        r.probe =
            probe_nonce.map(|n| probe_answer(n, SignatureSeen::Missing, checked_url(), body, None));
        return Err(r);
    };
    let url = checked_url();
    let valid = state
        .webhook_keys
        .with_tokens(|tokens| signature::is_valid(tokens, sig, &url, SignedBody::Form(&params)));
    if !valid {
        tracing::warn!(route = hook.route(), peer = ?req.peer_addr(), url = %url, "webhook rejected: X-Twilio-Signature does not match (check WADASH_PUBLIC_URL and the auth token)");
        let mut r = forbidden();
        r.probe = probe_nonce.map(|n| probe_answer(n, SignatureSeen::Invalid, url, body, None));
        return Err(r);
    }
    if let Some(nonce) = probe_nonce {
        tracing::info!(peer = ?req.peer_addr(), "wadash doctor probe answered (signature valid; nothing stored)");
        return Ok(Accepted::Probe(probe_answer(
            nonce,
            SignatureSeen::Valid,
            url,
            body,
            Some(req),
        )));
    }

    let record = webhook::parse(hook, &params, chrono::Utc::now()).map_err(|e| {
        reject(
            Outcome::BadRequest,
            StatusCode::BAD_REQUEST,
            "invalid_webhook",
            e.to_string(),
        )
    })?;
    let accepted = match hook {
        Webhook::Inbound => Accepted::Inbound(InboundMessage {
            sid: record.sid.as_str().to_owned(),
            from: record.facts.from.clone().unwrap_or_default(),
            to: record.facts.to.clone().unwrap_or_default(),
            body: record.facts.body.clone().unwrap_or_default(),
            media_types: record
                .facts
                .media
                .iter()
                .map(|m| m.content_type.clone())
                .collect(),
            profile_name: record.facts.profile_name.clone(),
            wa_id: record.facts.wa_id.clone(),
            payload: record
                .facts
                .interactive
                .as_ref()
                .and_then(|i| i.payload.clone()),
            replied_to: record
                .facts
                .interactive
                .as_ref()
                .and_then(|i| i.replied_to_sid.clone()),
            received_at: record.received_at,
        }),
        Webhook::Status => Accepted::Status {
            sid: record.sid.as_str().to_owned(),
            reply: crate::replies::reply_id_of(req.query_string()),
        },
    };
    state.ingestor.submit(record).await.map_err(|e| {
        reject(
            Outcome::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("not stored, please retry: {e}"),
        )
    })?;
    Ok(accepted)
}

/// What a doctor probe is told. `req` (the forwarding headers that arrived) only when its
/// signature was valid: a rejected probe learns nothing its sender does not already know.
fn probe_answer(
    nonce: &str,
    signature: SignatureSeen,
    checked_url: String,
    body: &[u8],
    req: Option<&HttpRequest>,
) -> Box<ProbeAnswer> {
    use sha2::Digest as _;
    let header = |name: &str| {
        req.and_then(|r| r.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let forwarded_proto = header("X-Forwarded-Proto")
        .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
        .or_else(|| {
            header("Forwarded").and_then(|f| {
                f.split([',', ';']).find_map(|part| {
                    let (k, v) = part.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("proto")
                        .then(|| v.trim_matches('"').to_owned())
                })
            })
        });
    Box::new(ProbeAnswer {
        nonce: nonce.to_owned(),
        signature,
        checked_url,
        body_sha256: crate::domain::hex(&sha2::Sha256::digest(body)),
        forwarded_proto,
        host: header("Host"),
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
