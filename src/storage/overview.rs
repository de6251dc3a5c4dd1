//! The numbers of the overview page beyond the funnel: delivery times, failures by code,
//! traffic over time. Every query is bounded by a `created_at` range, so it runs on the
//! `messages_created_idx` index.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};

/// Median and 90th percentile, in seconds, from creation to delivered and to read.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct Timings {
    pub delivered_p50: Option<f64>,
    pub delivered_p90: Option<f64>,
    pub read_p50: Option<f64>,
    pub read_p90: Option<f64>,
}

pub async fn timings(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Timings> {
    sqlx::query_as(
        r#"SELECT
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) AS delivered_p50,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)) AS delivered_p90,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - created_at)) AS read_p50,
             percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - created_at)) AS read_p90
           FROM messages
           WHERE direction = 'outbound' AND created_at >= $1 AND created_at < $2
             AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)"#,
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_one(pool)
    .await
}

/// Failed and undelivered messages by error code, most frequent first.
pub async fn failures_by_code(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Vec<(Option<i32>, i64)>> {
    sqlx::query_as(
        r#"SELECT error_code, count(*) FROM messages
           WHERE direction = 'outbound' AND status IN ('failed', 'undelivered')
             AND created_at >= $1 AND created_at < $2
             AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)
           GROUP BY error_code ORDER BY count(*) DESC, error_code LIMIT 20"#,
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_all(pool)
    .await
}

/// Messages per time bucket and direction.
#[derive(Debug, Clone, FromRow)]
pub struct TrafficBucket {
    pub bucket: DateTime<Utc>,
    pub outbound: i64,
    pub inbound: i64,
    /// Outbound messages that failed or went undelivered.
    pub failed: i64,
}

/// Counts in buckets of `step` starting at `since`; empty buckets are absent.
pub async fn traffic(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step: std::time::Duration,
    sender: Option<&str>,
) -> sqlx::Result<Vec<TrafficBucket>> {
    sqlx::query_as(
        r#"SELECT date_bin(make_interval(secs => $3), created_at, $1) AS bucket,
                  count(*) FILTER (WHERE direction = 'outbound') AS outbound,
                  count(*) FILTER (WHERE direction = 'inbound') AS inbound,
                  count(*) FILTER (WHERE direction = 'outbound'
                                     AND status IN ('failed', 'undelivered')) AS failed
           FROM messages
           WHERE created_at >= $1 AND created_at < $2
             AND ($4::text IS NULL OR from_addr = $4 OR to_addr = $4 OR messaging_service_sid = $4)
           GROUP BY 1 ORDER BY 1"#,
    )
    .bind(since)
    .bind(until)
    .bind(step.as_secs_f64())
    .bind(sender)
    .fetch_all(pool)
    .await
}

/// Everything the overview shows for a window, from the hourly roll-ups for whole past hours
/// and from `messages` for the rest (the current hour and partial hours at the edges).
#[derive(Debug, Clone, Default)]
pub struct WindowStats {
    pub funnel: super::messages::Funnel,
    pub timings: Timings,
    pub failures: Vec<(Option<i32>, i64)>,
    /// (bucket start, outbound, inbound), buckets of `step` from `since`.
    pub traffic: Vec<TrafficBucket>,
    /// True when delivery times are estimated from histograms (roll-ups were used).
    pub estimated: bool,
}

/// Windows shorter than this are read from `messages` alone.
const MIN_ROLLUP_HOURS: i64 = 3;

pub async fn window_stats(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    step: std::time::Duration,
    sender: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<WindowStats> {
    use super::messages;
    use super::rollups;
    let bucket = rollups::BUCKET;
    let floor = rollups::bucket_of;
    let ceil = |t: DateTime<Utc>| {
        let f = floor(t);
        if f == t { f } else { f + bucket }
    };
    let hs = ceil(since);
    // Roll-ups cover the whole buckets inside the window. A window that reaches the present
    // takes the current bucket from its roll-up too: it trails by about a second, and the
    // roll-up job announces each recompute so live pages refresh.
    let he = if until >= now {
        (floor(now) + bucket).min(ceil(until))
    } else {
        floor(until)
    };
    if he - hs < chrono::Duration::hours(MIN_ROLLUP_HOURS) {
        let (funnel, timings, failures, traffic) = tokio::try_join!(
            messages::funnel(pool, Some(since), Some(until), sender),
            timings(pool, since, until, sender),
            failures_by_code(pool, since, until, sender),
            traffic(pool, since, until, step, sender),
        )?;
        return Ok(WindowStats {
            funnel,
            timings,
            failures,
            traffic,
            estimated: false,
        });
    }
    let mut raw_ranges = Vec::new();
    if he < until {
        raw_ranges.push((he, until));
    }
    if since < hs {
        raw_ranges.push((since, hs));
    }
    let (mut totals, mut fails) = tokio::try_join!(
        rollups::totals(pool, hs, he, sender),
        rollups::failures(pool, hs, he, sender),
    )?;
    let mut buckets: Vec<TrafficBucket> = std::mem::take(&mut totals.traffic);
    for (a, b) in raw_ranges {
        let (f, (dh, rh), rf, tr) = tokio::try_join!(
            messages::funnel(pool, Some(a), Some(b), sender),
            rollups::raw_hists(pool, a, b, sender),
            failures_by_code(pool, a, b, sender),
            traffic(pool, a, b, step, sender),
        )?;
        totals.funnel += f;
        for i in 0..rollups::HIST_LEN {
            totals.delivered_hist[i] += dh[i];
            totals.read_hist[i] += rh[i];
        }
        fails.extend(rf);
        buckets.extend(tr);
    }
    // Merge failures by code, most frequent first.
    let mut by_code: std::collections::BTreeMap<Option<i32>, i64> = Default::default();
    for (c, n) in fails {
        *by_code.entry(c).or_default() += n;
    }
    let mut failures: Vec<(Option<i32>, i64)> = by_code.into_iter().collect();
    failures.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    failures.truncate(20);
    // Re-bucket hours and raw buckets into the window's buckets.
    let step_s = step.as_secs().max(1) as i64;
    let mut dense: std::collections::BTreeMap<i64, TrafficBucket> = Default::default();
    for b in buckets {
        let k = (b.bucket - since).num_seconds().div_euclid(step_s);
        let e = dense.entry(k).or_insert_with(|| TrafficBucket {
            bucket: since + chrono::Duration::seconds(k * step_s),
            outbound: 0,
            inbound: 0,
            failed: 0,
        });
        e.outbound += b.outbound;
        e.inbound += b.inbound;
        e.failed += b.failed;
    }
    let traffic = dense.into_values().collect();
    Ok(WindowStats {
        funnel: totals.funnel,
        timings: Timings {
            delivered_p50: rollups::quantile(&totals.delivered_hist, 0.5),
            delivered_p90: rollups::quantile(&totals.delivered_hist, 0.9),
            read_p50: rollups::quantile(&totals.read_hist, 0.5),
            read_p90: rollups::quantile(&totals.read_hist, 0.9),
        },
        failures,
        traffic,
        estimated: true,
    })
}
