//! Server-rendered SVG charts people can read: a y axis with round ticks, gridlines and its
//! unit, a time axis with round local times, a legend, and a title and description for screen
//! readers; every bar and point carries its exact value as a tooltip (`<title>`). Only numbers,
//! formatted times and escaped units go into the markup, never other user text.
//!
//! Charts: traffic per period (outbound and inbound bars, failed as a line), the balance as a
//! step line scaled to the readings present, and spend per day.

pub mod axis;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::format::escape;
use crate::storage::overview::TrafficBucket;

/// The drawing's size in SVG units (it scales to its container's width).
const W: f64 = 720.0;
const H: f64 = 200.0;
/// The plot area inside it: room for tick labels on the left and below, the legend above.
const LEFT: f64 = 56.0;
const RIGHT: f64 = W - 8.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = H - 22.0;
/// At most this many labelled ticks on each axis.
const Y_TICKS: usize = 5;
const X_TICKS: usize = 7;

/// Fills missing buckets with zeros, from `since` in steps of `step`, `n` buckets.
pub fn dense(
    rows: &[TrafficBucket],
    since: DateTime<Utc>,
    step: std::time::Duration,
    n: usize,
) -> Vec<TrafficBucket> {
    let step = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::hours(1));
    (0..n)
        .map(|i| {
            let at = since + step * i as i32;
            rows.iter()
                .find(|r| r.bucket == at)
                .cloned()
                .unwrap_or(TrafficBucket {
                    bucket: at,
                    outbound: 0,
                    inbound: 0,
                    failed: 0,
                })
        })
        .collect()
}

/// A chart being written.
struct Svg(String);

impl Svg {
    /// The opening tag, the title and the description (`id` names them for `aria-labelledby`).
    fn begin(id: &str, title: &str, desc: &str) -> Self {
        let mut s = String::with_capacity(4096);
        let _ = write!(
            s,
            r#"<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#
        );
        Svg(s)
    }

    /// Gridlines and labels at `ticks` (mapped by `y_of`), the unit above the labels, and the
    /// base line.
    fn y_axis(&mut self, ticks: &[f64], step: f64, y_of: impl Fn(f64) -> f64, unit: &str) {
        for t in ticks {
            let y = y_of(*t);
            let _ = write!(
                self.0,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{y:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
                LEFT - 6.0,
                axis::label(*t, step),
            );
        }
        let _ = write!(
            self.0,
            r#"<text class="unit" x="4" y="14">{unit}</text><line class="axis" x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}"/>"#,
        );
    }

    /// Tick marks and labels below the plot at round times.
    fn time_axis(
        &mut self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
        x_of: impl Fn(DateTime<Utc>) -> f64,
    ) {
        let (ticks, format) = axis::times(since, until, X_TICKS, tz);
        for t in ticks {
            let x = x_of(t);
            // Labels near an edge stay inside the drawing.
            let anchor = if x < LEFT + 30.0 {
                "start"
            } else if x > RIGHT - 30.0 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                self.0,
                r#"<line class="axis" x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                BOTTOM + 4.0,
                H - 6.0,
                t.with_timezone(&tz).format(format),
            );
        }
    }

    /// Swatches and names, right-aligned above the plot: `(class, name)`, drawn in order.
    fn legend(&mut self, items: &[(&str, &str)]) {
        // About 6.5 units per character at the labels' size, plus the swatch.
        let width: f64 = items
            .iter()
            .map(|(_, name)| 22.0 + name.chars().count() as f64 * 6.5)
            .sum();
        let mut x = RIGHT - width;
        for (class, name) in items {
            let _ = write!(
                self.0,
                r#"<rect class="{class}" x="{x:.1}" y="5" width="10" height="10"/><text class="legend" x="{:.1}" y="14">{name}</text>"#,
                x + 14.0,
            );
            x += 22.0 + name.chars().count() as f64 * 6.5;
        }
    }

    fn finish(mut self) -> String {
        self.0.push_str("</svg>");
        self.0
    }
}

