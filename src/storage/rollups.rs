//! Roll-ups of `messages` for the overview in five-minute buckets (`message_stats_5m`,
//! `message_failures_5m`), kept current through ten-second slices (`message_stats_slices`):
//! recomputing changed slices and the buckets that hold them, and reading a window's totals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};

use super::messages::Funnel;

/// The roll-ups' granularity. It divides an hour, so hour-aligned windows align with buckets.
pub const BUCKET: TimeDelta = TimeDelta::minutes(5);
/// Longest range read in one query (the full recompute goes an hour at a time).
pub const MAX_RANGE: TimeDelta = TimeDelta::hours(1);
/// The slices' granularity: a bucket holds thirty. A change to a recent message costs its
/// slice's messages, not its bucket's.
pub const SLICE: TimeDelta = TimeDelta::seconds(10);
/// How far back a change costs only its slice (from the current bucket); a change to a message
/// created earlier recomputes its whole bucket.
pub const SLICE_SPAN: TimeDelta = TimeDelta::days(1);
/// How much further back slices are kept current (buckets there are recomputed whole, but
/// through their slices), so that a pass that places the horizon a little earlier (the
/// database's clock stepped back) still sums current slices. Older slices are pruned.
const SLICE_MARGIN: TimeDelta = TimeDelta::hours(1);
/// Ranges recomputed in one transaction at most (with at most [`MAX_RANGE`] of slices in all).
const RANGES_PER_TRANSACTION: usize = 32;

/// A time range `[start, end)`.
pub type Range = (DateTime<Utc>, DateTime<Utc>);

/// The start of the bucket holding `t`.
pub fn bucket_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(BUCKET).unwrap_or(t)
}

/// The start of the slice holding `t`.
pub fn slice_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(SLICE).unwrap_or(t)
}

/// From this bucket on (at `now`, the database's clock), a change recomputes only its slice.
pub fn slice_horizon(now: DateTime<Utc>) -> DateTime<Utc> {
    bucket_of(now) - SLICE_SPAN
}

/// From this bucket on, slices are kept current; earlier buckets are recomputed from
/// `messages` directly and their slices pruned.
pub fn slice_floor(now: DateTime<Utc>) -> DateTime<Utc> {
    slice_horizon(now) - SLICE_MARGIN
}

/// Merges bucket starts into ranges `[start, end)` of adjacent buckets, each at most
/// [`MAX_RANGE`] long, in order.
pub fn ranges(buckets: &BTreeSet<DateTime<Utc>>) -> Vec<Range> {
    merge(buckets, BUCKET)
}

/// Merges starts of periods `width` long into ranges of adjacent ones, each at most
/// [`MAX_RANGE`] long, in order.
fn merge(starts: &BTreeSet<DateTime<Utc>>, width: TimeDelta) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for &b in starts {
        match out.last_mut() {
            Some(last) if last.1 == b && b + width - last.0 <= MAX_RANGE => last.1 = b + width,
            _ => out.push((b, b + width)),
        }
    }
    out
}

/// The buckets that hold part of any of `ranges_`, merged as [`ranges`] merges them.
pub fn buckets_of(ranges_: &[Range]) -> Vec<Range> {
    let mut buckets = BTreeSet::new();
    for &(start, end) in ranges_ {
        let mut b = bucket_of(start);
        while b < end {
            buckets.insert(b);
            b += BUCKET;
        }
    }
    ranges(&buckets)
}

/// Upper bounds (seconds) of the delivery-time histogram buckets; one more bucket holds the rest.
pub const HIST_BOUNDS: [f64; 14] = [
    2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];
pub const HIST_LEN: usize = HIST_BOUNDS.len() + 1;

/// The histogram bucket of the time from `start` to `end` (two `timestamptz` SQL
/// expressions): the number of [`HIST_BOUNDS`] below it, so bucket `k` holds
/// `(HIST_BOUNDS[k-1], HIST_BOUNDS[k]]` (the first everything up to 2 s, the last everything
/// above a day); NULL stays NULL.
///
/// Computed once per row, on the `interval` itself: `width_bucket` over the negated bounds
/// (`start - end`, against `-86400 s` … `-2 s`) counts the bounds at or above the duration in
/// one binary search of exact microsecond comparisons. Converting to seconds first
/// (`date_part('epoch', …)`) took about 5 % longer over a busy bucket, and the earlier form
/// compared a `numeric` `extract(epoch …)` with every bound, about sixty `numeric`
/// evaluations per message (bench/README.md, "The roll-up pass under sustained load").
fn bin_sql(start: &str, end: &str) -> String {
    let negated: Vec<String> = HIST_BOUNDS
        .iter()
        .rev()
        .map(|b| format!("'{} s'", -b))
        .collect();
    format!(
        "({} - width_bucket({start} - {end}, ARRAY[{}]::interval[]))",
        HIST_BOUNDS.len(),
        negated.join(", ")
    )
}

