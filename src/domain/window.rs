//! WhatsApp's 24-hour customer service window.
//!
//! A business may send free-form messages (text or media) to a contact only within 24 hours
//! of the contact's last message; outside it, only approved templates go through, and Twilio
//! fails anything else with error 63016. wadash knows the window only from the inbound
//! messages it has seen.

use chrono::{DateTime, TimeDelta, Utc};

/// Length of the window.
pub const LENGTH: TimeDelta = TimeDelta::hours(24);

/// The window as wadash knows it at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Free-form messages may be sent until `expires_at` (exclusive).
    Open { expires_at: DateTime<Utc> },
    /// The last inbound message is 24 hours old or older.
    Closed { closed_at: DateTime<Utc> },
    /// wadash has never received a message from the contact; Twilio may still know a window.
    Unknown,
}

impl Window {
    pub fn at(last_inbound_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match last_inbound_at {
            None => Window::Unknown,
            Some(last) => {
                let expires_at = last + LENGTH;
                if now < expires_at {
                    Window::Open { expires_at }
                } else {
                    Window::Closed {
                        closed_at: expires_at,
                    }
                }
            }
        }
    }

    /// When the window closes (or closed), if wadash knows.
    pub fn expires_at(last_inbound_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        last_inbound_at.map(|t| t + LENGTH)
    }
}

/// How long is left, for people: "23 h 59 min", "12 min", "closed".
pub fn time_left(window: Window, now: DateTime<Utc>) -> String {
    match window {
        Window::Unknown => "unknown (never heard from)".into(),
        Window::Closed { .. } => "closed".into(),
        Window::Open { expires_at } => {
            let mins = (expires_at - now).num_minutes();
            match (mins / 60, mins % 60) {
                (0, 0) => "under a minute".into(),
                (0, m) => format!("{m} min"),
                (h, m) => format!("{h} h {m} min"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_window_is_open_for_exactly_24_hours_after_the_last_inbound_message() {
        let last = Some(t("2026-11-20T10:00:00Z"));
        let expires = t("2026-11-21T10:00:00Z");
        assert_eq!(
            Window::at(last, t("2026-11-20T10:00:00Z")),
            Window::Open {
                expires_at: expires
            }
        );
        assert_eq!(
            Window::at(last, t("2026-11-21T09:59:59.999Z")),
            Window::Open {
                expires_at: expires
            }
        );
        assert_eq!(
            Window::at(last, t("2026-11-21T10:00:00Z")),
            Window::Closed { closed_at: expires },
            "the 24th hour's end is already outside"
        );
        assert_eq!(
            Window::at(last, t("2026-11-25T00:00:00Z")),
            Window::Closed { closed_at: expires }
        );
        assert_eq!(Window::at(None, t("2026-11-25T00:00:00Z")), Window::Unknown);
        assert_eq!(Window::expires_at(last), Some(expires));
    }

    #[test]
    fn time_left_reads_naturally() {
        let last = Some(t("2026-11-20T10:00:00Z"));
        let left = |now: &str| time_left(Window::at(last, t(now)), t(now));
        assert_eq!(left("2026-11-20T10:00:00Z"), "24 h 0 min");
        assert_eq!(left("2026-11-21T08:30:30Z"), "1 h 29 min");
        assert_eq!(left("2026-11-21T09:48:00Z"), "12 min");
        assert_eq!(left("2026-11-21T09:59:30Z"), "under a minute");
        assert_eq!(left("2026-11-21T10:00:00Z"), "closed");
        assert_eq!(
            time_left(Window::Unknown, t("2026-11-21T10:00:00Z")),
            "unknown (never heard from)"
        );
    }
}
