//! Numbers, money and times formatted for people, used by the templates: one formatter each
//! for counts, percentages, money and times, so every page writes them the same way. (The
//! JSON API and the CSV exports keep exact values and RFC 3339 UTC times.)

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// A count people compare at a glance: exact, with thousands grouped, below ten million
/// (950 → "950", 1234 → "1,234", 999_999 → "999,999"); above, in millions with one decimal
/// (12_345_678 → "12.3 M"), so neighbouring tiles never mix "952" with "1.0 k".
pub fn count(n: i64) -> String {
    if n.unsigned_abs() >= 10_000_000 {
        return format!("{:.1} M", n as f64 / 1e6);
    }
    let grouped = thousands(&n.unsigned_abs().to_string());
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Digits with a comma between each group of three: "1234567" → "1,234,567".
fn thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A counted noun: "1 reading", "0 readings", "1,234 readings" (the count as [`count`]).
pub fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A share as a percentage with one decimal: "–" when there is nothing to divide by, "0 %"
/// for none, "<0.1 %" for a tiny share that is not none, "100 %" only for all of it (a share
/// that rounds up to 100.0 but is not all reads ">99.9 %").
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".into();
    }
    if part == 0 {
        return "0 %".into();
    }
    if part == whole {
        return "100 %".into();
    }
    let share = part as f64 * 100.0 / whole as f64;
    if (0.0..0.05).contains(&share) {
        "<0.1 %".into()
    } else if (99.95..100.0).contains(&share) {
        ">99.9 %".into()
    } else {
        format!("{share:.1} %")
    }
}

/// Currencies without minor units (ISO 4217 exponent 0), shown without decimals.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];

/// The minus people read: U+2212, not a hyphen.
const MINUS: char = '\u{2212}';

/// An amount of money as a page shows it: rounded to the currency's minor unit on screen
/// ("USD 18.42", "JPY 1,235"), the exact value on hover ("18.41953 USD"), a real minus for a
/// negative amount. Written into a template as `{{ money }}`, it renders
/// `<span class="money" title="exact">shown</span>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    amount: Decimal,
    /// Upper-case ISO code, or empty when unknown.
    currency: String,
    /// " / h" for a rate.
    suffix: &'static str,
    /// "+" in front of a positive amount (a difference).
    signed: bool,
    /// A price per message: shown to a hundredth of a cent where it has one.
    unit: bool,
}

impl Money {
    pub fn new(amount: Decimal, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.trim().to_ascii_uppercase(),
            suffix: "",
            signed: false,
            unit: false,
        }
    }

    /// From exact decimal text ("19.985"); None when it is not a number.
    pub fn parse(amount: &str, currency: &str) -> Option<Self> {
        amount
            .trim()
            .parse::<Decimal>()
            .ok()
            .map(|a| Self::new(a, currency))
    }

    /// The amount per hour ("USD 0.42 / h").
    pub fn per_hour(mut self) -> Self {
        self.suffix = " / h";
        self
    }

    /// A difference: a positive amount is written with "+".
    pub fn signed(mut self) -> Self {
        self.signed = true;
        self
    }

    /// A price per message, many of which are below a cent: shown with up to four decimals
    /// ("USD 0.0147", "USD −0.005"), at least the currency's minor unit.
    pub fn unit(mut self) -> Self {
        self.unit = true;
        self
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// Decimals on screen: the currency's minor unit (up to four for a unit price).
    fn decimals(&self) -> u32 {
        let minor = if ZERO_DECIMAL.contains(&self.currency.as_str()) {
            0
        } else {
            2
        };
        if self.unit {
            self.amount.normalize().scale().clamp(minor, 4)
        } else {
            minor
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        match (negative, self.signed) {
            (true, _) => "\u{2212}",
            (false, true) => "+",
            (false, false) => "",
        }
    }

    /// The rounded figure with its currency: "USD 18.42 / h", "USD −0.01", "JPY 1,235",
    /// "USD <0.01" for a non-zero amount that rounds to nothing.
    pub fn shown(&self) -> String {
        let dp = self.decimals();
        let rounded = self
            .amount
            .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        let negative = self.amount.is_sign_negative() && !self.amount.is_zero();
        let figure = if rounded.is_zero() && !self.amount.is_zero() {
            let unit = Decimal::new(1, dp).to_string();
            if negative {
                format!(">{MINUS}{unit}")
            } else {
                format!("<{unit}")
            }
        } else {
            format!("{}{}", self.sign(negative), grouped(rounded.abs(), dp))
        };
        let code = if self.currency.is_empty() {
            String::new()
        } else {
            format!("{} ", self.currency)
        };
        format!("{code}{figure}{}", self.suffix)
    }

    /// The exact value, as the API gives it: "18.41953 USD / h", "−0.005 USD".
    pub fn exact(&self) -> String {
        let negative = self.amount.is_sign_negative() && !self.amount.is_zero();
        let figure = crate::domain::price::money(self.amount.abs());
        let code = if self.currency.is_empty() {
            String::new()
        } else {
            format!(" {}", self.currency)
        };
        format!("{}{figure}{code}{}", self.sign(negative), self.suffix)
    }
}

/// `d` (not negative) with `dp` decimals and the integer part grouped by thousands.
fn grouped(d: Decimal, dp: u32) -> String {
    let mut d = d;
    d.rescale(dp);
    let text = d.to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.is_empty() {
        thousands(int)
    } else {
        format!("{}.{frac}", thousands(int))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<span class="money" title="{}">{}</span>"#,
            escape(&self.exact()),
            escape(&self.shown())
        )
    }
}

