//! The overview's roll-ups: the first run computes every bucket, later runs follow the
//! change log, and a window read through them matches one read from the messages themselves.

use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::PgPool;
use wadash::domain::record::{EventRecord, MessageFacts, dedup_key, params_json};
use wadash::domain::{Direction, EventSource, MessageSid, MessageStatus, StatusReport};
use wadash::storage::{messages, overview, rollups};

/// Messages over the last 30 hours with every status, some from a second sender.
async fn seed(pool: &PgPool) {
    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, status, status_rank, error_code,
                                 sent_at, delivered_at, read_at, failed_at, created_at)
           SELECT 'SM' || md5(g::text),
                  CASE WHEN g % 7 = 0 THEN 'inbound' ELSE 'outbound' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+919900000001'
                       WHEN g % 3 = 0 THEN 'whatsapp:+14155550100' ELSE 'whatsapp:+14155238886' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+14155238886' ELSE 'whatsapp:+919900000001' END,
                  s.status, s.rank, s.code,
                  CASE WHEN s.rank >= 40 AND s.rank <> 52 THEN c + interval '1 second' END,
                  CASE WHEN s.rank >= 60 AND s.rank <> 65 THEN c + (g % 50) * interval '1 second' END,
                  CASE WHEN s.rank = 70 THEN c + (g % 900) * interval '1 second' END,
                  CASE WHEN s.rank IN (51, 52) THEN c + interval '5 seconds' END,
                  c
           FROM generate_series(1, 3000) g,
                LATERAL (SELECT now() - (g * interval '36 seconds') AS c) t,
                LATERAL (SELECT * FROM (VALUES
                   (g % 7 = 0, 'received', 65::smallint, NULL::int),
                   (g % 7 <> 0 AND g % 10 = 1, 'failed', 52::smallint, 63016),
                   (g % 7 <> 0 AND g % 10 = 2, 'undelivered', 51::smallint, 30003),
                   (g % 7 <> 0 AND g % 10 = 3, 'sent', 40::smallint, NULL),
                   (g % 7 <> 0 AND g % 10 IN (4, 5, 6), 'delivered', 60::smallint, NULL),
                   (g % 7 <> 0 AND g % 10 IN (0, 7, 8, 9), 'read', 70::smallint, NULL)
                 ) v(ok, status, rank, code) WHERE ok) s"#,
    )
    .execute(pool)
    .await
    .unwrap();
}

/// One roll-up pass (none other runs in these tests).
async fn pass(pool: &PgPool) -> wadash::jobs::rollup::Pass {
    wadash::jobs::rollup::run_once(pool)
        .await
        .unwrap()
        .expect("no other instance holds the roll-up's lock")
}

fn read_callback(sid: &str, at: DateTime<Utc>) -> EventRecord {
    let pairs = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("MessageStatus".to_owned(), "read".to_owned()),
    ];
    EventRecord {
        sid: MessageSid::parse(sid).unwrap(),
        direction: Direction::Outbound,
        facts: MessageFacts::default(),
        report: StatusReport {
            status: MessageStatus::Read,
            error_code: None,
            error_message: None,
            at,
        },
        params: params_json(&pairs),
        source: EventSource::StatusCallback,
        dedup_key: dedup_key(EventSource::StatusCallback, &pairs),
        received_at: at,
    }
}

