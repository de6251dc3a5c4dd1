//! The message status state machine: which Twilio status wins when callbacks arrive late,
//! twice or out of order.
//!
//! Twilio gives no ordering guarantee for status callbacks and retries some of them, so the
//! current status must not depend on arrival order. We therefore make the set of known
//! statuses a *total order* (the `rank`) and let the current status be the highest-ranked
//! status ever reported. Merging by maximum is commutative, associative and idempotent, so any
//! permutation of any multiset of callbacks ends in the same state as in-order delivery.
//!
//! The order follows the delivery funnel
//! `accepted|scheduled < queued < sending < sent < canceled < undelivered < failed < delivered < read`:
//! - a final failure (`canceled`, `undelivered`, `failed`) beats every earlier stage, so a late
//!   `sent` or `queued` never overwrites it;
//! - `delivered` and `read` rank above the failures: a failure reported after the handset
//!   confirmed delivery is kept in the event log but does not demote the message, and — for
//!   order independence — a delivery receipt arriving after a failure report wins as well
//!   (the handset's receipt is the stronger evidence);
//! - among the three failures the rank only breaks ties deterministically.
//!
//! Statuses Twilio may add in the future are kept as [`MessageStatus::Other`]: they are stored
//! as events and never move the current status.

use std::fmt;

use chrono::{DateTime, Utc};

/// A Twilio message status as reported by `MessageStatus`/`SmsStatus` or the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Canceled,
    Undelivered,
    Failed,
    PartiallyDelivered,
    Delivered,
    Read,
    Receiving,
    Received,
    /// A value this version of wadash does not know (kept verbatim, lower-cased).
    Other(String),
}

impl MessageStatus {
    /// Every status wadash knows, in rank order. Used by the exhaustive tests and the docs.
    pub const KNOWN: [MessageStatus; 13] = [
        MessageStatus::Accepted,
        MessageStatus::Scheduled,
        MessageStatus::Receiving,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::PartiallyDelivered,
        MessageStatus::Canceled,
        MessageStatus::Undelivered,
        MessageStatus::Failed,
        MessageStatus::Delivered,
        MessageStatus::Received,
        MessageStatus::Read,
    ];

    /// Parses a status as Twilio spells it; never fails (unknown values become `Other`).
    pub fn parse(raw: &str) -> Self {
        let s = raw.trim().to_ascii_lowercase();
        match s.as_str() {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "canceled" | "cancelled" => Self::Canceled,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "partially_delivered" => Self::PartiallyDelivered,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            _ => Self::Other(s),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Canceled => "canceled",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Receiving => "receiving",
            Self::Received => "received",
            Self::Other(s) => s,
        }
    }

    /// Position in the total order; `None` for unknown statuses, which never win.
    ///
    /// Inbound statuses (`receiving`, `received`) only ever occur on inbound messages; they
    /// are placed so that `received` is final for them.
    pub fn rank(&self) -> Option<i16> {
        Some(match self {
            Self::Accepted => 10,
            Self::Scheduled => 11,
            Self::Receiving => 15,
            Self::Queued => 20,
            Self::Sending => 30,
            Self::Sent => 40,
            Self::PartiallyDelivered => 45,
            Self::Canceled => 50,
            Self::Undelivered => 51,
            Self::Failed => 52,
            Self::Delivered => 60,
            Self::Received => 65,
            Self::Read => 70,
            Self::Other(_) => return None,
        })
    }

