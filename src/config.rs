//! Settings: defaults in code, then an optional `wadash.toml`, then the environment.
//!
//! Every setting has one name. In the environment it is `WADASH_<NAME>` (upper case), except
//! the conventional `DATABASE_URL` and `TWILIO_*`; in `wadash.toml` it is the lower-case name
//! without the `WADASH_` prefix (`bind = "0.0.0.0:8080"`, `twilio_account_sid = "AC…"`).
//! Unknown keys in the file are an error, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

/// Every key wadash reads: (file key, environment variable).
const KEYS: &[(&str, &str)] = &[
    ("database_url", "DATABASE_URL"),
    ("bind", "WADASH_BIND"),
    ("public_url", "WADASH_PUBLIC_URL"),
    ("log_format", "WADASH_LOG_FORMAT"),
    ("workers", "WADASH_WORKERS"),
    ("db_max_connections", "WADASH_DB_MAX_CONNECTIONS"),
    ("db_acquire_timeout_ms", "WADASH_DB_ACQUIRE_TIMEOUT_MS"),
    ("ingest_max_batch", "WADASH_INGEST_MAX_BATCH"),
    ("ingest_concurrency", "WADASH_INGEST_CONCURRENCY"),
    ("ingest_queue", "WADASH_INGEST_QUEUE"),
    ("webhook_body_timeout_ms", "WADASH_WEBHOOK_BODY_TIMEOUT_MS"),
    ("webhook_max_bodies", "WADASH_WEBHOOK_MAX_BODIES"),
    (
        "webhook_max_bodies_per_peer",
        "WADASH_WEBHOOK_MAX_BODIES_PER_PEER",
    ),
    ("webhook_deadline_ms", "WADASH_WEBHOOK_DEADLINE_MS"),
    ("shutdown_timeout_secs", "WADASH_SHUTDOWN_TIMEOUT_SECS"),
    ("twilio_account_sid", "TWILIO_ACCOUNT_SID"),
    ("twilio_auth_token", "TWILIO_AUTH_TOKEN"),
    ("twilio_auth_token_secondary", "TWILIO_AUTH_TOKEN_SECONDARY"),
    ("twilio_api_key", "TWILIO_API_KEY"),
    ("twilio_api_secret", "TWILIO_API_SECRET"),
    ("twilio_api_base", "TWILIO_API_BASE"),
    ("twilio_credentials_file", "WADASH_TWILIO_CREDENTIALS_FILE"),
    ("credentials_poll_ms", "WADASH_CREDENTIALS_POLL_MS"),
    ("secret_key", "WADASH_SECRET_KEY"),
    ("admin_password", "WADASH_ADMIN_PASSWORD"),
    ("live_poll_ms", "WADASH_LIVE_POLL_MS"),
    ("balance_poll_secs", "WADASH_BALANCE_POLL_SECS"),
    ("credit_low", "WADASH_CREDIT_LOW"),
    ("alert_webhook_url", "WADASH_ALERT_WEBHOOK_URL"),
    ("outbound_allow_hosts", "WADASH_OUTBOUND_ALLOW_HOSTS"),
    ("alert_webhook_secret", "WADASH_ALERT_WEBHOOK_SECRET"),
    ("alert_whatsapp", "WADASH_ALERT_WHATSAPP"),
    ("alert_evaluate_secs", "WADASH_ALERT_EVALUATE_SECS"),
    ("topup_webhook_url", "WADASH_TOPUP_WEBHOOK_URL"),
    ("topup_webhook_secret", "WADASH_TOPUP_WEBHOOK_SECRET"),
    ("credit_critical", "WADASH_CREDIT_CRITICAL"),
    ("credit_low_floor", "WADASH_CREDIT_LOW_FLOOR"),
    ("credit_critical_floor", "WADASH_CREDIT_CRITICAL_FLOOR"),
    ("broadcast_stale_secs", "WADASH_BROADCAST_STALE_SECS"),
    ("broadcast_pace", "WADASH_BROADCAST_PACE"),
    ("broadcast_reserve", "WADASH_BROADCAST_RESERVE"),
    ("send_max_wait_ms", "WADASH_SEND_MAX_WAIT_MS"),
    ("reminder_max_late_secs", "WADASH_REMINDER_MAX_LATE_SECS"),
    ("opt_out_keywords", "WADASH_OPT_OUT_KEYWORDS"),
    ("opt_in_keywords", "WADASH_OPT_IN_KEYWORDS"),
    ("opt_out_reply", "WADASH_OPT_OUT_REPLY"),
    ("opt_in_reply", "WADASH_OPT_IN_REPLY"),
    ("twilio_timeout_ms", "WADASH_TWILIO_TIMEOUT_MS"),
    ("default_from", "WADASH_DEFAULT_FROM"),
    ("messaging_service_sid", "WADASH_MESSAGING_SERVICE_SID"),
    ("reconcile_after_secs", "WADASH_RECONCILE_AFTER_SECS"),
    ("reconcile_interval_secs", "WADASH_RECONCILE_INTERVAL_SECS"),
    ("reconcile_give_up_hours", "WADASH_RECONCILE_GIVE_UP_HOURS"),
    ("price_fetch_secs", "WADASH_PRICE_FETCH_SECS"),
    ("price_fetch_per_sec", "WADASH_PRICE_FETCH_PER_SEC"),
    ("sim_sent_ms", "WADASH_SIM_SENT_MS"),
    ("sim_delivered_ms", "WADASH_SIM_DELIVERED_MS"),
    ("sim_read_ms", "WADASH_SIM_READ_MS"),
    ("sim_read_share", "WADASH_SIM_READ_SHARE"),
    ("sim_failure_share", "WADASH_SIM_FAILURE_SHARE"),
    ("sim_duplicate_share", "WADASH_SIM_DUPLICATE_SHARE"),
    ("sim_reorder_share", "WADASH_SIM_REORDER_SHARE"),
    ("sim_lost_share", "WADASH_SIM_LOST_SHARE"),
    ("sim_balance", "WADASH_SIM_BALANCE"),
];