#[sqlx::test]
async fn rollups_match_the_messages_and_follow_changes(pool: PgPool) {
    seed(&pool).await;
    let now = Utc::now();
    let until = now.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(1);
    let since = until - Duration::hours(24);
    let step = std::time::Duration::from_secs(3600);

    // Nothing computed yet: the first run computes every bucket.
    let first = pass(&pool).await;
    assert!(first.buckets >= 30 * 12, "{first:?}");
    assert_eq!(first.messages_read, 3000);
    // Slices are kept for the last day's buckets (and an hour before) only.
    let oldest: DateTime<Utc> = sqlx::query_scalar("SELECT min(slice) FROM message_stats_slices")
        .fetch_one(&pool)
        .await
        .unwrap();
    // (The horizon moves with the clock: between where it was before the pass and a bucket
    // after where it is now.)
    let (earliest, latest) = (
        rollups::slice_floor(now),
        rollups::slice_floor(Utc::now()) + rollups::BUCKET,
    );
    assert!(
        oldest >= earliest && oldest < latest,
        "{oldest} against {earliest}–{latest}"
    );
    let check = |sender: Option<&'static str>| {
        let pool = pool.clone();
        async move {
            let via = overview::window_stats(&pool, since, until, step, sender, Utc::now())
                .await
                .unwrap();
            assert!(via.estimated, "24 hours are read from the roll-ups");
            let raw = messages::funnel(&pool, Some(since), Some(until), sender)
                .await
                .unwrap();
            assert_eq!(via.funnel, raw, "sender {sender:?}");
            let raw_fail = overview::failures_by_code(&pool, since, until, sender)
                .await
                .unwrap();
            assert_eq!(via.failures, raw_fail);
            let raw_traffic = overview::traffic(&pool, since, until, step, sender)
                .await
                .unwrap();
            let sum = |v: &[overview::TrafficBucket]| -> (i64, i64) {
                v.iter()
                    .fold((0, 0), |a, b| (a.0 + b.outbound, a.1 + b.inbound))
            };
            assert_eq!(sum(&via.traffic), sum(&raw_traffic));
            let exact = overview::timings(&pool, since, until, sender)
                .await
                .unwrap();
            let (est, real) = (
                via.timings.delivered_p50.unwrap(),
                exact.delivered_p50.unwrap(),
            );
            assert!(
                (est - real).abs() <= 10.0,
                "median to delivered ≈ {est} vs {real}"
            );
            via
        }
    };
    let all = check(None).await;
    assert!(all.funnel.total > 1000 && all.funnel.failed > 0);
    check(Some("whatsapp:+14155550100")).await;

    // A message from five hours ago is read now: its slice is recomputed from the change log,
    // and its bucket from its slices.
    let in_period = |hours: i32, width: Duration| {
        let pool = pool.clone();
        async move {
            let (sid, created): (String, DateTime<Utc>) = sqlx::query_as(
                "SELECT sid, created_at FROM messages WHERE status = 'delivered' \
                 AND created_at < now() - make_interval(hours => $1) \
                 AND created_at > now() - make_interval(hours => $1 + 1) LIMIT 1",
            )
            .bind(hours)
            .fetch_one(&pool)
            .await
            .unwrap();
            let start = created.duration_trunc(width).unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM messages WHERE created_at >= $1 AND created_at < $2",
            )
            .bind(start)
            .bind(start + width)
            .fetch_one(&pool)
            .await
            .unwrap();
            (sid, n)
        }
    };
    let (sid, in_slice) = in_period(5, rollups::SLICE).await;
    wadash::storage::events::apply_batch(&pool, &[read_callback(&sid, now)])
        .await
        .unwrap();
    let done = pass(&pool).await;
    assert_eq!(done.buckets, 1);
    assert_eq!(
        done.messages_read, in_slice,
        "only the changed slice is read"
    );
    let after = check(None).await;
    assert_eq!(after.funnel.read, all.funnel.read + 1);

    // One from 26 hours ago, older than the slices: its whole bucket is recomputed.
    let (sid, in_bucket) = in_period(26, rollups::BUCKET).await;
    wadash::storage::events::apply_batch(&pool, &[read_callback(&sid, now)])
        .await
        .unwrap();
    let done = pass(&pool).await;
    assert_eq!((done.buckets, done.messages_read), (1, in_bucket));
    assert!(in_bucket > 1, "{in_bucket}");
    let since_26h = since - Duration::hours(6);
    let via = overview::window_stats(&pool, since_26h, until, step, None, Utc::now())
        .await
        .unwrap();
    let raw = messages::funnel(&pool, Some(since_26h), Some(until), None)
        .await
        .unwrap();
    assert_eq!(
        via.funnel, raw,
        "30 hours, through the roll-ups and from the messages"
    );

    // Nothing changed since: nothing recomputed.
    let done = pass(&pool).await;
    assert_eq!((done.buckets, done.messages_read), (0, 0));

    // Slices that no instance reads any more are pruned.
    let later = Utc::now() + rollups::SLICE_SPAN + Duration::hours(2);
    assert!(rollups::prune_slices(&pool, later).await.unwrap() > 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM message_stats_slices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// The first pass after an upgrade from a binary without slices, which kept every bucket
/// current up to its change-log position: it fills the slices from the slice floor on (the
/// last day and an hour), not all history, and goes on from the previous binary's position,
/// so a change made after that position is still counted.
#[sqlx::test]
async fn after_an_upgrade_the_first_pass_fills_only_the_recent_slices_and_follows_on(pool: PgPool) {
    use wadash::storage::live_log::{Position, current_horizon};
    seed(&pool).await;
    // The previous binary's state: every bucket computed, its position at the log's horizon.
    let before = Utc::now();
    let all = rollups::all_ranges(&pool).await.unwrap();
    rollups::recompute(&pool, &all, before).await.unwrap();
    sqlx::query("TRUNCATE message_stats_slices")
        .execute(&pool)
        .await
        .unwrap();
    let xid = current_horizon(&pool).await.unwrap();
    sqlx::query("INSERT INTO instance_settings (key, value) VALUES ('rollup_position', $1)")
        .bind(Position { xid, id: 0 }.to_string())
        .execute(&pool)
        .await
        .unwrap();
    // Then a message of 28 hours ago, older than the slices, is read.
    let (sid, created): (String, DateTime<Utc>) = sqlx::query_as(
        "SELECT sid, created_at FROM messages WHERE status = 'delivered' \
         AND created_at < now() - interval '28 hours' LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    wadash::storage::events::apply_batch(&pool, &[read_callback(&sid, Utc::now())])
        .await
        .unwrap();

    let since = |t: DateTime<Utc>| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages WHERE created_at >= $1")
                .bind(t)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let done = pass(&pool).await;
    let after = Utc::now();
    // (The floor moves with the clock: between where it was before the pass and after.)
    let most = since(rollups::slice_floor(before)).await;
    let least = since(rollups::slice_floor(after)).await;
    assert!(
        (least..=most).contains(&done.messages_read) && most < 3000,
        "{done:?}: {least}–{most} messages since the slice floor"
    );
    // The next pass follows the log from the previous binary's position: the read message's
    // bucket is recomputed whole.
    let bucket = rollups::bucket_of(created);
    let in_bucket: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(bucket)
    .bind(bucket + rollups::BUCKET)
    .fetch_one(&pool)
    .await
    .unwrap();
    let done = pass(&pool).await;
    assert_eq!((done.buckets, done.messages_read), (1, in_bucket));
    let until = Utc::now().duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(1);
    let from = until - Duration::hours(32);
    let via = overview::window_stats(
        &pool,
        from,
        until,
        std::time::Duration::from_secs(3600),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(via.estimated);
    let raw = messages::funnel(&pool, Some(from), Some(until), None)
        .await
        .unwrap();
    assert_eq!(via.funnel, raw);
    assert!(raw.read > 0);
}

/// A delivery or read time lands in the histogram bucket of the first bound at or above it,
/// exactly at the bounds too (a microsecond either side of each), in the roll-ups and in the
/// raw read of a window's edges alike; a time before creation counts in the first bucket and
/// a missing one in none.
#[sqlx::test]
async fn times_fall_into_histogram_buckets_exactly_at_their_bounds(pool: PgPool) {
    use wadash::storage::rollups::{BUCKET, HIST_BOUNDS, HIST_LEN};
    let bucket = rollups::bucket_of(Utc::now()) - Duration::hours(2);
    let micros = |seconds: f64| (seconds * 1e6) as i64;
    let mut delays: Vec<Option<i64>> = vec![None, Some(-3_000_000), Some(0)];
    for b in HIST_BOUNDS {
        delays.extend([Some(micros(b) - 1), Some(micros(b)), Some(micros(b) + 1)]);
    }
    let mut expected = [0i64; HIST_LEN];
    for d in delays.iter().flatten() {
        expected[HIST_BOUNDS.iter().filter(|b| micros(**b) < *d).count()] += 1;
    }
    assert_eq!(expected[0], 4);
    assert_eq!(expected[HIST_LEN - 1], 1);

    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, status, status_rank,
                                 delivered_at, read_at, created_at)
           SELECT 'SM' || md5(i::text), 'outbound', 'whatsapp:+14155238886', 'whatsapp:+919900000001',
                  'read', 70, c + d * interval '1 microsecond', c + d * interval '1 microsecond', c
           FROM unnest($1::bigint[]) WITH ORDINALITY AS t(d, i),
                LATERAL (SELECT $2::timestamptz + interval '1 minute' AS c) x"#,
    )
    .bind(&delays)
    .bind(bucket)
    .execute(&pool)
    .await
    .unwrap();

    rollups::recompute(&pool, &[(bucket, bucket + BUCKET)], Utc::now())
        .await
        .unwrap();
    let (delivered, read): (Vec<i64>, Vec<i64>) =
        sqlx::query_as("SELECT delivered_hist, read_hist FROM message_stats_5m WHERE bucket = $1")
            .bind(bucket)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(delivered, expected, "roll-up, delivered");
    assert_eq!(read, expected, "roll-up, read");

    let (d, r) = rollups::raw_hists(&pool, bucket, bucket + BUCKET, None)
        .await
        .unwrap();
    assert_eq!(d, expected, "raw, delivered");
    assert_eq!(r, expected, "raw, read");
}

/// Every roll-up row equals the counts computed here from the same messages: several senders
/// (one behind a messaging service), both directions, every funnel status, delivery and read
/// times drawn independently of each other (none, before creation, at and around the bounds,
/// several days), over three buckets.
///
/// Three hours ago the buckets are summed from their slices; thirty hours ago, beyond the
/// slices' day, they are counted from the messages directly.
#[sqlx::test]
async fn every_rollup_row_matches_counts_made_from_the_messages(pool: PgPool) {
    let first = rollups::bucket_of(Utc::now()) - Duration::hours(3);
    rows_match_counts_made_from_the_messages(&pool, first).await;
    let slices: i64 = sqlx::query_scalar("SELECT count(*) FROM message_stats_slices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(slices >= 3 * 30, "{slices} slice rows");
}

#[sqlx::test]
async fn every_rollup_row_older_than_the_slices_matches_the_messages(pool: PgPool) {
    let first = rollups::bucket_of(Utc::now()) - Duration::hours(30);
    rows_match_counts_made_from_the_messages(&pool, first).await;
    let slices: i64 = sqlx::query_scalar("SELECT count(*) FROM message_stats_slices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(slices, 0);
}

async fn rows_match_counts_made_from_the_messages(pool: &PgPool, first: DateTime<Utc>) {
    use std::collections::BTreeMap;
    use wadash::storage::rollups::{BUCKET, HIST_BOUNDS, HIST_LEN};
    let pool = pool.clone();
    let micros = |seconds: f64| (seconds * 1e6) as i64;
    let mut delays: Vec<Option<i64>> = vec![None, Some(-1), Some(0), Some(micros(259_207.0))];
    for b in HIST_BOUNDS {
        delays.extend([Some(micros(b) - 1), Some(micros(b)), Some(micros(b) + 1)]);
    }
    let statuses = [
        "queued",
        "sent",
        "delivered",
        "read",
        "failed",
        "undelivered",
    ];
    let senders = [
        ("whatsapp:+14155238886", None),
        ("whatsapp:+14155550100", None),
        (
            "whatsapp:+14155550100",
            Some("MG00000000000000000000000000000001"),
        ),
    ];
    struct Row {
        sid: String,
        direction: &'static str,
        from: &'static str,
        to: &'static str,
        service: Option<&'static str>,
        status: &'static str,
        sent: bool,
        delivered: Option<i64>,
        read: Option<i64>,
        code: Option<i32>,
        created: DateTime<Utc>,
    }
    let rows: Vec<Row> = (0..600usize)
        .map(|i| {
            let inbound = i % 7 == 0;
            let (sender, service) = senders[(i / 3) % senders.len()];
            Row {
                sid: format!("SM{i:032x}"),
                direction: if inbound { "inbound" } else { "outbound" },
                from: if inbound {
                    "whatsapp:+919900000001"
                } else {
                    sender
                },
                to: if inbound {
                    sender
                } else {
                    "whatsapp:+919900000001"
                },
                service: if inbound { None } else { service },
                status: if inbound {
                    "received"
                } else {
                    statuses[(i / 9) % statuses.len()]
                },
                sent: !inbound && i % 4 != 0,
                delivered: if inbound {
                    None
                } else {
                    delays[(i * 7) % delays.len()]
                },
                read: if inbound {
                    None
                } else {
                    delays[(i * 13 + 5) % delays.len()]
                },
                code: [None, Some(63016), Some(30008)][(i / 4) % 3],
                created: first + BUCKET * (i % 3) as i32 + Duration::seconds((i % 290) as i64),
            }
        })
        .collect();

    let col = |f: &dyn Fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, messaging_service_sid, status,
                                 status_rank, error_code, sent_at, delivered_at, read_at, created_at)
           SELECT sid, dir, fa, ta, svc, st, 0, code,
                  CASE WHEN s THEN c + interval '1 second' END,
                  c + d * interval '1 microsecond', c + r * interval '1 microsecond', c
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::bool[], $8::bigint[], $9::bigint[], $10::timestamptz[], $11::int4[])
                AS t(sid, dir, fa, ta, svc, st, s, d, r, c, code)"#,
    )
    .bind(col(&|r| Some(r.sid.clone())))
    .bind(col(&|r| Some(r.direction.to_owned())))
    .bind(col(&|r| Some(r.from.to_owned())))
    .bind(col(&|r| Some(r.to.to_owned())))
    .bind(col(&|r| r.service.map(str::to_owned)))
    .bind(col(&|r| Some(r.status.to_owned())))
    .bind(rows.iter().map(|r| r.sent).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.delivered).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.read).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.created).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.code).collect::<Vec<_>>())
    .execute(&pool)
    .await
    .unwrap();

    type Key = (DateTime<Utc>, String, String, String);
    /// Funnel counts (total, sent, delivered, read, failed, undelivered), settled, and both
    /// histograms.
    type Counts = ([i64; 7], [i64; HIST_LEN], [i64; HIST_LEN]);
    let bin = |d: i64| HIST_BOUNDS.iter().filter(|b| micros(**b) < d).count();
    let mut expected: BTreeMap<Key, Counts> = BTreeMap::new();
    let mut expected_failures: BTreeMap<(DateTime<Utc>, String, String, i32), i64> =
        BTreeMap::new();
    for r in &rows {
        let business = if r.direction == "inbound" {
            r.to
        } else {
            r.from
        };
        let key = (
            rollups::bucket_of(r.created),
            r.direction.to_owned(),
            business.to_owned(),
            r.service.unwrap_or("").to_owned(),
        );
        let e = expected.entry(key).or_default();
        let read = r.read.is_some() || r.status == "read";
        let delivered = r.delivered.is_some() || read || r.status == "delivered";
        let sent = r.sent || delivered || r.status == "sent";
        for (i, hit) in [
            true,
            sent,
            delivered,
            read,
            r.status == "failed",
            r.status == "undelivered",
            r.direction == "outbound"
                && ["sent", "delivered", "read", "failed", "undelivered"].contains(&r.status),
        ]
        .into_iter()
        .enumerate()
        {
            e.0[i] += i64::from(hit);
        }
        if let Some(d) = r.delivered {
            e.1[bin(d)] += 1;
        }
        if let Some(d) = r.read {
            e.2[bin(d)] += 1;
        }
        if r.direction == "outbound" && ["failed", "undelivered"].contains(&r.status) {
            *expected_failures
                .entry((
                    rollups::bucket_of(r.created),
                    business.to_owned(),
                    r.service.unwrap_or("").to_owned(),
                    r.code.unwrap_or(-1),
                ))
                .or_default() += 1;
        }
    }
    for b in 0..3 {
        let groups = expected
            .keys()
            .filter(|k| k.0 == first + BUCKET * b)
            .count();
        assert!(
            groups >= 4,
            "bucket {b}: three outbound senders and an inbound one"
        );
    }

    rollups::recompute(&pool, &[(first, first + BUCKET * 3)], Utc::now())
        .await
        .unwrap();
    #[allow(clippy::type_complexity)]
    let stored: Vec<(
        DateTime<Utc>,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        Vec<i64>,
        Vec<i64>,
    )> = sqlx::query_as(
        "SELECT bucket, direction, business, service_sid, total, sent, delivered, read, \
                    failed, undelivered, settled, delivered_hist, read_hist \
             FROM message_stats_5m ORDER BY bucket, direction, business, service_sid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let stored: BTreeMap<Key, Counts> = stored
        .into_iter()
        .map(|(b, dir, biz, svc, t, s, d, r, f, u, st, dh, rh)| {
            (
                (b, dir, biz, svc),
                (
                    [t, s, d, r, f, u, st],
                    dh.try_into().unwrap(),
                    rh.try_into().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(stored, expected);

    let failures: Vec<(DateTime<Utc>, String, String, i32, i64)> = sqlx::query_as(
        "SELECT bucket, business, service_sid, error_code, messages FROM message_failures_5m",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let failures: BTreeMap<_, _> = failures
        .into_iter()
        .map(|(b, biz, svc, code, n)| ((b, biz, svc, code), n))
        .collect();
    assert!(
        expected_failures.keys().any(|k| k.3 == -1) && expected_failures.len() > 9,
        "failures with and without a code, for every sender"
    );
    assert_eq!(failures, expected_failures);
}
