//! When a reminder falls due: recurrence rules evaluated on local wall-clock time in a zone.
//!
//! A [`Schedule`] is the first instant the user asked for, a [`Recurrence`] and an IANA time
//! zone. [`Schedule::next_after`] answers the only question the sender needs: the first
//! occurrence strictly after a given instant. Everything here is pure and never panics, so the
//! job that sends reminders can call it with any stored row and an explicit `now`.
//!
//! # Semantics
//!
//! - **Once** occurs at `first` and never again.
//! - **Daily**, **Weekly** and **Monthly** repeat at the local wall-clock time `first` has in
//!   the zone, seconds included. 09:00 in Europe/Berlin stays 09:00 local across daylight
//!   saving changes, so the UTC instant moves by an hour twice a year. The first occurrence is
//!   `first` itself when its local day matches the rule (Weekly: its weekday is listed;
//!   Monthly: its day is the day, or the month's last day when the month is too short),
//!   otherwise the next matching day at that time. Nothing happens before `first`.
//! - **Monthly(n)** falls on day `n`, or on the last day of months shorter than `n` days
//!   (`monthly:31` is 28 February, 30 April, 31 May). Built directly rather than parsed, a day
//!   above 31 behaves like 31 and day 0 never occurs.
//! - **Cron** is a five-field expression (minute hour day-of-month month day-of-week) matched
//!   against local wall-clock minutes in the zone. It fires at the first matching minute that
//!   is not earlier than `first`; `first`'s own time of day plays no part. The search gives up
//!   (returns `None`) after about five years, so an expression that can never match again,
//!   like `0 0 30 2 *`, costs a bounded amount of work.
//!
//! # Daylight saving time
//!
//! - **A wall time that does not exist** (the spring-forward gap, e.g. 02:30 in
//!   America/New_York on 2026-03-08): Daily, Weekly and Monthly reminders fire at the first
//!   instant after the gap, the moment the clocks jump (03:00 local, 07:00Z). A person who asked
//!   to be reminded at 02:30 every day still wants that day's reminder, as soon as possible.
//!   Cron skips such minutes: the job does not run at a time that never happened, so
//!   `30 2 * * *` does not run in New York on 2026-03-08 (its next run is 02:30 on 03-09).
//!   Vixie cron and cronie differ here: they run a skipped job right after the jump.
//! - **A wall time that happens twice** (the fall-back fold, e.g. 01:30 in New York on
//!   2026-11-01): every rule fires once, at the earlier instant (01:30 EDT, 05:30Z). For cron
//!   this holds for every minute of the repeated hour, so `*/15 * * * *` is silent while the
//!   clocks repeat it: it fires at 01:45 EDT (05:45Z) and next at 02:00 EST (07:00Z).
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

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

/// How far ahead a cron search looks before deciding the expression never matches again.
const CRON_SEARCH_DAYS: u64 = 5 * 366;

/// The longest spring-forward gap searched for its end. The largest on record is a whole
/// day (Pacific/Apia skipped 2011-12-30); two days leaves room.
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// How often a reminder repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Once,
    Daily,
    /// On these weekdays (sorted Monday first, no duplicates, non-empty).
    Weekly(Vec<Weekday>),
    /// On this day of the month (1–31); in shorter months, on the month's last day.
    Monthly(u32),
    /// A five-field cron expression (minute hour day-of-month month day-of-week) read in the
    /// reminder's time zone.
    Cron(CronExpr),
}

impl Recurrence {
    /// Accepts: "" or "once"; "daily"; "weekly:mon,thu" (names mon..sun, any case);
    /// "monthly:15"; "cron:0 9 * * 1-5".
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, argument) = match text.split_once(':') {
            Some((kind, argument)) => (kind.trim(), Some(argument.trim())),
            None => (text, None),
        };
        match (kind.to_ascii_lowercase().as_str(), argument) {
            ("" | "once", None) => Ok(Recurrence::Once),
            ("daily", None) => Ok(Recurrence::Daily),
            ("weekly", Some(days)) => parse_weekdays(days).map(Recurrence::Weekly),
            ("monthly", Some(day)) => parse_day_of_month(day).map(Recurrence::Monthly),
            ("cron", Some(expr)) => CronExpr::parse(expr).map(Recurrence::Cron),
            (word @ ("once" | "daily"), Some(_)) => {
                Err(format!("`{word}` takes nothing after it, but got `{text}`"))
            }
            ("weekly", None) => Err("`weekly` needs its days, like `weekly:mon,thu`".into()),
            ("monthly", None) => Err("`monthly` needs a day, like `monthly:15`".into()),
            ("cron", None) => Err("`cron` needs an expression, like `cron:0 9 * * 1-5`".into()),
            _ => Err(format!(
                "unknown recurrence `{text}`: use once, daily, weekly:mon,thu, monthly:15 \
                 or cron:0 9 * * 1-5"
            )),
        }
    }
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recurrence::Once => f.write_str("once"),
            Recurrence::Daily => f.write_str("daily"),
            Recurrence::Weekly(days) => {
                f.write_str("weekly:")?;
                for (i, day) in days.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(weekday_name(*day))?;
                }
                Ok(())
            }
            Recurrence::Monthly(day) => write!(f, "monthly:{day}"),
            Recurrence::Cron(expr) => write!(f, "cron:{expr}"),
        }
    }
}

