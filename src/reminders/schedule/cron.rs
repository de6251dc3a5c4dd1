//! The cron engine: a five-field expression (minute hour day-of-month month day-of-week)
//! parsed into bit sets, and the search for its next matching wall-clock minute in a zone.
//!
//! # Cron syntax
//!
//! Each field is a comma-separated list of `*`, a number, a range `a-b`, or a stepped `*/n`
//! or `a-b/n`. Months may be named `jan`..`dec` and weekdays `sun`..`sat` (any case); 0 and
//! 7 are both Sunday. As in Vixie cron and cronie, when both day-of-month and day-of-week are
//! restricted a day matches if *either* does (`0 12 13 * 5`: every 13th and every Friday); a
//! field that begins with `*` (including `*/2`) counts as unrestricted, and then both fields
//! must match.

use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::recurrence::first_of_next_month;
use super::zone::{earliest_instant, wall_clock};

/// How far ahead a cron search looks before deciding the expression never matches again.
const CRON_SEARCH_DAYS: u64 = 5 * 366;

/// A parsed five-field cron expression. Each field is kept as a bit set of the values it
/// allows, so matching and skipping ahead are bit operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    /// The expression as parsed: lower case, fields separated by one space.
    text: String,
    /// Bit `m` for minute `m` (0–59).
    minutes: u64,
    /// Bit `h` for hour `h` (0–23).
    hours: u64,
    /// Bit `d` for day `d` (1–31).
    days_of_month: u64,
    /// Bit `m` for month `m` (1–12).
    months: u64,
    /// Bit `d` for days from Sunday (0–6).
    days_of_week: u64,
    /// Whether the day-of-month field begins with `*`; see the module docs for why it matters.
    any_day_of_month: bool,
    /// Whether the day-of-week field begins with `*`.
    any_day_of_week: bool,
}

/// What one cron field accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for values, the first naming `min`.
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
// 7 is accepted for Sunday and folded onto 0 after parsing.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl CronExpr {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let text = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = text.to_ascii_lowercase();
        let fields: Vec<&str> = text.split(' ').filter(|f| !f.is_empty()).collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(format!(
                "a cron expression has five fields (minute hour day-of-month month \
                 day-of-week), but `{}` has {}",
                expr.trim(),
                fields.len()
            ));
        };
        let mut days_of_week = parse_field(day_of_week, &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(CronExpr {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week,
            any_day_of_month: day_of_month.starts_with('*'),
            any_day_of_week: day_of_week.starts_with('*'),
            text,
        })
    }

    fn matches_day(&self, day: NaiveDate) -> bool {
        let by_month_day = has_bit(self.days_of_month, day.day());
        let by_weekday = has_bit(self.days_of_week, day.weekday().num_days_from_sunday());
        if self.any_day_of_month || self.any_day_of_week {
            by_month_day && by_weekday
        } else {
            by_month_day || by_weekday
        }
    }

    /// Whether a wall-clock minute matches every field.
    #[cfg(test)]
    pub(super) fn matches(&self, wall: NaiveDateTime) -> bool {
        wall.second() == 0
            && wall.nanosecond() == 0
            && has_bit(self.minutes, wall.minute())
            && has_bit(self.hours, wall.hour())
            && has_bit(self.months, wall.month())
            && self.matches_day(wall.date())
    }

    /// The first matching wall-clock minute at or after `from` (taken to the minute) on a day
    /// no later than `last_day`. Months, days and hours that cannot match are skipped whole.
    fn next_match(&self, from: NaiveDateTime, last_day: NaiveDate) -> Option<NaiveDateTime> {
        let mut day = from.date();
        let (mut hour, mut minute) = (from.hour(), from.minute());
        while day <= last_day {
            if !has_bit(self.months, day.month()) {
                day = first_of_next_month(day)?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.matches_day(day) {
                day = day.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            }
            let Some(next_hour) = next_bit(self.hours, hour) else {
                day = day.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            };
            if next_hour != hour {
                (hour, minute) = (next_hour, 0);
            }
            match next_bit(self.minutes, minute) {
                Some(next_minute) => return day.and_hms_opt(hour, next_minute, 0),
                None => (hour, minute) = (hour + 1, 0),
            }
        }
        None
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn has_bit(bits: u64, value: u32) -> bool {
    value < 64 && bits & (1 << value) != 0
}

/// The smallest value at or above `from` whose bit is set.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let name = field.name;
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "cron {name} field `{text}` has an empty item in its list"
            ));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, item, name)?)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let (low, high) = (field_value(low, field)?, field_value(high, field)?);
            if low > high {
                return Err(format!(
                    "cron {name} field: the range `{range}` runs backwards"
                ));
            }
            (low, high)
        } else {
            if step.is_some() {
                return Err(format!(
                    "cron {name} field: the step in `{item}` needs `*` or a range before it, \
                     like `*/15` or `0-30/15`"
                ));
            }
            let value = field_value(range, field)?;
            (value, value)
        };
        let mut value = low;
        while value <= high {
            bits |= 1 << value;
            value = value.saturating_add(step.unwrap_or(1));
        }
    }
    Ok(bits)
}

