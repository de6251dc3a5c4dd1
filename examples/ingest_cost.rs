//! Deterministic cost of the `/sts` ingest statement: replays seed-shaped status callbacks,
//! parsed by wadash's own parser, through `storage::events::apply_batch` in fixed batches on
//! one connection, and reports WAL bytes per callback (and the backend's pid, so that its
//! instructions can be read from a PostgreSQL run under callgrind).
//!
//! Unlike `bench/ingest/run.sh` nothing here depends on timing: the same arguments give the
//! same batches, the same rows and (on a private, otherwise idle server) the same WAL.
//!
//! ```sh
//! cargo run --release --example ingest_cost -- postgres://postgres@127.0.0.1:5499/perf 2000 32
//! ```
//! Arguments: database URL (its schema is migrated; its messages and events are emptied
//! first), messages (each yields 2–4 callbacks, 10 % of callbacks sent twice), batch size.
//! Set `WARM=0` to measure without a first pass (default: the first half of the messages is
//! stored before the measured half, so that indexes and pages are not empty).

use std::time::Instant;

use sqlx::{Connection, PgConnection};

/// SplitMix64, as in bench/ingest: the same seed gives the same callbacks everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }
}

/// Form bodies in arrival order: each message's stages follow it within a window of later
/// messages, 10 % of the callbacks come twice, 5 % of the messages fail.
fn callbacks(messages: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let account = format!("AC{}", rng.hex(32));
    let install = format!("XE{}", rng.hex(32));
    let mut timeline: Vec<(u64, String)> = Vec::new();
    for m in 0..messages {
        let sid = format!("SM{}", rng.hex(32));
        let to = format!("+9199{:08}", rng.below(100_000_000));
        let stages: &[(&str, Option<u32>)] = if rng.below(20) == 0 {
            &[
                ("queued", None),
                ("sent", None),
                ("undelivered", Some(63049)),
            ]
        } else if rng.below(100) < 85 {
            &[
                ("queued", None),
                ("sent", None),
                ("delivered", None),
                ("read", None),
            ]
        } else {
            &[("queued", None), ("sent", None), ("delivered", None)]
        };
        let mut t = (m as u64) * 1000;
        for (i, (status, code)) in stages.iter().enumerate() {
            t += [0, 3_000, 40_000, 300_000][i] * (rng.below(1000) as u64 + 1) / 1000;
            let mut body = format!(
                "SmsSid={sid}&SmsStatus={status}&MessageStatus={status}&ChannelToAddress=%2B{}&To=whatsapp%3A%2B{}&ChannelPrefix=whatsapp&MessageSid={sid}&AccountSid={account}&StructuredMessage=false&From=whatsapp%3A%2B14155238886&ApiVersion=2010-04-01&ChannelInstallSid={install}",
                &to[1..],
                &to[1..]
            );
            if let Some(code) = code {
                body.push_str(&format!("&ErrorCode={code}"));
            }
            if rng.below(10) == 0 {
                timeline.push((t + rng.below(50_000) as u64, body.clone()));
            }
            timeline.push((t, body));
        }
    }
    timeline.sort_by_key(|(t, _)| *t);
    timeline.into_iter().map(|(_, b)| b).collect()
}

fn records(bodies: &[String]) -> Vec<wadash::domain::record::EventRecord> {
    let at = chrono::DateTime::from_timestamp(1_765_000_000, 0).expect("a valid time");
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let params = wadash::twilio::form::parse(b.as_bytes()).expect("a valid form");
            let at = at + chrono::Duration::microseconds(i as i64 * 50);
            wadash::twilio::webhook::parse(wadash::twilio::webhook::Webhook::Status, &params, at)
                .expect("a valid callback")
        })
        .collect()
}

async fn lsn(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0')::int8")
        .fetch_one(conn)
        .await
        .expect("the WAL position")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5499/perf?sslmode=disable".to_owned());
    let messages: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let warm = std::env::var("WARM").map_or(true, |v| v != "0");

    let pool = sqlx::PgPool::connect(&url).await?;
    wadash::database::MIGRATOR.run(&pool).await?;
    sqlx::query("TRUNCATE messages, message_events, live_log, interactive_replies")
        .execute(&pool)
        .await?;
    pool.close().await;

    let bodies = callbacks(messages, 7);
    let all = records(&bodies);
    let half = if warm { all.len() / 2 } else { 0 };
    let mut conn = PgConnection::connect(&url).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    for chunk in all[..half].chunks(batch) {
        wadash::storage::events::apply_batch(&mut conn, chunk).await?;
    }
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    let measured = &all[half..];
    let wal_before = lsn(&mut conn).await;
    let started = Instant::now();
    let mut inserted = 0;
    for chunk in measured.chunks(batch) {
        inserted += wadash::storage::events::apply_batch(&mut conn, chunk)
            .await?
            .inserted;
    }
    let took = started.elapsed();
    let wal_after = lsn(&mut conn).await;
    let n = measured.len() as f64;
    let batches = measured.len().div_ceil(batch);
    println!(
        "backend pid {pid}: {} callbacks in {batches} batches of {batch} ({inserted} new events)",
        measured.len()
    );
    println!(
        "WAL {} bytes = {:.0} bytes per callback (after a CHECKPOINT: full-page images included)",
        wal_after - wal_before,
        (wal_after - wal_before) as f64 / n
    );
    println!(
        "wall {:.1} ms = {:.1} µs per callback (not a benchmark: timing is noise here)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / n
    );
    let pg_lsn = |v: i64| format!("{:X}/{:X}", v >> 32, v & 0xffff_ffff);
    println!("WAL range {} {}", pg_lsn(wal_before), pg_lsn(wal_after));
    Ok(())
}
