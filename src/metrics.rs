//! Prometheus metrics kept in atomics (no locks on the hot path) and rendered in the text
//! exposition format at `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sqlx::PgPool;

use crate::twilio::webhook::Webhook;

/// How a webhook request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    BadSignature,
    BadRequest,
    TooLarge,
    UnsupportedMediaType,
    Unavailable,
    /// The body did not arrive within the body timeout.
    BodyTimeout,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Accepted,
        Outcome::BadSignature,
        Outcome::BadRequest,
        Outcome::TooLarge,
        Outcome::UnsupportedMediaType,
        Outcome::Unavailable,
        Outcome::BodyTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::BadSignature => "bad_signature",
            Outcome::BadRequest => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::Unavailable => "unavailable",
            Outcome::BodyTimeout => "body_timeout",
        }
    }
}

const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// A bot's answer time, in seconds: from fast local bots to cloud bots near their timeout.
const BOT_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A fixed-bucket histogram.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: [f64; N],
    counts: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in millionths of the unit, to stay integral.
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Self {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// All of wadash's metrics.
#[derive(Debug)]
pub struct Metrics {
    webhook: [[AtomicU64; 7]; 2],
    latency: [Histogram<13>; 2],
    batch_size: Histogram<10>,
    batch_failures: AtomicU64,
    events_inserted: AtomicU64,
    events_duplicate: AtomicU64,
    reconcile_lookups: AtomicU64,
    reconcile_failures: AtomicU64,
    reconcile_repaired: AtomicU64,
    reconcile_given_up: AtomicU64,
    credential_reloads: AtomicU64,
    credential_reload_errors: AtomicU64,
    live_streams: AtomicU64,
    /// Bot calls by (bot id, kind, outcome), and each bot's answer time. Behind a lock:
    /// bots are few and a call costs far more than the lock.
    bots: std::sync::Mutex<BotMetrics>,
}

#[derive(Debug, Default)]
struct BotMetrics {
    calls: std::collections::BTreeMap<(i64, &'static str, &'static str), u64>,
    latency: std::collections::BTreeMap<(i64, &'static str), Histogram<10>>,
}

/// One open `/events` stream, counted in `wadash_live_streams` from
/// [`Metrics::live_stream_opened`] until this is dropped.
#[derive(Debug)]
pub struct LiveStream(Arc<Metrics>);

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.live_streams.fetch_sub(1, Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            webhook: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new(LATENCY_BUCKETS)),
            batch_size: Histogram::new(BATCH_BUCKETS),
            batch_failures: AtomicU64::new(0),
            events_inserted: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
            reconcile_lookups: AtomicU64::new(0),
            reconcile_failures: AtomicU64::new(0),
            reconcile_repaired: AtomicU64::new(0),
            reconcile_given_up: AtomicU64::new(0),
            credential_reloads: AtomicU64::new(0),
            credential_reload_errors: AtomicU64::new(0),
            live_streams: AtomicU64::new(0),
            bots: std::sync::Mutex::new(BotMetrics::default()),
        }
    }
}

fn hook_index(h: Webhook) -> usize {
    match h {
        Webhook::Inbound => 0,
        Webhook::Status => 1,
    }
}

impl Metrics {
    pub fn webhook(&self, hook: Webhook, outcome: Outcome, elapsed: Duration) {
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        self.webhook[hook_index(hook)][o].fetch_add(1, Relaxed);
        if outcome == Outcome::Accepted {
            self.latency[hook_index(hook)].observe(elapsed.as_secs_f64());
        }
    }

    pub fn batch(&self, size: usize, inserted: u64) {
        self.batch_size.observe(size as f64);
        self.events_inserted.fetch_add(inserted, Relaxed);
        self.events_duplicate
            .fetch_add((size as u64).saturating_sub(inserted), Relaxed);
    }

    pub fn batch_failed(&self) {
        self.batch_failures.fetch_add(1, Relaxed);
    }