/// Messages per period: outbound and inbound side by side, failed (failed or undelivered
/// outbound) as a line over them. `buckets` are consecutive periods of `step`, oldest first.
pub fn traffic_svg(buckets: &[TrafficBucket], step: std::time::Duration, tz: Tz) -> String {
    let step = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::hours(1));
    let since = buckets.first().map_or_else(Utc::now, |b| b.bucket);
    let until = buckets.last().map_or(since, |b| b.bucket) + step;
    let highest = buckets
        .iter()
        .map(|b| b.outbound.max(b.inbound).max(b.failed))
        .max()
        .unwrap_or(0);
    let sum = |f: fn(&TrafficBucket) -> i64| buckets.iter().map(f).sum::<i64>();
    let (out, inb, failed) = (sum(|b| b.outbound), sum(|b| b.inbound), sum(|b| b.failed));
    let mut svg = Svg::begin(
        "traffic-chart",
        "Messages per period: outbound, inbound and failed",
        &format!(
            "{} periods of {}: {out} outbound, {inb} inbound, {failed} failed; at most {highest} in one period",
            buckets.len(),
            super::format::duration_secs(step.num_seconds() as f64),
        ),
    );
    let (ticks, tick_step) = axis::nice(0.0, highest.max(1) as f64, Y_TICKS);
    let top = ticks.last().copied().unwrap_or(1.0).max(1.0);
    let y_of = |v: f64| BOTTOM - v / top * (BOTTOM - TOP);
    svg.y_axis(&ticks, tick_step, y_of, "messages");
    let span = (until - since).num_seconds().max(1) as f64;
    let x_of = |t: DateTime<Utc>| LEFT + (t - since).num_seconds() as f64 / span * (RIGHT - LEFT);
    let slot = (RIGHT - LEFT) / buckets.len().max(1) as f64;
    let bar = ((slot - 2.0) / 2.0).max(0.5);
    let mut line = String::new();
    for (i, b) in buckets.iter().enumerate() {
        let x = LEFT + i as f64 * slot + 1.0;
        let when = b.bucket.with_timezone(&tz).format("%Y-%m-%d %H:%M");
        for (k, (v, class, what)) in [
            (b.outbound, "out", "outbound"),
            (b.inbound, "in", "inbound"),
        ]
        .into_iter()
        .enumerate()
        {
            let y = y_of(v as f64);
            let _ = write!(
                svg.0,
                r#"<rect class="{class}" x="{:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}"><title>{when}: {v} {what}</title></rect>"#,
                x + k as f64 * bar,
                BOTTOM - y,
            );
        }
        let _ = write!(
            line,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { " L" },
            x + bar,
            y_of(b.failed as f64)
        );
    }
    if !buckets.is_empty() {
        let _ = write!(svg.0, r#"<path class="fail-line" d="{line}"/>"#);
        for (i, b) in buckets.iter().enumerate().filter(|(_, b)| b.failed > 0) {
            let _ = write!(
                svg.0,
                r#"<circle class="fail-point" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {} failed</title></circle>"#,
                LEFT + i as f64 * slot + 1.0 + bar,
                y_of(b.failed as f64),
                b.bucket.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                b.failed,
            );
        }
    }
    svg.time_axis(since, until, tz, x_of);
    svg.legend(&[("out", "outbound"), ("in", "inbound"), ("fail", "failed")]);
    svg.finish()
}

/// The shortest stretch of time the balance chart spans, however close its readings.
const BALANCE_MIN_SPAN: chrono::Duration = chrono::Duration::minutes(10);

/// The balance as a step line: each reading (time, amount as written, oldest first) holds until
/// the next one, the last until `until`. The time axis spans the readings present (from the
/// first, within `[since, until]`); the amount axis their range, with round ticks in `unit`
/// (escaped).
pub fn balance_svg(
    points: &[(DateTime<Utc>, String)],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    unit: &str,
    tz: Tz,
) -> String {
    let unit = escape(unit);
    let values: Vec<(DateTime<Utc>, f64, String)> = points
        .iter()
        .filter(|(t, _)| *t >= since && *t <= until)
        .filter_map(|(t, v)| Some((*t, v.parse::<f64>().ok()?, escape(v))))
        .collect();
    let first_at = values.first().map_or(since, |v| v.0);
    let start = first_at.min(until - BALANCE_MIN_SPAN);
    let lo = values.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), hi > lo) {
        (true, true) => (lo, hi),
        // One level: a band around it.
        (true, false) => (
            lo - (lo.abs() * 0.1).max(1.0),
            lo + (lo.abs() * 0.1).max(1.0),
        ),
        _ => (0.0, 1.0),
    };
    let (ticks, tick_step) = axis::nice(lo, hi, Y_TICKS);
    let (bottom_v, top_v) = (ticks[0], ticks[ticks.len() - 1]);
    let y_of = |v: f64| BOTTOM - (v - bottom_v) / (top_v - bottom_v) * (BOTTOM - TOP);
    let span = (until - start).num_seconds().max(1) as f64;
    let x_of = |t: DateTime<Utc>| {
        (LEFT + (t - start).num_seconds() as f64 / span * (RIGHT - LEFT)).clamp(LEFT, RIGHT)
    };
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let n = values.len();
    let desc = match (values.first(), values.last()) {
        (Some(f), Some(l)) => format!(
            "{n} reading{} from {} to {}: first {} {unit}, last {} {unit}",
            if n == 1 { "" } else { "s" },
            local(f.0),
            local(l.0),
            f.2,
            l.2
        ),
        _ => "0 readings".to_owned(),
    };
    let mut svg = Svg::begin("balance-chart", "Balance over the last 24 hours", &desc);
    svg.y_axis(&ticks, tick_step, y_of, &unit);
    if !values.is_empty() {
        let mut d = String::new();
        for (i, (t, v, _)) in values.iter().enumerate() {
            let (x, y) = (x_of(*t), y_of(*v));
            if i == 0 {
                let _ = write!(d, "M{x:.1} {y:.1}");
            } else {
                // Hold the previous value until this reading, then step to it.
                let _ = write!(d, " H{x:.1} V{y:.1}");
            }
        }
        let _ = write!(d, " H{:.1}", x_of(until));
        let _ = write!(svg.0, r#"<path class="balance-line" d="{d}"/>"#);
        for (t, v, text) in &values {
            let _ = write!(
                svg.0,
                r#"<circle class="balance-point" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {text} {unit}</title></circle>"#,
                x_of(*t),
                y_of(*v),
                t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"),
            );
        }
    }
    svg.time_axis(start, until, tz, x_of);
    svg.legend(&[("balance", "balance")]);
    svg.finish()
}

