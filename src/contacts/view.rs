//! A contact as people and programs see it, and the cursor that pages through contacts.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::window::Window;
use crate::storage::contacts::{ConsentEventRow, ContactRow, RetiredRow};

/// A contact as the API shows it: `consent` is `deauthorized` while the business
/// blocks the contact, whatever the contact said.
#[derive(Debug, Serialize)]
pub struct ContactView {
    pub number: String,
    pub profile_name: Option<String>,
    pub wa_id: Option<String>,
    pub consent: String,
    pub deauthorized_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub window_expires_at: Option<DateTime<Utc>>,
    /// `open`, `closed` or `unknown` (never heard from).
    pub window: &'static str,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ConsentEventRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_numbers: Option<Vec<RetiredRow>>,
}

impl ContactView {
    pub fn new(c: ContactRow, now: DateTime<Utc>) -> Self {
        let consent = if c.is_deauthorized() {
            "deauthorized".to_owned()
        } else {
            c.consent.clone()
        };
        let window = match Window::at(c.last_inbound_at, now) {
            Window::Open { .. } => "open",
            Window::Closed { .. } => "closed",
            Window::Unknown => "unknown",
        };
        Self {
            window_expires_at: Window::expires_at(c.last_inbound_at),
            window,
            number: c.number,
            profile_name: c.profile_name,
            wa_id: c.wa_id,
            consent,
            deauthorized_at: c.deauthorized_at,
            last_inbound_at: c.last_inbound_at,
            tags: c.tags,
            created_at: c.created_at,
            updated_at: c.updated_at,
            history: None,
            previous_numbers: None,
        }
    }
}

/// Cursor text: `<updated_at as RFC 3339>,<id>`.
pub fn parse_cursor(s: &str) -> Option<(DateTime<Utc>, i64)> {
    let (t, id) = s.rsplit_once(',')?;
    Some((
        DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
        id.parse().ok()?,
    ))
}

pub fn cursor_of(c: &ContactRow) -> String {
    format!(
        "{},{}",
        c.updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        c.id
    )
}