/// `ARRAY[count FILTER (WHERE bin = 0), …]`: per histogram bucket of the integer column `bin`
/// (from [`bin_sql`]), the aggregate `count` (`count(*)` over rows, or a sum over groups)
/// restricted to that bucket, zero when none; NULL bins are not counted.
fn hist_sql(bin: &str, count: &str) -> String {
    let parts: Vec<String> = (0..HIST_LEN)
        .map(|k| format!("COALESCE({count} FILTER (WHERE {bin} = {k}), 0)"))
        .collect();
    format!("ARRAY[{}]::bigint[]", parts.join(", "))
}

/// Messages created in `[$1, $2)` with their two histogram buckets, computed once per row:
/// `OFFSET 0` keeps the planner from pulling the subquery up and copying the bucket
/// expression into each of the histogram's filters.
fn binned_messages(extra_filter: &str) -> String {
    format!(
        "(SELECT created_at, direction, to_addr, from_addr, messaging_service_sid, status, \
                 error_code, sent_at, delivered_at, read_at, \
                 {} AS delivered_bin, {} AS read_bin \
          FROM messages WHERE created_at >= $1 AND created_at < $2{extra_filter} OFFSET 0)",
        bin_sql("created_at", "delivered_at"),
        bin_sql("created_at", "read_at")
    )
}

/// Which outbound messages have settled, for the failure-rate alert: status now sent,
/// delivered, read, failed or undelivered (over the alias `m`).
const SETTLED: &str = "m.status IN ('sent', 'delivered', 'read', 'failed', 'undelivered')";

/// What an aggregate groups messages by: their slice or their bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Slice,
    Bucket,
}

/// The roll-up rows of `[$1, $2)` per `grain` with each row's outbound failures by error code,
/// in one
/// scan of the messages: they are counted per bucket, sender, pair of histogram buckets and
/// failure code first (`g`), so each row costs one hash lookup and the funnel's six counts;
/// the histograms and the failures are then assembled from those few groups. Counting each
/// row into thirty histogram filters directly took about a quarter longer, and a second scan
/// for the failures half as long again (bench/README.md, "The roll-up pass").
fn aggregate_sql(grain: Grain) -> &'static str {
    static SQL: OnceLock<[String; 2]> = OnceLock::new();
    let [slice, bucket] = SQL.get_or_init(|| [SLICE, BUCKET].map(aggregate_sql_by));
    match grain {
        Grain::Slice => slice,
        Grain::Bucket => bucket,
    }
}

fn aggregate_sql_by(width: TimeDelta) -> String {
    {
        let secs = width.num_seconds();
        format!(
            r#"WITH g AS MATERIALIZED (
                   SELECT date_bin(interval '{secs} seconds', m.created_at, timestamptz 'epoch') AS bucket,
                          m.direction,
                          COALESCE(CASE WHEN m.direction = 'inbound' THEN m.to_addr ELSE m.from_addr END, '') AS business,
                          COALESCE(m.messaging_service_sid, '') AS service_sid,
                          m.delivered_bin, m.read_bin,
                          CASE WHEN m.direction = 'outbound' AND m.status IN ('failed', 'undelivered')
                               THEN COALESCE(m.error_code, -1) END AS fail_code,
                          count(*) AS total,
                          count(*) FILTER (WHERE {}) AS sent,
                          count(*) FILTER (WHERE {}) AS delivered,
                          count(*) FILTER (WHERE {}) AS read,
                          count(*) FILTER (WHERE m.status = 'failed') AS failed,
                          count(*) FILTER (WHERE m.status = 'undelivered') AS undelivered,
                          count(*) FILTER (WHERE m.direction = 'outbound' AND {SETTLED}) AS settled
                   FROM {} m
                   GROUP BY 1, 2, 3, 4, 5, 6, 7),
               f AS (
                   SELECT bucket, direction, business, service_sid,
                          array_agg(fail_code ORDER BY fail_code) AS fail_codes,
                          array_agg(n ORDER BY fail_code) AS fail_counts
                   FROM (SELECT bucket, direction, business, service_sid, fail_code, sum(total)::int8 AS n
                         FROM g WHERE fail_code IS NOT NULL
                         GROUP BY 1, 2, 3, 4, 5) c
                   GROUP BY 1, 2, 3, 4)
               SELECT s.*,
                      COALESCE(f.fail_codes, '{{}}'::int4[]) AS fail_codes,
                      COALESCE(f.fail_counts, '{{}}'::int8[]) AS fail_counts
               FROM (SELECT g.bucket, g.direction, g.business, g.service_sid,
                            sum(g.total)::int8 AS total,
                            sum(g.sent)::int8 AS sent,
                            sum(g.delivered)::int8 AS delivered,
                            sum(g.read)::int8 AS read,
                            sum(g.failed)::int8 AS failed,
                            sum(g.undelivered)::int8 AS undelivered,
                            sum(g.settled)::int8 AS settled,
                            {} AS delivered_hist,
                            {} AS read_hist
                     FROM g
                     GROUP BY 1, 2, 3, 4) s
               LEFT JOIN f USING (bucket, direction, business, service_sid)"#,
            super::messages::reached_sent!("m."),
            super::messages::reached_delivered!("m."),
            super::messages::reached_read!("m."),
            binned_messages(""),
            hist_sql("g.delivered_bin", "sum(g.total)"),
            hist_sql("g.read_bin", "sum(g.total)"),
        )
    }
}

