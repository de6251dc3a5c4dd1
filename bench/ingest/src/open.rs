//! Open-loop sending (`--rate`): request `i` is due at start + i/rate whatever the server
//! does, and its latency is measured from that due time, so waiting for a free connection or
//! behind a slow answer counts (no coordinated omission, like wrk2's corrected latencies).
//!
//! One dispatcher (the caller's future) sleeps until the next request is due, then releases
//! every request that is due by then at once: it raises a shared "released" counter and wakes
//! as many idle connection tasks. Each connection task claims the next released index with a
//! compare-and-swap and sends it; when every connection is busy, released requests simply
//! wait in that queue, and their wait is part of their latency. The dispatcher never waits for
//! an answer, so a slow server cannot slow the schedule down. Nothing is spawned per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::cpu;
use crate::load::{Client, Target};
use crate::stats::late_allowance;
use crate::workload::Request;

/// When each request is due, as an offset from the start of the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
}

impl Schedule {
    /// `rate` in requests per second; must be positive and finite.
    pub fn new(rate: f64) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "rate must be positive");
        Self { rate }
    }

    /// Nanoseconds from the start at which request `i` is due (rounded up to the nanosecond).
    pub fn due_ns(&self, i: usize) -> u64 {
        (i as f64 * 1e9 / self.rate).ceil() as u64
    }

    pub fn due(&self, i: usize) -> Duration {
        Duration::from_nanos(self.due_ns(i))
    }

    /// How many requests are due `elapsed` after the start: the number of `i` with
    /// `due(i) <= elapsed` (request 0 is due at once). Exactly consistent with [`Self::due_ns`],
    /// whatever the floating-point rounding.
    pub fn due_by(&self, elapsed: Duration) -> usize {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut k = (ns as f64 * self.rate / 1e9).floor() as usize + 1;
        while k > 0 && self.due_ns(k - 1) > ns {
            k -= 1;
        }
        while self.due_ns(k) <= ns {
            k += 1;
        }
        k
    }

    /// Requests in `secs` seconds at this rate (at least one).
    pub fn count_in(&self, secs: f64) -> usize {
        ((secs * self.rate).round() as usize).max(1)
    }
}

/// Latency of a request measured from its due time (not from when it was written).
pub fn corrected_latency(start: Instant, due: Duration, answered: Instant) -> Duration {
    answered.saturating_duration_since(start + due)
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Requests per second.
    pub rate: f64,
    /// The first `warmup` requests run on the same schedule but are not timed.
    pub warmup: usize,
    /// Connection tasks (each owns at most one keep-alive connection).
    pub concurrency: usize,
    pub timeout: Duration,
    pub server_pids: Vec<u32>,
    /// Timed requests answered at or above this latency are counted as late.
    pub p99_limit: Duration,
    /// Stop issuing as soon as a timed request failed or so many timed requests are late that
    /// the p99 cannot end below `p99_limit`.
    pub stop_early: bool,
}

/// What an open-loop run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Status of each request that was started, by index; requests `0..statuses.len()` were
    /// all started (fewer than all only when the run stopped early).
    pub statuses: Vec<u16>,
    /// Latency of each answered timed request from its due time, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The same requests from writing them to reading the whole answer (service time).
    pub service_us: Vec<u64>,
    /// From the due time of the first timed request to the last timed answer.
    pub wall: Duration,
    pub reconnects: usize,
    /// Most requests released at one dispatch and still waiting for a free connection at the
    /// next (timed phase).
    pub max_queue: usize,
    /// Largest delay in the timed phase between a request's due time and the dispatcher
    /// releasing it (timer granularity and the generator's own scheduling; already part of
    /// the latencies).
    pub max_dispatch_lag: Duration,
    /// Why the run stopped before sending everything, if it did.
    pub stopped: Option<String>,
    pub cpu: Option<cpu::Usage>,
    /// Timed requests by their due time in [`WINDOW`]s from the first one: how many were
    /// answered, and how many of those at or above the p99 limit. Says whether late answers
    /// came steadily or in bursts: the early stop comes once the whole run's allowance is
    /// used, so the point where a run stops says little about when its late answers came.
    pub windows: Vec<Window>,
}

