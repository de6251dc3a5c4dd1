//! Server-rendered SVG charts. Traffic over time as a bar chart: outbound and inbound side by
//! side per bucket, with a `<title>` per bar for screen readers and hover. The balance over
//! time as a step line: it holds its value from one reading to the next.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::storage::overview::TrafficBucket;

const W: f64 = 720.0;
const H: f64 = 180.0;
const PAD_BOTTOM: f64 = 22.0;
const PAD_TOP: f64 = 8.0;

/// Fills missing buckets with zeros, from `since` in steps of `step`, `n` buckets.
pub fn dense(
    rows: &[TrafficBucket],
    since: DateTime<Utc>,
    step: std::time::Duration,
    n: usize,
) -> Vec<(DateTime<Utc>, i64, i64)> {
    let step = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::hours(1));
    (0..n)
        .map(|i| {
            let at = since + step * i as i32;
            let hit = rows.iter().find(|r| r.bucket == at);
            (
                at,
                hit.map_or(0, |r| r.outbound),
                hit.map_or(0, |r| r.inbound),
            )
        })
        .collect()
}

/// The chart's markup. Only numbers and formatted times go into it, never user text.
pub fn svg(buckets: &[(DateTime<Utc>, i64, i64)], label_format: &str) -> String {
    let n = buckets.len().max(1) as f64;
    let max = buckets
        .iter()
        .map(|(_, o, i)| (*o).max(*i))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = W / n;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let plot = H - PAD_BOTTOM - PAD_TOP;
    let mut s = String::with_capacity(256 + buckets.len() * 220);
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Messages over time: outbound and inbound per period, highest {max}</title>"#
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="0" y1="{y}" x2="{W}" y2="{y}"/>"#,
        y = H - PAD_BOTTOM
    );
    for (i, (at, out, inb)) in buckets.iter().enumerate() {
        let x = i as f64 * slot;
        let when = at.format(label_format);
        for (k, (v, class, what)) in [(*out, "out", "outbound"), (*inb, "in", "inbound")]
            .into_iter()
            .enumerate()
        {
            let h = (v as f64 / max) * plot;
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{when}: {v} {what}</title></rect>"#,
                x + k as f64 * (bar + 1.0),
                H - PAD_BOTTOM - h,
            );
        }
    }
    for (i, anchor) in [
        (0usize, "start"),
        (buckets.len() / 2, "middle"),
        (buckets.len().saturating_sub(1), "end"),
    ] {
        if let Some((at, _, _)) = buckets.get(i) {
            let x = match anchor {
                "start" => 0.0,
                "end" => W,
                _ => i as f64 * slot,
            };
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                H - 6.0,
                at.format(label_format)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Text for SVG markup: `&`, `<`, `>` and quotes escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The balance between `since` and `until` as a step line: each reading (time, amount as
/// written, oldest first) holds until the next one, the last until `until`. The amount axis
/// spans the lowest to the highest reading; `unit` (the currency) is escaped.
pub fn balance_svg(
    points: &[(DateTime<Utc>, String)],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    unit: &str,
) -> String {
    let unit = escape(unit);
    let plot = H - PAD_BOTTOM - PAD_TOP;
    let span = (until - since).num_seconds().max(1) as f64;
    let x_of = |t: DateTime<Utc>| ((t - since).num_seconds() as f64 / span * W).clamp(0.0, W);
    let values: Vec<(DateTime<Utc>, f64, String)> = points
        .iter()
        .filter_map(|(t, v)| Some((*t, v.parse::<f64>().ok()?, escape(v))))
        .collect();
    let lo = values.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        // One value: a level line in the middle.
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    let y_of = |v: f64| PAD_TOP + (hi - v) / (hi - lo) * plot;
    let mut s = String::with_capacity(512 + values.len() * 160);
    let (first, last) = match (values.first(), values.last()) {
        (Some(f), Some(l)) => (
            format!("{} {unit}", f.2),
            format!("{} {unit} at {}", l.2, l.0.format("%H:%M")),
        ),
        _ => ("none".into(), "none".into()),
    };
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="balance-chart-title" xmlns="http://www.w3.org/2000/svg"><title id="balance-chart-title">Balance over the last 24 hours: {n} readings, first {first}, last {last}</title>"#,
        n = values.len(),
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="0" y1="{y}" x2="{W}" y2="{y}"/>"#,
        y = H - PAD_BOTTOM
    );
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
        let _ = write!(s, r#"<path class="balance-line" d="{d}"/>"#);
        for (t, v, text) in &values {
            let _ = write!(
                s,
                r#"<circle class="balance-point" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {text} {unit}</title></circle>"#,
                x_of(*t),
                y_of(*v),
                t.format("%H:%M"),
            );
        }
        // The highest and lowest readings, as written, at the right edge.
        let by = |a: &&(DateTime<Utc>, f64, String), b: &&(DateTime<Utc>, f64, String)| {
            a.1.total_cmp(&b.1)
        };
        let top = values.iter().max_by(by);
        let bottom = values
            .iter()
            .min_by(by)
            .filter(|b| top.is_some_and(|t| b.1 < t.1));
        for (v, base) in [(top, "hanging"), (bottom, "auto")] {
            if let Some((_, v, text)) = v {
                let _ = write!(
                    s,
                    r#"<text x="{W}" y="{:.1}" text-anchor="end" dominant-baseline="{base}">{text} {unit}</text>"#,
                    y_of(*v),
                );
            }
        }
    }
    for (t, anchor) in [
        (since, "start"),
        (since + (until - since) / 2, "middle"),
        (until, "end"),
    ] {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x_of(t),
            H - 6.0,
            t.format("%H:%M")
        );
    }
    s.push_str("</svg>");
    s
}

/// Spend per day as bars: `(day, spend)` oldest first, every day of the range present (zero
/// where nothing was spent). The tallest bar is labelled with its amount in `unit` (escaped).
pub fn spend_svg(days: &[(chrono::NaiveDate, f64, String)], unit: &str) -> String {
    let unit = escape(unit);
    let plot = H - PAD_BOTTOM - PAD_TOP;
    let n = days.len().max(1) as f64;
    let slot = W / n;
    let hi = days.iter().map(|d| d.1).fold(0.0, f64::max);
    let mut s = String::with_capacity(256 + days.len() * 200);
    let total: f64 = days.iter().map(|d| d.1).sum();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="spend-chart-title" xmlns="http://www.w3.org/2000/svg"><title id="spend-chart-title">Spend per day over {} days, {total:.4} {unit} in all</title>"#,
        days.len(),
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="0" y1="{y}" x2="{W}" y2="{y}"/>"#,
        y = H - PAD_BOTTOM
    );
    for (i, (day, v, text)) in days.iter().enumerate() {
        let h = if hi > 0.0 { v / hi * plot } else { 0.0 };
        let x = i as f64 * slot + slot * 0.1;
        let _ = write!(
            s,
            r#"<rect class="out" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{day}: {} {unit}</title></rect>"#,
            H - PAD_BOTTOM - h,
            slot * 0.8,
            escape(text),
        );
    }
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(
            s,
            r#"<text x="0" y="{H}">{}</text><text x="{W}" y="{H}" text-anchor="end">{}</text>"#,
            first.0.format("%b %-d"),
            last.0.format("%b %-d"),
        );
    }
    if let Some((_, _, text)) = days
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|d| d.1 > 0.0)
    {
        let _ = write!(
            s,
            r#"<text x="2" y="{PAD_TOP}" dominant-baseline="hanging">max {} {unit}</text>"#,
            escape(text),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_filled_and_bars_scale_to_the_highest() {
        let since = DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let rows = vec![TrafficBucket {
            bucket: since + chrono::Duration::hours(2),
            outbound: 10,
            inbound: 5,
        }];
        let d = dense(&rows, since, std::time::Duration::from_secs(3600), 4);
        assert_eq!(d.iter().map(|b| b.1).collect::<Vec<_>>(), [0, 0, 10, 0]);
        let s = svg(&d, "%H:%M");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("02:00: 10 outbound"));
        assert!(
            s.contains(&format!("height=\"{:.1}\"", H - PAD_BOTTOM - PAD_TOP)),
            "{s}"
        );
        assert_eq!(s.matches("<rect").count(), 8);
    }

    #[test]
    fn balance_steps_between_readings_and_escapes_its_unit() {
        let until = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let since = until - chrono::Duration::hours(24);
        let pts = vec![
            (since + chrono::Duration::hours(6), "20.00".to_owned()),
            (since + chrono::Duration::hours(12), "10.00".to_owned()),
        ];
        let s = balance_svg(&pts, since, until, "<b>");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
        assert!(!s.contains("<b>") && s.contains("&lt;b&gt;"), "{s}");
        // From (180, top) held to x = 360, down to the bottom, held to the end.
        assert!(s.contains(r#"d="M180.0 8.0 H360.0 V158.0 H720.0""#), "{s}");
        assert_eq!(s.matches("<circle").count(), 2);
        let empty = balance_svg(&[], since, until, "USD");
        assert!(!empty.contains("<path") && empty.contains("0 readings"));
    }

    #[test]
    fn spend_bars_one_per_day_scaled_to_the_dearest_and_escaped() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let svg = super::spend_svg(
            &[
                (d("2026-11-22"), 0.0, "0".into()),
                (d("2026-11-23"), 2.0, "2".into()),
                (d("2026-11-24"), 1.0, "1".into()),
            ],
            "<USD>",
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("max 2 &lt;USD&gt;"), "{svg}");
        assert!(!svg.contains("<USD>"));
        // The dearest day fills the plot; the half-as-dear one half of it.
        let full = H - PAD_BOTTOM - PAD_TOP;
        assert!(svg.contains(&format!(r#"height="{full:.1}""#)));
        assert!(svg.contains(&format!(r#"height="{:.1}""#, full / 2.0)));
    }
}