/// The counts `message_stats_5m` keeps per bucket, direction and sender, read and written
/// by the names in [`COUNT_COLUMNS`].
#[derive(Debug, Clone, FromRow)]
struct BucketCounts {
    #[sqlx(flatten)]
    funnel: Funnel,
    delivered_hist: Vec<i64>,
    read_hist: Vec<i64>,
}

/// The columns of [`BucketCounts`], in the order [`BucketCounts::push_binds`] binds them.
const COUNT_COLUMNS: &str =
    "total, sent, delivered, read, failed, undelivered, delivered_hist, read_hist";

impl BucketCounts {
    fn push_binds(&self, b: &mut sqlx::query_builder::Separated<'_, sqlx::Postgres, &str>) {
        let f = &self.funnel;
        b.push_bind(f.total)
            .push_bind(f.sent)
            .push_bind(f.delivered)
            .push_bind(f.read)
            .push_bind(f.failed)
            .push_bind(f.undelivered)
            .push_bind(&self.delivered_hist)
            .push_bind(&self.read_hist);
    }
}

#[derive(Debug, Clone, FromRow)]
struct BucketAggregate {
    bucket: DateTime<Utc>,
    direction: String,
    business: String,
    service_sid: String,
    #[sqlx(flatten)]
    counts: BucketCounts,
    /// Outbound messages now sent, delivered, read, failed or undelivered (the alert rule's
    /// denominator, see [`failure_counts`]).
    settled: i64,
    /// Outbound failures by error code (-1: none given), with `fail_counts` alongside.
    fail_codes: Vec<i32>,
    fail_counts: Vec<i64>,
}

impl BucketAggregate {
    /// Binds the key, the counts and `settled`, in the order of `message_stats_5m`'s
    /// `(bucket, direction, business, service_sid, {COUNT_COLUMNS}, settled)`.
    fn push_binds(&self, b: &mut sqlx::query_builder::Separated<'_, sqlx::Postgres, &str>) {
        b.push_bind(self.bucket)
            .push_bind(&self.direction)
            .push_bind(&self.business)
            .push_bind(&self.service_sid);
        self.counts.push_binds(b);
        b.push_bind(self.settled);
    }
}

/// What a recompute did: the buckets it rewrote (as ranges) and how many messages it read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recomputed {
    pub buckets: Vec<Range>,
    pub messages_read: i64,
}

impl Recomputed {
    fn add(&mut self, o: Recomputed) {
        self.buckets.extend(o.buckets);
        self.messages_read += o.messages_read;
    }
}

/// Recomputes the buckets of each range `[start, end)` (bucket-aligned, see [`ranges`]) from
/// `messages`: from [`slice_floor`] on through their slices (all of them recomputed), earlier
/// ones directly. `now` is the database's clock. The first run, and tests, use it.
pub async fn recompute(
    pool: &PgPool,
    ranges_: &[Range],
    now: DateTime<Utc>,
) -> sqlx::Result<Recomputed> {
    let floor = slice_floor(now);
    let mut done = Recomputed::default();
    for &(start, end) in ranges_ {
        if start < floor {
            done.add(recompute_buckets(pool, &[(start, end.min(floor))]).await?);
        }
        if end > floor {
            done.add(recompute_slices(pool, &[(start.max(floor), end)]).await?);
        }
    }
    Ok(done)
}