/// The Twilio WhatsApp sandbox number, the sender when none is configured.
pub const SANDBOX_FROM: &str = crate::domain::phone::SANDBOX_SENDER;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/wadash";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Twilio account settings from the environment. Which credentials are in force (and so
/// live or simulator mode) is decided in `crate::credentials`.
#[derive(Clone)]
pub struct TwilioSettings {
    pub account_sid: Option<String>,
    pub auth_token: Option<SecretString>,
    pub auth_token_secondary: Option<SecretString>,
    pub api_key: Option<String>,
    pub api_secret: Option<SecretString>,
    pub api_base: String,
    pub timeout: Duration,
    /// Sender used when a send names none (`whatsapp:+…`).
    pub default_from: String,
    /// When set, sends without an explicit sender go through this Messaging Service.
    pub messaging_service_sid: Option<String>,
}

impl std::fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: bool| if o { "[set]" } else { "[unset]" };
        f.debug_struct("TwilioSettings")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &set(self.auth_token.is_some()))
            .field(
                "auth_token_secondary",
                &set(self.auth_token_secondary.is_some()),
            )
            .field("api_key", &self.api_key)
            .field("api_secret", &set(self.api_secret.is_some()))
            .field("api_base", &self.api_base)
            .field("timeout", &self.timeout)
            .field("default_from", &self.default_from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .finish()
    }
}

/// One ingest lane per two cores: a lane keeps about one PostgreSQL backend busy, and the
/// HTTP side, PostgreSQL's other work and the WAL flushes need the rest. Fewer, larger batches
/// cost the database less per callback (measured in bench/README.md).
fn default_ingest_lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Group-commit tuning for webhook ingestion.
#[derive(Debug, Clone, Copy)]
pub struct IngestSettings {
    /// Largest number of callbacks committed in one transaction.
    pub max_batch: usize,
    /// Ingest lanes: each commits one transaction at a time for its own share of messages
    /// (src/ingest/batcher.rs), so this is also the number of transactions in flight at most.
    pub concurrency: usize,
    /// Callbacks waiting for a transaction before handlers get back-pressure.
    pub queue: usize,
    /// A batch whose statement and commit take longer than this is abandoned (its connection
    /// closed) and its callbacks answered 503: no webhook waits longer for its commit.
    pub batch_timeout: Duration,
}

