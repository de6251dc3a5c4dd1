//! The request and response types of the Twilio REST client: who sends, a message to create,
//! Twilio's Message resource and its pages, list filters, the balance and a media file.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::domain::{MessageStatus, StatusReport, WhatsAppAddress};

/// A downloaded media file.
#[derive(Debug, Clone)]
pub struct MediaFile {
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Who a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A WhatsApp sender number (`whatsapp:+…`).
    From(WhatsAppAddress),
    /// A Messaging Service (`MG…`), which picks the sender.
    MessagingService(String),
}

/// A message to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateMessage {
    pub to: WhatsAppAddress,
    pub sender: Sender,
    pub body: Option<String>,
    pub media_urls: Vec<String>,
    /// An approved template (`HX…`) with its variables as a JSON object text.
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
}

/// A Twilio Message resource, as much of it as wadash uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MessageResource {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// Exact decimal as Twilio writes it (negative: a charge), e.g. `-0.00500`.
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub price_unit: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub num_media: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
}

impl MessageResource {
    /// The status the resource reports, reached at `at`.
    pub fn report(&self, at: DateTime<Utc>) -> StatusReport {
        StatusReport {
            status: MessageStatus::parse(&self.status),
            error_code: self.error_code.and_then(|c| i32::try_from(c).ok()),
            error_message: self.error_message.clone(),
            at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct MessagePage {
    #[serde(default)]
    pub(super) messages: Vec<MessageResource>,
    #[serde(default)]
    pub(super) next_page_uri: Option<String>,
}

/// Filters for listing messages.
#[derive(Debug, Clone, Default)]
pub struct ListMessages {
    pub to: Option<String>,
    pub from: Option<String>,
    /// Only messages sent on or after this day (`DateSent>=`, Twilio's granularity is a day).
    pub sent_on_or_after: Option<chrono::NaiveDate>,
    /// Page size asked of Twilio (1–1000).
    pub page_size: u32,
    /// Stop after this many pages (a guard against listing a whole account by mistake).
    pub max_pages: u32,
}

/// The account balance. Child (sub-)accounts carry no balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub account_sid: Option<String>,
    pub balance: Option<Decimal>,
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BalanceJson {
    #[serde(default)]
    pub(super) account_sid: Option<String>,
    #[serde(default)]
    pub(super) balance: Option<String>,
    #[serde(default)]
    pub(super) currency: Option<String>,
}
