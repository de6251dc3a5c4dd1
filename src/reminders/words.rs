//! How often a reminder comes, in words ("every Monday and Thursday at 09:00"), as the
//! dashboard shows it.

use chrono::{DateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::schedule::Recurrence;

/// Monday first, as the dashboard's form lists them: (form value, name in words).
pub const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "Monday"),
    (Weekday::Tue, "tue", "Tuesday"),
    (Weekday::Wed, "wed", "Wednesday"),
    (Weekday::Thu, "thu", "Thursday"),
    (Weekday::Fri, "fri", "Friday"),
    (Weekday::Sat, "sat", "Saturday"),
    (Weekday::Sun, "sun", "Sunday"),
];

fn day_name(d: Weekday) -> &'static str {
    DAYS[d.num_days_from_monday() as usize].2
}

/// "Monday", "Monday and Thursday", "Monday, Wednesday and Friday".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// 09:00, or 09:00:30 when the seconds matter.
fn clock<T: Timelike>(t: &T) -> String {
    if t.second() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

/// How often a reminder comes, in words, at its local time (the stored text when the zone or
/// the rule cannot be read).
pub fn recurrence_words(recurrence: &str, first_at: DateTime<Utc>, tz: Option<Tz>) -> String {
    let Some(tz) = tz else {
        return recurrence.to_owned();
    };
    let local = first_at.with_timezone(&tz);
    let time = clock(&local);
    match Recurrence::parse(recurrence) {
        Ok(Recurrence::Once) => format!("once, on {} at {time}", local.format("%A %-d %B %Y")),
        Ok(Recurrence::Daily) => format!("every day at {time}"),
        Ok(Recurrence::Weekly(days)) => {
            let names: Vec<&str> = days.iter().map(|d| day_name(*d)).collect();
            format!("every {} at {time}", and_list(&names))
        }
        Ok(Recurrence::Monthly(day)) if day > 28 => {
            format!("every month on day {day} (the last day in shorter months) at {time}")
        }
        Ok(Recurrence::Monthly(day)) => format!("every month on day {day} at {time}"),
        Ok(Recurrence::Cron(expr)) => {
            format!("when the cron expression {expr} matches (minute hour day month weekday)")
        }
        Err(_) => recurrence.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::schedule;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn recurrences_read_as_words_at_the_local_time() {
        let ny = schedule::parse_tz("America/New_York").ok();
        let first = t("2030-03-11T13:00:00Z"); // 09:00 EDT, a Monday
        for (rule, words) in [
            ("once", "once, on Monday 11 March 2030 at 09:00"),
            ("daily", "every day at 09:00"),
            ("weekly:mon,thu", "every Monday and Thursday at 09:00"),
            (
                "weekly:mon,wed,fri",
                "every Monday, Wednesday and Friday at 09:00",
            ),
            ("monthly:15", "every month on day 15 at 09:00"),
            (
                "monthly:31",
                "every month on day 31 (the last day in shorter months) at 09:00",
            ),
            (
                "cron:0 9 * * 1-5",
                "when the cron expression 0 9 * * 1-5 matches (minute hour day month weekday)",
            ),
        ] {
            assert_eq!(recurrence_words(rule, first, ny), words);
        }
        assert_eq!(recurrence_words("daily", first, None), "daily");
    }
}
