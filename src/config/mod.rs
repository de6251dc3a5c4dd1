//! Settings: defaults in code, then an optional `wadash.toml`, then the environment.
//!
//! Every setting has one name. In the environment it is `WADASH_<NAME>` (upper case), except
//! the conventional `DATABASE_URL` and `TWILIO_*`; in `wadash.toml` it is the lower-case name
//! without the `WADASH_` prefix (`bind = "0.0.0.0:8080"`, `twilio_account_sid = "AC…"`).
//! Unknown keys in the file are an error, so a typo never silently falls back to a default.

mod keys;
mod read;
mod sections;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::SecretString;

pub use sections::*;
use values::Values;

/// The Twilio WhatsApp sandbox number, the sender when none is configured.
pub const SANDBOX_FROM: &str = crate::domain::phone::SANDBOX_SENDER;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/wadash";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
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
    /// Bots: sessions, the reply budget, hand-off, fallback reply, circuit breaker.
    pub bots: BotSettings,
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
    /// How often Twilio's template catalogue is read (in all, across instances); zero: never.
    pub template_sync: Duration,
    /// How often Twilio's WhatsApp senders are read (in all, across instances); zero: never.
    pub sender_sync: Duration,
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
            keys::parse_file(&text).with_context(|| format!("in {}", path.display()))?
        } else if explicit.is_some() {
            bail!(
                "WADASH_CONFIG names {}, which does not exist",
                path.display()
            );
        } else {
            BTreeMap::new()
        };
        for (key, env) in keys::KEYS {
            if let Ok(v) = std::env::var(env) {
                values.insert((*key).to_owned(), v);
            }
        }
        Self::from_values(&values)
    }
    /// Builds settings from `key → value` pairs (file keys); missing keys take defaults.
    pub fn from_values(values: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let v = Values(values);
        // Read in this order, so that of several bad settings the same one is reported first
        // as before the split.
        let bind = read::bind(&v)?;
        let public_url = read::public_url(&v)?;
        let log_format = read::log_format(&v)?;
        let webhooks = read::webhooks(&v)?;
        let ingest = read::ingest(&v, &webhooks)?;
        let database = read::database(&v)?;
        let twilio = read::twilio(&v)?;
        let workers = match v.get("workers") {
            None => None,
            Some(_) => Some(v.num("workers", 1usize)?.max(1)),
        };
        let simulator = read::simulator(&v)?;
        let reconcile = read::reconcile(&v)?;
        let price_fetch = read::price_fetch(&v)?;
        let credentials = read::credentials(&v)?;
        let replies = read::replies(&v)?;
        let bots = read::bots(&v)?;
        let broadcasts = read::broadcasts(&v)?;
        let pacing = read::pacing(&v, &broadcasts)?;
        let credit = read::credit(&v)?;
        let outbound_allow_hosts = read::outbound_allow_hosts(&v);
        let alert_channels = read::alert_channels(&v, &outbound_allow_hosts)?;
        let broadcast_reserve = v.amount("broadcast_reserve", "an amount")?;
        Ok(Self {
            template_sync: v.secs("template_sync_secs", 300)?,
            sender_sync: v.secs("sender_sync_secs", 300)?,
            broadcast_reserve,
            alert_evaluate: v.secs("alert_evaluate_secs", 30)?,
            alert_channels,
            outbound_allow_hosts,
            credit,
            balance_poll: v.secs("balance_poll_secs", 300)?,
            broadcasts,
            pacing,
            reminder_max_late: v.secs("reminder_max_late_secs", 3600)?,
            replies,
            bots,
            live_poll: Duration::from_millis(v.num("live_poll_ms", 100u64)?.max(10)),
            admin_password: v.secret("admin_password"),
            simulator,
            reconcile,
            price_fetch,
            credentials,
            database,
            bind,
            public_url,
            log_format,
            workers,
            shutdown_timeout: v.secs("shutdown_timeout_secs", 5)?,
            ingest,
            webhooks,
            twilio,
        })
    }
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
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::config::keys::parse_file;
    use crate::config::values::map as values;

    #[test]
    fn defaults_are_simulator_mode_on_local_postgres() {
        let s = Settings::from_values(&BTreeMap::new()).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.public_url, None);
        assert_eq!(s.database.url.expose_secret(), DEFAULT_DATABASE_URL);
        // No account: simulator mode (decided from these in crate::credentials).
        assert!(
            s.twilio.credentials.account_sid.is_none() && s.twilio.credentials.auth_token.is_none()
        );
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
        assert_eq!(s.twilio.credentials.account_sid.as_deref(), Some("AC1"));
        assert!(
            s.twilio.credentials.auth_token.is_some() && s.twilio.credentials.api_secret.is_some()
        );
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
    fn of_several_bad_settings_the_first_in_reading_order_is_reported() {
        let err = Settings::from_values(&values(&[
            ("webhook_deadline_ms", "500"),
            ("bind", "nowhere"),
            ("broadcast_pace", "2"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("bind must be host:port"),
            "{err}"
        );
        let err = Settings::from_values(&values(&[
            ("broadcast_pace", "2"),
            ("broadcast_stale_secs", "soon"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("broadcast_stale_secs"), "{err}");
    }

    #[test]
    fn the_simulated_button_tap_share_is_a_share() {
        let d = Settings::from_values(&BTreeMap::new()).unwrap();
        assert_eq!(d.simulator.button_tap_share, 0.3);
        assert_eq!(
            d.simulator.inbound_url, None,
            "set at startup, not configured"
        );
        let s = Settings::from_values(&values(&[("sim_button_tap_share", "1")])).unwrap();
        assert_eq!(s.simulator.button_tap_share, 1.0);
        for bad in ["1.5", "-0.1", "often"] {
            let err = Settings::from_values(&values(&[("sim_button_tap_share", bad)])).unwrap_err();
            assert!(err.to_string().contains("sim_button_tap_share"), "{err}");
        }
    }

    #[test]
    fn bot_settings_have_defaults_and_the_budget_stays_under_twilios_timeout() {
        let d = Settings::from_values(&BTreeMap::new()).unwrap().bots;
        assert_eq!(d.session_idle, Duration::from_secs(1800));
        assert_eq!(d.reply_budget, Duration::from_millis(5000));
        assert_eq!((d.handoff_keyword.as_str(), d.max_fallbacks), ("AGENT", 2));
        assert_eq!((d.breaker_failures, d.breaker_pause.as_secs()), (5, 60));
        let s = Settings::from_values(&values(&[
            ("bot_handoff_keyword", " Human! "),
            ("bot_reply_budget_ms", "250"),
            ("bot_handoff_reply", "off"),
        ]))
        .unwrap()
        .bots;
        assert_eq!(s.handoff_keyword, "HUMAN");
        assert_eq!(s.reply_budget, Duration::from_millis(250));
        assert_eq!(s.handoff_reply, None);
        let err = Settings::from_values(&values(&[("bot_reply_budget_ms", "14000")])).unwrap_err();
        assert!(err.to_string().contains("bot_reply_budget_ms"), "{err}");
    }

    #[test]
    fn bad_numbers_are_explained() {
        let err = Settings::from_values(&values(&[("ingest_max_batch", "lots")])).unwrap_err();
        assert!(err.to_string().contains("ingest_max_batch"));
    }
}
