//! Time-zone helpers for schedules: the wall-clock time an instant shows, and the instant a
//! wall time maps to across daylight-saving gaps and folds.

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest spring-forward gap searched for its end. The largest on record is a whole
/// day (Pacific/Apia skipped 2011-12-30); two days leaves room.
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// The wall-clock time an instant shows in a zone (None only at the ends of chrono's range).
pub(super) fn wall_clock(tz: Tz, at: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = at.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The earlier instant showing this wall time, or None when the time falls in a gap.
pub(super) fn earliest_instant(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        MappedLocalTime::Single(at) => Some(at.to_utc()),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).to_utc()),
        MappedLocalTime::None => None,
    }
}

/// The first instant whose wall-clock time is at or after `wall`: the instant showing it (the
/// earlier one if it shows twice), or the end of the gap when the clocks jump over it.
pub(super) fn instant_at_or_after(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    earliest_instant(tz, wall).or_else(|| gap_end(tz, wall))
}

/// The instant the clocks jumped over `wall`. Walks forward a minute at a time to the first
/// wall time that exists, then narrows to the second of the jump, which falls within the
/// minute before that time's instant (transitions in the database are whole seconds).
fn gap_end(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut probe = wall;
    for _ in 0..MAX_GAP_MINUTES {
        probe = probe.checked_add_signed(TimeDelta::minutes(1))?;
        let Some(past_gap) = earliest_instant(tz, probe) else {
            continue;
        };
        let reached = |seconds: i64| {
            DateTime::from_timestamp(seconds, 0)
                .and_then(|at| wall_clock(tz, at))
                .is_some_and(|shown| shown >= wall)
        };
        let (mut before, mut after) = (past_gap.timestamp() - 60, past_gap.timestamp());
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if reached(middle) {
                after = middle;
            } else {
                before = middle;
            }
        }
        return DateTime::from_timestamp(after, 0);
    }
    None
}