    /// A status after which Twilio reports nothing further except, possibly, `read`.
    /// Exactly the statuses ranked [`SETTLED_RANK`] or higher.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Canceled
                | Self::Undelivered
                | Self::Failed
                | Self::Delivered
                | Self::Read
                | Self::Received
        )
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Canceled | Self::Undelivered | Self::Failed)
    }

    /// Which milestone timestamp this status sets, if any.
    pub fn milestone(&self) -> Option<Milestone> {
        match self {
            Self::Sent => Some(Milestone::Sent),
            Self::Delivered => Some(Milestone::Delivered),
            Self::Read => Some(Milestone::Read),
            Self::Failed | Self::Undelivered => Some(Milestone::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// What the state machine decides when `incoming` is reported for a message at `current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The message moves to the incoming status.
    Advance,
    /// Same status again (a duplicate or a second report): nothing moves.
    Same,
    /// The report is older than what we know (late, out of order, or a failure after
    /// delivery): recorded as an event only.
    Stale,
    /// An unknown status: recorded as an event only.
    Unknown,
}

/// The lowest rank of a final status: a message ranked this high is settled, and SQL that
/// looks for unsettled messages compares `status_rank < SETTLED_RANK`.
pub const SETTLED_RANK: i16 = 50;

/// The pure transition function. `current` is `None` for a message we have never seen.
pub fn transition(current: Option<&MessageStatus>, incoming: &MessageStatus) -> Transition {
    let Some(new_rank) = incoming.rank() else {
        return Transition::Unknown;
    };
    match current.and_then(MessageStatus::rank) {
        None => Transition::Advance,
        Some(old) if new_rank > old => Transition::Advance,
        Some(old) if new_rank == old => Transition::Same,
        Some(_) => Transition::Stale,
    }
}

/// The part of a message that status reports change. Both the in-memory fold of a batch and
/// the SQL upsert in `storage::messages` implement exactly this merge (the SQL compares the
/// same `rank`), and the property tests check that they agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusState {
    pub status: Option<MessageStatus>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// One status report about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub status: MessageStatus,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub at: DateTime<Utc>,
}

impl StatusState {
    pub fn rank(&self) -> i16 {
        self.status
            .as_ref()
            .and_then(MessageStatus::rank)
            .unwrap_or(-1)
    }

    /// Applies one report. Error fields describe the current status: they follow the winning
    /// report, and a second report of the same status only fills a missing error.
    /// Milestones keep the earliest time each stage was reported, whatever the order.
    pub fn apply(&mut self, report: &StatusReport) -> Transition {
        let t = transition(self.status.as_ref(), &report.status);
        match t {
            Transition::Advance => {
                self.status = Some(report.status.clone());
                self.error_code = report.error_code;
                self.error_message = report.error_message.clone();
            }
            Transition::Same => {
                if self.error_code.is_none() {
                    self.error_code = report.error_code;
                }
                if self.error_message.is_none() {
                    self.error_message = report.error_message.clone();
                }
            }
            Transition::Stale | Transition::Unknown => {}
        }
        if let Some(m) = report.status.milestone() {
            let slot = match m {
                Milestone::Sent => &mut self.sent_at,
                Milestone::Delivered => &mut self.delivered_at,
                Milestone::Read => &mut self.read_at,
                Milestone::Failed => &mut self.failed_at,
            };
            *slot = Some(match *slot {
                Some(existing) => existing.min(report.at),
                None => report.at,
            });
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageStatus as S;

    fn report(status: MessageStatus, at_secs: i64) -> StatusReport {
        StatusReport {
            status,
            error_code: None,
            error_message: None,
            at: DateTime::from_timestamp(at_secs, 0).unwrap(),
        }
    }

    /// The expected outcome for every pair, written out by hand as a table so that a change
    /// to the ranks shows up as a failing row. Rows: current; columns: incoming, in the order
    /// of `KNOWN` (acc, sch, rcv'ing, que, sndg, sent, part, canc, undel, fail, deliv, rcvd, read).
    #[test]
    fn every_status_against_every_status() {
        const A: char = 'A'; // advance
        const S_: char = '='; // same
        const X: char = '-'; // stale, ignored
        #[rustfmt::skip]
        let table: [[char; 13]; 13] = [
            /* accepted  */ [S_, A, A, A, A, A, A, A, A, A, A, A, A],
            /* scheduled */ [X, S_, A, A, A, A, A, A, A, A, A, A, A],
            /* receiving */ [X, X, S_, A, A, A, A, A, A, A, A, A, A],
            /* queued    */ [X, X, X, S_, A, A, A, A, A, A, A, A, A],
            /* sending   */ [X, X, X, X, S_, A, A, A, A, A, A, A, A],
            /* sent      */ [X, X, X, X, X, S_, A, A, A, A, A, A, A],
            /* partial   */ [X, X, X, X, X, X, S_, A, A, A, A, A, A],
            /* canceled  */ [X, X, X, X, X, X, X, S_, A, A, A, A, A],
            /* undeliv.  */ [X, X, X, X, X, X, X, X, S_, A, A, A, A],
            /* failed    */ [X, X, X, X, X, X, X, X, X, S_, A, A, A],
            /* delivered */ [X, X, X, X, X, X, X, X, X, X, S_, A, A],
            /* received  */ [X, X, X, X, X, X, X, X, X, X, X, S_, A],
            /* read      */ [X, X, X, X, X, X, X, X, X, X, X, X, S_],
        ];
        for (i, current) in S::KNOWN.iter().enumerate() {
            for (j, incoming) in S::KNOWN.iter().enumerate() {
                let expected = match table[i][j] {
                    'A' => Transition::Advance,
                    '=' => Transition::Same,
                    _ => Transition::Stale,
                };
                assert_eq!(
                    transition(Some(current), incoming),
                    expected,
                    "{current} then {incoming}"
                );
            }
        }
    }

    #[test]
    fn settled_means_final() {
        for s in S::KNOWN.iter() {
            assert_eq!(s.is_final(), s.rank().unwrap() >= SETTLED_RANK, "{s}");
        }
        assert!(S::parse("mystery").rank().is_none());
    }

    #[test]
    fn anything_known_advances_a_new_message() {
        for s in S::KNOWN.iter() {
            assert_eq!(transition(None, s), Transition::Advance);
        }
    }

    #[test]
    fn unknown_status_never_moves_the_message() {
        let odd = S::parse("teleported");
        assert_eq!(odd, S::Other("teleported".into()));
        assert_eq!(transition(None, &odd), Transition::Unknown);
        for s in S::KNOWN.iter() {
            assert_eq!(transition(Some(s), &odd), Transition::Unknown);
        }
        let mut state = StatusState::default();
        state.apply(&report(odd, 1));
        assert_eq!(state.status, None);
    }

    #[test]
    fn parse_round_trips_every_known_status() {
        for s in S::KNOWN.iter() {
            assert_eq!(&S::parse(s.as_str()), s);
            assert_eq!(&S::parse(&s.as_str().to_uppercase()), s);
        }
        assert_eq!(S::parse("cancelled"), S::Canceled);
    }

    #[test]
    fn out_of_order_delivered_after_read_does_not_demote_but_fills_delivered_at() {
        let mut st = StatusState::default();
        st.apply(&report(S::Read, 30));
        assert_eq!(st.apply(&report(S::Delivered, 20)), Transition::Stale);
        assert_eq!(st.status, Some(S::Read));
        assert_eq!(st.read_at.unwrap().timestamp(), 30);
        assert_eq!(st.delivered_at.unwrap().timestamp(), 20);
    }

    #[test]
    fn failure_after_delivery_is_stale_and_keeps_no_error() {
        let mut st = StatusState::default();
        st.apply(&report(S::Delivered, 10));
        let mut failed = report(S::Failed, 11);
        failed.error_code = Some(30008);
        assert_eq!(st.apply(&failed), Transition::Stale);
        assert_eq!(st.status, Some(S::Delivered));
        assert_eq!(st.error_code, None);
        assert!(
            st.failed_at.is_some(),
            "the failure is still a recorded milestone"
        );
    }

    #[test]
    fn late_sent_never_overwrites_a_failure_and_error_follows_the_failure() {
        let mut st = StatusState::default();
        let mut und = report(S::Undelivered, 5);
        und.error_code = Some(63016);
        st.apply(&und);
        st.apply(&report(S::Sent, 4));
        assert_eq!(st.status, Some(S::Undelivered));
        assert_eq!(st.error_code, Some(63016));
        assert_eq!(st.sent_at.unwrap().timestamp(), 4);
    }

    #[test]
    fn duplicate_keeps_the_earliest_milestone() {
        let mut st = StatusState::default();
        st.apply(&report(S::Sent, 9));
        assert_eq!(st.apply(&report(S::Sent, 3)), Transition::Same);
        assert_eq!(st.sent_at.unwrap().timestamp(), 3);
    }
}