/// Recomputes what the messages created at the slice starts `changed` count in, at `now` (the
/// database's clock): a slice from [`slice_horizon`] on is recomputed from `messages` and its
/// bucket summed from its slices; an older one has its whole bucket recomputed (through its
/// slices from [`slice_floor`] on, directly before). This is the roll-up pass's work: when
/// callbacks concern the last seconds, as under sustained traffic, a pass reads a slice or two
/// of messages rather than the whole current bucket.
pub async fn recompute_changed(
    pool: &PgPool,
    changed: &BTreeSet<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> sqlx::Result<Recomputed> {
    let (floor, horizon) = (slice_floor(now), slice_horizon(now));
    let whole = |r: std::collections::btree_set::Range<'_, DateTime<Utc>>| {
        ranges(&r.map(|&s| bucket_of(s)).collect())
    };
    let mut done = recompute_buckets(pool, &whole(changed.range(..floor))).await?;
    done.add(recompute_slices(pool, &whole(changed.range(floor..horizon))).await?);
    let recent: BTreeSet<_> = changed.range(horizon..).copied().collect();
    done.add(recompute_slices(pool, &merge(&recent, SLICE)).await?);
    Ok(done)
}

/// Deletes the slices before [`slice_floor`] at `now` (the database's clock).
pub async fn prune_slices(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM message_stats_slices WHERE slice < $1")
            .bind(slice_floor(now))
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// The aggregates of messages created in `[start, end)`, per `grain`.
///
/// The counting is a read (it takes no transaction id); only replacing rows is a write, in a
/// transaction of a few milliseconds, because a long write transaction would hold back the
/// live horizon (src/storage/live_log.rs) and with it every browser's updates. Each range is
/// read on its own, so the `created_at` index bounds the work. A message that changes between
/// the read and the write is in the change log after the position being processed, so it is
/// counted again on the next pass.
async fn aggregate(
    pool: &PgPool,
    grain: Grain,
    (start, end): Range,
) -> sqlx::Result<Vec<BucketAggregate>> {
    sqlx::query_as(sqlx::AssertSqlSafe(aggregate_sql(grain)))
        .bind(start)
        .bind(end)
        .fetch_all(pool)
        .await
}

fn messages_in(rows: &[BucketAggregate]) -> i64 {
    rows.iter().map(|a| a.counts.funnel.total).sum()
}

/// Recomputes whole buckets from `messages`, a range at a time.
async fn recompute_buckets(pool: &PgPool, ranges_: &[Range]) -> sqlx::Result<Recomputed> {
    let mut done = Recomputed::default();
    for &range in ranges_ {
        let rows = aggregate(pool, Grain::Bucket, range).await?;
        done.messages_read += messages_in(&rows);
        let mut tx = pool.begin().await?;
        write_buckets(&mut tx, range, &rows).await?;
        tx.commit().await?;
        done.buckets.push(range);
    }
    Ok(done)
}

/// Recomputes the slices of `ranges_` (slice-aligned) from `messages`, then the buckets that
/// hold them from their slices. Ranges are taken at most an hour's span and
/// [`RANGES_PER_TRANSACTION`] at a time, each group in one short transaction.
async fn recompute_slices(pool: &PgPool, ranges_: &[Range]) -> sqlx::Result<Recomputed> {
    let mut done = Recomputed::default();
    let mut rest = ranges_;
    while !rest.is_empty() {
        let mut span = TimeDelta::zero();
        let take = rest
            .iter()
            .take(RANGES_PER_TRANSACTION)
            .take_while(|(a, b)| {
                span += *b - *a;
                span <= MAX_RANGE
            })
            .count()
            .max(1);
        let (group, later) = rest.split_at(take);
        rest = later;
        let mut computed = Vec::with_capacity(group.len());
        for &range in group {
            let rows = aggregate(pool, Grain::Slice, range).await?;
            done.messages_read += messages_in(&rows);
            computed.push((range, rows));
        }
        let buckets = buckets_of(group);
        let mut tx = pool.begin().await?;
        for (range, rows) in &computed {
            write_slices(&mut tx, *range, rows).await?;
        }
        for &bucket_range in &buckets {
            let slices: Vec<BucketAggregate> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT slice AS bucket, direction, business, service_sid, {COUNT_COLUMNS}, \
                        settled, fail_codes, fail_counts \
                 FROM message_stats_slices WHERE slice >= $1 AND slice < $2"
            )))
            .bind(bucket_range.0)
            .bind(bucket_range.1)
            .fetch_all(&mut *tx)
            .await?;
            write_buckets(&mut tx, bucket_range, &sum_into_buckets(slices)).await?;
        }
        tx.commit().await?;
        done.buckets.extend(buckets);
    }
    Ok(done)
}