fn parse_step(step: &str, item: &str, name: &str) -> Result<u32, String> {
    match step.parse::<u32>() {
        Ok(0) => Err(format!(
            "cron {name} field: the step in `{item}` is 0; a step is at least 1"
        )),
        Ok(step) => Ok(step),
        Err(_) => Err(format!(
            "cron {name} field: the step in `{item}` is not a whole number"
        )),
    }
}

fn field_value(text: &str, field: &Field) -> Result<u32, String> {
    let name = field.name;
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (field.min..=field.max).contains(&value) => Ok(value),
            _ => Err(format!(
                "cron {name} field: {text} is out of range {}-{}",
                field.min, field.max
            )),
        };
    }
    match field.names.iter().position(|n| *n == text) {
        Some(index) => Ok(field.min + index as u32),
        None if field.names.is_empty() => Err(format!(
            "cron {name} field: `{text}` is not a number from {} to {}",
            field.min, field.max
        )),
        None => Err(format!(
            "cron {name} field: `{text}` is neither a number from {} to {} nor one of {}",
            field.min,
            field.max,
            field.names.join(", ")
        )),
    }
}

impl CronExpr {
    /// The first instant, not before `first` and strictly after `after`, whose wall-clock
    /// minute in `tz` matches (the earlier instant of a repeated minute; minutes the clocks
    /// jump over never match). None after [`CRON_SEARCH_DAYS`] without a match.
    pub(super) fn next_in(
        &self,
        tz: Tz,
        first: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let earliest = first.max(after.checked_add_signed(TimeDelta::nanoseconds(1))?);
        let mut from = ceil_to_minute(wall_clock(tz, earliest)?)?;
        let last_day = from
            .date()
            .checked_add_days(Days::new(CRON_SEARCH_DAYS))
            .unwrap_or(NaiveDate::MAX);
        // Only minutes in a gap, or in the second pass of a repeated hour (already fired at
        // their earlier instant), go round again: at most a few hours' worth.
        loop {
            let wall = self.next_match(from, last_day)?;
            if let Some(at) = earliest_instant(tz, wall)
                && at >= earliest
            {
                return Some(at);
            }
            from = wall.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }
}

fn ceil_to_minute(wall: NaiveDateTime) -> Option<NaiveDateTime> {
    let floor = wall.with_second(0)?.with_nanosecond(0)?;
    if floor == wall {
        Some(floor)
    } else {
        floor.checked_add_signed(TimeDelta::minutes(1))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{occurrences, schedule, t};
    use super::*;

    #[test]
    fn cron_names_numbers_and_sunday_as_zero_or_seven_mean_the_same() {
        let same = [
            ("0 9 * * 1-5", "0 9 * * mon-fri"),
            ("0 9 * * 0", "0 9 * * 7"),
            ("0 9 * * sun", "0 9 * * 7"),
            ("0 9 * * 5-7", "0 9 * * 0,5,6"),
            ("0 9 * * *", "0 9 * * 0-7"),
            ("0 9 * 1,6 *", "0 9 * JAN,jun *"),
            ("0-59/20 * * * *", "0,20,40 * * * *"),
            ("*/25 * * * *", "0,25,50 * * * *"),
        ];
        for (a, b) in same {
            let (a_expr, b_expr) = (CronExpr::parse(a).unwrap(), CronExpr::parse(b).unwrap());
            let bits = |e: &CronExpr| {
                (
                    e.minutes,
                    e.hours,
                    e.days_of_month,
                    e.months,
                    e.days_of_week,
                )
            };
            assert_eq!(bits(&a_expr), bits(&b_expr), "`{a}` and `{b}`");
        }
    }

    /// What a case shows, the schedule's first time, cron expression and time zone, the time
    /// asked after, and the occurrences that follow it.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );

    #[rustfmt::skip]
    const OCCURRENCES: &[Case] = &[
        // Friday the 6th, then Monday the 9th.
        ("at nine on weekdays skips the weekend",
            "2026-03-01T00:00:00Z", "0 9 * * 1-5", "Europe/Berlin", "2026-03-05T08:00:00Z",
            &["2026-03-06T08:00:00Z", "2026-03-09T08:00:00Z", "2026-03-10T08:00:00Z"]),
        ("every quarter hour",
            "2026-01-01T00:00:00Z", "*/15 * * * *", "UTC", "2026-06-01T10:07:30Z",
            &["2026-06-01T10:15:00Z", "2026-06-01T10:30:00Z", "2026-06-01T10:45:00Z", "2026-06-01T11:00:00Z"]),
        ("first bounds the search from below",
            "2026-06-01T10:07:30Z", "*/15 * * * *", "UTC", "2020-01-01T00:00:00Z", &["2026-06-01T10:15:00Z"]),
        ("a matching first is itself an occurrence",
            "2026-06-01T10:15:00Z", "*/15 * * * *", "UTC", "2020-01-01T00:00:00Z", &["2026-06-01T10:15:00Z"]),
        ("once a year on new year's midnight",
            "2026-01-01T00:00:00Z", "0 0 1 1 *", "UTC", "2026-01-01T00:00:00Z",
            &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        // 03-09 is 02:30 EDT; 03-08 02:30 never happened.
        ("at a time skipped by spring forward does not run that day",
            "2026-03-01T00:00:00Z", "30 2 * * *", "America/New_York", "2026-03-07T07:30:00Z",
            &["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]),
        ("in a repeated hour fires once at the earlier instant",
            "2026-10-01T00:00:00Z", "30 1 * * *", "America/New_York", "2026-10-31T06:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        // 01:45 EDT, then 02:00 EST: 01:00–01:45 EST already fired as EDT.
        ("every quarter hour through the repeated hour",
            "2026-10-01T00:00:00Z", "*/15 * * * *", "America/New_York", "2026-11-01T05:40:00Z",
            &["2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"]),
        ("asked inside the second pass",
            "2026-10-01T00:00:00Z", "*/15 * * * *", "America/New_York", "2026-11-01T06:10:00Z",
            &["2026-11-01T07:00:00Z"]),
        ("01:15 EST shows a wall time whose one occurrence, 01:15 EDT, was before first",
            "2026-11-01T06:10:00Z", "*/15 * * * *", "America/New_York", "2026-10-01T00:00:00Z",
            &["2026-11-01T07:00:00Z"]),
        // April 2026: the 13th is a Monday; Fridays are 3, 10, 17, 24 and May 1.
        ("with both day fields restricted matches either",
            "2026-04-01T00:00:00Z", "0 12 13 * 5", "UTC", "2026-04-01T00:00:00Z",
            &["2026-04-03T12:00:00Z", "2026-04-10T12:00:00Z", "2026-04-13T12:00:00Z",
              "2026-04-17T12:00:00Z", "2026-04-24T12:00:00Z", "2026-05-01T12:00:00Z"]),
        // Odd days of the month (`*/2` from 1) that are also Fridays: 3, 17 April; 1, 15 May.
        ("a day field beginning with a star leaves the other day field in charge",
            "2026-04-01T00:00:00Z", "0 12 */2 * fri", "UTC", "2026-04-01T00:00:00Z",
            &["2026-04-03T12:00:00Z", "2026-04-17T12:00:00Z", "2026-05-01T12:00:00Z", "2026-05-15T12:00:00Z"]),
        ("on the 29th of February finds the next leap year",
            "2026-01-01T00:00:00Z", "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z",
            &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
    ];

    #[test]
    fn cron_occurrences() {
        for &(what, first, cron, tz, after, want) in OCCURRENCES {
            let cron = schedule(first, &format!("cron:{cron}"), tz);
            assert_eq!(occurrences(&cron, after, want.len()), want, "{what}");
        }
    }

    #[test]
    fn cron_that_never_matches_gives_up_with_none() {
        for expr in ["cron:0 0 30 2 *", "cron:0 0 31 4,6,9,11 *"] {
            let cron = schedule("2026-01-01T00:00:00Z", expr, "Europe/Berlin");
            let started = std::time::Instant::now();
            assert_eq!(cron.next_after(t("2026-01-01T00:00:00Z")), None, "{expr}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{expr} took {:?}",
                started.elapsed()
            );
        }
    }
}
