//! A broadcast's lifecycle: its states, the operator's actions on it, and the one table of
//! which action applies in which state (used by the JSON API, the pages and the store).

use std::fmt;
use std::str::FromStr;

/// Where a broadcast is (the `broadcasts.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastStatus {
    /// Waiting for its start time.
    Scheduled,
    Running,
    Paused,
    /// Its cost would take the balance below the reserve, until an admin releases it.
    Held,
    Canceled,
    Completed,
}

impl BroadcastStatus {
    pub const ALL: [Self; 6] = [
        Self::Scheduled,
        Self::Running,
        Self::Paused,
        Self::Held,
        Self::Canceled,
        Self::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Held => "held",
            Self::Canceled => "canceled",
            Self::Completed => "completed",
        }
    }

    /// Whether `action` applies to a broadcast in this state.
    pub fn allows(self, action: BroadcastAction) -> bool {
        action.allowed_from().contains(&self)
    }
}

/// A status that is not one of [`BroadcastStatus`]'s, or an action that is not one of
/// [`BroadcastAction`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown broadcast {kind} {value:?}")]
pub struct UnknownName {
    kind: &'static str,
    value: String,
}

/// The one of `all` whose name is `s`.
fn named<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    kind: &'static str,
    s: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|x| name(*x) == s)
        .ok_or_else(|| UnknownName {
            kind,
            value: s.to_owned(),
        })
}

impl FromStr for BroadcastStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        named(&Self::ALL, Self::as_str, "status", s)
    }
}

/// Reading the `status` column.
impl TryFrom<String> for BroadcastStatus {
    type Error = UnknownName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<&str> for BroadcastStatus {
    type Error = UnknownName;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for BroadcastStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator may do to a broadcast (`POST …/broadcasts/{id}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastAction {
    Pause,
    Resume,
    Cancel,
    /// Queue again the recipients whose failure may pass.
    Retry,
    /// An admin lets a held broadcast start.
    Release,
}

impl BroadcastAction {
    pub const ALL: [Self; 5] = [
        Self::Pause,
        Self::Resume,
        Self::Cancel,
        Self::Retry,
        Self::Release,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::Release => "release",
        }
    }

    /// The transition table: the states this action applies to.
    pub fn allowed_from(self) -> &'static [BroadcastStatus] {
        use BroadcastStatus::*;
        match self {
            Self::Pause => &[Running, Scheduled],
            Self::Resume => &[Paused],
            Self::Cancel => &[Running, Scheduled, Paused, Held],
            Self::Retry => &[Running, Paused, Completed],
            Self::Release => &[Held],
        }
    }

    /// The state a pause, resume or cancel sets (a resumed broadcast whose start time is still
    /// ahead is scheduled instead). Retry and release have their own rules: retry runs a
    /// completed broadcast again and leaves the others as they are; release starts a held
    /// broadcast, or schedules it.
    pub fn sets(self) -> Option<BroadcastStatus> {
        match self {
            Self::Pause => Some(BroadcastStatus::Paused),
            Self::Resume => Some(BroadcastStatus::Running),
            Self::Cancel => Some(BroadcastStatus::Canceled),
            Self::Retry | Self::Release => None,
        }
    }
}

impl FromStr for BroadcastAction {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        named(&Self::ALL, Self::as_str, "action", s)
    }
}

impl fmt::Display for BroadcastAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::BroadcastAction::*;
    use super::BroadcastStatus::*;
    use super::*;

    #[test]
    fn names_are_the_stored_strings() {
        let names = [
            "scheduled",
            "running",
            "paused",
            "held",
            "canceled",
            "completed",
        ];
        for (s, name) in BroadcastStatus::ALL.into_iter().zip(names) {
            assert_eq!(s.as_str(), name);
            assert_eq!(name.parse::<BroadcastStatus>(), Ok(s));
            assert_eq!(BroadcastStatus::try_from(name), Ok(s));
            assert_eq!(s.to_string(), name);
        }
        let actions = ["pause", "resume", "cancel", "retry", "release"];
        for (a, name) in BroadcastAction::ALL.into_iter().zip(actions) {
            assert_eq!(a.as_str(), name);
            assert_eq!(name.parse::<BroadcastAction>(), Ok(a));
        }
        assert!("cancelled".parse::<BroadcastStatus>().is_err());
        assert!("Running".parse::<BroadcastStatus>().is_err());
        assert!("stop".parse::<BroadcastAction>().is_err());
    }

    #[test]
    fn every_state_and_action_as_before() {
        // (state, [pause, resume, cancel, retry, release]), as the API and the store did.
        let table = [
            (Scheduled, [true, false, true, false, false]),
            (Running, [true, false, true, true, false]),
            (Paused, [false, true, true, true, false]),
            (Held, [false, false, true, false, true]),
            (Canceled, [false, false, false, false, false]),
            (Completed, [false, false, false, true, false]),
        ];
        for (state, allowed) in table {
            for (action, want) in BroadcastAction::ALL.into_iter().zip(allowed) {
                assert_eq!(state.allows(action), want, "{state} × {action}");
            }
        }
        assert_eq!(table.len(), BroadcastStatus::ALL.len());
    }

    #[test]
    fn pause_resume_and_cancel_set_a_state() {
        assert_eq!(Pause.sets(), Some(Paused));
        assert_eq!(Resume.sets(), Some(Running));
        assert_eq!(Cancel.sets(), Some(Canceled));
        assert_eq!(Retry.sets(), None);
        assert_eq!(Release.sets(), None);
    }
}