/// Sums slice rows into their buckets' rows: counts, histograms (element by element) and
/// failures by code. Ordered by bucket, direction, business and sender, codes ascending.
fn sum_into_buckets(slices: Vec<BucketAggregate>) -> Vec<BucketAggregate> {
    type Key = (DateTime<Utc>, String, String, String);
    let mut sums: BTreeMap<Key, (BucketAggregate, BTreeMap<i32, i64>)> = BTreeMap::new();
    for s in slices {
        let key = (
            bucket_of(s.bucket),
            s.direction.clone(),
            s.business.clone(),
            s.service_sid.clone(),
        );
        let (sum, fails) = sums.entry(key).or_insert_with(|| {
            (
                BucketAggregate {
                    bucket: bucket_of(s.bucket),
                    direction: s.direction.clone(),
                    business: s.business.clone(),
                    service_sid: s.service_sid.clone(),
                    counts: BucketCounts {
                        funnel: Funnel::default(),
                        delivered_hist: vec![0; HIST_LEN],
                        read_hist: vec![0; HIST_LEN],
                    },
                    settled: 0,
                    fail_codes: Vec::new(),
                    fail_counts: Vec::new(),
                },
                BTreeMap::new(),
            )
        });
        sum.counts.funnel += s.counts.funnel;
        sum.settled += s.settled;
        add_into(&mut sum.counts.delivered_hist, &s.counts.delivered_hist);
        add_into(&mut sum.counts.read_hist, &s.counts.read_hist);
        for (code, n) in s.fail_codes.iter().zip(&s.fail_counts) {
            *fails.entry(*code).or_default() += n;
        }
    }
    sums.into_values()
        .map(|(mut sum, fails)| {
            (sum.fail_codes, sum.fail_counts) = fails.into_iter().unzip();
            sum
        })
        .collect()
}

/// Adds `from` into `into` element by element, growing `into` if `from` is longer.
fn add_into(into: &mut Vec<i64>, from: &[i64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    into.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

/// Deletes the rows of roll-up `table` whose `column` lies in `[start, end)`, before they are
/// written again. Both names are string literals at the call sites, never input.
async fn clear_range(
    tx: &mut PgConnection,
    table: &'static str,
    column: &'static str,
    (start, end): Range,
) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE {column} >= $1 AND {column} < $2"
    )))
    .bind(start)
    .bind(end)
    .execute(tx)
    .await?;
    Ok(())
}

