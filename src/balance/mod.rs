//! The Twilio balance: how fast it is spent, and how long it lasts.
//!
//! Spend is measured two ways. From the readings: every drop between consecutive readings is
//! spending, every rise a top-up (not spending), over the time the readings cover. From the
//! traffic: the final prices of the messages sent in the period. The readings see everything
//! the account pays for; the traffic figure is there before two readings are.

pub mod status;
pub mod view;

pub use crate::domain::credit::{Level, Levels, Threshold, level};
pub use crate::domain::price::money;

use chrono::TimeDelta;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::storage::balance::Reading;

/// Spend per hour from readings (oldest first), or None with fewer than two readings or
/// less than a minute between the first and the last.
pub fn burn_from_readings(readings: &[Reading]) -> Option<Decimal> {
    let (first, last) = (readings.first()?, readings.last()?);
    let span = last.read_at - first.read_at;
    if span < TimeDelta::minutes(1) {
        return None;
    }
    let spent: Decimal = readings
        .windows(2)
        .map(|w| (w[0].balance - w[1].balance).max(Decimal::ZERO))
        .sum();
    let hours = Decimal::from(span.num_seconds()) / Decimal::from(3600);
    Some((spent / hours).round_dp(5))
}

/// Spend per hour from what the period's messages cost.
pub fn burn_from_traffic(spent: Decimal, period: TimeDelta) -> Option<Decimal> {
    let secs = period.num_seconds();
    (secs > 0).then(|| (spent * Decimal::from(3600) / Decimal::from(secs)).round_dp(5))
}

/// Hours the balance lasts at `per_hour`; None when nothing is being spent.
pub fn runway_hours(balance: Decimal, per_hour: Decimal) -> Option<f64> {
    if per_hour <= Decimal::ZERO {
        return None;
    }
    (balance.max(Decimal::ZERO) / per_hour).to_f64()
}

/// "3 d 4 h", "5 h 20 min", "12 min", "none left".
pub fn human_runway(hours: f64) -> String {
    let minutes = (hours * 60.0).floor() as i64;
    match minutes {
        i64::MIN..=0 => "none left".into(),
        1..=59 => format!("{minutes} min"),
        60..=1439 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} d {} h", minutes / 1440, (minutes % 1440) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn r(at: &str, balance: &str) -> Reading {
        Reading {
            read_at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            balance: balance.parse().unwrap(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn top_ups_are_not_spending() {
        let readings = [
            r("2026-11-24T00:00:00Z", "100.00"),
            r("2026-11-24T02:00:00Z", "90.00"),
            r("2026-11-24T03:00:00Z", "190.00"), // a top-up of 100 (and nothing spent)
            r("2026-11-24T04:00:00Z", "180.00"),
        ];
        assert_eq!(
            burn_from_readings(&readings),
            Some("5".parse().unwrap()),
            "20 in 4 h"
        );
        assert_eq!(burn_from_readings(&readings[..1]), None);
        assert_eq!(
            burn_from_readings(&[
                r("2026-11-24T00:00:00Z", "1"),
                r("2026-11-24T00:00:30Z", "0.5")
            ]),
            None,
            "too short to say"
        );
    }

    #[test]
    fn runway_reads_naturally() {
        let h = runway_hours("76".parse().unwrap(), "1".parse().unwrap()).unwrap();
        assert_eq!(human_runway(h), "3 d 4 h");
        assert_eq!(human_runway(5.34), "5 h 20 min");
        assert_eq!(money("20.00000".parse().unwrap()), "20.00");
        assert_eq!(money("19.98500".parse().unwrap()), "19.985");
        assert_eq!(money("5".parse().unwrap()), "5.00");
        assert_eq!(money("0.00125".parse().unwrap()), "0.00125");
        assert_eq!(human_runway(0.2), "12 min");
        assert_eq!(human_runway(0.0), "none left");
        assert_eq!(runway_hours("10".parse().unwrap(), Decimal::ZERO), None);
        assert_eq!(
            burn_from_traffic("1.2".parse().unwrap(), TimeDelta::hours(24)),
            Some("0.05".parse().unwrap())
        );
    }
}
