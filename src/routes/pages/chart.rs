//! Traffic over time as a server-rendered SVG bar chart: outbound and inbound side by side
//! per bucket, with a `<title>` per bar for screen readers and hover.

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
}
