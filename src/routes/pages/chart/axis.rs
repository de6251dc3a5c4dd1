//! Where an axis's ticks go: round values for amounts and counts (steps of 1, 2 or 5 × 10ⁿ)
//! and round times (a minute, five, a quarter, an hour, … a week), few enough to read.

use chrono::{DateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Round ticks from at or below `lo` to at or above `hi`, evenly spaced, at most `max` of them
/// (at least 3: a range that straddles a tick needs one either side), with their step. An empty
/// or flat range gets the ticks of `[lo, lo + 1]`.
pub fn nice(lo: f64, hi: f64, max: usize) -> (Vec<f64>, f64) {
    let max = max.max(3);
    let (lo, hi) = if hi > lo && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    };
    let count = |step: f64| ((hi / step).ceil() - (lo / step).floor()) as usize + 1;
    let mut mag = 10f64.powf(((hi - lo) / (max - 1) as f64).log10().floor());
    let step = loop {
        if let Some(s) = [1.0, 2.0, 5.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|s| count(*s) <= max)
        {
            break s;
        }
        mag *= 10.0;
    };
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    // Multiplying (not adding) keeps 0.1 × 3 from drifting further than one rounding.
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// A tick value as text: no more decimals than the step needs.
pub fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let v = if v == 0.0 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

const STEPS: [(i64, &str); 12] = [
    (60, "%H:%M"),
    (5 * 60, "%H:%M"),
    (15 * 60, "%H:%M"),
    (30 * 60, "%H:%M"),
    (3600, "%H:%M"),
    (3 * 3600, "%H:%M"),
    (6 * 3600, "%H:%M"),
    (12 * 3600, "%d %b %H:%M"),
    (86_400, "%a %d %b"),
    (2 * 86_400, "%a %d %b"),
    (7 * 86_400, "%d %b"),
    (30 * 86_400, "%d %b"),
];

/// At most `max` round times within `[since, until]`, in `tz`, with the format their labels
/// use: the smallest of a minute, 5, 15 or 30 minutes, 1, 3, 6 or 12 hours, a day, two, a week
/// or 30 days that gives no more than `max`. Ticks fall on whole steps of local time.
pub fn times(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    max: usize,
    tz: Tz,
) -> (Vec<DateTime<Utc>>, &'static str) {
    let span = (until - since).num_seconds().max(1);
    let max = max.max(1) as i64;
    let (step, format) = STEPS
        .into_iter()
        .find(|(s, _)| span / s < max)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    let mut out = Vec::new();
    if step >= 86_400 {
        // Whole days start at local midnight, whatever the offset that day.
        let mut date = since.with_timezone(&tz).date_naive();
        let midnight = |d: chrono::NaiveDate| {
            tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        if midnight(date).is_none_or(|m| m < since) {
            date = date.succ_opt().unwrap_or(date);
        }
        while let Some(at) = midnight(date).filter(|at| *at <= until) {
            if out.len() >= max as usize {
                break;
            }
            out.push(at);
            date = date + chrono::Days::new((step / 86_400) as u64);
        }
    } else {
        // Steps within a day fall on whole local steps (at `since`'s offset).
        let offset = i64::from(since.with_timezone(&tz).offset().fix().local_minus_utc());
        let local = since.timestamp() + offset;
        let mut t = local.div_euclid(step) * step - offset;
        if t < since.timestamp() {
            t += step;
        }
        while let Some(at) = DateTime::from_timestamp(t, 0).filter(|at| *at <= until) {
            if out.len() >= max as usize {
                break;
            }
            out.push(at);
            t += step;
        }
    }
    (out, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn counts_get_round_steps() {
        assert_eq!(
            nice(0.0, 952.0, 6),
            (vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0], 200.0)
        );
        assert_eq!(nice(0.0, 7.0, 6).1, 2.0);
        assert_eq!(nice(0.0, 1.0, 6).1, 0.2);
        assert_eq!(nice(17.5, 18.4, 6).1, 0.2);
        assert_eq!(nice(5.0, 5.0, 6).0.first(), Some(&5.0));
    }

    #[test]
    fn labels_carry_only_the_decimals_the_step_needs() {
        assert_eq!(label(400.0, 200.0), "400");
        assert_eq!(label(0.4, 0.2), "0.4");
        assert_eq!(label(18.25, 0.05), "18.25");
        assert_eq!(label(-0.0, 1.0), "0");
    }

    #[test]
    fn times_fall_on_whole_local_steps() {
        let (t, f) = times(
            at("2026-12-06T09:07:00Z"),
            at("2026-12-07T09:07:00Z"),
            8,
            chrono_tz::UTC,
        );
        assert_eq!(f, "%H:%M");
        assert_eq!(t.first(), Some(&at("2026-12-06T12:00:00Z")));
        assert!(
            t.windows(2).all(|w| w[1] - w[0] == Duration::hours(6)),
            "{t:?}"
        );
        // Kolkata is UTC+05:30: its whole hours are at half past in UTC.
        let (t, _) = times(
            at("2026-12-06T09:07:00Z"),
            at("2026-12-06T10:07:00Z"),
            6,
            chrono_tz::Asia::Kolkata,
        );
        assert_eq!(t.first(), Some(&at("2026-12-06T09:15:00Z")));
        let (t, f) = times(
            at("2026-12-01T00:00:00Z"),
            at("2026-12-08T00:00:00Z"),
            8,
            chrono_tz::Europe::Berlin,
        );
        assert_eq!(f, "%a %d %b");
        // Local midnights in Berlin (UTC+1 in December).
        assert_eq!(t.first(), Some(&at("2026-12-01T23:00:00Z")));
    }

    proptest! {
        #[test]
        fn ticks_cover_the_range_evenly_and_are_few(lo in -1e6f64..1e6, width in 0f64..1e6, max in 2usize..12) {
            let hi = lo + width;
            let (ticks, step) = nice(lo, hi, max);
            prop_assert!(ticks.len() <= max.max(3), "{} ticks for max {}", ticks.len(), max);
            prop_assert!(ticks.len() >= 2);
            prop_assert!(ticks[0] <= lo + step * 1e-9);
            prop_assert!(*ticks.last().unwrap() >= hi - step * 1e-9 || width == 0.0);
            let m = step / 10f64.powf(step.log10().floor());
            prop_assert!([1.0, 2.0, 5.0, 10.0].iter().any(|x| (x - m).abs() < 1e-6), "step {}", step);
        }

        #[test]
        fn time_ticks_stay_inside_and_are_few(start in 1_700_000_000i64..1_900_000_000, span in 60i64..90 * 86_400, max in 2usize..10) {
            let since = DateTime::from_timestamp(start, 0).unwrap();
            let until = since + Duration::seconds(span);
            let (t, _) = times(since, until, max, chrono_tz::Asia::Kolkata);
            prop_assert!(t.len() <= max);
            prop_assert!(t.iter().all(|x| *x >= since && *x <= until));
        }
    }
}