/// Replaces the slice rows of `[start, end)` with `rows`.
async fn write_slices(
    tx: &mut PgConnection,
    (start, end): Range,
    rows: &[BucketAggregate],
) -> sqlx::Result<()> {
    clear_range(tx, "message_stats_slices", "slice", (start, end)).await?;
    // 15 binds a row: chunks keep the count under PostgreSQL's 65,535.
    for rows in rows.chunks(4000) {
        let mut q = sqlx::QueryBuilder::new(format!(
            "INSERT INTO message_stats_slices (slice, direction, business, service_sid, \
             {COUNT_COLUMNS}, settled, fail_codes, fail_counts) "
        ));
        q.push_values(rows, |mut b, a| {
            a.push_binds(&mut b);
            b.push_bind(&a.fail_codes).push_bind(&a.fail_counts);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Replaces the roll-up rows and failure rows of the buckets in `[start, end)` with `rows`.
async fn write_buckets(
    tx: &mut PgConnection,
    (start, end): Range,
    rows: &[BucketAggregate],
) -> sqlx::Result<()> {
    let fails: Vec<(DateTime<Utc>, &str, &str, i32, i64)> = rows
        .iter()
        .flat_map(|a| {
            a.fail_codes.iter().zip(&a.fail_counts).map(|(code, n)| {
                (
                    a.bucket,
                    a.business.as_str(),
                    a.service_sid.as_str(),
                    *code,
                    *n,
                )
            })
        })
        .collect();
    clear_range(tx, "message_stats_5m", "bucket", (start, end)).await?;
    clear_range(tx, "message_failures_5m", "bucket", (start, end)).await?;
    // Chunks keep the bind count under PostgreSQL's 65,535 however many senders there are.
    for rows in rows.chunks(4000) {
        let mut q = sqlx::QueryBuilder::new(format!(
            "INSERT INTO message_stats_5m (bucket, direction, business, service_sid, \
             {COUNT_COLUMNS}, settled) "
        ));
        q.push_values(rows, |mut b, a| a.push_binds(&mut b));
        q.build().execute(&mut *tx).await?;
    }
    for fails in fails.chunks(10_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO message_failures_5m (bucket, business, service_sid, error_code, messages) ",
        );
        q.push_values(fails, |mut b, (bucket, business, service, code, n)| {
            b.push_bind(bucket)
                .push_bind(business)
                .push_bind(service)
                .push_bind(code)
                .push_bind(n);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Every hour from the oldest message to now, as ranges for [`recompute`] (the first run).
pub async fn all_ranges<'e, E: PgExecutor<'e>>(e: E) -> sqlx::Result<Vec<Range>> {
    let hours: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT generate_series(date_trunc('hour', min(created_at)), date_trunc('hour', now()), interval '1 hour') \
         FROM messages HAVING count(*) > 0",
    )
    .fetch_all(e)
    .await?;
    Ok(hours.into_iter().map(|h| (h, h + MAX_RANGE)).collect())
}

#[derive(Debug, Clone, FromRow)]
struct StatsRow {
    bucket: DateTime<Utc>,
    direction: String,
    #[sqlx(flatten)]
    counts: BucketCounts,
}

/// A window's totals from the roll-ups.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub funnel: Funnel,
    pub delivered_hist: [i64; HIST_LEN],
    pub read_hist: [i64; HIST_LEN],
    /// Messages per bucket, oldest first.
    pub traffic: Vec<super::overview::TrafficBucket>,
}

/// Outbound messages per sender (the messaging service, else the sending number) in the
/// buckets from `since` (a bucket start) on: `(sender, failed or undelivered, settled)`.
///
/// Read from the roll-ups, so it costs a few rows per sender and bucket, however busy the
/// window, and is as current as the roll-up's last pass. A bucket with a row that the previous
/// binary wrote (its `settled` is NULL: a rolling upgrade) is counted from `messages` instead.
pub async fn failure_counts(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(String, i64, i64)>> {
    let secs = BUCKET.num_seconds();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH r AS (
             SELECT bucket, CASE WHEN service_sid <> '' THEN service_sid ELSE business END AS sender,
                    failed + undelivered AS failed, settled
               FROM message_stats_5m
              WHERE bucket >= $1 AND direction = 'outbound'),
         stale AS (SELECT DISTINCT bucket FROM r WHERE settled IS NULL)
         SELECT sender, sum(failed)::int8, sum(settled)::int8
           FROM (SELECT sender, failed, settled FROM r
                  WHERE bucket NOT IN (SELECT bucket FROM stale)
                 UNION ALL
                 SELECT COALESCE(m.messaging_service_sid, m.from_addr, ''),
                        (m.status IN ('failed', 'undelivered'))::int::int8, ({SETTLED})::int::int8
                   FROM stale s
                   JOIN messages m ON m.created_at >= s.bucket
                                  AND m.created_at < s.bucket + interval '{secs} seconds'
                  WHERE m.direction = 'outbound') c
          GROUP BY 1"
    )))
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Sums the buckets in `[since, until)` (both bucket starts), optionally for one sender.
pub async fn totals(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Totals> {
    let rows: Vec<StatsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT bucket, direction, {COUNT_COLUMNS} \
         FROM message_stats_5m WHERE bucket >= $1 AND bucket < $2 \
           AND ($3::text IS NULL OR business = $3 OR service_sid = $3) \
         ORDER BY bucket"
    )))
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_all(pool)
    .await?;
    let mut t = Totals::default();
    for r in rows {
        match t.traffic.last_mut() {
            Some(last) if last.bucket == r.bucket => {}
            _ => t.traffic.push(super::overview::TrafficBucket {
                bucket: r.bucket,
                outbound: 0,
                inbound: 0,
                failed: 0,
            }),
        }
        let slot = t.traffic.last_mut().expect("just pushed");
        let c = &r.counts;
        if r.direction == "inbound" {
            slot.inbound += c.funnel.total;
            continue;
        }
        slot.outbound += c.funnel.total;
        slot.failed += c.funnel.failed + c.funnel.undelivered;
        t.funnel += c.funnel;
        for (i, v) in c.delivered_hist.iter().enumerate().take(HIST_LEN) {
            t.delivered_hist[i] += v;
        }
        for (i, v) in c.read_hist.iter().enumerate().take(HIST_LEN) {
            t.read_hist[i] += v;
        }
    }
    Ok(t)
}

/// Failures by code in `[since, until)` from the roll-ups.
pub async fn failures(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<Vec<(Option<i32>, i64)>> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT error_code, sum(messages)::bigint FROM message_failures_5m \
         WHERE bucket >= $1 AND bucket < $2 AND ($3::text IS NULL OR business = $3 OR service_sid = $3) \
         GROUP BY error_code",
    )
    .bind(since)
    .bind(until)
    .bind(sender)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, n)| ((c >= 0).then_some(c), n))
        .collect())
}

