//! `wadash-ingest-bench`: replays a realistic stream of signed Twilio WhatsApp status callbacks
//! against `POST /sts` of a running server, measures throughput and latency, then checks in
//! PostgreSQL that every acknowledged callback was stored exactly once.
//!
//! Two ways of sending: closed loop (default; `--concurrency` connections each send the next
//! request as soon as the previous one is answered) and open loop (`--rate`; requests are due
//! at a fixed rate whatever the server does, latencies count from each request's due time, and
//! the run ends with a verdict on whether the rate was sustained).
//!
//! Every request is generated, encoded and signed before the clock starts; during the run the
//! only work on the client side is writing bytes to sockets and reading answers.

mod cpu;
mod load;
mod open;
mod stats;
mod verify;
mod workload;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use crate::open::Schedule;
use crate::stats::Summary;
use crate::workload::{Spec, Workload};

/// Messages when neither `--messages` nor `--rate` says otherwise.
const DEFAULT_MESSAGES: usize = 20_000;
/// Open loop: the achieved rate must be at least this share of the offered rate.
const MIN_ACHIEVED_SHARE: f64 = 0.99;

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
    /// Default: 20000; with --rate, just enough for the warm-up and the timed phase.
    #[arg(long, short = 'n')]
    messages: Option<usize>,
    /// Concurrent keep-alive connections (with --rate: at most this many).
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Closed loop: requests sent before the clock starts (not timed, but verified).
    /// Default: 2% of all requests.
    #[arg(long, conflicts_with = "rate")]
    warmup: Option<usize>,
    /// Open loop: send at this fixed rate (requests per second) instead of as fast as the
    /// server answers. Request i is due at start + i/RATE; latencies count from the due time.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: seconds of the timed phase.
    #[arg(long, default_value_t = 60.0, requires = "rate")]
    duration: f64,
    /// Open loop: seconds of warm-up at the same rate before the timed phase (not timed, but
    /// verified).
    #[arg(long, default_value_t = 5.0, requires = "rate")]
    warmup_secs: f64,
    /// Open loop: the rate is sustained only if the p99 latency is below this.
    #[arg(long, default_value_t = 25.0, requires = "rate")]
    p99_limit_ms: f64,
    /// Open loop: stop sending as soon as the rate can no longer be sustained (a timed request
    /// failed, or too many took longer than the p99 limit). Verification still runs on what
    /// was sent.
    #[arg(long, requires = "rate")]
    stop_early: bool,
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

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 100.0).round() / 100.0
}

fn is_2xx(s: u16) -> bool {
    (200..300).contains(&s)
}

/// Non-2xx answers by status (`transport` when there was no answer).
fn error_counts(statuses: &[u16]) -> BTreeMap<String, usize> {
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for &s in statuses {
        if !is_2xx(s) {
            let key = if s == load::TRANSPORT_ERROR {
                "transport".to_owned()
            } else {
                s.to_string()
            };
            *errors.entry(key).or_default() += 1;
        }
    }
    errors
}

fn errors_line(errors: &BTreeMap<String, usize>) -> String {
    if errors.is_empty() {
        "none".to_owned()
    } else {
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{} ({})", errors.values().sum::<usize>(), list.join(", "))
    }
}

/// The windows of due time with late answers and their late share, e.g.
/// `22 s 6.85 %, 27 s 26.92 % (of 60 windows of 1 s; the others: none late)`.
fn windows_line(windows: &[open::Window]) -> String {
    let secs = open::WINDOW.as_secs();
    let parts: Vec<String> = windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.late > 0)
        .map(|(i, w)| {
            let share = w.late as f64 * 100.0 / w.answered.max(1) as f64;
            format!("{} s {share:.2} %", i as u64 * secs)
        })
        .collect();
    let of = format!("of {} windows of {secs} s", windows.len());
    if parts.is_empty() {
        format!("none late ({of})")
    } else {
        format!("{} ({of}; the others: none late)", parts.join(", "))
    }
}

/// CPU microseconds per acknowledged callback.
fn per_callback(seconds: f64, acked: usize) -> f64 {
    if acked == 0 {
        0.0
    } else {
        (seconds * 1e6 / acked as f64).round()
    }
}

fn print_cpu(cpu: Option<&cpu::Usage>, acked: usize) {
    let Some(c) = cpu else { return };
    let server = c.server_s.map_or("n/a".to_owned(), |s| {
        format!("{s:.2} s ({} us/callback)", per_callback(s, acked))
    });
    println!(
        "cpu             {:.0}% of all cores busy ({:.2} s); server {server}, load generator {:.2} s ({} us/callback), \
         rest (PostgreSQL) {:.2} s ({} us/callback)",
        c.busy_share * 100.0,
        c.machine_s,
        c.load_generator_s,
        per_callback(c.load_generator_s, acked),
        c.other_s,
        per_callback(c.other_s, acked),
    );
}

