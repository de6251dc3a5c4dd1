//! The overview roll-up pass's cost once a bucket is busy: one pass after a callback for a
//! message of a recent bucket (its ten-second slice is recomputed, then the bucket from its
//! slices) against one after a callback for a message of a bucket older than the slices (the
//! whole bucket is recomputed from `messages`, which is what every pass did before slices).
//! Both buckets hold the same messages, in one database, measured in one run.
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres wadash_rollup_pass
//! cargo run --release --example rollup_pass -- postgres://postgres@127.0.0.1:5432/wadash_rollup_pass 600000
//! ```
//! Arguments: database URL (migrated; its messages, roll-ups and change log are emptied
//! first), messages per bucket (600,000: five minutes at 2,000 messages a second), rounds.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use wadash::domain::record::{EventRecord, MessageFacts, dedup_key, params_json};
use wadash::domain::{Direction, EventSource, MessageSid, MessageStatus, StatusReport};
use wadash::storage::rollups;

fn read_callback(sid: &str) -> EventRecord {
    let pairs = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("MessageStatus".to_owned(), "read".to_owned()),
    ];
    let at = Utc::now();
    EventRecord {
        sid: MessageSid::parse(sid).expect("a message sid"),
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

/// `n` delivered messages spread evenly over the bucket starting at `bucket`, sids prefixed
/// with `tag`.
async fn seed(pool: &PgPool, tag: &str, bucket: DateTime<Utc>, n: i64) -> anyhow::Result<()> {
    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, status, status_rank,
                                sent_at, delivered_at, created_at)
           SELECT 'SM' || $1 || lpad(to_hex(g), 31, '0'), 'outbound', 'whatsapp:+14155550100',
                  'whatsapp:+9198' || lpad(g::text, 8, '0'), 'delivered', 60,
                  c + interval '1 second', c + interval '3 seconds', c
           FROM generate_series(0, $3::bigint - 1) g,
                LATERAL (SELECT $2::timestamptz + g * (interval '300 seconds' / $3::float8) AS c) t"#,
    )
    .bind(tag)
    .bind(bucket)
    .bind(n)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks as read the `round`-th message from the end of the bucket tagged `tag` (always in
/// its last slice) and times the pass that follows.
async fn one_pass(pool: &PgPool, tag: &str, n: i64, round: i64) -> anyhow::Result<(Duration, i64)> {
    let sid = format!("SM{tag}{:031x}", n - 1 - round);
    wadash::storage::events::apply_batch(pool, &[read_callback(&sid)]).await?;
    let started = Instant::now();
    let pass = wadash::jobs::rollup::run_once(pool)
        .await?
        .expect("no other instance runs the roll-up");
    Ok((started.elapsed(), pass.messages_read))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("a database URL");
    let n: i64 = args.next().map_or(Ok(600_000), |a| a.parse())?;
    let rounds: i64 = args.next().map_or(Ok(9), |a| a.parse())?;
    let pool = PgPool::connect(&url).await?;
    sqlx::migrate!().run(&pool).await?;
    sqlx::query(
        "TRUNCATE messages, message_events, live_log, message_stats_5m, message_failures_5m, \
         message_stats_slices CASCADE",
    )
    .execute(&pool)
    .await?;
    sqlx::query("DELETE FROM instance_settings WHERE key LIKE 'rollup%'")
        .execute(&pool)
        .await?;

    let now = rollups::bucket_of(Utc::now());
    let recent = now - TimeDelta::hours(1);
    let old = rollups::slice_floor(Utc::now()) - TimeDelta::hours(1);
    seed(&pool, "a", recent, n).await?;
    seed(&pool, "b", old, n).await?;
    sqlx::query("VACUUM ANALYZE messages")
        .execute(&pool)
        .await?;

    let started = Instant::now();
    let first = wadash::jobs::rollup::run_once(&pool)
        .await?
        .expect("the lock");
    println!(
        "first pass (everything): {:.0} ms, {} messages, {} buckets",
        started.elapsed().as_secs_f64() * 1e3,
        first.messages_read,
        first.buckets
    );
    let (mut sliced, mut whole) = (Vec::new(), Vec::new());
    let (mut read_sliced, mut read_whole) = (0, 0);
    for round in 0..rounds {
        // Alternate, so that both see the same machine.
        let (t, r) = one_pass(&pool, "a", n, round).await?;
        sliced.push(t);
        read_sliced = r;
        let (t, r) = one_pass(&pool, "b", n, round).await?;
        whole.push(t);
        read_whole = r;
    }
    let (s, w) = (median(sliced), median(whole));
    println!(
        "a pass after one callback, bucket of {n} messages ({rounds} rounds, median):\n\
         \x20 recent bucket, slice recomputed:   {:>8.1} ms, {read_sliced} messages read\n\
         \x20 older bucket, bucket recomputed:   {:>8.1} ms, {read_whole} messages read\n\
         \x20 ratio: {:.0}x",
        s.as_secs_f64() * 1e3,
        w.as_secs_f64() * 1e3,
        w.as_secs_f64() / s.as_secs_f64()
    );
    Ok(())
}
