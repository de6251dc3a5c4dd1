//! Credit lines: when the Twilio balance is low or critical (a fixed amount, or hours of
//! spend at the current pace, never below a floor), and how a level clears.

use rust_decimal::Decimal;

use super::price::money;

/// A low-credit line: a fixed amount, or so many hours of spend at the current pace (a busy
/// day raises it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    Amount(Decimal),
    Hours(u32),
}

impl Threshold {
    /// `10`, `10.50` (an amount) or `24h` (hours of spend).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(h) = s.strip_suffix('h') {
            return h
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|h| *h > 0)
                .map(Threshold::Hours)
                .ok_or_else(|| format!("{s:?} is not a number of hours such as 24h"));
        }
        s.parse::<Decimal>()
            .ok()
            .filter(|d| !d.is_sign_negative())
            .map(Threshold::Amount)
            .ok_or_else(|| {
                format!("{s:?} is neither an amount such as 10.00 nor hours such as 24h")
            })
    }

    /// The amount the line is at, given the spend per hour (an hours line without a known
    /// pace is at zero: it cannot fire before wadash knows the pace).
    pub fn amount(self, burn_per_hour: Option<Decimal>) -> Decimal {
        match self {
            Threshold::Amount(a) => a,
            Threshold::Hours(h) => burn_per_hour.unwrap_or_default() * Decimal::from(h),
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Amount(a) => write!(f, "{}", money(*a)),
            Threshold::Hours(h) => write!(f, "{h}h"),
        }
    }
}

/// How worried to be about the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Low,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Low => "low",
            Level::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Level::Ok),
            "low" => Some(Level::Low),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }
}

/// The two lines and how far above a line the balance must climb before its level clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub low: Threshold,
    pub critical: Threshold,
    /// No line is ever below its floor, whatever the pace: an account with USD 0.05 and no
    /// recent spend is critical, not "ok because nothing was spent".
    pub low_floor: Decimal,
    pub critical_floor: Decimal,
    /// A share of the line: 0.1 clears a level only 10 % above it, so a balance hovering at
    /// the line does not flap between levels.
    pub hysteresis: Decimal,
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            low: Threshold::Hours(24),
            critical: Threshold::Hours(4),
            low_floor: Decimal::new(5, 0),
            critical_floor: Decimal::new(1, 0),
            hysteresis: Decimal::new(1, 1),
        }
    }
}

impl Levels {
    /// The (critical, low) lines at this pace, low never below critical. A line given in
    /// hours of spend is at least its floor; a line given as an amount is that amount, as
    /// the admin set it (`0` still turns it off).
    pub fn lines(&self, burn_per_hour: Option<Decimal>) -> (Decimal, Decimal) {
        // Rounded to the micro-unit that prices are kept in (a pace may be a third of a cent).
        let line = |t: Threshold, floor: Decimal| match t {
            Threshold::Amount(a) => a,
            Threshold::Hours(_) => t.amount(burn_per_hour).round_dp(6).max(floor),
        };
        let critical = line(self.critical, self.critical_floor);
        let low = line(self.low, self.low_floor).max(critical);
        (critical, low)
    }
}

/// The level for `balance`, given the level before: worse at once, better only past the
/// hysteresis band.
pub fn level(
    previous: Level,
    balance: Decimal,
    burn_per_hour: Option<Decimal>,
    l: &Levels,
) -> Level {
    let (critical, low) = l.lines(burn_per_hour);
    let band = Decimal::ONE + l.hysteresis;
    let raw = if balance <= critical && critical > Decimal::ZERO {
        Level::Critical
    } else if balance <= low && low > Decimal::ZERO {
        Level::Low
    } else {
        Level::Ok
    };
    if raw >= previous {
        return raw;
    }
    // Improving: each level held until the balance is clearly above its line.
    if previous == Level::Critical && balance <= critical * band {
        Level::Critical
    } else if previous >= Level::Low && raw == Level::Ok && balance <= low * band {
        Level::Low
    } else {
        raw
    }
}

