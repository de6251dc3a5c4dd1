//! Numbers and times formatted for people, used by the templates.

use chrono::{DateTime, Utc};

/// A count people compare at a glance: exact, with thousands grouped, below ten million
/// (950 → "950", 1234 → "1,234", 999_999 → "999,999"); above, in millions with one decimal
/// (12_345_678 → "12.3 M"), so neighbouring tiles never mix "952" with "1.0 k".
pub fn count(n: i64) -> String {
    if n.unsigned_abs() >= 10_000_000 {
        return format!("{:.1} M", n as f64 / 1e6);
    }
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal, or "–" when there is nothing to divide by.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "–".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// 42 → "42 s", 150 → "2 min 30 s", 3600 → "1 h", 7300 → "2 h 1 min", 200000 → "2 d 7 h".
pub fn duration_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".into();
    }
    let s = secs.round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 if s % 60 == 0 => format!("{} min", s / 60),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 if s % 3600 < 60 => format!("{} h", s / 3600),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// "just now", "3 min ago", "2 h ago", "4 d ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds();
    match s {
        i64::MIN..=9 => "just now".into(),
        10..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The time in UTC, to the second, with the zone named; the page's script shows it in the
/// reader's local time.
pub fn utc(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_durations_and_shares_read_naturally() {
        assert_eq!(count(0), "0");
        assert_eq!(count(950), "950");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(count(999_999), "999,999");
        assert_eq!(count(9_999_999), "9,999,999");
        assert_eq!(count(12_345_678), "12.3 M");
        assert_eq!(percent(1, 3), "33.3 %");
        assert_eq!(percent(1, 0), "–");
        assert_eq!(duration_secs(42.4), "42 s");
        assert_eq!(duration_secs(150.0), "2 min 30 s");
        assert_eq!(duration_secs(7300.0), "2 h 1 min");
        assert_eq!(duration_secs(200_000.0), "2 d 7 h");
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now, now), "just now");
    }
}