    /// One reconciliation pass: lookups made, lookups that failed, new events stored, and
    /// messages given up on.
    pub fn reconciled(&self, lookups: u64, failures: u64, repaired: u64, given_up: u64) {
        self.reconcile_lookups.fetch_add(lookups, Relaxed);
        self.reconcile_failures.fetch_add(failures, Relaxed);
        self.reconcile_repaired.fetch_add(repaired, Relaxed);
        self.reconcile_given_up.fetch_add(given_up, Relaxed);
    }

    /// A credential reload that changed the credentials in use (`ok`) or failed.
    pub fn credentials_reloaded(&self, ok: bool) {
        if ok {
            self.credential_reloads.fetch_add(1, Relaxed);
        } else {
            self.credential_reload_errors.fetch_add(1, Relaxed);
        }
    }

    /// One turn given to bot `bot` of `kind`: its outcome (`answered`, `timeout`, `throttled`,
    /// `auth`, `malformed`, `failed`, `paused`) and, when it was asked, how long it took.
    pub fn bot_call(
        &self,
        bot: i64,
        kind: &'static str,
        outcome: &'static str,
        took: Option<Duration>,
    ) {
        let mut m = self.bots.lock().expect("bot metrics lock");
        *m.calls.entry((bot, kind, outcome)).or_default() += 1;
        if let Some(took) = took {
            m.latency
                .entry((bot, kind))
                .or_insert_with(|| Histogram::new(BOT_BUCKETS))
                .observe(took.as_secs_f64());
        }
    }

