//! The settings of each part of wadash, as the rest of the code reads them.

use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::credential_set::CredentialSet;

/// Twilio account settings from the environment. Which credentials are in force (and so
/// live or simulator mode) is decided in `crate::credentials`.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Account SID, auth tokens, API key and secret, each possibly unset.
    pub credentials: CredentialSet,
    pub api_base: String,
    /// The Content API (templates and their WhatsApp approvals).
    pub content_base: String,
    /// The Messaging API (WhatsApp senders, Messaging Services).
    pub messaging_base: String,
    pub timeout: Duration,
    /// Sender used when a send names none (`whatsapp:+…`).
    pub default_from: String,
    /// When set, sends without an explicit sender go through this Messaging Service.
    pub messaging_service_sid: Option<String>,
}

/// One ingest lane per two cores: a lane keeps about one PostgreSQL backend busy, and the
/// HTTP side, PostgreSQL's other work and the WAL flushes need the rest. Fewer, larger batches
/// cost the database less per callback (measured in bench/README.md).
pub(super) fn default_ingest_lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Default of `WADASH_INGEST_LINGER_US` (measured in bench/README.md, "Lingering lanes").
pub(super) const DEFAULT_INGEST_LINGER_US: u64 = 1000;

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
    /// How long a lane waits for more callbacks before committing, when its previous batch
    /// held more than one (traffic is concurrent) and fewer than 16 are waiting; it stops
    /// waiting as soon as 16 are there, and zero commits at once. Light traffic never waits:
    /// a lane whose previous batch was a single callback commits the next at once.
    pub linger: Duration,
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
#[derive(Debug, Clone)]
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
    /// How long WhatsApp's review of a submitted template takes.
    pub template_review: Duration,
    /// Share of submitted templates WhatsApp rejects.
    pub template_reject_share: f64,
    /// How long each step of a sender's registration takes (creating, verifying).
    pub sender_step: Duration,
    /// Share of delivered quick-reply template messages whose recipient taps a button.
    pub button_tap_share: f64,
    /// Where the simulated recipients' messages (button taps) are posted: wadash's `/wa`, as
    /// `WADASH_PUBLIC_URL` names it. Set at startup (src/startup.rs), not read from the
    /// configuration; None: recipients never answer.
    pub inbound_url: Option<String>,
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
            template_review: Duration::from_secs(20),
            template_reject_share: 0.1,
            sender_step: Duration::from_millis(3000),
            button_tap_share: 0.3,
            inbound_url: None,
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

/// How bots answer conversations (src/bots): sessions, the answer's time budget, hand-off to a
/// human, the fallback reply and the circuit breaker.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// A conversation silent this long starts a new bot session (the bot forgets its context).
    pub session_idle: Duration,
    /// A bot answer that comes within this goes back as TwiML; a later one is sent through
    /// the REST client after the webhook answered. At most [`MAX_BOT_REPLY_BUDGET`].
    pub reply_budget: Duration,
    /// A contact writing this word (as consent keywords are matched: case, surrounding
    /// whitespace and punctuation ignored; kept normalized, upper case) in a bot conversation
    /// is handed to a human. Empty: no keyword.
    pub handoff_keyword: String,
    /// Fallback answers in a row that hand the conversation to a human; 0: never.
    pub max_fallbacks: u32,
    /// What the contact gets when the bot fails (timeout, throttling, auth, a bad answer) or
    /// is paused by the circuit breaker.
    pub fallback_reply: String,
    /// What the contact gets when the conversation is handed to a human (unless the bot said
    /// something itself); `None`: nothing.
    pub handoff_reply: Option<String>,
    /// Failures in a row that pause a bot.
    pub breaker_failures: u32,
    /// How long a paused bot is not asked.
    pub breaker_pause: Duration,
}

/// Twilio gives up on a webhook after 15 s; the answer must leave well before.
pub const MAX_BOT_REPLY_BUDGET: Duration = Duration::from_secs(10);
pub const DEFAULT_BOT_FALLBACK_REPLY: &str = "Sorry, I cannot answer right now. Please try again in a moment, or reply AGENT to reach our team.";
pub const DEFAULT_BOT_HANDOFF_REPLY: &str =
    "Thanks. A member of our team will answer you here shortly.";

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(1800),
            reply_budget: Duration::from_millis(5000),
            handoff_keyword: "AGENT".to_owned(),
            max_fallbacks: 2,
            fallback_reply: DEFAULT_BOT_FALLBACK_REPLY.to_owned(),
            handoff_reply: Some(DEFAULT_BOT_HANDOFF_REPLY.to_owned()),
            breaker_failures: 5,
            breaker_pause: Duration::from_secs(60),
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
            .field("url", &super::redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}
