//! A reminder's lifecycle state, as stored in `reminders.status` and shown by the API. Which
//! action moves a reminder from one state to another is the reminders service's lifecycle
//! table (`reminders::lifecycle`).

use std::fmt;
use std::str::FromStr;

/// Where a reminder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReminderStatus {
    /// Sends at its next occurrence.
    Active,
    /// Kept, but sends nothing until it is resumed.
    Paused,
    /// Stopped by someone; nothing more is sent.
    Canceled,
    /// No occurrence is left.
    Done,
}

impl ReminderStatus {
    pub const ALL: [ReminderStatus; 4] = [
        ReminderStatus::Active,
        ReminderStatus::Paused,
        ReminderStatus::Canceled,
        ReminderStatus::Done,
    ];

    /// The stored and shown text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderStatus::Active => "active",
            ReminderStatus::Paused => "paused",
            ReminderStatus::Canceled => "canceled",
            ReminderStatus::Done => "done",
        }
    }
}

impl fmt::Display for ReminderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status text that is not one of a reminder's states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reminder status {0:?}")]
pub struct UnknownReminderStatus(pub String);

impl FromStr for ReminderStatus {
    type Err = UnknownReminderStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReminderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownReminderStatus(s.to_owned()))
    }
}

/// How a stored row's text becomes a status (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for ReminderStatus {
    type Error = UnknownReminderStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_statuses_read_back_as_the_text_they_are_stored_as() {
        for (status, text) in [
            (ReminderStatus::Active, "active"),
            (ReminderStatus::Paused, "paused"),
            (ReminderStatus::Canceled, "canceled"),
            (ReminderStatus::Done, "done"),
        ] {
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(text.parse::<ReminderStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), text);
        }
        assert!("Active".parse::<ReminderStatus>().is_err());
        assert!("cancelled".parse::<ReminderStatus>().is_err());
    }
}
