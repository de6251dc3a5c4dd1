//! The simulator's Messaging Services (`/v1/Services` and their `ChannelSenders`): one
//! service exists from the start, and the simulated account's WhatsApp senders can be put in
//! it and taken out, as at Twilio.

use std::collections::BTreeMap;
use std::sync::Mutex;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::{SimState, twilio_error};

/// The Messaging Service every simulator has.
pub const SAMPLE_SERVICE: &str = "MG00000000000000000000000000005e01";

/// Services by SID, each with the SIDs of its channel senders.
pub(super) struct Services {
    all: Mutex<BTreeMap<String, (String, Vec<String>)>>,
}

impl Services {
    pub(super) fn new() -> Self {
        let mut all = BTreeMap::new();
        all.insert(
            SAMPLE_SERVICE.to_owned(),
            ("Simulated notifications".to_owned(), Vec::new()),
        );
        Self {
            all: Mutex::new(all),
        }
    }

    /// Takes a deleted sender out of every service.
    pub(super) fn forget_sender(&self, sid: &str) {
        for (_, senders) in self.all.lock().expect("services lock").values_mut() {
            senders.retain(|s| s != sid);
        }
    }
}

fn page(key: &str, items: Vec<Value>) -> HttpResponse {
    let size = items.len().max(1);
    HttpResponse::Ok().json(json!({key: items,
        "meta": {"page": 0, "page_size": size, "key": key, "next_page_url": null}}))
}

/// `GET /v1/Services`.
pub(super) async fn list(state: web::Data<SimState>) -> HttpResponse {
    let items = state
        .services
        .all
        .lock()
        .expect("services lock")
        .iter()
        .map(|(sid, (name, _))| {
            json!({"sid": sid, "account_sid": state.account_sid, "friendly_name": name,
                "use_inbound_webhook_on_number": true})
        })
        .collect();
    page("services", items)
}

fn channel_sender(state: &SimState, service: &str, sid: &str) -> Value {
    let number = state.senders.number_of(sid).unwrap_or_default();
    json!({"account_sid": state.account_sid, "messaging_service_sid": service, "sid": sid,
        "sender": number, "sender_type": "WhatsApp"})
}

/// `GET /v1/Services/{MG}/ChannelSenders`.
pub(super) async fn senders(path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    let all = state.services.all.lock().expect("services lock");
    let Some((_, senders)) = all.get(path.as_str()) else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    let items = senders
        .iter()
        .map(|s| channel_sender(&state, &path, s))
        .collect();
    page("senders", items)
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct AttachForm {
    #[serde(rename = "Sid")]
    sid: String,
}

/// `POST /v1/Services/{MG}/ChannelSenders` (`Sid=XE…`).
pub(super) async fn attach(
    path: web::Path<String>,
    form: web::Form<AttachForm>,
    state: web::Data<SimState>,
) -> HttpResponse {
    if state.senders.number_of(&form.sid).is_none() {
        return twilio_error(404, 20404, "No such sender");
    }
    let mut all = state.services.all.lock().expect("services lock");
    let Some((_, senders)) = all.get_mut(path.as_str()) else {
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    if senders.contains(&form.sid) {
        return twilio_error(
            409,
            21710,
            "The sender is already in this Messaging Service",
        );
    }
    senders.push(form.sid.clone());
    HttpResponse::Created().json(channel_sender(&state, &path, &form.sid))
}

/// `DELETE /v1/Services/{MG}/ChannelSenders/{XE}`.
pub(super) async fn detach(
    path: web::Path<(String, String)>,
    state: web::Data<SimState>,
) -> HttpResponse {
    let (service, sender) = path.into_inner();
    let mut all = state.services.all.lock().expect("services lock");
    match all.get_mut(&service) {
        Some((_, senders)) if senders.contains(&sender) => {
            senders.retain(|s| *s != sender);
            HttpResponse::NoContent().finish()
        }
        _ => twilio_error(404, 20404, "The requested resource was not found"),
    }
}