/// Limits on Twilio's webhook requests (`/wa`, `/sts`), so that slow or hostile clients and a
/// hung database cannot hold them past Twilio's own 15-second timeout.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Longest time to receive a webhook's body once its headers arrived; then 408 and the
    /// connection is closed.
    pub body_timeout: Duration,
    /// Webhook bodies being received at once; past this, 503 at once.
    pub max_bodies: usize,
    /// Of those, how many one peer address may hold (behind a proxy every request comes from
    /// the proxy's address: raise it to `max_bodies` there, the proxy buffers bodies anyway).
    pub max_bodies_per_peer: usize,
    /// Longest time from a webhook's body to its answer (durable commit, then routing and
    /// the automatic reply); then 503. Also the ingest's batch timeout.
    pub deadline: Duration,
}

/// Broadcasts are paced this share of the sender's limit by default (1.5% under it), so that
/// up to ~15 ms of jitter between sending a message and Twilio receiving it cannot put more
/// than the limit's worth of messages into any one second. `WADASH_BROADCAST_PACE` trades
/// jitter tolerance (`1 / pace - 1` seconds) for throughput.
pub const DEFAULT_BROADCAST_PACE: f64 = 0.985;

/// How the broadcast runner (src/jobs/broadcasts.rs) behaves.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// A `sending` row older than this is looked up at Twilio (its worker died, or its call
    /// ended without an answer). Longer than Twilio's timeout plus a batch's slots.
    pub stale_after: Duration,
    /// How long an idle runner waits before looking for work again.
    pub idle: Duration,
    /// Share of the sender's limit to send at (see `broadcasts::PACE`).
    pub pace: f64,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(120),
            idle: Duration::from_millis(200),
            pace: DEFAULT_BROADCAST_PACE,
        }
    }
}

/// Fetching what Twilio actually charged for each sent message (src/jobs/prices.rs).
#[derive(Debug, Clone, Copy)]
pub struct PriceFetchSettings {
    /// How often the job runs; zero turns it off.
    pub interval: Duration,
    /// Most lookups at Twilio per second of interval.
    pub per_second: u32,
}

/// How the simulated network behaves (src/twilio/simulator.rs).
#[derive(Debug, Clone, Copy)]
pub struct SimulatorSettings {
    pub sent_after: Duration,
    pub delivered_after: Duration,
    pub read_after: Duration,
    /// Share of delivered messages that are also read.
    pub read_share: f64,
    /// Share of messages that end failed or undelivered.
    pub failure_share: f64,
    /// Share of callbacks sent twice.
    pub duplicate_share: f64,
    /// Share of messages whose last two callbacks arrive in reverse order.
    pub reorder_share: f64,
    /// Share of messages whose status callbacks are all lost on the way: the message still
    /// progresses at the simulator, and only looking it up (reconciliation) tells.
    pub lost_share: f64,
    pub starting_balance: Decimal,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self {
            sent_after: Duration::from_millis(400),
            delivered_after: Duration::from_millis(1500),
            read_after: Duration::from_millis(6000),
            read_share: 0.7,
            failure_share: 0.05,
            duplicate_share: 0.05,
            reorder_share: 0.1,
            lost_share: 0.01,
            starting_balance: Decimal::new(2000, 2),
        }
    }
}

/// How wadash answers consent keywords (src/replies).
#[derive(Debug, Clone)]
pub struct ReplySettings {
    pub keywords: crate::domain::consent::Keywords,
    /// Sent after an opt-out keyword; `None` sends nothing.
    pub opt_out_reply: Option<String>,
    /// Sent after an opt-in keyword; `None` sends nothing.
    pub opt_in_reply: Option<String>,
}

pub const DEFAULT_OPT_OUT_REPLY: &str = "You have been unsubscribed and will receive no more \
    messages from us. Reply START to subscribe again.";