/// The same histogram over raw messages created in `[since, until)` (for the partial buckets
/// at a window's edges).
pub async fn raw_hists(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sender: Option<&str>,
) -> sqlx::Result<([i64; HIST_LEN], [i64; HIST_LEN])> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {}, {} FROM {} m",
            hist_sql("m.delivered_bin", "count(*)"),
            hist_sql("m.read_bin", "count(*)"),
            binned_messages(
                " AND direction = 'outbound' \
                 AND ($3::text IS NULL OR from_addr = $3 OR messaging_service_sid = $3)"
            )
        )
    });
    let (d, r): (Vec<i64>, Vec<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(since)
        .bind(until)
        .bind(sender)
        .fetch_one(pool)
        .await?;
    let mut dh = [0; HIST_LEN];
    let mut rh = [0; HIST_LEN];
    dh.iter_mut().zip(d).for_each(|(a, b)| *a = b);
    rh.iter_mut().zip(r).for_each(|(a, b)| *a = b);
    Ok((dh, rh))
}

/// The `q`-quantile of a histogram, interpolated linearly inside its bucket; `None` if empty.
pub fn quantile(hist: &[i64; HIST_LEN], q: f64) -> Option<f64> {
    let n: i64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let target = q * n as f64;
    let mut seen = 0.0;
    for (i, c) in hist.iter().enumerate() {
        let c = *c as f64;
        if c > 0.0 && seen + c >= target {
            let low = if i == 0 { 0.0 } else { HIST_BOUNDS[i - 1] };
            let high = HIST_BOUNDS.get(i).copied().unwrap_or(low * 2.0);
            return Some(low + (high - low) * ((target - seen) / c).clamp(0.0, 1.0));
        }
        seen += c;
    }
    Some(HIST_BOUNDS[HIST_BOUNDS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_buckets_merge_into_ranges_of_at_most_an_hour() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            bucket_of(t("2026-11-24T10:17:42Z")),
            t("2026-11-24T10:15:00Z")
        );
        let mut set = std::collections::BTreeSet::new();
        for m in [0, 5, 10, 30] {
            set.insert(t("2026-11-24T10:00:00Z") + TimeDelta::minutes(m));
        }
        assert_eq!(
            ranges(&set),
            [
                (t("2026-11-24T10:00:00Z"), t("2026-11-24T10:15:00Z")),
                (t("2026-11-24T10:30:00Z"), t("2026-11-24T10:35:00Z")),
            ]
        );
        let day: std::collections::BTreeSet<_> = (0..288)
            .map(|i| t("2026-11-24T00:00:00Z") + BUCKET * i)
            .collect();
        let r = ranges(&day);
        assert_eq!(r.len(), 24);
        assert!(r.iter().all(|(a, b)| *b - *a == MAX_RANGE));
        assert!(ranges(&Default::default()).is_empty());
    }

    fn slice_row(
        at: &str,
        business: &str,
        total: i64,
        hist_at: usize,
        fails: &[(i32, i64)],
    ) -> BucketAggregate {
        let mut hist = vec![0; HIST_LEN];
        hist[hist_at] = total;
        BucketAggregate {
            bucket: at.parse().unwrap(),
            direction: "outbound".into(),
            business: business.into(),
            service_sid: String::new(),
            counts: BucketCounts {
                funnel: Funnel {
                    total,
                    sent: total,
                    delivered: total - 1,
                    read: 1,
                    failed: fails.iter().map(|f| f.1).sum(),
                    undelivered: 0,
                },
                delivered_hist: hist.clone(),
                read_hist: hist,
            },
            settled: total,
            fail_codes: fails.iter().map(|f| f.0).collect(),
            fail_counts: fails.iter().map(|f| f.1).collect(),
        }
    }

    #[test]
    fn slices_sum_into_their_buckets() {
        let a = "whatsapp:+14155238886";
        let b = "whatsapp:+14155550100";
        let sums = sum_into_buckets(vec![
            slice_row("2026-11-24T10:04:50Z", a, 5, 1, &[(63016, 2)]),
            slice_row("2026-11-24T10:00:00Z", a, 3, 2, &[(-1, 1), (63016, 1)]),
            slice_row("2026-11-24T10:00:10Z", b, 4, 2, &[]),
            slice_row("2026-11-24T10:05:00Z", a, 7, 0, &[(30008, 3)]),
        ]);
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let keys: Vec<_> = sums
            .iter()
            .map(|s| (s.bucket, s.business.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (t("2026-11-24T10:00:00Z"), a),
                (t("2026-11-24T10:00:00Z"), b),
                (t("2026-11-24T10:05:00Z"), a),
            ]
        );
        let first = &sums[0];
        assert_eq!(
            first.counts.funnel,
            Funnel {
                total: 8,
                sent: 8,
                delivered: 6,
                read: 2,
                failed: 4,
                undelivered: 0
            }
        );
        assert_eq!(first.settled, 8);
        let mut hist = vec![0; HIST_LEN];
        (hist[1], hist[2]) = (5, 3);
        assert_eq!(first.counts.delivered_hist, hist);
        assert_eq!(first.counts.read_hist, hist);
        assert_eq!(first.fail_codes, [-1, 63016]);
        assert_eq!(first.fail_counts, [1, 3]);
        assert!(sums[1].fail_codes.is_empty() && sums[1].fail_counts.is_empty());
        assert_eq!(
            (
                sums[2].fail_codes.as_slice(),
                sums[2].fail_counts.as_slice()
            ),
            (&[30008][..], &[3][..])
        );
        assert!(sum_into_buckets(Vec::new()).is_empty());
    }

    #[test]
    fn slices_and_horizons_align_with_buckets() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            slice_of(t("2026-11-24T10:17:49.999Z")),
            t("2026-11-24T10:17:40Z")
        );
        assert_eq!(BUCKET.num_seconds() % SLICE.num_seconds(), 0);
        assert_eq!(
            slice_horizon(t("2026-11-24T10:17:49Z")),
            t("2026-11-23T10:15:00Z")
        );
        let slices: BTreeSet<_> = [0, 10, 20, 290, 300, 600]
            .into_iter()
            .map(|s| t("2026-11-24T10:00:00Z") + TimeDelta::seconds(s))
            .collect();
        let r = merge(&slices, SLICE);
        assert_eq!(
            r,
            [
                (t("2026-11-24T10:00:00Z"), t("2026-11-24T10:00:30Z")),
                (t("2026-11-24T10:04:50Z"), t("2026-11-24T10:05:10Z")),
                (t("2026-11-24T10:10:00Z"), t("2026-11-24T10:10:10Z")),
            ]
        );
        assert_eq!(
            buckets_of(&r),
            [(t("2026-11-24T10:00:00Z"), t("2026-11-24T10:15:00Z")),]
        );
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let mut h = [0i64; HIST_LEN];
        assert_eq!(quantile(&h, 0.5), None);
        h[2] = 10; // 5–10 s
        assert_eq!(quantile(&h, 0.5), Some(7.5));
        assert_eq!(quantile(&h, 1.0), Some(10.0));
        h[0] = 10; // 0–2 s
        assert_eq!(quantile(&h, 0.25), Some(1.0));
        assert!(
            hist_sql("b", "count(*)")
                .starts_with("ARRAY[COALESCE(count(*) FILTER (WHERE b = 0), 0), ")
        );
        assert!(
            hist_sql("b", "sum(n)")
                .ends_with("COALESCE(sum(n) FILTER (WHERE b = 14), 0)]::bigint[]")
        );
        assert_eq!(
            bin_sql("a", "b"),
            "(14 - width_bucket(a - b, ARRAY['-86400 s', '-21600 s', '-7200 s', '-3600 s', \
             '-1800 s', '-600 s', '-300 s', '-120 s', '-60 s', '-30 s', '-20 s', '-10 s', \
             '-5 s', '-2 s']::interval[]))"
        );
    }
}
