//! Dashboard benchmark client (run by bench/dashboard/run.sh against a seeded database).
//!
//! 1. Pages: logs in like a browser, then requests each page `--requests` times one after the
//!    other (after warm-up) and reports p50 / p95 / max.
//! 2. CSV export: streams `/messages/export.csv` for a window of about `--export-rows` rows,
//!    counting rows while sampling the server's resident memory from /proc.
//! 3. Live latency: keeps an SSE connection open on `/events` while posting signed status
//!    callbacks for fresh messages at `--rate` per second for `--seconds`; for every message,
//!    the time from sending its callback to seeing it in the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:18090")]
    url: String,
    #[arg(long, default_value = "admin")]
    username: String,
    #[arg(long, env = "BENCH_ADMIN_PASSWORD")]
    password: String,
    /// Auth token for signing callbacks.
    #[arg(long, env = "BENCH_TOKEN")]
    token: String,
    /// The server's process id (for memory during the export).
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// RFC 3339 start of a window holding about the export's row count.
    #[arg(long)]
    export_since: Option<String>,
    /// A message sid and a customer number that exist (for the message and conversation pages).
    #[arg(long)]
    sid: String,
    #[arg(long)]
    number: String,
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Skip parts: pages, export, live.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().find_map(|h| {
        let h = h.to_str().ok()?;
        let pair = h.split(';').next()?;
        let (k, v) = pair.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

async fn login(http: &reqwest::Client, a: &Args) -> anyhow::Result<String> {
    let resp = http.get(format!("{}/login", a.url)).send().await?;
    let login_cookie = cookie_of(&resp, "wadash_login").context("login cookie")?;
    let page = resp.text().await?;
    let at = page.find("name=\"token\" value=\"").context("login form")? + 20;
    let token = &page[at..at + page[at..].find('"').context("token")?];
    let resp = http
        .post(format!("{}/login", a.url))
        .header("Cookie", format!("wadash_login={login_cookie}"))
        .form(&[
            ("username", a.username.as_str()),
            ("password", a.password.as_str()),
            ("token", token),
        ])
        .send()
        .await?;
    if resp.status() != 303 {
        bail!("login failed: HTTP {}", resp.status());
    }
    cookie_of(&resp, "wadash_session").context("session cookie")
}

async fn pages(http: &reqwest::Client, a: &Args, session: &str) -> anyhow::Result<()> {
    let paths = [
        ("overview, last hour", "/?w=1h".to_owned()),
        ("overview, 24 hours", "/?w=24h".to_owned()),
        ("overview, 7 days", "/?w=7d".to_owned()),
        (
            "overview, live fragment (24 h)",
            "/?w=24h&fragment=live".to_owned(),
        ),
        ("message log, first page", "/messages".to_owned()),
        (
            "message log, failed with 63016",
            "/messages?status=failed&error_code=63016".to_owned(),
        ),
        (
            "message log, text search",
            "/messages?q=shipped&direction=outbound".to_owned(),
        ),
        (
            "message log, one number",
            format!("/messages?number={}", a.number.replace('+', "%2B")),
        ),
        ("message page", format!("/messages/{}", a.sid)),
        (
            "conversation",
            format!("/conversations/{}", a.number.replace('+', "%2B")),
        ),
    ];
    println!("| page | requests | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, path) in paths {
        let mut times = Vec::with_capacity(a.requests);
        for i in 0..a.requests + 3 {
            let t = Instant::now();
            let resp = http
                .get(format!("{}{path}", a.url))
                .header("Cookie", format!("wadash_session={session}"))
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let took = t.elapsed();
            if status != 200 {
                bail!("{path}: HTTP {status}");
            }
            if body.is_empty() {
                bail!("{path}: empty");
            }
            if i >= 3 {
                times.push(took);
            }
        }
        times.sort();
        println!(
            "| {name} (`{path}`) | {} | {} | {} | {} |",
            times.len(),
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.95)),
            ms(*times.last().unwrap())
        );
    }
    Ok(())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn export(http: &reqwest::Client, a: &Args, session: &str) -> anyhow::Result<()> {
    let since = a.export_since.as_deref().context("--export-since")?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let before = a.pid.and_then(rss_kib);
    let sampler = a.pid.map(|pid| {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    });
    let t = Instant::now();
    let mut resp = http
        .get(format!(
            "{}/messages/export.csv?since={}",
            a.url,
            since.replace(':', "%3A").replace('+', "%2B")
        ))
        .header("Cookie", format!("wadash_session={session}"))
        .send()
        .await?;
    let first_byte = t.elapsed();
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let took = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = sampler {
        s.await?;
    }
    println!(
        "CSV export: {} rows, {:.1} MB in {:.2} s ({:.0} rows/s), first byte after {} ms",
        lines.saturating_sub(1),
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64(),
        ms(first_byte)
    );
    if let Some(b) = before {
        let p = peak.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "server memory (VmRSS): {:.1} MB before, {:.1} MB peak during the export (+{:.1} MB for a {:.1} MB file)",
            b as f64 / 1024.0,
            p as f64 / 1024.0,
            p.saturating_sub(b) as f64 / 1024.0,
            bytes as f64 / 1e6
        );
    }
    Ok(())
}

