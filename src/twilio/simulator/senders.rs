//! The simulator's Senders API (`/v2/Channels/Senders`): WhatsApp senders registered through
//! wadash go `CREATING → PENDING_VERIFICATION`, take the code the simulator "sent" (written to
//! its log), then go `VERIFYING → ONLINE`, each step after `WADASH_SIM_SENDER_STEP_MS`.
//! A simulator-only control endpoint ([`set_offline`], behind the account's credentials, as
//! `wadash simulate sender-offline|sender-online` calls it) takes a sender `OFFLINE` with
//! Twilio-style reasons, or brings it back.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SimState, twilio_error};
use crate::domain::WhatsAppAddress;

#[derive(Debug, Clone)]
struct SimSender {
    sid: String,
    sender_id: String,
    created: DateTime<Utc>,
    verified: Option<DateTime<Utc>>,
    configuration: Value,
    webhook: Value,
    profile: Value,
    /// Taken offline through the control endpoint, with these `offline_reasons`.
    offline: Option<Vec<Value>>,
}

/// The simulated account's WhatsApp senders.
pub(super) struct Senders {
    all: Mutex<BTreeMap<String, SimSender>>,
    step: Duration,
}

/// The code the simulator "sends" to verify sender `sid`: six digits derived from its SID, so
/// a test (or the wizard in simulator mode) can know it.
pub fn verification_code(sid: &str) -> String {
    let n = u64::from_str_radix(sid.get(2..10).unwrap_or("0"), 16).unwrap_or(0);
    format!("{:06}", n % 1_000_000)
}

fn status_of(s: &SimSender, now: DateTime<Utc>, step: Duration) -> &'static str {
    if s.offline.is_some() {
        return "OFFLINE";
    }
    let after = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default() >= step;
    match s.verified {
        Some(v) if after(v) => "ONLINE",
        Some(_) => "VERIFYING",
        None if after(s.created) => "PENDING_VERIFICATION",
        None => "CREATING",
    }
}

impl Senders {
    pub(super) fn new(step: Duration) -> Self {
        Self {
            all: Mutex::new(BTreeMap::new()),
            step,
        }
    }

    /// The `whatsapp:+…` of sender `sid`, if the account has it.
    pub(super) fn number_of(&self, sid: &str) -> Option<String> {
        self.all
            .lock()
            .expect("senders lock")
            .get(sid)
            .map(|s| s.sender_id.clone())
    }

