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
//! The pieces: `recurrence` (the rules, their text, the calendar's days), `cron` (the cron
//! engine and its syntax) and `zone` (zone names, wall clocks, gaps and folds).

mod cron;
mod recurrence;
mod zone;

use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;

pub use crate::domain::time_zone::parse_tz;
pub use cron::CronExpr;
pub use recurrence::Recurrence;
use zone::{instant_at_or_after, wall_clock};

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
            Recurrence::Cron(expr) => expr.next_in(self.tz, self.first, after),
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
            day = self.recurrence.next_matching_day(day)?;
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
}

/// What the tests of this module and its parts share.
#[cfg(test)]
mod testing {
    use super::*;

    pub fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub fn schedule(first: &str, recurrence: &str, tz: &str) -> Schedule {
        Schedule {
            first: t(first),
            recurrence: Recurrence::parse(recurrence).unwrap(),
            tz: parse_tz(tz).unwrap(),
        }
    }

    /// The next `n` occurrences after `after`, as RFC 3339 UTC text.
    pub fn occurrences(schedule: &Schedule, after: &str, n: usize) -> Vec<String> {
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
}

#[cfg(test)]
mod tests {
    use chrono::{
        Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Weekday,
    };

    use super::recurrence::{WEEKDAYS, last_day_of_month};
    use super::testing::{occurrences, schedule, t};
    use super::*;

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