/// Everything in a `Money`'s HTML is escaped here.
impl askama::filters::HtmlSafe for Money {}

/// `&`, `<`, `>` and quotes escaped, for HTML or SVG this module writes itself.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A moment as every page shows it: in the reader's zone, to the second, with the zone's
/// abbreviation ("2026-12-06 20:56:04 IST"), UTC on hover. Built once per row; written into a
/// template as `{{ stamp }}`, it renders
/// `<time datetime="2026-12-06T15:26:04.000Z" title="2026-12-06 15:26:04 UTC">…</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    /// RFC 3339 in UTC, for the `datetime` attribute.
    pub iso: String,
    /// "2026-12-06 15:26:04 UTC".
    pub utc: String,
    /// In the reader's zone: "2026-12-06 20:56:04 IST".
    pub local: String,
}

impl Stamp {
    pub fn new(at: DateTime<Utc>, tz: Tz) -> Self {
        Self {
            at,
            iso: iso(&at),
            utc: utc(&at),
            local: local(&at, tz),
        }
    }

    pub fn of(at: Option<DateTime<Utc>>, tz: Tz) -> Option<Self> {
        at.map(|t| Self::new(t, tz))
    }

    /// The same moment said relative to `now` ("3 min ago"), the full time on hover.
    pub fn ago(&self, now: DateTime<Utc>) -> Relative {
        Relative {
            stamp: self.clone(),
            text: ago(self.at, now),
        }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<time datetime="{}" title="{}">{}</time>"#,
            self.iso,
            self.utc,
            escape(&self.local)
        )
    }
}

/// Digits, separators and a zone abbreviation (escaped all the same).
impl askama::filters::HtmlSafe for Stamp {}

/// A [`Stamp`] said relative to now ("3 min ago"); the local and UTC times on hover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relative {
    stamp: Stamp,
    text: String,
}

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stamp;
        let title = if s.local == s.utc {
            s.utc.clone()
        } else {
            format!("{} · {}", s.local, s.utc)
        };
        write!(
            f,
            r#"<time datetime="{}" title="{}">{}</time>"#,
            s.iso,
            escape(&title),
            escape(&self.text)
        )
    }
}

impl askama::filters::HtmlSafe for Relative {}