pub const DEFAULT_OPT_IN_REPLY: &str =
    "You are subscribed again. Reply STOP at any time to unsubscribe.";

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            keywords: crate::domain::consent::Keywords::default(),
            opt_out_reply: Some(DEFAULT_OPT_OUT_REPLY.to_owned()),
            opt_in_reply: Some(DEFAULT_OPT_IN_REPLY.to_owned()),
        }
    }
}

/// Where alerts go (src/alerts).
#[derive(Debug, Clone, Default)]
pub struct Channels {
    /// Receives `POST`ed JSON, signed with `webhook_secret`.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<SecretString>,
    /// Ops numbers (`+…`) that get a WhatsApp message.
    pub whatsapp: Vec<String>,
    /// Called when credit runs low, so that a finance system can recharge the account
    /// (Twilio has no API to add credit). Signed like the webhook, with its own secret.
    pub topup_url: Option<String>,
    pub topup_secret: Option<SecretString>,
}

impl Channels {
    /// Channel names as stored with each delivery: `webhook`, `whatsapp:+…`.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.webhook_url.is_some() {
            names.push("webhook".to_owned());
        }
        names.extend(self.whatsapp.iter().map(|n| format!("whatsapp:{n}")));
        names
    }

    /// The channels for alerts of `kind`: the top-up hook hears only about credit.
    pub fn names_for(&self, kind: &str) -> Vec<String> {
        let mut names = self.names();
        if self.topup_url.is_some() && kind.starts_with("credit_") {
            names.push("topup".to_owned());
        }
        names
    }
}

/// How one-off sends (the API, the dashboard, the CLI, alert messages, automatic replies)
/// take their sender's send slots (src/sending/pacing.rs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendPacing {
    /// Share of the sender's limit its line of slots runs at: the broadcast pace, since
    /// broadcasts and one-off sends share one line.
    pub pace: f64,
    /// Longest a one-off send waits for its slot; when the line is longer, the send is
    /// refused (429, nothing sent). An automatic reply waits at most this long, and never
    /// past the time its webhook must be answered by.
    pub max_wait: Duration,
}

