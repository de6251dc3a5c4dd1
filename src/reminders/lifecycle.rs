//! A reminder's lifecycle: the one table of which action is allowed from which state and the
//! state it leads to. The JSON API, the dashboard and the reminder runner all ask it.

use std::fmt;

use crate::domain::ReminderStatus::{self, Active, Canceled, Done, Paused};

/// What can happen to a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Change its settings (PATCH, the dashboard's edit form); the edit may also pause or
    /// resume it, and ends it when no occurrence is left.
    Edit,
    /// The dashboard's Pause button.
    Pause,
    /// The dashboard's Resume button.
    Resume,
    /// The dashboard's Cancel button: stop an open reminder.
    Cancel,
    /// `DELETE /api/v1/reminders/{id}`: stop it whatever its state (so it may be repeated,
    /// and a finished reminder is recorded as canceled).
    Delete,
    /// No occurrence is left (the runner after the last one, or an edit into the past).
    Finish,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Edit,
        Action::Pause,
        Action::Resume,
        Action::Cancel,
        Action::Delete,
        Action::Finish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::Delete => "delete",
            Action::Finish => "finish",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each action: the states it is allowed from, and the state it leads to (`None`: it stays
/// where it is, as an edit does unless it asks for `active` or `paused`).
const TABLE: [(Action, &[ReminderStatus], Option<ReminderStatus>); 6] = [
    (Action::Edit, &[Active, Paused], None),
    (Action::Pause, &[Active], Some(Paused)),
    (Action::Resume, &[Paused], Some(Active)),
    (Action::Cancel, &[Active, Paused], Some(Canceled)),
    (Action::Delete, &ReminderStatus::ALL, Some(Canceled)),
    (Action::Finish, &[Active, Paused], Some(Done)),
];

/// The state `action` leads to from `from`, or None when it is not allowed from there.
pub fn next(from: ReminderStatus, action: Action) -> Option<ReminderStatus> {
    TABLE
        .iter()
        .find(|(a, _, _)| *a == action)
        .filter(|(_, allowed, _)| allowed.contains(&from))
        .map(|(_, _, to)| to.unwrap_or(from))
}

/// Whether a reminder in this state can still change (be edited, paused, resumed).
pub fn is_open(status: ReminderStatus) -> bool {
    next(status, Action::Edit).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_action_leads_where_it_did_before_the_table() {
        use Action::*;
        let expected = |from: ReminderStatus, action: Action| match (from, action) {
            // PATCH and the edit form: 409 on a canceled or finished reminder.
            (Active | Paused, Edit) => Some(from),
            (Canceled | Done, Edit) => None,
            // The dashboard's buttons: pause an active one, resume a paused one, cancel
            // either; 409 otherwise.
            (Active, Pause) => Some(Paused),
            (Paused, Resume) => Some(Active),
            (Active | Paused, Cancel) => Some(Canceled),
            (_, Pause | Resume | Cancel) => None,
            // DELETE through the API cancels whatever the state.
            (_, Delete) => Some(Canceled),
            // The runner (active reminders) and an edit (open ones) end a reminder with
            // nothing left to send.
            (Active | Paused, Finish) => Some(Done),
            (Canceled | Done, Finish) => None,
        };
        for from in ReminderStatus::ALL {
            for action in Action::ALL {
                assert_eq!(
                    next(from, action),
                    expected(from, action),
                    "{action} from {from}"
                );
            }
        }
    }

    #[test]
    fn active_and_paused_reminders_are_open() {
        let open: Vec<_> = ReminderStatus::ALL
            .into_iter()
            .filter(|s| is_open(*s))
            .collect();
        assert_eq!(open, [Active, Paused]);
    }
}