const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "monday"),
    (Weekday::Tue, "tue", "tuesday"),
    (Weekday::Wed, "wed", "wednesday"),
    (Weekday::Thu, "thu", "thursday"),
    (Weekday::Fri, "fri", "friday"),
    (Weekday::Sat, "sat", "saturday"),
    (Weekday::Sun, "sun", "sunday"),
];

fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS[day.num_days_from_monday() as usize].1
}

fn parse_weekdays(list: &str) -> Result<Vec<Weekday>, String> {
    if list.is_empty() {
        return Err("`weekly` needs at least one day, like `weekly:mon,thu`".into());
    }
    let mut days = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(format!("`weekly:{list}` has an empty day in its list"));
        }
        let lower = name.to_ascii_lowercase();
        let Some((day, _, _)) = WEEKDAYS
            .iter()
            .find(|(_, short, long)| lower == *short || lower == *long)
        else {
            return Err(format!(
                "`{name}` is not a day of the week: use mon, tue, wed, thu, fri, sat or sun"
            ));
        };
        days.push(*day);
    }
    days.sort_by_key(|day| day.num_days_from_monday());
    days.dedup();
    Ok(days)
}

fn parse_day_of_month(text: &str) -> Result<u32, String> {
    let day: u32 = text
        .parse()
        .map_err(|_| format!("`monthly:{text}` needs a day of the month from 1 to 31"))?;
    if !(1..=31).contains(&day) {
        return Err(format!(
            "`monthly:{day}` is out of range: a day of the month is 1 to 31"
        ));
    }
    Ok(day)
}

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
    fn matches(&self, wall: NaiveDateTime) -> bool {
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

/// A reminder's schedule: the first time (the `at` the user gave, as an instant) and how it
/// repeats, in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub first: DateTime<Utc>,
    pub recurrence: Recurrence,
    pub tz: Tz,
}

impl Schedule {
    /// The first occurrence strictly after `after` (UTC), or None when there is none (a
    /// one-off already past, or a cron that never matches again).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.recurrence {
            Recurrence::Once => (self.first > after).then_some(self.first),
            Recurrence::Cron(expr) => self.next_cron(expr, after),
            Recurrence::Daily | Recurrence::Weekly(_) | Recurrence::Monthly(_) => {
                self.next_on_calendar(after)
            }
        }
    }

    fn next_on_calendar(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_wall = wall_clock(self.tz, self.first)?;
        let (first_day, time) = (first_wall.date(), first_wall.time());
        let mut day = if after < self.first {
            first_day
        } else {
            // A day's occurrence can land on a later local date (a gap that spans midnight),
            // so start a little before the day `after` falls on.
            let after_day = wall_clock(self.tz, after)?.date();
            let before = after_day
                .checked_sub_days(Days::new(2))
                .unwrap_or(after_day);
            before.max(first_day)
        };
        // Each pass tries a later matching day. A handful suffice (the first days may be
        // spent already); the bound only keeps a corrupt zone or date range from looping.
        for _ in 0..16 {
            day = self.next_matching_day(day)?;
            let at = if day == first_day {
                Some(self.first)
            } else {
                instant_at_or_after(self.tz, day.and_time(time))
            };
            if let Some(at) = at
                && at > after
                && at >= self.first
            {
                return Some(at);
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The first day at or after `from` on which a Daily, Weekly or Monthly rule falls.
    fn next_matching_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        match &self.recurrence {
            Recurrence::Daily => Some(from),
            Recurrence::Weekly(days) => (0..7).find_map(|offset| {
                let day = from.checked_add_days(Days::new(offset))?;
                days.contains(&day.weekday()).then_some(day)
            }),
            Recurrence::Monthly(0) => None,
            Recurrence::Monthly(wanted) => {
                let in_month = |any_day: NaiveDate| {
                    let last = last_day_of_month(any_day.year(), any_day.month());
                    any_day.with_day((*wanted).min(last))
                };
                match in_month(from)? {
                    day if day >= from => Some(day),
                    _ => in_month(first_of_next_month(from)?),
                }
            }
            Recurrence::Once | Recurrence::Cron(_) => None,
        }
    }

    fn next_cron(&self, expr: &CronExpr, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let earliest = self
            .first
            .max(after.checked_add_signed(TimeDelta::nanoseconds(1))?);
        let mut from = ceil_to_minute(wall_clock(self.tz, earliest)?)?;
        let last_day = from
            .date()
            .checked_add_days(Days::new(CRON_SEARCH_DAYS))
            .unwrap_or(NaiveDate::MAX);
        // Only minutes in a gap, or in the second pass of a repeated hour (already fired at
        // their earlier instant), go round again: at most a few hours' worth.
        loop {
            let wall = expr.next_match(from, last_day)?;
            if let Some(at) = earliest_instant(self.tz, wall)
                && at >= earliest
            {
                return Some(at);
            }
            from = wall.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }
}

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
fn wall_clock(tz: Tz, at: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = at.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// The earlier instant showing this wall time, or None when the time falls in a gap.
fn earliest_instant(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        MappedLocalTime::Single(at) => Some(at.to_utc()),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).to_utc()),
        MappedLocalTime::None => None,
    }
}