/// The length of one [`Outcome::windows`] entry.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Timed requests due within one [`WINDOW`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub answered: usize,
    pub late: usize,
}

/// Which [`WINDOW`] a request due `due` after the first timed one falls in.
fn window_of(due: Duration) -> usize {
    (due.as_nanos() / WINDOW.as_nanos()) as usize
}

/// Adds one answered timed request to `windows` (grown as needed).
fn tally(windows: &mut Vec<Window>, due: Duration, late: bool) {
    let w = window_of(due);
    if windows.len() <= w {
        windows.resize(w + 1, Window::default());
    }
    windows[w].answered += 1;
    windows[w].late += usize::from(late);
}

/// State shared between the dispatcher and the connection tasks.
struct Shared {
    /// Requests `0..released` are due and may be claimed.
    released: AtomicUsize,
    /// Next index to claim; `0..next` have been claimed.
    next: AtomicUsize,
    /// No more releases: tasks exit once nothing is left to claim.
    finished: AtomicBool,
    /// Stop claiming at once.
    abort: AtomicBool,
    wake: Notify,
    /// Timed requests answered with latency >= the limit.
    late: AtomicUsize,
    /// Timed requests without a 2xx answer.
    failed: AtomicUsize,
}

impl Shared {
    fn claim(&self) -> Option<usize> {
        if self.abort.load(Ordering::Acquire) {
            return None;
        }
        let mut n = self.next.load(Ordering::Acquire);
        loop {
            if n >= self.released.load(Ordering::Acquire) {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(n),
                Err(seen) => n = seen,
            }
        }
    }

    fn done(&self) -> bool {
        self.finished.load(Ordering::Acquire) || self.abort.load(Ordering::Acquire)
    }
}

struct TaskResult {
    statuses: Vec<(usize, u16)>,
    latencies_us: Vec<u64>,
    service_us: Vec<u64>,
    windows: Vec<Window>,
    last_answer: Option<Instant>,
    reconnects: usize,
}

/// The early-stop rule: `Some(reason)` once `sustained=yes` has become impossible.
struct StopRule {
    schedule: Schedule,
    start: Instant,
    limit: Duration,
    warmup: usize,
    total: usize,
    allowance: usize,
}

impl StopRule {
    fn check(&self, shared: &Shared, now: Instant) -> Option<String> {
        let failed = shared.failed.load(Ordering::Acquire);
        if failed > 0 {
            return Some(format!("{failed} timed request(s) got no 2xx answer"));
        }
        let answered_late = shared.late.load(Ordering::Acquire);
        // Requests due at least `limit` ago that have not even been started will be late too.
        let waiting_late = now
            .checked_duration_since(self.start + self.limit)
            .map_or(0, |e| self.schedule.due_by(e).min(self.total))
            .saturating_sub(shared.next.load(Ordering::Acquire).max(self.warmup));
        let late = answered_late + waiting_late;
        (late > self.allowance).then(|| {
            format!(
                "{late} timed requests took {} ms or more (at most {} may, for the p99 to stay below)",
                self.limit.as_millis(),
                self.allowance
            )
        })
    }
}

