//! `wadash-ingest-bench`: replays a realistic stream of signed Twilio WhatsApp status callbacks
//! against `POST /sts` of a running server, measures throughput and latency, then checks in
//! PostgreSQL that every acknowledged callback was stored exactly once.
//!
//! Every request is generated, encoded and signed before the clock starts; during the run the
//! only work on the client side is writing bytes to sockets and reading answers.

mod cpu;
mod load;
mod verify;
mod workload;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use crate::workload::{Spec, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "wadash-ingest-bench",
    version,
    about = "Load-test POST /sts with signed Twilio status callbacks and verify what was stored"
)]
struct Args {
    /// Base URL of the server; requests go to <URL>/sts and are signed for exactly that URL
    /// (so it must match the server's public URL).
    #[arg(long, env = "BENCH_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Auth token the server validates X-Twilio-Signature with.
    #[arg(long, env = "BENCH_TOKEN", default_value = "bench-auth-token")]
    token: String,
    /// Number of messages; each yields 2 to 4 callbacks, plus duplicates.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    messages: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Requests sent before the clock starts (not timed, but verified).
    /// Default: 2% of all requests.
    #[arg(long)]
    warmup: Option<usize>,
    /// Share of callbacks sent twice with an identical body.
    #[arg(long, default_value_t = 0.10)]
    duplicates: f64,
    /// Share of messages ending failed or undelivered.
    #[arg(long, default_value_t = 0.05)]
    failures: f64,
    /// Share of delivered messages that are also read.
    #[arg(long, default_value_t = 0.85)]
    read_share: f64,
    /// Sliding window (in requests) within which the send order is shuffled.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Seed of the workload; the same seed sends the same bytes in the same order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Client threads (1 keeps the load generator on one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Verify the stored rows in this database after the run.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Server process ids (comma-separated) whose CPU time to report for the timed phase.
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Name of the target in the report.
    #[arg(long, default_value = "target")]
    label: String,
    /// Also print the results as one JSON line (last line of stdout).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wadash-ingest-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wadash-ingest-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 100.0).round() / 100.0
}

