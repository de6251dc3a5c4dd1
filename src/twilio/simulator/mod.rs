//! The built-in Twilio simulator: a Twilio-compatible HTTP endpoint inside the process, used
//! when no Twilio credentials are configured, so that a fresh `wadash serve` is a living
//! system.
//!
//! It listens on its own loopback port and answers `Messages.json` (create, list),
//! `Messages/{sid}.json` and `Balance.json` with Twilio's JSON shapes and error shapes; the
//! real [`TwilioClient`](super::client::TwilioClient) talks to it over HTTP. For every created
//! message it then delivers signed status callbacks to the message's `StatusCallback`, as
//! Twilio does: `sent`, `delivered`, often `read`, after configurable delays; a share fails or
//! is undelivered with real WhatsApp error codes; some callbacks are sent twice and some
//! overtake each other. Each message costs USD 0.005 of the simulated balance.
//!
//! It serves the Content API too ([`content`]): templates, WhatsApp's review of them, and
//! sends with a template that is not approved fail with 63027 — except never-submitted
//! quick replies and list pickers, which WhatsApp takes in a session without approval.
//!
//! Its recipients answer quick-reply and list-picker messages ([`taps`]): once a message sent
//! with one is delivered (and read, when it is), a share of them taps one of its buttons (or
//! picks an item), posted to wadash's `/wa` as Twilio posts an inbound message, signed.

mod content;
mod senders;
mod services;
mod taps;

pub use content::SAMPLE_SIDS;
pub use senders::verification_code;
pub use services::SAMPLE_SERVICE;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use chrono::Utc;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::signature;
pub use crate::config::SimulatorSettings;
use crate::domain::WhatsAppAddress;

/// Price of one simulated message (Twilio's per-message fee).
const PRICE: Decimal = Decimal::from_parts(5, 0, 0, false, 3);

/// Failures as WhatsApp reports them: (status, error code, message).
const FAILURES: &[(&str, i64, &str)] = &[
    (
        "failed",
        63016,
        "Failed to send freeform message because you are outside the allowed window.",
    ),
    ("failed", 63003, "Channel could not find To address"),
    ("undelivered", 30008, "Unknown error"),
    ("undelivered", 30003, "Unreachable destination handset"),
];

#[derive(Debug, Clone)]
struct SimMessage {
    sid: String,
    to: String,
    from: String,
    body: String,
    num_media: usize,
    messaging_service_sid: Option<String>,
    status: String,
    error_code: Option<i64>,
    error_message: Option<String>,
    created: chrono::DateTime<Utc>,
    updated: chrono::DateTime<Utc>,
    /// The quick-reply buttons (id, title) of the template it was sent with, or its list
    /// items when `list`.
    buttons: Vec<(String, String)>,
    list: bool,
}

struct SimState {
    account_sid: String,
    token: SecretString,
    settings: SimulatorSettings,
    balance: Mutex<Decimal>,
    messages: Mutex<HashMap<String, SimMessage>>,
    content: content::Catalogue,
    senders: senders::Senders,
    services: services::Services,
    http: reqwest::Client,
}

/// The `instance_settings` key under which `wadash serve` records its simulator's URL (the
/// last instance started on the database wins), for `wadash simulate sender-offline`.
pub const URL_KEY: &str = "simulator_url";

/// A running simulator.
pub struct Simulator {
    url: String,
    account_sid: String,
    handle: ServerHandle,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The simulated account SID, derived from the instance's token so every instance on one
/// database agrees.
pub fn account_sid_for(token: &SecretString) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    format!("AC{}", &crate::domain::hex(&digest)[..32])
}

