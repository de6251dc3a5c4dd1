//! Domain types: parsed at the edge, used everywhere past the handlers.

pub mod alert_state;
pub mod bot;
pub mod broadcast_state;
pub mod consent;
pub mod credential_set;
pub mod credit;
pub mod destination;
pub mod error_codes;
pub mod hex;
pub mod interactive;
pub mod message_text;
pub mod phone;
pub mod price;
pub mod probe;
pub mod record;
pub mod reminder;
pub mod role;
pub mod secret_key;
pub mod sender_health;
pub mod sender_state;
pub mod sid;
pub mod status;
pub mod template;
pub mod time_zone;
pub mod window;

pub use broadcast_state::{BroadcastAction, BroadcastStatus};
pub use hex::{hex, random_hex};
pub use phone::{PhoneNumber, WhatsAppAddress};
pub use reminder::ReminderStatus;
pub use role::Role;
pub use sender_state::SenderStatus;
pub use sid::MessageSid;
pub use status::{MessageStatus, StatusReport, StatusState, Transition};

/// Which way a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Self::Inbound),
            "outbound" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// A status callback on `/sts`.
    StatusCallback,
    /// An inbound message on `/wa`.
    Inbound,
    /// The response of our own REST call to Twilio.
    Api,
    /// A reconciliation poll of Twilio's REST API.
    Poll,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::StatusCallback => "callback",
            EventSource::Inbound => "inbound",
            EventSource::Api => "api",
            EventSource::Poll => "poll",
        }
    }
}