impl Default for SendPacing {
    fn default() -> Self {
        Self {
            pace: DEFAULT_BROADCAST_PACE,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Where Twilio credentials come from at run time besides the environment (src/credentials).
#[derive(Debug, Clone)]
pub struct CredentialSettings {
    /// TOML file with the current credentials, re-read when it changes and on SIGHUP.
    pub file: Option<PathBuf>,
    /// How often the file and the stored credentials are checked for changes; zero: only on
    /// SIGHUP and API calls.
    pub poll: Duration,
    /// Seals credentials stored through the API.
    pub secret_key: Option<crate::domain::secret_key::SecretKey>,
}

/// Looking up messages whose callbacks may have been lost (src/jobs/reconcile.rs).
#[derive(Debug, Clone, Copy)]
pub struct ReconcileSettings {
    /// A message not settled this long after it was created is looked up at Twilio; later
    /// lookups back off from this delay, doubling each time.
    pub after: Duration,
    /// How often the job runs; zero turns reconciliation off.
    pub interval: Duration,
    /// Messages older than this are no longer looked up.
    pub give_up_after: Duration,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// The whole configuration tree.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: String,
    /// What Twilio calls, without a trailing slash; signatures are checked against it.
    /// `None` means `http://` + the address actually bound.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
    pub ingest: IngestSettings,
    pub webhooks: WebhookSettings,
    pub twilio: TwilioSettings,
    pub simulator: SimulatorSettings,
    pub reconcile: ReconcileSettings,
    /// Fetching what Twilio actually charged for each sent message.
    pub price_fetch: PriceFetchSettings,
    pub credentials: CredentialSettings,
    /// Password of the first admin, created when there are no users.
    pub admin_password: Option<SecretString>,
    /// How often each instance reads the live change log.
    pub live_poll: Duration,
    /// Consent keywords and their confirmations (src/replies).
    pub replies: ReplySettings,
    /// The broadcast runner (src/jobs/broadcasts.rs).
    pub broadcasts: RunnerSettings,
    /// One-off sends' share of the senders' slots.
    pub pacing: SendPacing,
    /// A reminder found this late after its time (after downtime) is skipped, not sent.
    pub reminder_max_late: Duration,
    /// How often Twilio's balance is read (in all, across instances); zero: never.
    pub balance_poll: Duration,
    /// The low and critical credit lines.
    pub credit: crate::domain::credit::Levels,
    /// Where alerts are delivered.
    pub alert_channels: Channels,
    /// Hosts that user-configured URLs (alert and top-up hooks) may name although they are
    /// local or private (`crate::domain::destination`).
    pub outbound_allow_hosts: Vec<String>,
    /// How often the alert rules are checked (by one instance); zero: never.
    pub alert_evaluate: Duration,
    /// A broadcast whose estimated cost would take the balance below this is held for an
    /// admin.
    pub broadcast_reserve: Option<rust_decimal::Decimal>,
}

impl Settings {
    /// Reads `wadash.toml` (or the file named by `WADASH_CONFIG`) and the environment.
    pub fn load() -> anyhow::Result<Self> {
        let explicit = std::env::var_os("WADASH_CONFIG").map(PathBuf::from);
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("wadash.toml"));
        let mut values = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_file(&text).with_context(|| format!("in {}", path.display()))?
        } else if explicit.is_some() {
            bail!(
                "WADASH_CONFIG names {}, which does not exist",
                path.display()
            );
        } else {
            BTreeMap::new()
        };
        for (key, env) in KEYS {
            if let Ok(v) = std::env::var(env) {
                values.insert((*key).to_owned(), v);
            }
        }
        Self::from_values(&values)
    }

    /// Builds settings from `key → value` pairs (file keys); missing keys take defaults.
    pub fn from_values(values: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let get = |k: &str| values.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let secret = |k: &str| get(k).map(|s| SecretString::from(s.to_owned()));
        fn num<T: std::str::FromStr>(v: Option<&str>, key: &str, default: T) -> anyhow::Result<T> {
            match v {
                None => Ok(default),
                Some(s) => s
                    .parse()
                    .map_err(|_| anyhow!("{key} must be a number, got {s:?}")),
            }
        }

        let bind = get("bind").unwrap_or(DEFAULT_BIND).to_owned();
        if bind.parse::<SocketAddr>().is_err() && !bind.contains(':') {
            bail!("bind must be host:port, got {bind:?}");
        }
        let public_url = match get("public_url") {
            Some(u) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    bail!("public_url must start with http:// or https://, got {u:?}");
                }
                Some(u.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let log_format = match get("log_format").unwrap_or("human") {
            "human" | "text" | "pretty" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => bail!("log_format must be human or json, got {other:?}"),
        };
        let webhooks = WebhookSettings {
            body_timeout: Duration::from_millis(
                num(
                    get("webhook_body_timeout_ms"),
                    "webhook_body_timeout_ms",
                    5_000u64,
                )?
                .max(1),
            ),
            max_bodies: num(get("webhook_max_bodies"), "webhook_max_bodies", 1_024usize)?.max(1),
            max_bodies_per_peer: num(
                get("webhook_max_bodies_per_peer"),
                "webhook_max_bodies_per_peer",
                64usize,
            )?
            .max(1),
            deadline: Duration::from_millis(num(
                get("webhook_deadline_ms"),
                "webhook_deadline_ms",
                5_000u64,
            )?),
        };
        if webhooks.deadline < Duration::from_secs(1) {
            bail!(
                "webhook_deadline_ms must be at least 1000: it is also the time an ingest batch gets to commit"
            );
        }
        if webhooks.body_timeout + webhooks.deadline >= Duration::from_secs(15) {
            bail!(
                "webhook_body_timeout_ms + webhook_deadline_ms must stay under 15000: Twilio gives up on a webhook after 15 s"
            );
        }
        let ingest = IngestSettings {
            batch_timeout: webhooks.deadline,
            max_batch: num(get("ingest_max_batch"), "ingest_max_batch", 512usize)?.max(1),
            concurrency: num(
                get("ingest_concurrency"),
                "ingest_concurrency",
                default_ingest_lanes(),
            )?
            .max(1),
            queue: num(get("ingest_queue"), "ingest_queue", 16_384usize)?.max(1),
        };
        let database = DatabaseSettings {
            url: SecretString::from(
                get("database_url")
                    .unwrap_or(DEFAULT_DATABASE_URL)
                    .to_owned(),
            ),
            max_connections: num(get("db_max_connections"), "db_max_connections", 16u32)?.max(2),
            acquire_timeout: Duration::from_millis(num(
                get("db_acquire_timeout_ms"),
                "db_acquire_timeout_ms",
                3000u64,
            )?),
        };
        let twilio = TwilioSettings {
            account_sid: get("twilio_account_sid").map(str::to_owned),
            auth_token: secret("twilio_auth_token"),
            auth_token_secondary: secret("twilio_auth_token_secondary"),
            api_key: get("twilio_api_key").map(str::to_owned),
            api_secret: secret("twilio_api_secret"),
            api_base: get("twilio_api_base")
                .unwrap_or("https://api.twilio.com")
                .trim_end_matches('/')
                .to_owned(),
            timeout: Duration::from_millis(
                num(get("twilio_timeout_ms"), "twilio_timeout_ms", 15_000u64)?.max(1),
            ),
            default_from: match get("default_from") {
                None => SANDBOX_FROM.to_owned(),
                Some(f) => crate::domain::WhatsAppAddress::parse(f)
                    .map_err(|e| anyhow!("default_from: {e}"))?
                    .as_str()
                    .to_owned(),
            },
            messaging_service_sid: get("messaging_service_sid").map(str::to_owned),
        };
        let workers = match get("workers") {
            None => None,
            Some(_) => Some(num(get("workers"), "workers", 1usize)?.max(1)),
        };
        let share = |key: &str, default: f64| -> anyhow::Result<f64> {
            let v = num(get(key), key, default)?;
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "{key} must be between 0 and 1, got {v}"
            );
            Ok(v)
        };
        let ms = |key: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(num(get(key), key, default)?))
        };
        let sim_defaults = SimulatorSettings::default();
        let simulator = SimulatorSettings {
            sent_after: ms("sim_sent_ms", sim_defaults.sent_after.as_millis() as u64)?,
            delivered_after: ms(
                "sim_delivered_ms",
                sim_defaults.delivered_after.as_millis() as u64,
            )?,
            read_after: ms("sim_read_ms", sim_defaults.read_after.as_millis() as u64)?,
            read_share: share("sim_read_share", sim_defaults.read_share)?,
            failure_share: share("sim_failure_share", sim_defaults.failure_share)?,
            duplicate_share: share("sim_duplicate_share", sim_defaults.duplicate_share)?,
            reorder_share: share("sim_reorder_share", sim_defaults.reorder_share)?,
            lost_share: share("sim_lost_share", sim_defaults.lost_share)?,
            starting_balance: match get("sim_balance") {
                None => sim_defaults.starting_balance,
                Some(b) => b
                    .parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .ok_or_else(|| anyhow!("sim_balance must be an amount in USD, got {b:?}"))?,
            },
        };
        let secs = |key: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(num(get(key), key, default)?))
        };
        let reconcile = ReconcileSettings {
            after: secs("reconcile_after_secs", 600)?.max(Duration::from_secs(1)),
            interval: secs("reconcile_interval_secs", 60)?,
            give_up_after: Duration::from_secs(
                num(
                    get("reconcile_give_up_hours"),
                    "reconcile_give_up_hours",
                    72u64,
                )? * 3600,
            ),
        };
        let price_fetch = PriceFetchSettings {
            interval: secs("price_fetch_secs", 10)?,
            per_second: num(get("price_fetch_per_sec"), "price_fetch_per_sec", 20u32)?.max(1),
        };
        let credentials = CredentialSettings {
            file: get("twilio_credentials_file").map(PathBuf::from),
            poll: Duration::from_millis(num(
                get("credentials_poll_ms"),
                "credentials_poll_ms",
                2000u64,
            )?),
            secret_key: match get("secret_key") {
                None => None,
                Some(k) => Some(
                    crate::domain::secret_key::SecretKey::parse(k)
                        .map_err(|e| anyhow!("secret_key: {e}"))?,
                ),
            },
        };
        let keywords = crate::domain::consent::Keywords::parse(
            get("opt_out_keywords").unwrap_or(crate::domain::consent::DEFAULT_OPT_OUT),
            get("opt_in_keywords").unwrap_or(crate::domain::consent::DEFAULT_OPT_IN),
        )
        .map_err(|e| anyhow!("opt_out_keywords / opt_in_keywords: {e}"))?;
        // `off` turns a confirmation off.
        let reply_text = |key: &str, default: &str| match get(key) {
            Some(v) if v.eq_ignore_ascii_case("off") => None,
            Some(v) => Some(v.to_owned()),
            None => Some(default.to_owned()),
        };
        let replies = ReplySettings {
            keywords,
            opt_out_reply: reply_text("opt_out_reply", DEFAULT_OPT_OUT_REPLY),
            opt_in_reply: reply_text("opt_in_reply", DEFAULT_OPT_IN_REPLY),
        };
        let broadcasts = RunnerSettings {
            stale_after: Duration::from_secs(
                num(get("broadcast_stale_secs"), "broadcast_stale_secs", 120u64)?.max(1),
            ),
            pace: {
                let p = num(
                    get("broadcast_pace"),
                    "broadcast_pace",
                    DEFAULT_BROADCAST_PACE,
                )?;
                anyhow::ensure!(
                    p > 0.5 && p <= 1.0,
                    "broadcast_pace must be above 0.5 and at most 1, got {p}"
                );
                p
            },
            ..Default::default()
        };
        let pacing = SendPacing {
            pace: broadcasts.pace,
            max_wait: Duration::from_millis(num(
                get("send_max_wait_ms"),
                "send_max_wait_ms",
                SendPacing::default().max_wait.as_millis() as u64,
            )?),
        };
        anyhow::ensure!(
            pacing.max_wait <= Duration::from_secs(60),
            "send_max_wait_ms must be at most 60000: a send waits that long inside its request"
        );
        let credit = {
            let d = crate::domain::credit::Levels::default();
            let line = |key: &str, default| match get(key) {
                None => Ok(default),
                Some(v) => {
                    crate::domain::credit::Threshold::parse(v).map_err(|e| anyhow!("{key}: {e}"))
                }
            };
            let floor = |key: &str, default: rust_decimal::Decimal| match get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .ok_or_else(|| anyhow!("{key} must be an amount such as 5.00, got {v:?}")),
            };
            crate::domain::credit::Levels {
                low: line("credit_low", d.low)?,
                critical: line("credit_critical", d.critical)?,
                low_floor: floor("credit_low_floor", d.low_floor)?,
                critical_floor: floor("credit_critical_floor", d.critical_floor)?,
                hysteresis: d.hysteresis,
            }
        };
        let outbound_allow_hosts: Vec<String> = get("outbound_allow_hosts")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        let allow = crate::domain::destination::AllowList::new(&outbound_allow_hosts);
        let hook_url = |key: &str| -> anyhow::Result<Option<String>> {
            match get(key) {
                None => Ok(None),
                Some(u) => match crate::domain::destination::check_url(u, &allow) {
                    Ok(_) => Ok(Some(u.to_owned())),
                    Err(e) => bail!("{key} {u:?}: {e}"),
                },
            }
        };
        let alert_channels = {
            let webhook_url = hook_url("alert_webhook_url")?;
            let webhook_secret = secret("alert_webhook_secret");
            if webhook_url.is_some() && webhook_secret.is_none() {
                bail!(
                    "alert_webhook_url needs alert_webhook_secret: the receiver checks each alert's signature with it"
                );
            }
            let whatsapp = get("alert_whatsapp")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    crate::domain::PhoneNumber::parse(n)
                        .map(|p| p.as_str().to_owned())
                        .map_err(|e| anyhow!("alert_whatsapp: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let topup_url = hook_url("topup_webhook_url")?;
            let topup_secret = secret("topup_webhook_secret");
            if topup_url.is_some() && topup_secret.is_none() {
                bail!(
                    "topup_webhook_url needs topup_webhook_secret: the finance system checks each call's signature with it"
                );
            }
            Channels {
                webhook_url,
                webhook_secret,
                whatsapp,
                topup_url,
                topup_secret,
            }
        };
        let broadcast_reserve = match get("broadcast_reserve") {
            None => None,
            Some(r) => Some(
                r.parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .ok_or_else(|| anyhow!("broadcast_reserve must be an amount, got {r:?}"))?,
            ),
        };
        Ok(Self {
            broadcast_reserve,
            alert_evaluate: Duration::from_secs(num(
                get("alert_evaluate_secs"),
                "alert_evaluate_secs",
                30u64,
            )?),
            alert_channels,
            outbound_allow_hosts,
            credit,
            balance_poll: Duration::from_secs(num(
                get("balance_poll_secs"),
                "balance_poll_secs",
                300u64,
            )?),
            broadcasts,
            pacing,
            reminder_max_late: Duration::from_secs(num(
                get("reminder_max_late_secs"),
                "reminder_max_late_secs",
                3600u64,
            )?),
            replies,
            live_poll: Duration::from_millis(
                num(get("live_poll_ms"), "live_poll_ms", 100u64)?.max(10),
            ),
            admin_password: secret("admin_password"),
            simulator,
            reconcile,
            price_fetch,
            credentials,
            database,
            bind,
            public_url,
            log_format,
            workers,
            shutdown_timeout: Duration::from_secs(num(
                get("shutdown_timeout_secs"),
                "shutdown_timeout_secs",
                5u64,
            )?),
            ingest,
            webhooks,
            twilio,
        })
    }
}