/// `t` in `tz`, to the second, with the zone's abbreviation.
pub fn local(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
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

/// The time in UTC, to the second, with the zone named (the hover text of a [`Stamp`]).
pub fn utc(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// RFC 3339 in UTC with milliseconds (`datetime` attributes, CSV exports).
pub fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn counts_durations_and_plurals_read_naturally() {
        assert_eq!(count(0), "0");
        assert_eq!(count(950), "950");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(count(999_999), "999,999");
        assert_eq!(count(9_999_999), "9,999,999");
        assert_eq!(count(12_345_678), "12.3 M");
        assert_eq!(plural(1, "reading", "readings"), "1 reading");
        assert_eq!(plural(0, "reading", "readings"), "0 readings");
        assert_eq!(plural(2, "try", "tries"), "2 tries");
        assert_eq!(plural(1500, "reading", "readings"), "1,500 readings");
        assert_eq!(duration_secs(42.4), "42 s");
        assert_eq!(duration_secs(150.0), "2 min 30 s");
        assert_eq!(duration_secs(7300.0), "2 h 1 min");
        assert_eq!(duration_secs(200_000.0), "2 d 7 h");
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now, now), "just now");
    }

    #[test]
    fn percentages_never_round_to_all_or_nothing() {
        assert_eq!(percent(1, 3), "33.3 %");
        assert_eq!(percent(1, 0), "–");
        assert_eq!(percent(0, 7), "0 %");
        assert_eq!(percent(7, 7), "100 %");
        assert_eq!(percent(1, 10_000), "<0.1 %");
        assert_eq!(percent(5, 10_000), "0.1 %");
        assert_eq!(percent(9_999, 10_000), ">99.9 %");
        assert_eq!(percent(9_989, 10_000), "99.9 %");
    }

    #[test]
    fn money_is_rounded_on_screen_and_exact_on_hover() {
        let m = |a: &str, c: &str| Money::parse(a, c).unwrap();
        assert_eq!(m("18.41953", "USD").per_hour().shown(), "USD 18.42 / h");
        assert_eq!(m("18.41953", "USD").per_hour().exact(), "18.41953 USD / h");
        assert_eq!(m("-0.005000", "USD").shown(), "USD \u{2212}0.01");
        assert_eq!(m("-0.005000", "USD").exact(), "\u{2212}0.005 USD");
        assert_eq!(m("0.001", "usd").shown(), "USD <0.01");
        assert_eq!(m("-0.001", "USD").shown(), "USD >\u{2212}0.01");
        assert_eq!(m("0", "USD").shown(), "USD 0.00");
        assert_eq!(m("20", "USD").exact(), "20.00 USD");
        assert_eq!(m("1234.5", "JPY").shown(), "JPY 1,235");
        assert_eq!(m("1234567.891", "EUR").shown(), "EUR 1,234,567.89");
        assert_eq!(
            m("12345678", "USD").shown(),
            "USD 12,345,678.00",
            "money is never 12.3 M"
        );
        assert_eq!(m("0.0028", "USD").signed().shown(), "USD <0.01");
        assert_eq!(m("0.0028", "USD").signed().exact(), "+0.0028 USD");
        assert_eq!(m("1.5", "USD").signed().shown(), "USD +1.50");
        assert_eq!(m("-0.005000", "USD").unit().shown(), "USD \u{2212}0.005");
        assert_eq!(m("0.0147", "USD").unit().shown(), "USD 0.0147");
        assert_eq!(m("0.014712", "USD").unit().shown(), "USD 0.0147");
        assert_eq!(m("0.1", "USD").unit().shown(), "USD 0.10");
        assert_eq!(m("-1.5", "").shown(), "\u{2212}1.50");
        assert_eq!(
            m("18.41953", "USD").per_hour().to_string(),
            r#"<span class="money" title="18.41953 USD / h">USD 18.42 / h</span>"#
        );
        assert_eq!(
            m("1", "<b>").to_string(),
            r#"<span class="money" title="1.00 &lt;B&gt;">&lt;B&gt; 1.00</span>"#,
            "a currency from outside is escaped"
        );
        assert!(Money::parse("abc", "USD").is_none());
    }

    #[test]
    fn a_stamp_is_local_with_utc_on_hover() {
        let t = at("2026-12-06T15:26:04Z");
        let s = Stamp::new(t, chrono_tz::Asia::Kolkata);
        assert_eq!(s.local, "2026-12-06 20:56:04 IST");
        assert_eq!(s.utc, "2026-12-06 15:26:04 UTC");
        assert_eq!(
            s.to_string(),
            r#"<time datetime="2026-12-06T15:26:04.000Z" title="2026-12-06 15:26:04 UTC">2026-12-06 20:56:04 IST</time>"#
        );
        assert_eq!(
            Stamp::new(t, chrono_tz::UTC).local,
            "2026-12-06 15:26:04 UTC"
        );
        assert_eq!(
            Stamp::new(t, chrono_tz::America::New_York).local,
            "2026-12-06 10:26:04 EST"
        );
        let r = s.ago(t + chrono::Duration::minutes(3)).to_string();
        assert_eq!(
            r,
            r#"<time datetime="2026-12-06T15:26:04.000Z" title="2026-12-06 20:56:04 IST · 2026-12-06 15:26:04 UTC">3 min ago</time>"#
        );
    }

    proptest! {
        #[test]
        fn a_percentage_stays_within_a_tenth_and_says_all_or_none_only_when_exact(
            whole in 1i64..5_000_000, frac in 0.0f64..=1.0
        ) {
            let part = ((whole as f64) * frac).round() as i64;
            let shown = percent(part, whole);
            let exact = part as f64 * 100.0 / whole as f64;
            prop_assert_eq!(shown == "100 %", part == whole);
            prop_assert_eq!(shown == "0 %", part == 0);
            if let Some(n) = shown.strip_suffix(" %").and_then(|s| s.parse::<f64>().ok()) {
                prop_assert!((n - exact).abs() <= 0.05 + 1e-9, "{} for {}", shown, exact);
                prop_assert!(n < 100.0 || part == whole);
            } else {
                prop_assert!(shown == "<0.1 %" || shown == ">99.9 %", "{}", shown);
            }
        }

        #[test]
        fn money_on_screen_is_within_half_a_cent_and_exact_on_hover(
            units in -10_000_000_000i64..10_000_000_000, scale in 0u32..7,
            zero in proptest::bool::ANY
        ) {
            let amount = Decimal::new(units, scale);
            let currency = if zero { "JPY" } else { "USD" };
            let m = Money::new(amount, currency);
            let shown = m.shown();
            let dp = if zero { 0 } else { 2 };
            let body = shown.strip_prefix(currency).unwrap().trim_start();
            let exact = m.exact();
            let back: Decimal = exact
                .strip_suffix(currency).unwrap().trim_end()
                .replace('\u{2212}', "-").parse().unwrap();
            prop_assert_eq!(back, amount);
            prop_assert!(!shown.contains('-'), "a real minus: {}", shown);
            if body.starts_with('<') || body.starts_with('>') {
                prop_assert!(!amount.is_zero());
                prop_assert!(amount.abs() < Decimal::new(5, dp + 1));
            } else {
                let figure: Decimal = body.replace(',', "").replace('\u{2212}', "-").parse().unwrap();
                prop_assert!(figure.scale() == dp, "{} decimals in {}", dp, shown);
                prop_assert!((figure - amount).abs() <= Decimal::new(5, dp + 1));
            }
        }

        #[test]
        fn a_stamp_reads_back_to_its_moment(secs in 0i64..4_000_000_000, zone in 0usize..600) {
            let tz = chrono_tz::TZ_VARIANTS[zone % chrono_tz::TZ_VARIANTS.len()];
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let s = Stamp::new(t, tz);
            let naive = chrono::NaiveDateTime::parse_from_str(&s.local[..19], "%Y-%m-%d %H:%M:%S").unwrap();
            let offset = t.with_timezone(&tz).naive_local() - t.naive_utc();
            prop_assert_eq!(naive - offset, t.naive_utc());
            prop_assert_eq!(&s.utc, &utc(&t));
            prop_assert!(!s.local.contains('/'), "no US-style dates: {}", s.local);
        }
    }
}