    fn render_bots(&self, out: &mut String) {
        let m = self.bots.lock().expect("bot metrics lock");
        out.push_str(
            "# HELP wadash_bot_turns_total Inbound messages given to each bot, by outcome.\n",
        );
        out.push_str("# TYPE wadash_bot_turns_total counter\n");
        for ((bot, kind, outcome), n) in &m.calls {
            let _ = writeln!(
                out,
                "wadash_bot_turns_total{{bot=\"{bot}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP wadash_bot_latency_seconds Time each bot took to answer (or fail).\n");
        out.push_str("# TYPE wadash_bot_latency_seconds histogram\n");
        for ((bot, kind), h) in &m.latency {
            h.render(
                out,
                "wadash_bot_latency_seconds",
                &format!("bot=\"{bot}\",kind=\"{kind}\""),
            );
        }
    }

    /// Counts an open `/events` stream until the returned guard is dropped.
    pub fn live_stream_opened(self: &Arc<Self>) -> LiveStream {
        self.live_streams.fetch_add(1, Relaxed);
        LiveStream(self.clone())
    }

    /// `/events` streams open on this instance.
    pub fn live_streams(&self) -> u64 {
        self.live_streams.load(Relaxed)
    }

    /// Count of webhook requests by route and outcome (for tests and health checks).
    pub fn webhook_count(&self, hook: Webhook, outcome: Outcome) -> u64 {
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        self.webhook[hook_index(hook)][o].load(Relaxed)
    }

    pub fn render(&self, pool: &PgPool) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP wadash_webhook_requests_total Webhook requests by route and outcome.\n",
        );
        out.push_str("# TYPE wadash_webhook_requests_total counter\n");
        for hook in [Webhook::Inbound, Webhook::Status] {
            for outcome in Outcome::ALL {
                let _ = writeln!(
                    out,
                    "wadash_webhook_requests_total{{route=\"{}\",outcome=\"{}\"}} {}",
                    hook.route(),
                    outcome.label(),
                    self.webhook_count(hook, outcome)
                );
            }
        }
        out.push_str("# HELP wadash_ingest_duration_seconds Time from request to durable commit of accepted webhooks.\n");
        out.push_str("# TYPE wadash_ingest_duration_seconds histogram\n");
        for hook in [Webhook::Inbound, Webhook::Status] {
            self.latency[hook_index(hook)].render(
                &mut out,
                "wadash_ingest_duration_seconds",
                &format!("route=\"{}\"", hook.route()),
            );
        }
        out.push_str("# HELP wadash_ingest_batch_size Callbacks committed per transaction.\n");
        out.push_str("# TYPE wadash_ingest_batch_size histogram\n");
        self.batch_size
            .render(&mut out, "wadash_ingest_batch_size", "");
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "wadash_ingest_batch_failures_total",
            "Batches that could not be committed.",
            self.batch_failures.load(Relaxed),
        );
        counter(
            &mut out,
            "wadash_events_stored_total",
            "Events newly stored.",
            self.events_inserted.load(Relaxed),
        );
        counter(
            &mut out,
            "wadash_events_duplicate_total",
            "Callbacks recognised as duplicates of stored events.",
            self.events_duplicate.load(Relaxed),
        );
        for (name, help, v) in [
            (
                "wadash_reconcile_lookups_total",
                "Messages looked up at Twilio by reconciliation.",
                &self.reconcile_lookups,
            ),
            (
                "wadash_reconcile_lookup_failures_total",
                "Reconciliation lookups that failed (retried later).",
                &self.reconcile_failures,
            ),
            (
                "wadash_reconcile_events_stored_total",
                "New events stored by reconciliation (lost callbacks repaired).",
                &self.reconcile_repaired,
            ),
            (
                "wadash_reconcile_given_up_total",
                "Messages still unsettled when reconciliation gave up on them.",
                &self.reconcile_given_up,
            ),
            (
                "wadash_credential_reloads_total",
                "Reloads that changed the Twilio credentials in use.",
                &self.credential_reloads,
            ),
            (
                "wadash_credential_reload_errors_total",
                "Credential reloads that failed (the previous credentials stay in use).",
                &self.credential_reload_errors,
            ),
        ] {
            counter(&mut out, name, help, v.load(Relaxed));
        }
        let size = pool.size();
        let idle = pool.num_idle() as u32;
        out.push_str("# HELP wadash_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE wadash_db_pool_connections gauge\n");
        let _ = writeln!(out, "wadash_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            out,
            "wadash_db_pool_connections{{state=\"in_use\"}} {}",
            size.saturating_sub(idle)
        );
        out.push_str(
            "# HELP wadash_live_streams Open /events streams (live updates) on this instance.\n",
        );
        out.push_str("# TYPE wadash_live_streams gauge\n");
        let _ = writeln!(out, "wadash_live_streams {}", self.live_streams());
        self.render_bots(&mut out);
        out.push_str("# HELP wadash_db_pool_max_connections Configured pool size.\n");
        out.push_str("# TYPE wadash_db_pool_max_connections gauge\n");
        let _ = writeln!(
            out,
            "wadash_db_pool_max_connections {}",
            pool.options().get_max_connections()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new([1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut s = String::new();
        h.render(&mut s, "x", "");
        assert!(s.contains("x_bucket{le=\"1\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"2\"} 2\n"));
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"));
        assert!(s.contains("x_count 3\n"));
    }

    #[test]
    fn bot_turns_are_counted_per_bot_and_outcome_with_latency() {
        let m = Metrics::default();
        m.bot_call(3, "demo", "answered", Some(Duration::from_millis(20)));
        m.bot_call(3, "demo", "answered", Some(Duration::from_millis(20)));
        m.bot_call(3, "demo", "paused", None);
        let mut s = String::new();
        m.render_bots(&mut s);
        assert!(
            s.contains("wadash_bot_turns_total{bot=\"3\",kind=\"demo\",outcome=\"answered\"} 2\n"),
            "{s}"
        );
        assert!(
            s.contains("wadash_bot_turns_total{bot=\"3\",kind=\"demo\",outcome=\"paused\"} 1\n")
        );
        assert!(
            s.contains("wadash_bot_latency_seconds_count{bot=\"3\",kind=\"demo\"} 2\n"),
            "{s}"
        );
    }

    #[test]
    fn live_streams_count_until_their_guard_drops() {
        let m = Arc::new(Metrics::default());
        let a = m.live_stream_opened();
        let b = m.live_stream_opened();
        assert_eq!(m.live_streams(), 2);
        drop(a);
        assert_eq!(m.live_streams(), 1);
        drop(b);
        assert_eq!(m.live_streams(), 0);
    }
}