/// Sends every request of `requests` on the schedule (warm-up first, then the timed phase).
pub async fn run(
    target: Target,
    requests: Arc<Vec<Request>>,
    opts: Options,
) -> anyhow::Result<Outcome> {
    let total = requests.len();
    let warmup = opts.warmup.min(total);
    let schedule = Schedule::new(opts.rate);
    let target = Arc::new(target);
    TcpStream::connect(&target.connect)
        .await
        .with_context(|| format!("cannot connect to {}", target.connect))?;

    let shared = Arc::new(Shared {
        released: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        finished: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        wake: Notify::new(),
        late: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    // Connections are opened lazily, by each task's first request (during the warm-up): a
    // pre-opened idle connection would hold a gunicorn sync worker hostage until its first
    // request arrives.
    let start = Instant::now() + Duration::from_millis(2);
    let limit = opts.p99_limit;
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for _ in 0..opts.concurrency {
        let (target, requests, shared) = (target.clone(), requests.clone(), shared.clone());
        let timeout = opts.timeout;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(target, timeout);
            let mut out = TaskResult {
                statuses: Vec::new(),
                latencies_us: Vec::new(),
                service_us: Vec::new(),
                windows: Vec::new(),
                last_answer: None,
                reconnects: 0,
            };
            loop {
                let i = match shared.claim() {
                    Some(i) => i,
                    None => {
                        // Register for a wake-up before looking again, so that a release (or
                        // the end) between the two looks is not missed.
                        let notified = shared.wake.notified();
                        tokio::pin!(notified);
                        notified.as_mut().enable();
                        match shared.claim() {
                            Some(i) => i,
                            None if shared.done() => break,
                            None => {
                                notified.await;
                                continue;
                            }
                        }
                    }
                };
                let (status, service) = client.send(&requests[i]).await;
                let answered = Instant::now();
                out.statuses.push((i, status));
                if i >= warmup {
                    let latency = corrected_latency(start, schedule.due(i), answered);
                    out.latencies_us.push(latency.as_micros() as u64);
                    out.service_us.push(service.as_micros() as u64);
                    out.last_answer = Some(answered);
                    let late = latency >= limit;
                    if late {
                        shared.late.fetch_add(1, Ordering::AcqRel);
                    }
                    let since_first = schedule.due(i).saturating_sub(schedule.due(warmup));
                    tally(&mut out.windows, since_first, late);
                    if !(200..300).contains(&status) {
                        shared.failed.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            out.reconnects = client.connects().saturating_sub(1);
            out
        }));
    }

    let rule = opts.stop_early.then(|| StopRule {
        schedule,
        start,
        limit,
        warmup,
        total,
        allowance: late_allowance(total - warmup),
    });
    let mut released = 0;
    let mut cpu_start = None;
    let mut max_queue = 0;
    let mut max_dispatch_lag = Duration::ZERO;
    let mut stopped = None;
    tokio::time::sleep_until(start.into()).await;
    while released < total {
        let now = Instant::now();
        let due = schedule
            .due_by(now.saturating_duration_since(start))
            .min(total);
        if cpu_start.is_none() && due > warmup {
            cpu_start = Some(cpu::Snapshot::take(&opts.server_pids));
        }
        let timed = due > warmup;
        if timed {
            // Released at an earlier dispatch and still not claimed: every connection was busy.
            let queued = released.saturating_sub(shared.next.load(Ordering::Acquire));
            max_queue = max_queue.max(queued);
        }
        if due > released {
            if timed {
                let lag = now.saturating_duration_since(start + schedule.due(released));
                max_dispatch_lag = max_dispatch_lag.max(lag);
            }
            shared.released.store(due, Ordering::Release);
            for _ in 0..(due - released).min(opts.concurrency) {
                shared.wake.notify_one();
            }
            released = due;
        }
        if let Some(reason) = rule.as_ref().and_then(|r| r.check(&shared, now)) {
            stopped = Some(reason);
            break;
        }
        if released < total {
            tokio::time::sleep_until((start + schedule.due(released)).into()).await;
        }
    }
    // Everything is released: wait for the queue to drain (still watching the stop rule).
    while stopped.is_none() && shared.next.load(Ordering::Acquire) < total {
        if let Some(reason) = rule.as_ref().and_then(|r| r.check(&shared, Instant::now())) {
            stopped = Some(reason);
            break;
        }
        let queued = released.saturating_sub(shared.next.load(Ordering::Acquire));
        max_queue = max_queue.max(queued);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if stopped.is_some() {
        shared.abort.store(true, Ordering::Release);
    }
    shared.finished.store(true, Ordering::Release);
    shared.wake.notify_waiters();

    let cpu_start = cpu_start.unwrap_or_else(|| cpu::Snapshot::take(&opts.server_pids));
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.context("a connection task panicked")?);
    }
    // Read only now: a task may still have claimed a request while the abort was being set.
    let started = shared.next.load(Ordering::Acquire).min(total);
    let mut statuses = vec![crate::load::TRANSPORT_ERROR; started];
    let mut latencies_us = Vec::with_capacity(total - warmup);
    let mut service_us = Vec::with_capacity(total - warmup);
    let mut reconnects = 0;
    let mut last_answer: Option<Instant> = None;
    let mut windows: Vec<Window> = Vec::new();
    for r in results {
        if windows.len() < r.windows.len() {
            windows.resize(r.windows.len(), Window::default());
        }
        for (all, one) in windows.iter_mut().zip(&r.windows) {
            all.answered += one.answered;
            all.late += one.late;
        }
        for (i, s) in r.statuses {
            statuses[i] = s;
        }
        latencies_us.extend(r.latencies_us);
        service_us.extend(r.service_us);
        reconnects += r.reconnects;
        last_answer = last_answer.max(r.last_answer);
    }
    let cpu_end = cpu::Snapshot::take(&opts.server_pids);
    let timed_start = start + schedule.due(warmup);
    Ok(Outcome {
        statuses,
        latencies_us,
        service_us,
        wall: last_answer.map_or(Duration::ZERO, |t| t.saturating_duration_since(timed_start)),
        reconnects,
        max_queue,
        max_dispatch_lag,
        stopped,
        cpu: cpu::Usage::between(&cpu_start, &cpu_end, !opts.server_pids.is_empty()),
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_requests_evenly() {
        let s = Schedule::new(1000.0);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(1));
        assert_eq!(s.due(60_000), Duration::from_secs(60));
        let s = Schedule::new(3.0);
        assert_eq!(s.due_ns(1), 333_333_334);
        assert_eq!(s.due(3), Duration::from_secs(1));
        assert_eq!(s.count_in(60.0), 180);
        assert_eq!(Schedule::new(20_000.0).count_in(60.0), 1_200_000);
    }

    #[test]
    fn due_by_counts_requests_due_so_far() {
        let s = Schedule::new(1000.0);
        // Request 0 is due immediately.
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_micros(5_500)), 6);
        // A batch: everything due in the last tick is released together.
        assert_eq!(
            s.due_by(Duration::from_millis(10)) - s.due_by(Duration::from_millis(9)),
            1
        );
        let fast = Schedule::new(20_000.0);
        assert_eq!(
            fast.due_by(Duration::from_millis(2)) - fast.due_by(Duration::from_millis(1)),
            20
        );
    }

    #[test]
    fn due_by_agrees_with_due_at_every_boundary() {
        for rate in [1.0, 3.0, 7.0, 333.3, 1_500.0, 8_000.0, 19_999.0, 123_456.7] {
            let s = Schedule::new(rate);
            for i in (0..50_000).step_by(997) {
                let at = s.due(i);
                // At its due time request i is due (i + 1 requests), a nanosecond before not.
                assert_eq!(s.due_by(at), i + 1, "rate {rate}, i {i}");
                if i > 0 {
                    assert_eq!(
                        s.due_by(at - Duration::from_nanos(1)),
                        i,
                        "rate {rate}, i {i}"
                    );
                }
            }
        }
    }

    /// A minimal HTTP/1.1 server answering 204 to every request, after `delay(n)` for the
    /// n-th request (counted over all connections).
    async fn test_server(delay: fn(usize) -> Duration) -> Target {
        use std::sync::atomic::AtomicUsize;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request: headers, then Content-Length bytes of body.
                        let (head_end, body_len) = loop {
                            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                                let len = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .map_or(0, |v| v.trim().parse().unwrap());
                                break (p + 4, len);
                            }
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        while buf.len() < head_end + body_len {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..head_end + body_len);
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay(n)).await;
                        if sock
                            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Target::from_url(&format!("http://{addr}/sts")).unwrap()
    }

    fn requests(n: usize) -> Arc<Vec<Request>> {
        let r = Request {
            callback: 0,
            body: bytes::Bytes::from_static(b"MessageSid=SM1&MessageStatus=sent"),
            signature: bytes::Bytes::from_static(b"c2lnbmF0dXJl"),
        };
        Arc::new(vec![r; n])
    }

    fn options(rate: f64, warmup: usize, concurrency: usize) -> Options {
        Options {
            rate,
            warmup,
            concurrency,
            timeout: Duration::from_secs(10),
            server_pids: Vec::new(),
            p99_limit: Duration::from_millis(25),
            stop_early: false,
        }
    }

    #[tokio::test]
    async fn a_stall_delays_every_request_due_during_it() {
        // One connection, 200 requests/s; the 60th answer (in the timed phase) takes 200 ms.
        // A closed-loop measurement would see one slow request; here every request that came
        // due during the stall waits behind it and counts the wait.
        let target = test_server(|n| {
            if n == 60 {
                Duration::from_millis(200)
            } else {
                Duration::ZERO
            }
        })
        .await;
        let out = run(target, requests(140), options(200.0, 20, 1))
            .await
            .unwrap();
        assert_eq!(out.statuses.len(), 140);
        assert!(out.statuses.iter().all(|s| *s == 204), "{:?}", out.statuses);
        assert_eq!(out.latencies_us.len(), 120);
        assert!(out.stopped.is_none());
        // Lower bounds only: a busy machine can make more requests slow, never fewer.
        let slow = out.latencies_us.iter().filter(|&&us| us >= 100_000).count();
        assert!(
            slow >= 12,
            "about 20 requests came due in the first half of the stall: {slow}"
        );
        assert!(out.max_queue >= 30, "queue {}", out.max_queue);
        assert!(out.latencies_us.iter().max().copied().unwrap() >= 200_000);
        // The timed phase took at least the scheduled 0.6 s (a generous upper bound: the
        // schedule does not wait for answers).
        assert!(out.wall >= Duration::from_millis(595) && out.wall < Duration::from_secs(10));
        // The windows hold every timed answer and exactly the late ones (all in the first
        // window: the timed phase lasts 0.6 s).
        let late = out.latencies_us.iter().filter(|&&us| us >= 25_000).count();
        assert_eq!(
            out.windows,
            [Window {
                answered: 120,
                late
            }]
        );
    }

    #[test]
    fn answers_are_tallied_by_the_window_they_were_due_in() {
        let mut w = Vec::new();
        tally(&mut w, Duration::ZERO, false);
        tally(&mut w, WINDOW - Duration::from_nanos(1), true);
        tally(&mut w, WINDOW * 3, true);
        tally(&mut w, WINDOW * 3 + Duration::from_millis(1), false);
        let (answered, late): (Vec<_>, Vec<_>) = w.iter().map(|x| (x.answered, x.late)).unzip();
        assert_eq!(answered, [2, 0, 0, 2]);
        assert_eq!(late, [1, 0, 0, 1]);
    }

    #[tokio::test]
    async fn stops_early_once_the_p99_cannot_be_met() {
        // Each answer takes 50 ms on 2 connections: 40/s at most against 200/s offered.
        let target = test_server(|_| Duration::from_millis(50)).await;
        let mut opts = options(200.0, 0, 2);
        opts.stop_early = true;
        let started = Instant::now();
        let out = run(target, requests(2000), opts).await.unwrap();
        assert!(out.stopped.is_some());
        assert!(out.statuses.len() < 100, "sent {}", out.statuses.len());
        assert!(started.elapsed() < Duration::from_secs(20));
        // What was started was also answered.
        assert!(out.statuses.iter().all(|s| *s == 204));
        assert_eq!(out.latencies_us.len(), out.statuses.len());
    }

    #[tokio::test]
    async fn keeps_the_schedule_across_connections() {
        // 2,000/s for 0.5 s on 8 connections against a fast server: everything answered,
        // nothing waits long, and the timed phase lasts the scheduled 0.5 s.
        let target = test_server(|_| Duration::ZERO).await;
        let out = run(target, requests(1200), options(2000.0, 200, 8))
            .await
            .unwrap();
        assert_eq!(out.statuses.len(), 1200);
        assert!(out.statuses.iter().all(|s| *s == 204));
        assert_eq!(out.latencies_us.len(), 1000);
        assert!(out.wall >= Duration::from_millis(499) && out.wall < Duration::from_secs(10));
        assert_eq!(out.reconnects, 0);
    }

    #[test]
    fn latency_counts_from_the_due_time() {
        let start = Instant::now();
        let s = Schedule::new(100.0);
        // Request 5 is due at 50 ms; answered at 80 ms: 30 ms, even if it was only written at
        // 75 ms because every connection was busy.
        let answered = start + Duration::from_millis(80);
        assert_eq!(
            corrected_latency(start, s.due(5), answered),
            Duration::from_millis(30)
        );
        // Answered before its due time cannot happen, but must not underflow.
        assert_eq!(
            corrected_latency(start, s.due(10), answered),
            Duration::ZERO
        );
    }
}