fn parse_file(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let table: toml::Table = toml::from_str(text)?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        if !KEYS.iter().any(|(key, _)| *key == k) {
            let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            bail!(
                "unknown setting {k:?}; known settings: {}",
                known.join(", ")
            );
        }
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("{k} must be a string or a number, got {}", other.type_str()),
        };
        out.insert(k, s);
    }
    Ok(out)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_simulator_mode_on_local_postgres() {
        let s = Settings::from_values(&BTreeMap::new()).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.public_url, None);
        assert_eq!(s.database.url.expose_secret(), DEFAULT_DATABASE_URL);
        // No account: simulator mode (decided from these in crate::credentials).
        assert!(s.twilio.account_sid.is_none() && s.twilio.auth_token.is_none());
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let s = Settings::from_values(&values(&[
            ("database_url", "postgres://u:dbpass@h/db"),
            ("twilio_account_sid", "AC1"),
            ("twilio_auth_token", "supersecrettoken"),
            ("twilio_api_secret", "apisecretvalue"),
        ]))
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("supersecrettoken"));
        assert!(!dbg.contains("apisecretvalue"));
        assert!(!dbg.contains("dbpass"));
        assert_eq!(s.twilio.account_sid.as_deref(), Some("AC1"));
        assert!(s.twilio.auth_token.is_some() && s.twilio.api_secret.is_some());
    }

    #[test]
    fn public_url_loses_its_trailing_slash_and_must_be_http() {
        let s = Settings::from_values(&values(&[("public_url", "https://x.example/")])).unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://x.example"));
        assert!(Settings::from_values(&values(&[("public_url", "x.example")])).is_err());
    }

    #[test]
    fn file_rejects_unknown_keys_and_accepts_numbers() {
        assert!(parse_file("bnd = \"x\"").is_err());
        let v = parse_file("workers = 3\nbind = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(v["workers"], "3");
        let s = Settings::from_values(&v).unwrap();
        assert_eq!(s.workers, Some(3));
    }

    #[test]
    fn bad_numbers_are_explained() {
        let err = Settings::from_values(&values(&[("ingest_max_batch", "lots")])).unwrap_err();
        assert!(err.to_string().contains("ingest_max_batch"));
    }
}