fn cpu_json(cpu: Option<&cpu::Usage>, acked: usize) -> serde_json::Value {
    let per_cb = |s: f64| per_callback(s, acked);
    cpu.map_or(serde_json::Value::Null, |c| {
        serde_json::json!({
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
        })
    })
}

/// Checks the database (when `--database-url` is given) and prints the result.
/// `statuses` covers the first `statuses.len()` requests, the ones that were sent.
async fn verify_and_print(
    args: &Args,
    work: &Workload,
    statuses: &[u16],
) -> anyhow::Result<Option<verify::Verification>> {
    let Some(db) = &args.database_url else {
        println!("verification    skipped (no --database-url)");
        return Ok(None);
    };
    let v = verify::verify(db, work, statuses).await?;
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
    Ok(Some(v))
}

fn spec(args: &Args, messages: usize) -> Spec {
    Spec {
        messages,
        duplicates: args.duplicates.clamp(0.0, 1.0),
        failures: args.failures.clamp(0.0, 1.0),
        read_share: args.read_share.clamp(0.0, 1.0),
        window: args.window,
        seed: args.seed,
    }
}

/// The open-loop workload: exactly `needed` requests. Messages yield about 4 requests each
/// (3.7 callbacks plus 10 % duplicates); generate a few more than needed and cut the rest.
fn open_workload(args: &Args, url: &str, needed: usize) -> anyhow::Result<Workload> {
    let mut messages = args.messages.unwrap_or(needed * 10 / 39 + 16);
    loop {
        let work = Workload::generate(&spec(args, messages), url, args.token.as_bytes());
        if work.requests.len() >= needed {
            let mut work = work;
            work.truncate(needed);
            return Ok(work);
        }
        anyhow::ensure!(
            args.messages.is_none(),
            "--messages {messages} yields {} requests, but {needed} are scheduled; \
             leave --messages out to size the workload from --rate",
            work.requests.len()
        );
        messages += messages / 8 + 16;
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(args.messages != Some(0), "--messages must be positive");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    let url = format!("{}/sts", args.url.trim_end_matches('/'));
    let target = load::Target::from_url(&url)?;
    match args.rate {
        None => run_closed(&args, &url, target).await,
        Some(rate) => {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of requests per second"
            );
            anyhow::ensure!(
                args.duration.is_finite() && args.duration > 0.0,
                "--duration must be positive"
            );
            anyhow::ensure!(
                args.warmup_secs.is_finite() && args.warmup_secs >= 0.0,
                "--warmup-secs must not be negative"
            );
            run_open(&args, &url, target, rate).await
        }
    }
}

async fn run_closed(args: &Args, url: &str, target: load::Target) -> anyhow::Result<bool> {
    let prep = Instant::now();
    let mut work = Workload::generate(
        &spec(args, args.messages.unwrap_or(DEFAULT_MESSAGES)),
        url,
        args.token.as_bytes(),
    );
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
        work.distinct_sent(),
        total,
        work.duplicate_requests,
        work.out_of_order,
        prep.elapsed(),
        warmup,
        total - warmup,
        args.concurrency,
    );

    let requests = Arc::new(std::mem::take(&mut work.requests));
    let outcome = load::run(
        target,
        requests.clone(),
        load::Options {
            concurrency: args.concurrency,
            warmup,
            timeout: Duration::from_secs(args.timeout.max(1)),
            server_pids: args.server_pids.clone(),
        },
    )
    .await?;
    work.requests = Arc::try_unwrap(requests).unwrap_or_else(|shared| (*shared).clone());

    let timed = &outcome.statuses[warmup..];
    let acked_timed = timed.iter().filter(|s| is_2xx(**s)).count();
    let acked_all = outcome.statuses.iter().filter(|s| is_2xx(**s)).count();
    let errors = error_counts(&outcome.statuses);
    let error_total: usize = errors.values().sum();
    let mut lat = outcome.latencies_us;
    let lat = Summary::of(&mut lat);
    let wall = outcome.wall.as_secs_f64();
    let rate = if wall > 0.0 {
        acked_timed as f64 / wall
    } else {
        0.0
    };

    println!("== {} ==", args.label);
    println!(
        "requests        {total} ({warmup} warm-up + {} timed), concurrency {}",
        total - warmup,
        args.concurrency
    );
    println!("acknowledged    {acked_all} (2xx), {acked_timed} of them timed");
    println!("errors          {}", errors_line(&errors));
    println!(
        "reconnects      {} (beyond the first connection of each sender)",
        outcome.reconnects
    );
    println!("wall time       {wall:.3} s (timed phase)");
    println!("throughput      {rate:.0} callbacks/s acknowledged");
    println!(
        "latency ms      p50 {}  p90 {}  p99 {}  max {}  mean {}",
        ms(lat.p50),
        ms(lat.p90),
        ms(lat.p99),
        ms(lat.max),
        ms(lat.mean)
    );
    print_cpu(outcome.cpu.as_ref(), acked_timed);

    let verification = verify_and_print(args, &work, &outcome.statuses).await?;

    if args.json {
        let line = serde_json::json!({
            "mode": "closed",
            "target": args.label,
            "url": url,
            "messages": work.messages.len(),
            "distinct_callbacks": work.distinct_sent(),
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
                "p50": ms(lat.p50), "p90": ms(lat.p90), "p99": ms(lat.p99), "max": ms(lat.max),
                "mean": ms(lat.mean),
            },
        });
        print_json(
            line,
            outcome.cpu.as_ref(),
            acked_timed,
            verification.as_ref(),
        )?;
    }
    Ok(acked_all > 0 && verification.is_none_or(|v| v.ok))
}