impl Simulator {
    /// Starts the simulator on a free loopback port. Callbacks are signed with `token`, the
    /// same token the instance validates webhooks with.
    pub fn start(token: SecretString, settings: SimulatorSettings) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", token, settings)
    }

    /// Starts the simulator on `addr` (`wadash simulator`, where another process plays the
    /// wadash side).
    pub fn start_on(
        addr: &str,
        token: SecretString,
        settings: SimulatorSettings,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let url = format!("http://{}", listener.local_addr()?);
        let account_sid = account_sid_for(&token);
        let state = web::Data::new(SimState {
            account_sid: account_sid.clone(),
            token,
            balance: Mutex::new(settings.starting_balance),
            content: content::Catalogue::new(
                settings.template_review,
                settings.template_reject_share,
            ),
            senders: senders::Senders::new(settings.sender_step),
            services: services::Services::new(),
            settings,
            messages: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
        });
        // The simulator runs on its own thread and runtime, so that it works the same under
        // any caller (the server's multi-threaded runtime, a test's current-thread one).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("twilio-simulator".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .service(
                                web::scope("/2010-04-01/Accounts/{account}")
                                    .route("/Messages.json", web::post().to(create))
                                    .route("/Messages.json", web::get().to(list))
                                    .route("/Messages/{sid}.json", web::get().to(fetch))
                                    .route("/Messages/{sid}/Media/{media}", web::get().to(media))
                                    .route("/Balance.json", web::get().to(balance)),
                            )
                            .service(
                                web::scope("/v1")
                                    .wrap(from_fn(account_only))
                                    .route("/ContentAndApprovals", web::get().to(content::list))
                                    .route("/Content", web::post().to(content::create))
                                    .route("/Content/{sid}", web::get().to(content::fetch))
                                    .route("/Content/{sid}", web::delete().to(content::delete))
                                    .route(
                                        "/Content/{sid}/ApprovalRequests",
                                        web::get().to(content::approval),
                                    )
                                    .route(
                                        "/Content/{sid}/ApprovalRequests/whatsapp",
                                        web::post().to(content::submit),
                                    )
                                    // Messaging Services share the /v1 scope (a scope that
                                    // matches the prefix does not fall through to another).
                                    .route("/Services", web::get().to(services::list))
                                    .route(
                                        "/Services/{service}/ChannelSenders",
                                        web::get().to(services::senders),
                                    )
                                    .route(
                                        "/Services/{service}/ChannelSenders",
                                        web::post().to(services::attach),
                                    )
                                    .route(
                                        "/Services/{service}/ChannelSenders/{sid}",
                                        web::delete().to(services::detach),
                                    ),
                            )
                            .service(
                                web::resource("/v2/ContentAndApprovals")
                                    .wrap(from_fn(account_only))
                                    .route(web::get().to(content::search)),
                            )
                            .service(
                                web::scope("/v2/Channels/Senders")
                                    .wrap(from_fn(account_only))
                                    .route("", web::get().to(senders::list))
                                    .route("", web::post().to(senders::create))
                                    .route("/{sid}", web::get().to(senders::fetch))
                                    .route("/{sid}", web::post().to(senders::update))
                                    .route("/{sid}", web::delete().to(senders::delete)),
                            )
                            .service(
                                web::resource("/simulator/senders/offline")
                                    .wrap(from_fn(account_only))
                                    .route(web::post().to(senders::set_offline)),
                            )
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener);
                    match server {
                        Ok(server) => {
                            let server = server.run();
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(anyhow::Error::from(e)));
                        }
                    }
                });
            })?;
        let handle = rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the simulator thread ended early"))??;
        Ok(Self {
            url,
            account_sid,
            handle,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

fn twilio_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

/// Basic auth with the simulated account SID and token, compared in constant time.
fn authorized(req: &HttpRequest, state: &SimState, account: &str) -> bool {
    let expected = format!("{}:{}", state.account_sid, state.token.expose_secret());
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .unwrap_or_default();
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same && account == state.account_sid
}

/// Middleware for the APIs with no account in their paths (Content, Senders, Services, the
/// simulator's own control endpoint): every request must carry the account's credentials,
/// checked here once for all of their handlers.
async fn account_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let ok = req
        .app_data::<web::Data<SimState>>()
        .is_some_and(|s| authorized(req.request(), s, &s.account_sid));
    if !ok {
        let denied = twilio_error(401, 20003, "Authenticate");
        return Ok(req.into_response(denied).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Every simulated media file is the same small photo.
const PHOTO: &[u8] = include_bytes!("simulated-photo.png");

/// `GET …/Messages/{sid}/Media/{media}`: the media of simulated inbound messages (those
/// `wadash simulate` sends), behind the account's credentials as Twilio's are.
async fn media(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let (account, _, _) = path.into_inner();
    if !authorized(&req, &state, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    HttpResponse::Ok().content_type("image/png").body(PHOTO)
}

fn resource(m: &SimMessage, account: &str) -> serde_json::Value {
    let rfc2822 = |d: &chrono::DateTime<Utc>| d.format("%a, %d %b %Y %H:%M:%S +0000").to_string();
    let date = rfc2822(&m.created);
    json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": m.body,
        "date_created": date,
        "date_sent": date,
        "date_updated": rfc2822(&m.updated),
        "direction": "outbound-api",
        "error_code": m.error_code,
        "error_message": m.error_message,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": m.num_media.to_string(),
        "num_segments": "1",
        "price": if m.status == "queued" { None } else { Some(format!("-{PRICE}")) },
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "to": m.to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{}.json", m.sid),
        // Not Twilio's: when the simulator took the message, to the microsecond, so that tests
        // and benchmarks can measure send rates where Twilio would see them.
        "wadash_received_at": m.created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<SimState>,
) -> HttpResponse {
    let account = path.into_inner();
    if !authorized(&req, &state, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let Ok(form) = super::form::parse(&body) else {
        return twilio_error(400, 21100, "The request body could not be parsed");
    };
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(to) = get("To").and_then(|t| WhatsAppAddress::parse(&t).ok()) else {
        return twilio_error(400, 21211, "Invalid 'To' Phone Number");
    };
    let service = get("MessagingServiceSid");
    let from = match (get("From"), &service) {
        (Some(f), _) => match WhatsAppAddress::parse(&f) {
            Ok(a) => a.as_str().to_owned(),
            Err(_) => return twilio_error(400, 21212, "Invalid 'From' Phone Number"),
        },
        (None, Some(_)) => crate::domain::phone::SANDBOX_SENDER.to_owned(),
        (None, None) => return twilio_error(400, 21603, "A 'From' phone number is required."),
    };
    let body_text = get("Body").unwrap_or_default();
    let media = form.iter().filter(|(k, _)| k == "MediaUrl").count();
    if body_text.is_empty() && media == 0 && get("ContentSid").is_none() {
        return twilio_error(
            400,
            21619,
            "A text message body or media urls must be specified.",
        );
    }
    if media > 10 {
        return twilio_error(400, 21623, "Number of media files exceeds allowed limit.");
    }
    {
        let mut balance = state.balance.lock().expect("balance lock");
        if *balance < PRICE {
            return twilio_error(402, 20005, "Account not active: insufficient balance");
        }
        *balance -= PRICE;
    }
    let (buttons, list) = get("ContentSid")
        .map(|sid| state.content.buttons(&sid))
        .unwrap_or_default();
    let msg = SimMessage {
        buttons,
        list,
        sid: format!("SM{}", crate::domain::random_hex(16)),
        to: to.as_str().to_owned(),
        from,
        body: body_text,
        num_media: media,
        messaging_service_sid: service,
        status: "queued".into(),
        error_code: None,
        error_message: None,
        created: Utc::now(),
        updated: Utc::now(),
    };
    state
        .messages
        .lock()
        .expect("messages lock")
        .insert(msg.sid.clone(), msg.clone());
    let out = resource(&msg, &account);
    // WhatsApp refuses a template it has not approved (or that does not exist); Twilio takes
    // the message and reports the failure in its callbacks.
    let unapproved = get("ContentSid").is_some_and(|sid| !state.content.sendable(&sid));
    if let Some(callback) = get("StatusCallback") {
        tokio::spawn(deliver(state.into_inner(), msg, callback, unapproved));
    }
    HttpResponse::Created().json(out)
}

async fn fetch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let (account, sid) = path.into_inner();
    if !authorized(&req, &state, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    match state.messages.lock().expect("messages lock").get(&sid) {
        Some(m) => HttpResponse::Ok().json(resource(m, &account)),
        None => twilio_error(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Messages/{sid}.json was not found"
            ),
        ),
    }
}

async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let account = path.into_inner();
    if !authorized(&req, &state, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let to = param("To");
    let from = param("From");
    let mut items: Vec<SimMessage> = state
        .messages
        .lock()
        .expect("messages lock")
        .values()
        .filter(|m| {
            to.as_ref().is_none_or(|t| &m.to == t) && from.as_ref().is_none_or(|f| &m.from == f)
        })
        .cloned()
        .collect();
    items.sort_by_key(|m| std::cmp::Reverse(m.created));
    let page_size = param("PageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let page = param("Page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let start = page * page_size;
    let slice: Vec<serde_json::Value> = items
        .iter()
        .skip(start)
        .take(page_size)
        .map(|m| resource(m, &account))
        .collect();
    let next = (start + page_size < items.len()).then(|| {
        let mut q: Vec<(&str, String)> = vec![
            ("PageSize", page_size.to_string()),
            ("Page", (page + 1).to_string()),
        ];
        if let Some(t) = &to {
            q.push(("To", t.clone()));
        }
        if let Some(f) = &from {
            q.push(("From", f.clone()));
        }
        format!(
            "/2010-04-01/Accounts/{account}/Messages.json?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    });
    HttpResponse::Ok().json(
        json!({"messages": slice, "next_page_uri": next, "page": page, "page_size": page_size}),
    )
}

async fn balance(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let account = path.into_inner();
    if !authorized(&req, &state, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let b = *state.balance.lock().expect("balance lock");
    HttpResponse::Ok()
        .json(json!({"account_sid": account, "balance": b.to_string(), "currency": "USD"}))
}

/// One planned callback: when, which status, and the error (code, message) it carries.
type Step = (Duration, &'static str, Option<(i64, &'static str)>);

/// The callbacks one message will produce, in Twilio's order, with their delays.
fn plan(s: &SimulatorSettings) -> Vec<Step> {
    let mut steps = vec![(s.sent_after, "sent", None)];
    if rand::random::<f64>() < s.failure_share {
        let (status, code, message) = FAILURES[rand::random_range(0..FAILURES.len())];
        steps.push((s.delivered_after, status, Some((code, message))));
        return steps;
    }
    steps.push((s.delivered_after, "delivered", None));
    if rand::random::<f64>() < s.read_share {
        steps.push((s.read_after, "read", None));
    }
    steps
}

/// What a send with an unapproved template goes through.
const UNAPPROVED: (&str, i64, &str) = (
    "failed",
    63027,
    "Template does not exist for a language and locale",
);

async fn deliver(state: Arc<SimState>, msg: SimMessage, callback: String, unapproved: bool) {
    let mut steps = match unapproved {
        false => plan(&state.settings),
        true => {
            let (status, code, message) = UNAPPROVED;
            vec![(state.settings.sent_after, status, Some((code, message)))]
        }
    };
    // Some messages' last two callbacks overtake each other, as Twilio's sometimes do.
    let n = steps.len();
    if n >= 2 && rand::random::<f64>() < state.settings.reorder_share {
        let (a, b) = (steps[n - 2].0, steps[n - 1].0);
        steps[n - 2].0 = b;
        steps[n - 1].0 = a;
    }
    let lost = rand::random::<f64>() < state.settings.lost_share;
    let mut sends: Vec<(Duration, Vec<(String, String)>)> = Vec::new();
    for (delay, status, error) in steps {
        let mut p: Vec<(String, String)> = vec![
            ("SmsSid".into(), msg.sid.clone()),
            ("SmsStatus".into(), status.into()),
            ("MessageStatus".into(), status.into()),
            (
                "ChannelToAddress".into(),
                msg.to.trim_start_matches("whatsapp:").into(),
            ),
            ("To".into(), msg.to.clone()),
            ("ChannelPrefix".into(), "whatsapp".into()),
            ("MessageSid".into(), msg.sid.clone()),
            ("AccountSid".into(), state.account_sid.clone()),
            ("StructuredMessage".into(), "false".into()),
            ("From".into(), msg.from.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
        ];
        if let Some((code, message)) = error {
            p.push(("ErrorCode".into(), code.to_string()));
            p.push(("ErrorMessage".into(), message.into()));
        }
        if rand::random::<f64>() < state.settings.duplicate_share {
            sends.push((
                delay + Duration::from_millis(rand::random_range(20..400)),
                p.clone(),
            ));
        }
        sends.push((delay, p));
    }
    sends.sort_by_key(|(d, _)| *d);
    // The recipient of a delivered quick-reply message may tap one of its buttons, a moment
    // after the last callback.
    let delivered = sends.iter().any(|(_, p)| {
        p.iter()
            .any(|(k, v)| k == "MessageStatus" && (v == "delivered" || v == "read"))
    });
    let tap = match (&state.settings.inbound_url, delivered) {
        (Some(url), true) => taps::choose(&msg.sid, state.settings.button_tap_share, &msg.buttons)
            .map(|(id, title)| {
                (
                    url.clone(),
                    taps::params(&state.account_sid, &msg, id, title),
                )
            }),
        _ => None,
    };
    let tap_at = sends.last().map(|(d, _)| *d).unwrap_or_default() + state.settings.sent_after;
    let started = tokio::time::Instant::now();
    for (at, params) in sends {
        tokio::time::sleep_until(started + at).await;
        let status = params
            .iter()
            .find(|(k, _)| k == "MessageStatus")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(m) = state
            .messages
            .lock()
            .expect("messages lock")
            .get_mut(&msg.sid)
        {
            let error = params
                .iter()
                .find(|(k, _)| k == "ErrorCode")
                .and_then(|(_, v)| v.parse().ok());
            // The resource shows the furthest state, as Twilio's does.
            let rank = |s: &str| crate::domain::MessageStatus::parse(s).rank().unwrap_or(-1);
            if rank(&status) > rank(&m.status) {
                m.status = status.clone();
                m.error_code = error;
                m.error_message = params
                    .iter()
                    .find(|(k, _)| k == "ErrorMessage")
                    .map(|(_, v)| v.clone());
                m.updated = Utc::now();
            }
        }
        if lost {
            continue;
        }
        let signature =
            signature::compute(state.token.expose_secret().as_bytes(), &callback, &params);
        let result = state
            .http
            .post(&callback)
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(sid = %msg.sid, %status, http = r.status().as_u16(), "simulator: status callback refused")
            }
            Err(e) => {
                tracing::warn!(sid = %msg.sid, %status, error = %e, "simulator: status callback failed")
            }
        }
    }
    if let Some((url, params)) = tap {
        tokio::time::sleep_until(started + tap_at).await;
        taps::post(&state, &url, &params).await;
    }
}
