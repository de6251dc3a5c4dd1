//! The Messaging API's request and response shapes (`twilio_messaging_v2.json` for senders,
//! `twilio_messaging_v1.json` for services), decoded leniently: a field Twilio leaves out or
//! sends as `null` is absent, and statuses Twilio adds are kept verbatim.

use serde::{Deserialize, Deserializer, Serialize};

/// A WhatsApp sender as Twilio describes it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Sender {
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    /// `CREATING`, `PENDING_VERIFICATION`, `VERIFYING`, `ONLINE`, `ONLINE:UPDATING`,
    /// `OFFLINE`, `TWILIO_REVIEW`, `DRAFT`, `STUBBED` or anything Twilio adds, verbatim.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// `whatsapp:+E164`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sender_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub configuration: SenderConfiguration,
    #[serde(default, deserialize_with = "null_as_default")]
    pub webhook: Webhook,
    /// The profile as Twilio answers it (its `emails` and `websites` come back as lists of
    /// objects, not as sent), kept whole for display.
    #[serde(default, deserialize_with = "null_as_default")]
    pub profile: serde_json::Value,
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: SenderProperties,
    #[serde(default, deserialize_with = "null_as_default")]
    pub offline_reasons: Vec<OfflineReason>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SenderConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// `sms` or `voice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<String>,
    /// Only ever sent (to verify); Twilio answers `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_code: Option<String>,
}

/// Where Twilio sends a sender's inbound messages and status callbacks.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Webhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback_method: Option<String>,
}

/// The WhatsApp Business profile sent when a sender is created or updated.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Profile {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertical: Option<String>,
    /// Sent as Twilio's example has them: `[{"website": …, "label": "Website"}]`.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "websites")]
    pub websites: Vec<String>,
    /// Sent as `[{"email": …, "label": "Email"}]`.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "emails")]
    pub emails: Vec<String>,
}

fn websites<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    labelled(v, "website", "Website", s)
}

fn emails<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    labelled(v, "email", "Email", s)
}

fn labelled<S: serde::Serializer>(
    v: &[String],
    key: &str,
    label: &str,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        seq.serialize_element(&serde_json::json!({key: x, "label": label}))?;
    }
    seq.end()
}

/// WhatsApp's view of a sender's standing.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct SenderProperties {
    /// `HIGH`, `MEDIUM`, `LOW`, `UNKNOWN`…, verbatim.
    #[serde(default)]
    pub quality_rating: Option<String>,
    /// `10K Customers/24hr`, …, verbatim.
    #[serde(default)]
    pub messaging_limit: Option<String>,
}

/// Why a sender is offline, in Twilio's words.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct OfflineReason {
    #[serde(default, deserialize_with = "null_as_default")]
    pub code: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub more_info: String,
}

/// `POST /v2/Channels/Senders`.
#[derive(Clone, Debug, Serialize)]
pub struct NewSender {
    /// `whatsapp:+E164`.
    pub sender_id: String,
    pub configuration: SenderConfiguration,
    pub webhook: Webhook,
    pub profile: Profile,
}

/// `POST /v2/Channels/Senders/{Sid}`: only what is set is sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SenderUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<SenderConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// A Messaging Service (`/v1/Services`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Service {
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub friendly_name: String,
    #[serde(default)]
    pub inbound_request_url: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub use_inbound_webhook_on_number: Option<bool>,
}

/// A sender inside a Messaging Service (`/v1/Services/{MG}/ChannelSenders`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ChannelSender {
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    /// `whatsapp:+E164`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sender: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sender_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub messaging_service_sid: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offline_sender_keeps_its_reasons_properties_and_unknown_status() {
        let s: Sender = serde_json::from_value(serde_json::json!({
            "sid": "XE0123456789abcdef0123456789abcdef", "status": "OFFLINE",
            "sender_id": "whatsapp:+15017122661",
            "configuration": {"waba_id": "1234567", "verification_method": "sms",
                "verification_code": null, "voice_application_sid": null},
            "webhook": {"callback_url": "https://w.example/wa", "status_callback_url": null},
            "profile": {"name": "Owl Air", "emails": [{"email": "a@b.example", "label": "Email"}]},
            "properties": {"quality_rating": "LOW", "messaging_limit": "1K Customers/24hr"},
            "offline_reasons": [{"code": "63112", "message": "The Meta account was disabled",
                "more_info": "https://www.twilio.com/docs/errors/63112"}],
            "compliance": null, "url": null
        }))
        .unwrap();
        assert_eq!(s.status, "OFFLINE");
        assert_eq!(s.offline_reasons[0].code, "63112");
        assert_eq!(s.properties.quality_rating.as_deref(), Some("LOW"));
        assert_eq!(
            s.webhook.callback_url.as_deref(),
            Some("https://w.example/wa")
        );
        assert_eq!(s.profile["name"], "Owl Air");
        let new: Sender = serde_json::from_value(serde_json::json!({
            "sid": "XE0123456789abcdef0123456789abcdef", "status": "IN_APPEAL",
            "configuration": null, "webhook": null, "profile": null, "properties": null,
            "offline_reasons": null
        }))
        .unwrap();
        assert_eq!(new.status, "IN_APPEAL", "statuses Twilio adds are kept");
        assert!(new.offline_reasons.is_empty() && new.webhook.callback_url.is_none());
    }

    #[test]
    fn an_update_sends_only_what_is_set() {
        let u = SenderUpdate {
            configuration: Some(SenderConfiguration {
                verification_code: Some("123456".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"configuration": {"verification_code": "123456"}})
        );
    }
}