async fn live(http: &reqwest::Client, a: &Args, session: &str) -> anyhow::Result<()> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let other_events: Arc<Mutex<Vec<String>>> = Arc::default();
    // The browser.
    let mut stream = http
        .get(format!("{}/events", a.url))
        .header("Cookie", format!("wadash_session={session}"))
        .send()
        .await?;
    let reader = {
        let (sent, seen, other_events) = (sent.clone(), seen.clone(), other_events.clone());
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = stream.chunk().await {
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if let Some(kind) = frame.lines().find_map(|l| l.strip_prefix("event: "))
                        && kind != "messages"
                    {
                        other_events.lock().unwrap().push(kind.to_owned());
                    }
                    for line in frame.lines() {
                        let Some(data) = line.strip_prefix("data: ") else {
                            continue;
                        };
                        let Ok(items) = serde_json::from_str::<serde_json::Value>(data) else {
                            continue;
                        };
                        for it in items.as_array().into_iter().flatten() {
                            if let Some(sid) = it["sid"].as_str()
                                && let Some(t0) = sent.lock().unwrap().remove(sid)
                            {
                                seen.lock().unwrap().push(now - t0);
                            }
                        }
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The load: fresh messages' callbacks at a fixed rate.
    let total = (a.rate * a.seconds as f64) as u64;
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let url = format!("{}/sts", a.url);
    let slots = Arc::new(tokio::sync::Semaphore::new(a.connections));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..total {
        tokio::time::sleep_until((start + period.mul_f64(n as f64)).into()).await;
        let permit = slots.clone().acquire_owned().await?;
        let sid = format!(
            "SMbe{:030x}",
            n + u64::from(std::process::id()) * 1_000_000_000
        );
        // Spread over many customers, as real traffic is.
        let to = format!("whatsapp:+9188{:08}", n % 5000);
        let params: Vec<(String, String)> = [
            ("MessageSid", sid.as_str()),
            ("SmsSid", sid.as_str()),
            ("MessageStatus", "sent"),
            ("SmsStatus", "sent"),
            ("To", to.as_str()),
            ("From", "whatsapp:+14155238886"),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sig = wadash::twilio::signature::compute(a.token.as_bytes(), &url, &params);
        let (http, url, sent, errors) = (http.clone(), url.clone(), sent.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            sent.lock().unwrap().insert(sid, Instant::now());
            let ok = http
                .post(&url)
                .header("X-Twilio-Signature", sig)
                .form(&params)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let posted_in = start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    reader.abort();
    let mut lat = seen.lock().unwrap().clone();
    lat.sort();
    let missing = sent.lock().unwrap().len();
    println!(
        "other events in the stream: {:?}",
        other_events.lock().unwrap()
    );
    println!(
        "live: {total} callbacks in {:.1} s ({:.0}/s, {} errors); {} seen in the stream, {missing} not seen within 2 s",
        posted_in.as_secs_f64(),
        total as f64 / posted_in.as_secs_f64(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        lat.len()
    );
    println!(
        "callback sent → event in the browser's stream: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.95)),
        ms(pct(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = Args::parse();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(a.connections)
        .build()?;
    let session = login(&http, &a).await?;
    if !a.skip.iter().any(|s| s == "pages") {
        pages(&http, &a, &session).await?;
    }
    if !a.skip.iter().any(|s| s == "export") {
        export(&http, &a, &session).await?;
    }
    if !a.skip.iter().any(|s| s == "live") {
        live(&http, &a, &session).await?;
    }
    Ok(())
}