async fn run(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(args.messages > 0, "--messages must be positive");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    let url = format!("{}/sts", args.url.trim_end_matches('/'));
    let target = load::Target::from_url(&url)?;
    let spec = Spec {
        messages: args.messages,
        duplicates: args.duplicates.clamp(0.0, 1.0),
        failures: args.failures.clamp(0.0, 1.0),
        read_share: args.read_share.clamp(0.0, 1.0),
        window: args.window,
        seed: args.seed,
    };

    let prep = Instant::now();
    let work = Workload::generate(&spec, &url, args.token.as_bytes());
    let total = work.requests.len();
    let warmup = args
        .warmup
        .unwrap_or(total / 50)
        .min(total.saturating_sub(1));
    eprintln!(
        "[{}] {} messages, {} distinct callbacks, {} requests ({} duplicates, {} out of order), \
         built and signed in {:.2?}; warm-up {}, then {} timed at concurrency {} -> {url}",
        args.label,
        work.messages.len(),
        work.callbacks.len(),
        total,
        work.duplicate_requests,
        work.out_of_order,
        prep.elapsed(),
        warmup,
        total - warmup,
        args.concurrency,
    );

    let requests = Arc::new(work.requests.clone());
    let outcome = load::run(
        target,
        requests,
        load::Options {
            concurrency: args.concurrency,
            warmup,
            timeout: Duration::from_secs(args.timeout.max(1)),
            server_pids: args.server_pids.clone(),
        },
    )
    .await?;

    let timed = &outcome.statuses[warmup..];
    let acked_timed = timed.iter().filter(|s| (200..300).contains(*s)).count();
    let acked_all = outcome
        .statuses
        .iter()
        .filter(|s| (200..300).contains(*s))
        .count();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for &s in &outcome.statuses {
        if !(200..300).contains(&s) {
            let key = if s == load::TRANSPORT_ERROR {
                "transport".to_owned()
            } else {
                s.to_string()
            };
            *errors.entry(key).or_default() += 1;
        }
    }
    let error_total: usize = errors.values().sum();
    let mut lat = outcome.latencies_us;
    lat.sort_unstable();
    let wall = outcome.wall.as_secs_f64();
    let rate = if wall > 0.0 {
        acked_timed as f64 / wall
    } else {
        0.0
    };
    let mean_us = if lat.is_empty() {
        0
    } else {
        lat.iter().sum::<u64>() / lat.len() as u64
    };
    let (p50, p90, p99, max) = (
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0),
    );

    println!("== {} ==", args.label);
    println!(
        "requests        {total} ({warmup} warm-up + {} timed), concurrency {}",
        total - warmup,
        args.concurrency
    );
    println!("acknowledged    {acked_all} (2xx), {acked_timed} of them timed");
    if errors.is_empty() {
        println!("errors          none");
    } else {
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("errors          {error_total} ({})", list.join(", "));
    }
    println!(
        "reconnects      {} (beyond the first connection of each sender)",
        outcome.reconnects
    );
    println!("wall time       {wall:.3} s (timed phase)");
    println!("throughput      {rate:.0} callbacks/s acknowledged");
    println!(
        "latency ms      p50 {}  p90 {}  p99 {}  max {}  mean {}",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max),
        ms(mean_us)
    );

    // CPU microseconds per acknowledged callback.
    let per_cb = |s: f64| {
        if acked_timed == 0 {
            0.0
        } else {
            (s * 1e6 / acked_timed as f64).round()
        }
    };
    if let Some(c) = &outcome.cpu {
        let server = c.server_s.map_or("n/a".to_owned(), |s| {
            format!("{s:.2} s ({} us/callback)", per_cb(s))
        });
        println!(
            "cpu             {:.0}% of all cores busy ({:.2} s); server {server}, load generator {:.2} s ({} us/callback), \
             rest (PostgreSQL) {:.2} s ({} us/callback)",
            c.busy_share * 100.0,
            c.machine_s,
            c.load_generator_s,
            per_cb(c.load_generator_s),
            c.other_s,
            per_cb(c.other_s),
        );
    }

    let verification = match &args.database_url {
        Some(db) => {
            let v = verify::verify(db, &work, &outcome.statuses).await?;
            println!(
                "verification    {}: {} distinct callbacks, {} acknowledged, {} stored exactly once, \
                 {} acknowledged but missing, {} pairs stored more than once ({} extra rows), \
                 {} unacknowledged and missing, {} unacknowledged but stored, {} unexpected rows, \
                 {} foreign rows, {} of {} messages with a wrong current state",
                if v.ok { "OK" } else { "FAILED" },
                v.distinct_callbacks,
                v.acknowledged,
                v.acknowledged_stored_once,
                v.acknowledged_missing,
                v.duplicated_pairs,
                v.duplicate_rows,
                v.unacknowledged_missing,
                v.unacknowledged_stored,
                v.unexpected_rows,
                v.foreign_rows,
                v.state_mismatches,
                v.messages_checked,
            );
            Some(v)
        }
        None => {
            println!("verification    skipped (no --database-url)");
            None
        }
    };

    if args.json {
        let line = serde_json::json!({
            "target": args.label,
            "url": url,
            "messages": work.messages.len(),
            "distinct_callbacks": work.callbacks.len(),
            "requests": total,
            "duplicate_requests": work.duplicate_requests,
            "out_of_order_requests": work.out_of_order,
            "warmup": warmup,
            "timed_requests": total - warmup,
            "concurrency": args.concurrency,
            "seed": args.seed,
            "acknowledged": acked_all,
            "acknowledged_timed": acked_timed,
            "errors": error_total,
            "errors_by_status": errors,
            "reconnects": outcome.reconnects,
            "wall_s": wall,
            "callbacks_per_s": rate,
            "latency_ms": {
                "p50": ms(p50), "p90": ms(p90), "p99": ms(p99), "max": ms(max), "mean": ms(mean_us),
            },
            "cpu": outcome.cpu.map(|c| serde_json::json!({
                "busy_share": c.busy_share,
                "busy_s": c.machine_s,
                "server_s": c.server_s,
                "load_generator_s": c.load_generator_s,
                "other_s": c.other_s,
                "us_per_callback": {
                    // Everything the machine spent: server, load generator and the rest.
                    "all": per_cb(c.machine_s),
                    "server": c.server_s.map(per_cb),
                    "load_generator": per_cb(c.load_generator_s),
                    "other": per_cb(c.other_s),
                },
            })),
            "verified": verification.as_ref().map(|v| v.ok),
            "verification": verification.as_ref().map(verify::Verification::to_json),
        });
        println!("{}", serde_json::to_string(&line).context("encoding JSON")?);
    }

    let ok = acked_all > 0 && verification.is_none_or(|v| v.ok);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