    fn resource(&self, s: &SimSender, base: &str) -> Value {
        let status = status_of(s, Utc::now(), self.step);
        let online = status == "ONLINE";
        json!({"sid": s.sid, "status": status, "sender_id": s.sender_id,
            "configuration": s.configuration, "webhook": s.webhook, "profile": s.profile,
            "properties": {"quality_rating": if online { "HIGH" } else { "UNKNOWN" },
                "messaging_limit": if online { "1K Customers/24hr" } else { "" }},
            "offline_reasons": s.offline, "compliance": null,
            "url": format!("{base}/v2/Channels/Senders/{}", s.sid)})
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ListQuery {
    #[serde(rename = "Channel")]
    channel: Option<String>,
    #[serde(rename = "PageSize")]
    page_size: Option<usize>,
    #[serde(rename = "PageToken")]
    page_token: Option<String>,
}

/// `GET /v2/Channels/Senders?Channel=whatsapp`: pages in SID order.
pub(super) async fn list(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    state: web::Data<SimState>,
) -> HttpResponse {
    if q.channel.as_deref() != Some("whatsapp") {
        return twilio_error(400, 20001, "Channel must be whatsapp");
    }
    let size = q.page_size.unwrap_or(50).clamp(1, 1000);
    let after = q.page_token.clone().unwrap_or_default();
    let base = super::content::base_of(&req);
    let all = state.senders.all.lock().expect("senders lock");
    let page: Vec<&SimSender> = all
        .values()
        .filter(|s| s.sid > after)
        .take(size + 1)
        .collect();
    let items: Vec<Value> = page
        .iter()
        .take(size)
        .map(|s| state.senders.resource(s, &base))
        .collect();
    let next = (page.len() > size).then(|| {
        format!(
            "{base}/v2/Channels/Senders?Channel=whatsapp&PageSize={size}&PageToken={}",
            page[size - 1].sid
        )
    });
    HttpResponse::Ok().json(json!({"senders": items,
        "meta": {"page_size": size, "key": "senders", "next_page_url": next}}))
}

pub(super) async fn fetch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let all = state.senders.all.lock().expect("senders lock");
    match all.get(path.as_str()) {
        Some(s) => {
            HttpResponse::Ok().json(state.senders.resource(s, &super::content::base_of(&req)))
        }
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

/// `POST /v2/Channels/Senders`: a WhatsApp number not registered yet.
pub(super) async fn create(
    req: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let sender_id = body["sender_id"].as_str().unwrap_or_default().to_owned();
    if WhatsAppAddress::parse(&sender_id).is_err() {
        return twilio_error(400, 20001, "sender_id must be whatsapp:+E.164");
    }
    let mut all = state.senders.all.lock().expect("senders lock");
    if all.values().any(|s| s.sender_id == sender_id) {
        return twilio_error(
            409,
            63100,
            "This phone number is already registered as a WhatsApp sender",
        );
    }
    let sid = format!("XE{}", crate::domain::random_hex(16));
    tracing::info!(sender = %sender_id, code = %verification_code(&sid), "simulator: WhatsApp verification code sent");
    let s = SimSender {
        sid: sid.clone(),
        sender_id,
        created: Utc::now(),
        verified: None,
        configuration: body["configuration"].clone(),
        webhook: body["webhook"].clone(),
        profile: body["profile"].clone(),
        offline: None,
    };
    let out = state.senders.resource(&s, &super::content::base_of(&req));
    all.insert(sid, s);
    HttpResponse::Accepted().json(out)
}

/// `POST /v2/Channels/Senders/{Sid}`: a verification code, webhooks or a profile.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Value>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let mut all = state.senders.all.lock().expect("senders lock");
    let Some(s) = all.get_mut(path.as_str()) else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    if let Some(code) = body["configuration"]["verification_code"].as_str() {
        if status_of(s, Utc::now(), state.senders.step) != "PENDING_VERIFICATION" {
            return twilio_error(
                400,
                20001,
                "The sender is not waiting for a verification code",
            );
        }
        if code.trim() != verification_code(&s.sid) {
            return twilio_error(400, 63101, "The verification code is incorrect");
        }
        s.verified = Some(Utc::now());
    } else if body["configuration"]["verification_method"].is_string()
        && status_of(s, Utc::now(), state.senders.step) == "PENDING_VERIFICATION"
    {
        tracing::info!(sender = %s.sender_id, code = %verification_code(&s.sid), "simulator: WhatsApp verification code sent again");
    }
    for (key, slot) in [("webhook", &mut s.webhook), ("profile", &mut s.profile)] {
        if let Some(v) = body.get(key).filter(|v| v.is_object()) {
            *slot = v.clone();
        }
    }
    HttpResponse::Accepted().json(state.senders.resource(s, &super::content::base_of(&req)))
}

pub(super) async fn delete(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    let removed = state
        .senders
        .all
        .lock()
        .expect("senders lock")
        .remove(path.as_str());
    match removed {
        Some(_) => {
            state.services.forget_sender(&path);
            HttpResponse::NoContent().finish()
        }
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

/// What the control endpoint is asked: take `sender_id` offline with `offline_reasons`, or
/// (`offline: false`) bring it back.
#[derive(Debug, serde::Deserialize)]
pub(super) struct OfflineRequest {
    sender_id: String,
    offline: bool,
    #[serde(default)]
    offline_reasons: Vec<Value>,
}

/// `POST /simulator/senders/offline` (simulator only): the sender `sender_id` goes `OFFLINE`
/// with the reasons given (Twilio's shape: `code`, `message`, `more_info`), or back to where
/// its registration stands. Answers the sender as the Senders API now shows it; 404 for a
/// number the simulator never registered.
pub(super) async fn set_offline(
    req: HttpRequest,
    body: web::Json<OfflineRequest>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let mut all = state.senders.all.lock().expect("senders lock");
    let Some(s) = all.values_mut().find(|s| s.sender_id == body.sender_id) else {
        return twilio_error(
            404,
            20404,
            &format!(
                "the simulator has no WhatsApp sender {}: register it first (the onboarding wizard, or POST /v2/Channels/Senders)",
                body.sender_id
            ),
        );
    };
    s.offline = body.offline.then(|| body.offline_reasons.clone());
    tracing::info!(sender = %s.sender_id, offline = body.offline, "simulator: WhatsApp sender state set");
    HttpResponse::Ok().json(state.senders.resource(s, &super::content::base_of(&req)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_is_created_then_waits_for_its_code_then_verifies_then_is_online() {
        let t0 = Utc::now();
        let step = Duration::from_secs(2);
        let mut s = SimSender {
            sid: "XE00000000000000000000000000000001".into(),
            sender_id: "whatsapp:+15017122661".into(),
            created: t0,
            verified: None,
            configuration: Value::Null,
            webhook: Value::Null,
            profile: Value::Null,
            offline: None,
        };
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        assert_eq!(status_of(&s, at(500), step), "CREATING");
        assert_eq!(status_of(&s, at(2500), step), "PENDING_VERIFICATION");
        s.verified = Some(at(3000));
        assert_eq!(status_of(&s, at(4000), step), "VERIFYING");
        assert_eq!(status_of(&s, at(5000), step), "ONLINE");
        s.offline = Some(Vec::new());
        assert_eq!(status_of(&s, at(5000), step), "OFFLINE");
        s.offline = None;
        assert_eq!(status_of(&s, at(5000), step), "ONLINE");
    }

    #[test]
    fn the_code_is_six_digits_of_the_sid() {
        assert_eq!(
            verification_code("XE000f4240aaaaaaaaaaaaaaaaaaaaaaaa"),
            "000000"
        );
        assert_eq!(
            verification_code("XE0000007baaaaaaaaaaaaaaaaaaaaaaaa"),
            "000123"
        );
        assert_eq!(verification_code("XE").len(), 6);
    }
}