/// Prints a run's JSON line with what every mode reports last: the CPU per acknowledged timed
/// callback and the verification.
fn print_json(
    mut line: serde_json::Value,
    cpu: Option<&cpu::Usage>,
    acked_timed: usize,
    verification: Option<&verify::Verification>,
) -> anyhow::Result<()> {
    line["cpu"] = cpu_json(cpu, acked_timed);
    line["verified"] = serde_json::json!(verification.map(|v| v.ok));
    line["verification"] = serde_json::json!(verification.map(verify::Verification::to_json));
    println!("{}", serde_json::to_string(&line).context("encoding JSON")?);
    Ok(())
}

async fn run_open(args: &Args, url: &str, target: load::Target, rate: f64) -> anyhow::Result<bool> {
    let schedule = Schedule::new(rate);
    let warmup = if args.warmup_secs > 0.0 {
        schedule.count_in(args.warmup_secs)
    } else {
        0
    };
    let timed_scheduled = schedule.count_in(args.duration);
    let total = warmup + timed_scheduled;
    let p99_limit = Duration::from_secs_f64(args.p99_limit_ms.max(0.0) / 1000.0);

    let prep = Instant::now();
    let mut work = open_workload(args, url, total)?;
    eprintln!(
        "[{}] {} messages, {} distinct callbacks, {} requests ({} duplicates, {} out of order), \
         built and signed in {:.2?}; open loop at {rate}/s: {warmup} warm-up ({} s), then \
         {timed_scheduled} timed ({} s), up to {} connections -> {url}",
        args.label,
        work.messages.len(),
        work.distinct_sent(),
        total,
        work.duplicate_requests,
        work.out_of_order,
        prep.elapsed(),
        args.warmup_secs,
        args.duration,
        args.concurrency,
    );

    let requests = Arc::new(std::mem::take(&mut work.requests));
    let outcome = open::run(
        target,
        requests.clone(),
        open::Options {
            rate,
            warmup,
            concurrency: args.concurrency,
            timeout: Duration::from_secs(args.timeout.max(1)),
            server_pids: args.server_pids.clone(),
            p99_limit,
            stop_early: args.stop_early,
        },
    )
    .await?;
    work.requests = Arc::try_unwrap(requests).unwrap_or_else(|shared| (*shared).clone());

    let sent = outcome.statuses.len();
    let timed_statuses = outcome.statuses.get(warmup..).unwrap_or(&[]);
    let acked_timed = timed_statuses.iter().filter(|s| is_2xx(**s)).count();
    let acked_all = outcome.statuses.iter().filter(|s| is_2xx(**s)).count();
    let errors = error_counts(&outcome.statuses);
    let timed_errors = error_counts(timed_statuses);
    let error_total: usize = errors.values().sum();
    let timed_error_total: usize = timed_errors.values().sum();
    let mut lat = outcome.latencies_us;
    let timed_answered = lat.len();
    let lat = Summary::of(&mut lat);
    let mut service = outcome.service_us;
    let service = Summary::of(&mut service);
    let wall = outcome.wall.as_secs_f64();
    let achieved = if wall > 0.0 {
        acked_timed as f64 / wall
    } else {
        0.0
    };
    let verdict = stats::verdict(
        &stats::Criteria {
            p99_limit_us: p99_limit.as_micros() as u64,
            min_share: MIN_ACHIEVED_SHARE,
        },
        &stats::Observed {
            offered: rate,
            achieved,
            p99_us: lat.p99,
            failed: timed_error_total,
            timed: timed_scheduled,
            timed_answered,
            stopped: outcome.stopped.clone(),
        },
    );

    println!("== {} (open loop) ==", args.label);
    println!(
        "requests        {sent} of {total} sent ({warmup} warm-up + {timed_scheduled} timed), \
         {} s warm-up + {} s timed, up to {} connections",
        args.warmup_secs, args.duration, args.concurrency
    );
    if let Some(why) = &outcome.stopped {
        println!("stopped early   {why}");
    }
    println!("acknowledged    {acked_all} (2xx), {acked_timed} of them timed");
    println!(
        "errors          {}; timed: {}",
        errors_line(&errors),
        errors_line(&timed_errors)
    );
    println!(
        "reconnects      {} (beyond the first connection of each sender)",
        outcome.reconnects
    );
    println!("wall time       {wall:.3} s (timed phase: first due time to last answer)");
    println!("offered rate    {rate:.0} requests/s");
    println!(
        "achieved rate   {achieved:.0} callbacks/s acknowledged ({:.1} % of offered)",
        if rate > 0.0 {
            achieved / rate * 100.0
        } else {
            0.0
        }
    );
    println!(
        "latency ms      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}  (from each request's due time)",
        ms(lat.p50),
        ms(lat.p90),
        ms(lat.p99),
        ms(lat.p999),
        ms(lat.max),
        ms(lat.mean)
    );
    println!(
        "service ms      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}  (from writing the request)",
        ms(service.p50),
        ms(service.p90),
        ms(service.p99),
        ms(service.p999),
        ms(service.max),
        ms(service.mean)
    );
    println!(
        "generator       at most {} due requests waiting for a free connection; dispatch lag max {:.2} ms (timed phase)",
        outcome.max_queue,
        outcome.max_dispatch_lag.as_secs_f64() * 1000.0
    );
    print_cpu(outcome.cpu.as_ref(), acked_timed);
    println!("late by due time {}", windows_line(&outcome.windows));
    if verdict.sustained {
        println!(
            "verdict         sustained=yes (p99 {} ms < {} ms, no errors, {:.1} % of the offered rate)",
            ms(lat.p99),
            args.p99_limit_ms,
            achieved / rate * 100.0
        );
    } else {
        println!(
            "verdict         sustained=no ({})",
            verdict.reasons.join("; ")
        );
    }

    let verification = verify_and_print(args, &work, &outcome.statuses).await?;

    if args.json {
        let summary = |s: &Summary| {
            serde_json::json!({
                "p50": ms(s.p50), "p90": ms(s.p90), "p99": ms(s.p99), "p999": ms(s.p999),
                "max": ms(s.max), "mean": ms(s.mean),
            })
        };
        let line = serde_json::json!({
            "mode": "open",
            "target": args.label,
            "url": url,
            "messages": work.messages.len(),
            "distinct_callbacks": work.distinct_sent(),
            "requests": total,
            "sent": sent,
            "duplicate_requests": work.duplicate_requests,
            "out_of_order_requests": work.out_of_order,
            "warmup": warmup,
            "timed_requests": timed_scheduled,
            "timed_answered": timed_answered,
            "concurrency": args.concurrency,
            "seed": args.seed,
            "offered_rate": rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup_secs,
            "acknowledged": acked_all,
            "acknowledged_timed": acked_timed,
            "errors": error_total,
            "errors_timed": timed_error_total,
            "errors_by_status": errors,
            "reconnects": outcome.reconnects,
            "wall_s": wall,
            "achieved_rate": achieved,
            "callbacks_per_s": achieved,
            "latency_ms": summary(&lat),
            "service_ms": summary(&service),
            "max_queue": outcome.max_queue,
            "max_dispatch_lag_ms": outcome.max_dispatch_lag.as_secs_f64() * 1000.0,
            "p99_limit_ms": args.p99_limit_ms,
            "sustained": verdict.sustained,
            "verdict_reasons": verdict.reasons,
            "stopped_early": outcome.stopped,
            "window_s": open::WINDOW.as_secs(),
            "late_by_window": outcome.windows.iter().map(|w| w.late).collect::<Vec<_>>(),
            "answered_by_window": outcome.windows.iter().map(|w| w.answered).collect::<Vec<_>>(),
        });
        print_json(
            line,
            outcome.cpu.as_ref(),
            acked_timed,
            verification.as_ref(),
        )?;
    }
    Ok(acked_all > 0 && verification.is_none_or(|v| v.ok))
}
