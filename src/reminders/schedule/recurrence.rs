//! How a reminder repeats: the [`Recurrence`] rules, their text form (`once`, `daily`,
//! `weekly:mon,thu`, `monthly:15`, `cron:…`) and the calendar rules that pick the days a
//! Daily, Weekly or Monthly reminder falls on.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::cron::CronExpr;

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

pub(super) const WEEKDAYS: [(Weekday, &str, &str); 7] = [
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

impl Recurrence {
    /// The first day at or after `from` on which a Daily, Weekly or Monthly rule falls (None
    /// for Once and Cron, which are not day rules).
    pub(super) fn next_matching_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        match self {
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
}

pub(super) fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    match day.month() {
        12 => NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(day.year(), month + 1, 1),
    }
}

pub(super) fn last_day_of_month(year: i32, month: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|day| NaiveDate::from_ymd_opt(year, month, *day).is_some())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
