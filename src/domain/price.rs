//! The price table's vocabulary: what a row prices (its kind), Meta's categories, and one
//! row. The table's logic (parsing, the estimator) is in `crate::pricing`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a row prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Twilio's fee per message, inbound or outbound.
    TwilioMessage,
    /// Twilio's fee for a message that failed (instead of the one above).
    TwilioFailed,
    /// Meta's fee per template message (from 2025-07-01).
    MetaTemplate,
    /// Meta's fee per 24-hour conversation (before 2025-07-01).
    MetaConversation,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::TwilioMessage,
        Kind::TwilioFailed,
        Kind::MetaTemplate,
        Kind::MetaConversation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TwilioMessage => "twilio_message",
            Kind::TwilioFailed => "twilio_failed",
            Kind::MetaTemplate => "meta_template",
            Kind::MetaConversation => "meta_conversation",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "kind must be twilio_message, twilio_failed, meta_template or meta_conversation, got {s:?}"
                )
            })
    }

    /// A fee Meta charges (rather than Twilio).
    pub fn is_meta(self) -> bool {
        matches!(self, Kind::MetaTemplate | Kind::MetaConversation)
    }
}

/// Meta's template categories, and `service` for free-form messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
    Service,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Marketing,
        Category::Utility,
        Category::Authentication,
        Category::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Utility => "utility",
            Category::Authentication => "authentication",
            Category::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("category must be marketing, utility, authentication or service, got {s:?}")
            })
    }
}

/// One row of the price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Price {
    pub effective_from: NaiveDate,
    pub kind: Kind,
    /// ISO 3166 alpha-2, or `*`.
    pub country: String,
    /// A [`Category`] name, or `*`.
    pub category: String,
    /// Exact decimal, written as text like Twilio's prices.
    #[serde(serialize_with = "decimal_text")]
    pub amount: Decimal,
    pub currency: String,
}

pub fn decimal_text<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

/// An amount as people read money: no trailing zeros beyond the cents (`20.00`, `19.985`,
/// `0.00125`).
pub fn money(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}