#[cfg(test)]
mod level_tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn thresholds_are_amounts_or_hours_of_spend() {
        assert_eq!(Threshold::parse("10.50"), Ok(Threshold::Amount(d("10.50"))));
        assert_eq!(Threshold::parse(" 24h "), Ok(Threshold::Hours(24)));
        assert!(Threshold::parse("0h").is_err());
        assert!(Threshold::parse("-5").is_err());
        assert!(Threshold::parse("lots").is_err());
        assert_eq!(Threshold::Hours(24).amount(Some(d("0.5"))), d("12"));
        assert_eq!(Threshold::Hours(24).amount(None), Decimal::ZERO);
        assert_eq!(Threshold::Hours(24).to_string(), "24h");
    }

    #[test]
    fn a_busy_day_raises_an_adaptive_line() {
        let l = Levels::default(); // low at 24 h, critical at 4 h of spend
        let balance = d("30");
        assert_eq!(
            level(Level::Ok, balance, Some(d("1")), &l),
            Level::Ok,
            "30 h left"
        );
        assert_eq!(
            level(Level::Ok, balance, Some(d("2")), &l),
            Level::Low,
            "15 h left"
        );
        assert_eq!(
            level(Level::Ok, balance, Some(d("10")), &l),
            Level::Critical,
            "3 h left"
        );
        assert_eq!(
            level(Level::Ok, balance, None, &l),
            Level::Ok,
            "no pace known yet"
        );
    }

    #[test]
    fn floors_hold_when_nothing_was_spent() {
        let l = Levels::default(); // floors: low 5, critical 1
        assert_eq!(l.lines(None), (d("1"), d("5")));
        assert_eq!(l.lines(Some(d("0"))), (d("1"), d("5")));
        assert_eq!(
            l.lines(Some(d("1"))),
            (d("4"), d("24")),
            "a pace above the floors"
        );
        assert_eq!(level(Level::Ok, d("0.05"), None, &l), Level::Critical);
        assert_eq!(level(Level::Ok, d("3"), None, &l), Level::Low);
        assert_eq!(level(Level::Ok, d("5.01"), None, &l), Level::Ok);
        let none = Levels {
            low_floor: Decimal::ZERO,
            critical_floor: Decimal::ZERO,
            ..Levels::default()
        };
        assert_eq!(
            level(Level::Ok, d("0.05"), None, &none),
            Level::Ok,
            "floors off"
        );
        let high = Levels {
            low_floor: d("100"),
            critical_floor: d("200"),
            ..Levels::default()
        };
        assert_eq!(
            high.lines(None),
            (d("200"), d("200")),
            "low never below critical"
        );
        // Amounts are the admin's choice: no floor raises them.
        let amounts = Levels {
            low: Threshold::Amount(d("2")),
            critical: Threshold::Amount(d("0")),
            ..Levels::default()
        };
        assert_eq!(amounts.lines(None), (d("0"), d("2")));
        assert_eq!(level(Level::Ok, d("0.05"), None, &amounts), Level::Low);
    }

    #[test]
    fn a_balance_hovering_at_a_line_does_not_flap() {
        let l = Levels {
            low: Threshold::Amount(d("10")),
            critical: Threshold::Amount(d("2")),
            hysteresis: d("0.1"),
            ..Levels::default()
        };
        let mut now = Level::Ok;
        let mut changes = Vec::new();
        for b in [
            "10.5", "9.9", "10.2", "9.8", "10.9", "11.1", "1.9", "2.1", "2.3", "5", "12",
        ] {
            let next = level(now, d(b), None, &l);
            if next != now {
                changes.push((b, next));
            }
            now = next;
        }
        assert_eq!(
            changes,
            vec![
                ("9.9", Level::Low),
                ("11.1", Level::Ok),
                ("1.9", Level::Critical),
                ("2.3", Level::Low),
                ("12", Level::Ok),
            ]
        );
    }
}
