//! Sending: `concurrency` tasks, each owning one keep-alive HTTP/1.1 connection, pull the next
//! request index from a shared counter and record the status and latency of each request.
//!
//! hyper's connection API is used directly (no pool, no proxy lookup, no per-request
//! allocation beyond the headers) so that the client costs as little CPU as possible: on a
//! small machine it shares the cores with the server and the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::cpu;
use crate::workload::Request;

/// Status recorded for a request that got no HTTP response (connection refused, reset, timeout).
pub const TRANSPORT_ERROR: u16 = 0;

/// Where to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to.
    pub connect: String,
    /// `Host` header.
    pub host: HeaderValue,
    /// Request path, e.g. `/sts`.
    pub path: String,
}

impl Target {
    /// From the signed URL (`http://host:port/sts`). Only plain HTTP: this is a loopback
    /// benchmark.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported (the benchmark talks to a local server)");
        }
        let authority = uri.authority().context("URL without a host")?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let connect = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            connect,
            host: HeaderValue::from_str(authority.as_str())?,
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    /// The first `warmup` requests are sent before the clock starts and are not timed.
    pub warmup: usize,
    pub timeout: Duration,
    /// Server processes whose CPU time is measured over the timed phase.
    pub server_pids: Vec<u32>,
}

/// What the measured phase produced.
#[derive(Debug)]
pub struct Outcome {
    /// Status per request index (`TRANSPORT_ERROR` when there was no response).
    pub statuses: Vec<u16>,
    /// Latency of each measured request, in microseconds.
    pub latencies_us: Vec<u64>,
    pub wall: Duration,
    pub reconnects: usize,
    /// CPU used during the timed phase (Linux only).
    pub cpu: Option<cpu::Usage>,
}

struct TaskResult {
    statuses: Vec<(usize, u16)>,
    latencies_us: Vec<u64>,
    reconnects: usize,
}

/// Runs the warm-up and the measured phase.
pub async fn run(
    target: Target,
    requests: Arc<Vec<Request>>,
    opts: Options,
) -> anyhow::Result<Outcome> {
    let total = requests.len();
    let warmup = opts.warmup.min(total);
    let target = Arc::new(target);
    // Fail fast when nothing listens.
    TcpStream::connect(&target.connect)
        .await
        .with_context(|| format!("cannot connect to {}", target.connect))?;

    let warm_next = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(warmup));
    // Every task and this function meet between the phases, so the clock starts with every
    // connection open and idle.
    let barrier = Arc::new(Barrier::new(opts.concurrency + 1));
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for _ in 0..opts.concurrency {
        let (target, requests) = (target.clone(), requests.clone());
        let (warm_next, next, barrier) = (warm_next.clone(), next.clone(), barrier.clone());
        let timeout = opts.timeout;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(target, timeout);
            let mut out = TaskResult {
                statuses: Vec::new(),
                latencies_us: Vec::new(),
                reconnects: 0,
            };
            client.ensure().await;
            loop {
                let i = warm_next.fetch_add(1, Ordering::Relaxed);
                if i >= warmup {
                    break;
                }
                let (status, _) = client.send(&requests[i]).await;
                out.statuses.push((i, status));
            }
            barrier.wait().await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (status, took) = client.send(&requests[i]).await;
                out.statuses.push((i, status));
                out.latencies_us.push(took.as_micros() as u64);
            }
            out.reconnects = client.connects.saturating_sub(1);
            out
        }));
    }
    barrier.wait().await;
    let cpu_start = cpu::Snapshot::take(&opts.server_pids);
    let started = Instant::now();
    let mut statuses = vec![TRANSPORT_ERROR; total];
    let mut latencies_us = Vec::with_capacity(total - warmup);
    let mut reconnects = 0;
    for t in tasks {
        let r = t.await.context("a sender task panicked")?;
        for (i, s) in r.statuses {
            statuses[i] = s;
        }
        latencies_us.extend(r.latencies_us);
        reconnects += r.reconnects;
    }
    let wall = started.elapsed();
    let cpu_end = cpu::Snapshot::take(&opts.server_pids);
    Ok(Outcome {
        statuses,
        latencies_us,
        wall,
        reconnects,
        cpu: cpu::Usage::between(&cpu_start, &cpu_end, !opts.server_pids.is_empty()),
    })
}

/// One HTTP/1.1 connection, reopened when the server closes it.
pub(crate) struct Client {
    target: Arc<Target>,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    connects: usize,
}

impl Client {
    pub(crate) fn new(target: Arc<Target>, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(&self.target.connect).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the sender is dropped.
            let _ = conn.await;
        });
        self.connects += 1;
        Ok(sender)
    }

    /// Makes sure there is a connection ready for a request (best effort).
    async fn ensure(&mut self) {
        if let Some(s) = &mut self.sender {
            if s.ready().await.is_ok() {
                return;
            }
            self.sender = None;
        }
        // A few quick attempts: under a listen-queue overflow a connect can fail transiently.
        for attempt in 0..3u64 {
            match self.connect().await {
                Ok(s) => {
                    self.sender = Some(s);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await,
            }
        }
    }

    /// Connections opened so far.
    pub(crate) fn connects(&self) -> usize {
        self.connects
    }

    /// Sends one request; returns its status (or `TRANSPORT_ERROR`) and how long it took,
    /// including any reconnect it needed.
    pub(crate) async fn send(&mut self, req: &Request) -> (u16, Duration) {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.exchange(req)).await;
        let status = match result {
            Ok(Ok((status, keep))) => {
                if !keep {
                    self.sender = None;
                }
                status
            }
            Ok(Err(_)) | Err(_) => {
                self.sender = None;
                TRANSPORT_ERROR
            }
        };
        (status, started.elapsed())
    }

    async fn exchange(&mut self, req: &Request) -> anyhow::Result<(u16, bool)> {
        self.ensure().await;
        let sender = self.sender.as_mut().context("not connected")?;
        let request = hyper::Request::post(self.target.path.as_str())
            .header(HOST, self.target.host.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(
                "x-twilio-signature",
                HeaderValue::from_maybe_shared(req.signature.clone())?,
            )
            .body(Full::new(req.body.clone()))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let keep = !response
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        // Read the whole body so the connection can carry the next request.
        response.into_body().collect().await?;
        Ok((status, keep))
    }
}
