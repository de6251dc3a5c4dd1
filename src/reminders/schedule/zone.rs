//! Time-zone helpers for schedules: IANA zone names, the wall-clock time an instant shows,
//! and the instant a wall time maps to across daylight-saving gaps and folds.

use chrono::{DateTime, MappedLocalTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest spring-forward gap searched for its end. The largest on record is a whole
/// day (Pacific/Apia skipped 2011-12-30); two days leaves room.
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// Parses an IANA zone name ("Asia/Kolkata", "Europe/Berlin", "UTC"); clear error otherwise.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a time zone is needed: an IANA name like Europe/Berlin or UTC".into());
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    // chrono-tz matches names exactly unless built with its case-insensitive feature (and
    // its build-time dependencies); a linear scan of ~600 names is cheap at the edge.
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            format!(
                "`{name}` is not a known time zone: use an IANA name like Asia/Kolkata, \
                 Europe/Berlin or UTC"
            )
        })
}

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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tz_takes_iana_names_and_rejects_the_rest() {
        assert_eq!(parse_tz("Asia/Kolkata").unwrap(), Tz::Asia__Kolkata);
        assert_eq!(parse_tz("Europe/Berlin").unwrap(), Tz::Europe__Berlin);
        assert_eq!(parse_tz(" UTC ").unwrap(), Tz::UTC);
        assert_eq!(
            parse_tz("america/new_york").unwrap(),
            Tz::America__New_York,
            "case does not matter"
        );
        assert!(
            parse_tz("Mars/Olympus_Mons")
                .unwrap_err()
                .contains("`Mars/Olympus_Mons` is not a known time zone")
        );
        assert!(parse_tz("").unwrap_err().contains("a time zone is needed"));
        assert!(parse_tz("+05:30").unwrap_err().contains("IANA name"));
    }
}