/// The first instant whose wall-clock time is at or after `wall`: the instant showing it (the
/// earlier one if it shows twice), or the end of the gap when the clocks jump over it.
fn instant_at_or_after(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
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

fn ceil_to_minute(wall: NaiveDateTime) -> Option<NaiveDateTime> {
    let floor = wall.with_second(0)?.with_nanosecond(0)?;
    if floor == wall {
        Some(floor)
    } else {
        floor.checked_add_signed(TimeDelta::minutes(1))
    }
}

fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    match day.month() {
        12 => NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(day.year(), month + 1, 1),
    }
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|day| NaiveDate::from_ymd_opt(year, month, *day).is_some())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedule(first: &str, recurrence: &str, tz: &str) -> Schedule {
        Schedule {
            first: t(first),
            recurrence: Recurrence::parse(recurrence).unwrap(),
            tz: parse_tz(tz).unwrap(),
        }
    }

    /// The next `n` occurrences after `after`, as RFC 3339 UTC text.
    fn occurrences(schedule: &Schedule, after: &str, n: usize) -> Vec<String> {
        let mut at = t(after);
        let mut found = Vec::new();
        for _ in 0..n {
            let Some(next) = schedule.next_after(at) else {
                break;
            };
            found.push(next.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            at = next;
        }
        found
    }

    #[test]
    fn recurrence_text_round_trips_through_display() {
        let cases = [
            ("", "once"),
            ("once", "once"),
            ("daily", "daily"),
            ("weekly:mon,thu", "weekly:mon,thu"),
            ("weekly:sun", "weekly:sun"),
            ("monthly:15", "monthly:15"),
            ("monthly:31", "monthly:31"),
            ("cron:0 9 * * 1-5", "cron:0 9 * * 1-5"),
            ("cron:*/15 * * * *", "cron:*/15 * * * *"),
            ("cron:0 0 1 jan,jul MON-fri", "cron:0 0 1 jan,jul mon-fri"),
        ];
        for (input, canonical) in cases {
            let parsed = Recurrence::parse(input).unwrap();
            assert_eq!(parsed.to_string(), canonical, "display of `{input}`");
            assert_eq!(
                Recurrence::parse(canonical).unwrap(),
                parsed,
                "`{canonical}` parses back to what `{input}` gave"
            );
        }
    }

    #[test]
    fn recurrence_text_is_read_in_any_case_with_loose_spacing() {
        assert_eq!(
            Recurrence::parse("  Weekly: THU, mon ,Thursday ").unwrap(),
            Recurrence::Weekly(vec![Weekday::Mon, Weekday::Thu]),
            "sorted Monday first, duplicates dropped, full names accepted"
        );
        assert_eq!(Recurrence::parse("DAILY").unwrap(), Recurrence::Daily);
        assert_eq!(
            Recurrence::parse(" monthly: 7").unwrap(),
            Recurrence::Monthly(7)
        );
        assert_eq!(
            Recurrence::parse("cron:  0   9 * *  1-5 ")
                .unwrap()
                .to_string(),
            "cron:0 9 * * 1-5"
        );
        assert_eq!(
            Recurrence::parse("weekly:sun,sat,fri,thu,wed,tue,mon").unwrap(),
            Recurrence::Weekly(vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ])
        );
    }

    #[test]
    fn bad_recurrence_text_is_rejected_with_a_message_naming_the_problem() {
        let cases = [
            ("weekly:", "at least one day"),
            ("weekly", "needs its days"),
            ("weekly:mon,,thu", "empty day"),
            ("weekly:funday", "`funday` is not a day of the week"),
            ("monthly:0", "`monthly:0` is out of range"),
            ("monthly:32", "`monthly:32` is out of range"),
            ("monthly:mid", "from 1 to 31"),
            ("monthly", "needs a day"),
            ("daily:9", "`daily` takes nothing"),
            ("fortnightly", "unknown recurrence `fortnightly`"),
            (":mon", "unknown recurrence"),
            ("cron", "needs an expression"),
            ("cron:61 * * * *", "minute field: 61 is out of range 0-59"),
            ("cron:0 24 * * *", "hour field: 24 is out of range 0-23"),
            (
                "cron:0 0 0 * *",
                "day-of-month field: 0 is out of range 1-31",
            ),
            ("cron:0 0 * 13 *", "month field: 13 is out of range 1-12"),
            ("cron:0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
            ("cron:* * *", "five fields"),
            ("cron:* * * * * *", "has 6"),
            ("cron:*/0 * * * *", "step in `*/0` is 0"),
            ("cron:*/x * * * *", "not a whole number"),
            ("cron:5/15 * * * *", "needs `*` or a range"),
            ("cron:30-10 * * * *", "runs backwards"),
            ("cron:1,,2 * * * *", "empty item"),
            (
                "cron:0 9 * * funday",
                "`funday` is neither a number from 0 to 7 nor one of sun",
            ),
            ("cron:0 9 * smarch *", "`smarch` is neither"),
            (
                "cron:0 noon * * *",
                "hour field: `noon` is not a number from 0 to 23",
            ),
            ("cron:? * * * *", "minute field: `?`"),
        ];
        for (input, expected) in cases {
            let error = Recurrence::parse(input).unwrap_err();
            assert!(
                error.contains(expected),
                "`{input}` gave `{error}`, which does not mention `{expected}`"
            );
        }
    }

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

    #[test]
    fn once_occurs_only_at_first() {
        let once = schedule("2026-05-01T09:00:00Z", "once", "Europe/Berlin");
        assert_eq!(
            once.next_after(t("2026-04-30T00:00:00Z")),
            Some(t("2026-05-01T09:00:00Z"))
        );
        assert_eq!(
            once.next_after(t("2026-05-01T08:59:59.999Z")),
            Some(t("2026-05-01T09:00:00Z"))
        );
        assert_eq!(
            once.next_after(t("2026-05-01T09:00:00Z")),
            None,
            "strictly after"
        );
        assert_eq!(once.next_after(t("2027-01-01T00:00:00Z")), None);
    }

    #[test]
    fn daily_starts_at_first_even_when_asked_long_before() {
        // 09:00 CEST on 2026-05-01.
        let daily = schedule("2026-05-01T07:00:00Z", "daily", "Europe/Berlin");
        assert_eq!(
            occurrences(&daily, "2020-01-01T00:00:00Z", 3),
            [
                "2026-05-01T07:00:00Z",
                "2026-05-02T07:00:00Z",
                "2026-05-03T07:00:00Z"
            ]
        );
        assert_eq!(
            occurrences(&daily, "2026-05-01T07:00:00Z", 1),
            ["2026-05-02T07:00:00Z"],
            "first itself is not after first"
        );
        assert_eq!(
            occurrences(&daily, "2026-05-10T12:00:00Z", 1),
            ["2026-05-11T07:00:00Z"]
        );
    }

    #[test]
    fn daily_at_nine_in_berlin_stays_nine_local_across_both_dst_changes() {
        // 09:00 CET (+01:00) on 2026-03-27; summer time starts 2026-03-29, ends 2026-10-25.
        let daily = schedule("2026-03-27T08:00:00Z", "daily", "Europe/Berlin");
        assert_eq!(
            occurrences(&daily, "2026-03-26T00:00:00Z", 4),
            [
                "2026-03-27T08:00:00Z",
                "2026-03-28T08:00:00Z",
                "2026-03-29T07:00:00Z",
                "2026-03-30T07:00:00Z",
            ]
        );
        assert_eq!(
            occurrences(&daily, "2026-10-23T12:00:00Z", 3),
            [
                "2026-10-24T07:00:00Z",
                "2026-10-25T08:00:00Z",
                "2026-10-26T08:00:00Z"
            ]
        );
    }

    #[test]
    fn daily_at_a_time_skipped_by_spring_forward_fires_when_the_clocks_jump() {
        // 02:30 EST on 2026-03-07; on 03-08 New York jumps from 02:00 EST to 03:00 EDT.
        let daily = schedule("2026-03-07T07:30:00Z", "daily", "America/New_York");
        assert_eq!(
            occurrences(&daily, "2026-03-07T07:30:00Z", 2),
            [
                "2026-03-08T07:00:00Z", // 03:00 EDT, the end of the gap
                "2026-03-09T06:30:00Z", // 02:30 EDT
            ]
        );
    }

    #[test]
    fn daily_at_a_time_with_seconds_in_a_gap_fires_on_the_second_the_clocks_jump() {
        // 02:30:15 EST on 2026-03-07.
        let daily = schedule("2026-03-07T07:30:15Z", "daily", "America/New_York");
        assert_eq!(
            occurrences(&daily, "2026-03-07T07:30:15Z", 2),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:15Z"]
        );
    }

    #[test]
    fn daily_in_a_half_hour_gap_fires_when_the_clocks_jump() {
        // Lord Howe Island moves from +10:30 to +11 at 02:00 local; 02:15 does not exist on
        // 2026-10-04. 02:15 +10:30 on 2026-10-03 is 15:45Z the day before.
        let daily = schedule("2026-10-02T15:45:00Z", "daily", "Australia/Lord_Howe");
        assert_eq!(
            occurrences(&daily, "2026-10-02T15:45:00Z", 2),
            [
                "2026-10-03T15:30:00Z", // 02:30 +11, the end of the gap
                "2026-10-04T15:15:00Z", // 02:15 +11
            ]
        );
    }

    #[test]
    fn daily_at_a_time_repeated_by_fall_back_fires_once_at_the_earlier_instant() {
        // 01:30 EDT on 2026-10-31; on 11-01 01:00–02:00 happens twice (EDT, then EST).
        let daily = schedule("2026-10-31T05:30:00Z", "daily", "America/New_York");
        assert_eq!(
            occurrences(&daily, "2026-10-31T05:30:00Z", 2),
            [
                "2026-11-01T05:30:00Z", // 01:30 EDT; 01:30 EST (06:30Z) is not used
                "2026-11-02T06:30:00Z", // 01:30 EST
            ]
        );
        assert_eq!(
            occurrences(&daily, "2026-11-01T06:00:00Z", 1),
            ["2026-11-02T06:30:00Z"],
            "asked between the two 01:30s, the day's reminder has already fired"
        );
    }

    #[test]
    fn daily_first_given_in_the_second_pass_of_a_fold_occurs_at_first() {
        // 01:30 EST on 2026-11-01, the later of the two 01:30s.
        let daily = schedule("2026-11-01T06:30:00Z", "daily", "America/New_York");
        assert_eq!(
            occurrences(&daily, "2026-11-01T00:00:00Z", 2),
            ["2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn daily_in_kolkata_keeps_its_fixed_offset_all_year() {
        // 09:00 IST (+05:30), no daylight saving.
        let daily = schedule("2026-01-01T03:30:00Z", "daily", "Asia/Kolkata");
        assert_eq!(
            occurrences(&daily, "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T03:30:00Z",
                "2026-03-30T03:30:00Z",
                "2026-03-31T03:30:00Z"
            ]
        );
        assert_eq!(
            occurrences(&daily, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T03:30:00Z", "2026-11-02T03:30:00Z"]
        );
    }

    #[test]
    fn weekly_on_monday_and_thursday_keeps_the_local_time() {
        // Monday 2026-03-02 09:00 CET.
        let weekly = schedule("2026-03-02T08:00:00Z", "weekly:mon,thu", "Europe/Berlin");
        assert_eq!(
            occurrences(&weekly, "2026-03-01T00:00:00Z", 9),
            [
                "2026-03-02T08:00:00Z",
                "2026-03-05T08:00:00Z",
                "2026-03-09T08:00:00Z",
                "2026-03-12T08:00:00Z",
                "2026-03-16T08:00:00Z",
                "2026-03-19T08:00:00Z",
                "2026-03-23T08:00:00Z",
                "2026-03-26T08:00:00Z",
                "2026-03-30T07:00:00Z", // summer time
            ]
        );
    }

    #[test]
    fn weekly_first_on_an_unlisted_day_starts_on_the_next_listed_day() {
        // Tuesday 2026-03-03 09:00 CET.
        let weekly = schedule("2026-03-03T08:00:00Z", "weekly:mon,thu", "Europe/Berlin");
        assert_eq!(
            occurrences(&weekly, "2026-03-01T00:00:00Z", 2),
            ["2026-03-05T08:00:00Z", "2026-03-09T08:00:00Z"]
        );
    }

    #[test]
    fn monthly_on_the_31st_falls_on_the_last_day_of_shorter_months() {
        let monthly = schedule("2026-01-31T09:00:00Z", "monthly:31", "UTC");
        assert_eq!(
            occurrences(&monthly, "2026-01-01T00:00:00Z", 6),
            [
                "2026-01-31T09:00:00Z",
                "2026-02-28T09:00:00Z",
                "2026-03-31T09:00:00Z",
                "2026-04-30T09:00:00Z",
                "2026-05-31T09:00:00Z",
                "2026-06-30T09:00:00Z",
            ]
        );
        let leap = schedule("2028-01-31T09:00:00Z", "monthly:31", "UTC");
        assert_eq!(
            occurrences(&leap, "2028-02-01T00:00:00Z", 1),
            ["2028-02-29T09:00:00Z"]
        );
    }

    #[test]
    fn monthly_first_on_the_last_day_of_a_short_month_occurs_at_first() {
        let monthly = schedule("2026-02-28T09:00:00Z", "monthly:30", "UTC");
        assert_eq!(
            occurrences(&monthly, "2026-02-01T00:00:00Z", 3),
            [
                "2026-02-28T09:00:00Z",
                "2026-03-30T09:00:00Z",
                "2026-04-30T09:00:00Z"
            ]
        );
    }

    #[test]
    fn monthly_on_the_15th_starts_from_the_next_15th_after_first() {
        // 2026-01-10 09:00 IST.
        let monthly = schedule("2026-01-10T03:30:00Z", "monthly:15", "Asia/Kolkata");
        assert_eq!(
            occurrences(&monthly, "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-15T03:30:00Z",
                "2026-02-15T03:30:00Z",
                "2026-03-15T03:30:00Z"
            ]
        );
        assert_eq!(
            occurrences(&monthly, "2026-12-15T03:30:00Z", 1),
            ["2027-01-15T03:30:00Z"],
            "across the year end"
        );
    }

    #[test]
    fn monthly_on_a_day_that_is_not_in_a_month_at_all_never_fires_when_built_as_zero() {
        let broken = Schedule {
            first: t("2026-01-01T09:00:00Z"),
            recurrence: Recurrence::Monthly(0),
            tz: Tz::UTC,
        };
        assert_eq!(broken.next_after(t("2025-01-01T00:00:00Z")), None);
    }

    #[test]
    fn cron_at_nine_on_weekdays_skips_the_weekend() {
        let cron = schedule("2026-03-01T00:00:00Z", "cron:0 9 * * 1-5", "Europe/Berlin");
        assert_eq!(
            occurrences(&cron, "2026-03-05T08:00:00Z", 3),
            [
                "2026-03-06T08:00:00Z", // Friday
                "2026-03-09T08:00:00Z", // Monday
                "2026-03-10T08:00:00Z",
            ]
        );
    }

    #[test]
    fn cron_every_quarter_hour() {
        let cron = schedule("2026-01-01T00:00:00Z", "cron:*/15 * * * *", "UTC");
        assert_eq!(
            occurrences(&cron, "2026-06-01T10:07:30Z", 4),
            [
                "2026-06-01T10:15:00Z",
                "2026-06-01T10:30:00Z",
                "2026-06-01T10:45:00Z",
                "2026-06-01T11:00:00Z",
            ]
        );
    }

    #[test]
    fn cron_first_bounds_the_search_from_below() {
        let cron = schedule("2026-06-01T10:07:30Z", "cron:*/15 * * * *", "UTC");
        assert_eq!(
            occurrences(&cron, "2020-01-01T00:00:00Z", 1),
            ["2026-06-01T10:15:00Z"]
        );
        let exact = schedule("2026-06-01T10:15:00Z", "cron:*/15 * * * *", "UTC");
        assert_eq!(
            occurrences(&exact, "2020-01-01T00:00:00Z", 1),
            ["2026-06-01T10:15:00Z"],
            "a matching first is itself an occurrence"
        );
    }

    #[test]
    fn cron_once_a_year_on_new_years_midnight() {
        let cron = schedule("2026-01-01T00:00:00Z", "cron:0 0 1 1 *", "UTC");
        assert_eq!(
            occurrences(&cron, "2026-01-01T00:00:00Z", 2),
            ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn cron_at_a_time_skipped_by_spring_forward_does_not_run_that_day() {
        let cron = schedule(
            "2026-03-01T00:00:00Z",
            "cron:30 2 * * *",
            "America/New_York",
        );
        assert_eq!(
            occurrences(&cron, "2026-03-07T07:30:00Z", 2),
            [
                "2026-03-09T06:30:00Z", // 02:30 EDT; 03-08 02:30 never happened
                "2026-03-10T06:30:00Z",
            ]
        );
    }

    #[test]
    fn cron_in_a_repeated_hour_fires_once_at_the_earlier_instant() {
        let cron = schedule(
            "2026-10-01T00:00:00Z",
            "cron:30 1 * * *",
            "America/New_York",
        );
        assert_eq!(
            occurrences(&cron, "2026-10-31T06:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        let every_quarter = schedule(
            "2026-10-01T00:00:00Z",
            "cron:*/15 * * * *",
            "America/New_York",
        );
        assert_eq!(
            occurrences(&every_quarter, "2026-11-01T05:40:00Z", 3),
            [
                "2026-11-01T05:45:00Z", // 01:45 EDT
                "2026-11-01T07:00:00Z", // 02:00 EST; 01:00–01:45 EST already fired as EDT
                "2026-11-01T07:15:00Z",
            ]
        );
        assert_eq!(
            occurrences(&every_quarter, "2026-11-01T06:10:00Z", 1),
            ["2026-11-01T07:00:00Z"],
            "asked inside the second pass"
        );
        let first_in_second_pass = schedule(
            "2026-11-01T06:10:00Z",
            "cron:*/15 * * * *",
            "America/New_York",
        );
        assert_eq!(
            occurrences(&first_in_second_pass, "2026-10-01T00:00:00Z", 1),
            ["2026-11-01T07:00:00Z"],
            "01:15 EST shows a wall time whose one occurrence, 01:15 EDT, was before first"
        );
    }

    #[test]
    fn cron_with_both_day_fields_restricted_matches_either() {
        // April 2026: the 13th is a Monday; Fridays are 3, 10, 17, 24 and May 1.
        let cron = schedule("2026-04-01T00:00:00Z", "cron:0 12 13 * 5", "UTC");
        assert_eq!(
            occurrences(&cron, "2026-04-01T00:00:00Z", 6),
            [
                "2026-04-03T12:00:00Z",
                "2026-04-10T12:00:00Z",
                "2026-04-13T12:00:00Z",
                "2026-04-17T12:00:00Z",
                "2026-04-24T12:00:00Z",
                "2026-05-01T12:00:00Z",
            ]
        );
    }

    #[test]
    fn cron_day_field_beginning_with_star_leaves_the_other_day_field_in_charge() {
        // Odd days of the month (`*/2` from 1) that are also Fridays: 3, 17 April; 1, 15 May.
        let cron = schedule("2026-04-01T00:00:00Z", "cron:0 12 */2 * fri", "UTC");
        assert_eq!(
            occurrences(&cron, "2026-04-01T00:00:00Z", 4),
            [
                "2026-04-03T12:00:00Z",
                "2026-04-17T12:00:00Z",
                "2026-05-01T12:00:00Z",
                "2026-05-15T12:00:00Z",
            ]
        );
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

    #[test]
    fn cron_on_the_29th_of_february_finds_the_next_leap_year() {
        let cron = schedule("2026-01-01T00:00:00Z", "cron:0 0 29 2 *", "UTC");
        assert_eq!(
            occurrences(&cron, "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
    }

    #[test]
    fn next_after_never_panics_at_the_ends_of_time() {
        let extremes = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MIN_UTC + TimeDelta::days(1),
            t("2026-03-08T07:00:00Z"),
            DateTime::<Utc>::MAX_UTC - TimeDelta::days(1),
            DateTime::<Utc>::MAX_UTC,
        ];
        let recurrences = [
            Recurrence::Once,
            Recurrence::Daily,
            Recurrence::Weekly(vec![Weekday::Sun]),
            Recurrence::Weekly(vec![]),
            Recurrence::Monthly(0),
            Recurrence::Monthly(31),
            Recurrence::Monthly(u32::MAX),
            Recurrence::parse("cron:* * * * *").unwrap(),
            Recurrence::parse("cron:0 0 29 2 *").unwrap(),
        ];
        for tz in [Tz::Pacific__Kiritimati, Tz::Pacific__Niue, Tz::UTC] {
            for recurrence in &recurrences {
                for first in extremes {
                    let schedule = Schedule {
                        first,
                        recurrence: recurrence.clone(),
                        tz,
                    };
                    for after in extremes {
                        if let Some(next) = schedule.next_after(after) {
                            assert!(next > after && next >= first, "{schedule:?} after {after}");
                        }
                    }
                }
            }
        }
    }

    /// chrono's own reading of a wall time, independent of the code under test: the earlier
    /// of two instants in a fold, None in a gap.
    fn chrono_earliest(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        tz.from_local_datetime(&wall)
            .earliest()
            .map(|at| at.to_utc())
    }

    /// A small deterministic generator so the property test needs no extra dependency and
    /// a failure names a seed that reproduces it.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    // Zones with one-hour, half-hour (Lord Howe) and midnight (Santiago) transitions, a
    // southern-hemisphere calendar, and fixed offsets in whole, half and quarter hours.
    const ZONES: [Tz; 9] = [
        Tz::Europe__Berlin,
        Tz::America__New_York,
        Tz::America__Santiago,
        Tz::America__St_Johns,
        Tz::Australia__Lord_Howe,
        Tz::Asia__Kolkata,
        Tz::Asia__Kathmandu,
        Tz::Pacific__Chatham,
        Tz::UTC,
    ];

    const CRONS: [&str; 10] = [
        "* * * * *",
        "*/15 * * * *",
        "30 2 * * *",
        "0,30 1-3 * * *",
        "0 9 * * 1-5",
        "15 0 * * sun",
        "0 12 13 * 5",
        "45 23 1,15 * *",
        "0 0 29 2 *",
        "*/7 */5 */3 * *",
    ];

    /// The instants in a year at which a zone's offset changes.
    fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
        let offset = |at: DateTime<Utc>| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
        let mut found = Vec::new();
        let mut day = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
        while day.year() == year {
            let next_day = day + TimeDelta::days(1);
            if offset(day) != offset(next_day) {
                let (mut before, mut after) = (day, next_day);
                while after - before > TimeDelta::seconds(1) {
                    let middle = before + (after - before) / 2;
                    if offset(middle) == offset(day) {
                        before = middle;
                    } else {
                        after = middle;
                    }
                }
                found.push(after);
            }
            day = next_day;
        }
        found
    }

    /// A random schedule and a random `after`. Half the time the first wall time is one that
    /// daylight saving skips or repeats somewhere, and `after` falls shortly before one of the
    /// zone's transitions, so the chain of occurrences runs across it.
    fn random_case(rng: &mut SplitMix) -> (Schedule, DateTime<Utc>) {
        let tz = rng.pick(&ZONES);
        let tricky = rng.below(2) == 0;
        let span_years = if tricky { 2 } else { 10 };
        let minutes = rng.below(span_years * 366 * 24 * 60) as i64;
        let seconds = if rng.below(4) == 0 {
            rng.below(60) as i64
        } else {
            0
        };
        let mut first =
            t("2020-01-01T00:00:00Z") + TimeDelta::minutes(minutes) + TimeDelta::seconds(seconds);
        if tricky {
            let times = [
                "00:00", "00:30", "01:30", "02:00", "02:30", "02:45", "03:00", "23:30",
            ];
            let time = NaiveTime::parse_from_str(rng.pick(&times), "%H:%M").unwrap()
                + TimeDelta::seconds(seconds);
            let day = wall_clock(tz, first).unwrap().date();
            if let Some(at) = chrono_earliest(tz, day.and_time(time)) {
                first = at;
            }
        }
        let recurrence = match rng.below(5) {
            0 => Recurrence::Once,
            1 => Recurrence::Daily,
            2 => {
                let mask = 1 + rng.below(127);
                let days = WEEKDAYS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, (day, _, _))| *day)
                    .collect();
                Recurrence::Weekly(days)
            }
            3 => Recurrence::Monthly(1 + rng.below(31) as u32),
            _ => Recurrence::Cron(CronExpr::parse(rng.pick(&CRONS)).unwrap()),
        };
        let year = 2022 + rng.below(9) as i32;
        let near_transition = transitions(tz, year);
        let after = if tricky && !near_transition.is_empty() {
            rng.pick(&near_transition) - TimeDelta::minutes(rng.below(4 * 24 * 60) as i64)
        } else {
            first + TimeDelta::minutes(rng.below(3 * 366 * 24 * 60) as i64 - 30 * 24 * 60)
        };
        (
            Schedule {
                first,
                recurrence,
                tz,
            },
            after,
        )
    }

    /// Whether a calendar rule (Daily, Weekly, Monthly) falls on this local day.
    fn calendar_rule_falls_on(recurrence: &Recurrence, day: NaiveDate) -> bool {
        match recurrence {
            Recurrence::Daily => true,
            Recurrence::Weekly(days) => days.contains(&day.weekday()),
            Recurrence::Monthly(wanted) => {
                day.day() == (*wanted).min(last_day_of_month(day.year(), day.month()))
            }
            Recurrence::Once | Recurrence::Cron(_) => false,
        }
    }

    /// Checks that `next` is an occurrence of a Daily, Weekly or Monthly schedule and that no
    /// rule day was passed over between `after` and `next`.
    fn check_calendar_occurrence(schedule: &Schedule, after: DateTime<Utc>, next: DateTime<Utc>) {
        let tz = schedule.tz;
        let first_wall = wall_clock(tz, schedule.first).unwrap();
        let (first_day, time) = (first_wall.date(), first_wall.time());
        let shown = wall_clock(tz, next).unwrap();
        let intended_day = if next == schedule.first {
            first_day
        } else if shown.time() == time {
            // Exactly the wall time; the earlier instant if it shows twice.
            assert_eq!(
                chrono_earliest(tz, shown),
                Some(next),
                "{schedule:?}: {next} is the later of two instants showing {shown}"
            );
            shown.date()
        } else {
            // The clocks jumped over the wall time: `next` is the jump.
            let before = wall_clock(tz, next - TimeDelta::seconds(1)).unwrap();
            [shown.date(), shown.date().pred_opt().unwrap()]
                .into_iter()
                .find(|day| {
                    let wanted = day.and_time(time);
                    chrono_earliest(tz, wanted).is_none() && before < wanted && wanted < shown
                })
                .unwrap_or_else(|| {
                    panic!("{schedule:?}: {next} shows {shown}, neither {time} nor a gap's end")
                })
        };
        assert!(
            calendar_rule_falls_on(&schedule.recurrence, intended_day),
            "{schedule:?}: {next} is on {intended_day}, which the rule does not fall on"
        );
        let after_day = wall_clock(tz, after).unwrap().date();
        let mut day = after_day
            .succ_opt()
            .unwrap()
            .max(first_day.succ_opt().unwrap());
        while day < intended_day {
            assert!(
                !calendar_rule_falls_on(&schedule.recurrence, day),
                "{schedule:?}: after {after} the rule's day {day} was passed over for {next}"
            );
            day = day.succ_opt().unwrap();
        }
    }

    /// Checks a cron occurrence against a minute-by-minute scan from the search start.
    fn check_cron_occurrence(
        schedule: &Schedule,
        expr: &CronExpr,
        after: DateTime<Utc>,
        next: DateTime<Utc>,
    ) {
        let tz = schedule.tz;
        let shown = wall_clock(tz, next).unwrap();
        assert!(
            expr.matches(shown),
            "{schedule:?}: {next} shows {shown}, which {expr} does not match"
        );
        assert_eq!(
            chrono_earliest(tz, shown),
            Some(next),
            "{schedule:?}: {next} is not the earlier instant"
        );
        let lower = schedule.first.max(after + TimeDelta::nanoseconds(1));
        // Every zone here has whole-minute offsets, so wall minutes start on UTC minutes.
        let mut at =
            DateTime::from_timestamp((lower.timestamp() + 59).div_euclid(60) * 60, 0).unwrap();
        if at < lower {
            at += TimeDelta::minutes(1);
        }
        let scan_end = next.min(lower + TimeDelta::days(2));
        while at < scan_end {
            let wall = wall_clock(tz, at).unwrap();
            assert!(
                !(expr.matches(wall) && chrono_earliest(tz, wall) == Some(at)),
                "{schedule:?}: after {after} the scan finds {at} ({wall}) before {next}"
            );
            at += TimeDelta::minutes(1);
        }
    }

    #[test]
    fn random_schedules_give_increasing_occurrences_that_follow_their_rule() {
        for seed in 0..1000 {
            let mut rng = SplitMix(seed);
            let (schedule, mut after) = random_case(&mut rng);
            for step in 0..6 {
                let Some(next) = schedule.next_after(after) else {
                    assert!(
                        matches!(schedule.recurrence, Recurrence::Once)
                            || schedule.recurrence == Recurrence::parse("cron:0 0 29 2 *").unwrap(),
                        "seed {seed} step {step}: {schedule:?} gave nothing after {after}"
                    );
                    break;
                };
                assert!(next > after, "seed {seed}: {next} is not after {after}");
                assert!(
                    next >= schedule.first,
                    "seed {seed}: {next} is before first"
                );
                match &schedule.recurrence {
                    Recurrence::Once => assert_eq!(next, schedule.first),
                    Recurrence::Cron(expr) => check_cron_occurrence(&schedule, expr, after, next),
                    _ => check_calendar_occurrence(&schedule, after, next),
                }
                after = next;
            }
        }
    }
}