/// Spend per day as bars: `(day, spend, spend as written)` oldest first, every day of the
/// range present (zero where nothing was spent), with round ticks in `unit` (escaped).
pub fn spend_svg(days: &[(chrono::NaiveDate, f64, String)], unit: &str) -> String {
    let unit = escape(unit);
    let hi = days.iter().map(|d| d.1).fold(0.0, f64::max);
    let total: f64 = days.iter().map(|d| d.1).sum();
    let mut svg = Svg::begin(
        "spend-chart",
        "Spend per day",
        &format!(
            "{} days, {total:.2} {unit} in all, at most {hi:.2} {unit} in one day",
            days.len()
        ),
    );
    let (ticks, tick_step) = axis::nice(0.0, if hi > 0.0 { hi } else { 1.0 }, Y_TICKS);
    let top = ticks.last().copied().unwrap_or(1.0);
    let y_of = |v: f64| BOTTOM - v / top * (BOTTOM - TOP);
    svg.y_axis(&ticks, tick_step, y_of, &unit);
    let slot = (RIGHT - LEFT) / days.len().max(1) as f64;
    // A label every `every` days: at most X_TICKS of them.
    let every = days.len().div_ceil(X_TICKS).max(1);
    for (i, (day, v, text)) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + slot * 0.1;
        let y = y_of(*v);
        let _ = write!(
            svg.0,
            r#"<rect class="out" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{day}: {} {unit}</title></rect>"#,
            slot * 0.8,
            BOTTOM - y,
            escape(text),
        );
        if i % every == 0 {
            let _ = write!(
                svg.0,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + slot * 0.4,
                H - 6.0,
                day.format("%d %b"),
            );
        }
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The numbers in `attr="…"` of every element named `tag`.
    fn attrs(svg: &str, tag: &str, attr: &str) -> Vec<f64> {
        svg.split(&format!("<{tag} "))
            .skip(1)
            .filter_map(|e| {
                let v = e.split(&format!(" {attr}=\"")).nth(1)?;
                v[..v.find('"')?].parse().ok()
            })
            .collect()
    }

    #[test]
    fn traffic_has_axes_a_legend_and_a_failure_line_scaled_to_round_ticks() {
        let since = at("2026-11-24T00:00:00Z");
        let rows = vec![TrafficBucket {
            bucket: since + chrono::Duration::hours(2),
            outbound: 952,
            inbound: 5,
            failed: 40,
        }];
        let hour = std::time::Duration::from_secs(3600);
        let d = dense(&rows, since, hour, 24);
        assert_eq!(
            d.iter().map(|b| b.outbound).collect::<Vec<_>>()[..4],
            [0, 0, 952, 0]
        );
        let s = traffic_svg(&d, hour, chrono_tz::UTC);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        // The y axis: round ticks from 0 to 1000 (the highest is 952), with the unit.
        for tick in ["0", "500", "1000"] {
            assert!(
                s.contains(&format!(r#"dominant-baseline="middle">{tick}</text>"#)),
                "{tick}: {s}"
            );
        }
        assert!(s.contains(">messages</text>"));
        assert_eq!(s.matches(r#"<line class="grid""#).count(), 3);
        // 952 of 1000 fills 95.2 % of the plot.
        let heights = attrs(&s, "rect", "height");
        let plot = BOTTOM - TOP;
        assert!(
            heights.iter().any(|h| (h - 0.952 * plot).abs() < 0.1),
            "{heights:?}"
        );
        // Bars carry their exact value; the failures are a line with a point where there are any.
        assert!(s.contains("2026-11-24 02:00: 952 outbound"));
        assert!(s.contains(r#"<path class="fail-line""#));
        assert!(s.contains("2026-11-24 02:00: 40 failed"));
        assert_eq!(s.matches("<circle").count(), 1);
        // The legend, the title and the description.
        for name in [">outbound</text>", ">inbound</text>", ">failed</text>"] {
            assert!(s.contains(name), "{name}");
        }
        assert!(s.contains("952 outbound, 5 inbound, 40 failed"), "{s}");
        // Time ticks on round hours, labelled, inside the drawing.
        assert!(
            s.contains(">06:00</text>") && s.contains(">12:00</text>"),
            "{s}"
        );
        for x in attrs(&s, "text", "x") {
            assert!((0.0..=W).contains(&x), "{x}");
        }
    }

    #[test]
    fn traffic_times_are_in_the_readers_zone() {
        let since = at("2026-11-24T00:00:00Z");
        let hour = std::time::Duration::from_secs(3600);
        let d = dense(&[], since, hour, 24);
        let s = traffic_svg(&d, hour, chrono_tz::Asia::Kolkata);
        // 00:00 UTC is 05:30 in Kolkata; the first whole-hour tick after it is 06:00 local.
        assert!(s.contains("2026-11-24 05:30: 0 outbound"), "{s}");
        assert!(
            s.contains(">06:00</text>") || s.contains(">09:00</text>"),
            "{s}"
        );
    }

    #[test]
    fn balance_steps_between_readings_scaled_to_the_readings_present() {
        let until = at("2026-11-24T12:00:00Z");
        let since = until - chrono::Duration::hours(24);
        // Two readings in the last 15 minutes of the 24 hours.
        let pts = vec![
            (until - chrono::Duration::minutes(15), "20.00".to_owned()),
            (until - chrono::Duration::minutes(5), "10.00".to_owned()),
        ];
        let s = balance_svg(&pts, since, until, "<b>", chrono_tz::UTC);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
        assert!(!s.contains("<b>") && s.contains("&lt;b&gt;"), "{s}");
        // The time axis spans the readings: the first at the left edge, not squeezed right.
        let xs = attrs(&s, "circle", "cx");
        assert_eq!(xs.len(), 2);
        assert!((xs[0] - LEFT).abs() < 0.1, "{xs:?}");
        let third = LEFT + (RIGHT - LEFT) * 10.0 / 15.0;
        assert!((xs[1] - third).abs() < 0.1, "{xs:?}");
        // Round ticks that cover 10 to 20, and the exact value on hover.
        assert!(s.contains(r#"dominant-baseline="middle">10</text>"#), "{s}");
        assert!(s.contains(r#"dominant-baseline="middle">20</text>"#), "{s}");
        assert!(s.contains("2026-11-24 11:55:00: 10.00 &lt;b&gt;"), "{s}");
        assert!(s.contains("2 readings from 11:45 to 11:55"), "{s}");
        let empty = balance_svg(&[], since, until, "USD", chrono_tz::UTC);
        assert!(!empty.contains("<path") && empty.contains("0 readings"));
        let one = balance_svg(&pts[..1], since, until, "USD", chrono_tz::UTC);
        assert!(one.contains("1 reading from"), "{one}");
    }

    #[test]
    fn spend_bars_one_per_day_on_round_ticks_and_escaped() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let svg = spend_svg(
            &[
                (d("2026-11-22"), 0.0, "0".into()),
                (d("2026-11-23"), 2.0, "2".into()),
                (d("2026-11-24"), 1.0, "1".into()),
            ],
            "<USD>",
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("at most 2.00 &lt;USD&gt; in one day"), "{svg}");
        assert!(!svg.contains("<USD>"));
        // Ticks 0, 0.5, …, 2: the dearest day fills the plot, the half-as-dear one half of it.
        let full = BOTTOM - TOP;
        let heights = attrs(&svg, "rect", "height");
        assert!(
            heights.iter().any(|h| (h - full).abs() < 0.1),
            "{heights:?}"
        );
        assert!(
            heights.iter().any(|h| (h - full / 2.0).abs() < 0.1),
            "{heights:?}"
        );
        assert!(svg.contains(">23 Nov</text>"));
    }
}
