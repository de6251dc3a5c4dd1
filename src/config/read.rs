//! Reading each section of the settings from the raw values, with its defaults and checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use secrecy::SecretString;

use super::sections::*;
use super::values::Values;
use super::{DEFAULT_BIND, DEFAULT_DATABASE_URL, LogFormat, SANDBOX_FROM};
use crate::domain::credential_set::CredentialSet;
use crate::domain::credit::{Levels, Threshold};

pub fn bind(v: &Values) -> anyhow::Result<String> {
    let bind = v.get("bind").unwrap_or(DEFAULT_BIND).to_owned();
    if bind.parse::<SocketAddr>().is_err() && !bind.contains(':') {
        bail!("bind must be host:port, got {bind:?}");
    }
    Ok(bind)
}

pub fn public_url(v: &Values) -> anyhow::Result<Option<String>> {
    match v.get("public_url") {
        Some(u) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("public_url must start with http:// or https://, got {u:?}");
            }
            Ok(Some(u.trim_end_matches('/').to_owned()))
        }
        None => Ok(None),
    }
}

pub fn log_format(v: &Values) -> anyhow::Result<LogFormat> {
    Ok(match v.get("log_format").unwrap_or("human") {
        "human" | "text" | "pretty" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => bail!("log_format must be human or json, got {other:?}"),
    })
}

pub fn webhooks(v: &Values) -> anyhow::Result<WebhookSettings> {
    let webhooks = WebhookSettings {
        body_timeout: Duration::from_millis(v.num("webhook_body_timeout_ms", 5_000u64)?.max(1)),
        max_bodies: v.num("webhook_max_bodies", 1_024usize)?.max(1),
        max_bodies_per_peer: v.num("webhook_max_bodies_per_peer", 64usize)?.max(1),
        deadline: v.millis("webhook_deadline_ms", 5_000)?,
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
    Ok(webhooks)
}

pub fn ingest(v: &Values, webhooks: &WebhookSettings) -> anyhow::Result<IngestSettings> {
    Ok(IngestSettings {
        batch_timeout: webhooks.deadline,
        max_batch: v.num("ingest_max_batch", 512usize)?.max(1),
        concurrency: v.num("ingest_concurrency", default_ingest_lanes())?.max(1),
        queue: v.num("ingest_queue", 16_384usize)?.max(1),
        linger: Duration::from_micros(v.num("ingest_linger_us", DEFAULT_INGEST_LINGER_US)?),
    })
}

pub fn database(v: &Values) -> anyhow::Result<DatabaseSettings> {
    Ok(DatabaseSettings {
        url: SecretString::from(
            v.get("database_url")
                .unwrap_or(DEFAULT_DATABASE_URL)
                .to_owned(),
        ),
        max_connections: v.num("db_max_connections", 16u32)?.max(2),
        acquire_timeout: v.millis("db_acquire_timeout_ms", 3000)?,
    })
}

pub fn twilio(v: &Values) -> anyhow::Result<TwilioSettings> {
    Ok(TwilioSettings {
        credentials: CredentialSet {
            account_sid: v.get("twilio_account_sid").map(str::to_owned),
            auth_token: v.secret("twilio_auth_token"),
            auth_token_secondary: v.secret("twilio_auth_token_secondary"),
            api_key: v.get("twilio_api_key").map(str::to_owned),
            api_secret: v.secret("twilio_api_secret"),
        },
        api_base: v
            .get("twilio_api_base")
            .unwrap_or("https://api.twilio.com")
            .trim_end_matches('/')
            .to_owned(),
        content_base: v
            .get("twilio_content_base")
            .unwrap_or("https://content.twilio.com")
            .trim_end_matches('/')
            .to_owned(),
        messaging_base: v
            .get("twilio_messaging_base")
            .unwrap_or("https://messaging.twilio.com")
            .trim_end_matches('/')
            .to_owned(),
        timeout: Duration::from_millis(v.num("twilio_timeout_ms", 15_000u64)?.max(1)),
        default_from: match v.get("default_from") {
            None => SANDBOX_FROM.to_owned(),
            Some(f) => crate::domain::WhatsAppAddress::parse(f)
                .map_err(|e| anyhow!("default_from: {e}"))?
                .as_str()
                .to_owned(),
        },
        messaging_service_sid: v.get("messaging_service_sid").map(str::to_owned),
    })
}

pub fn simulator(v: &Values) -> anyhow::Result<SimulatorSettings> {
    let d = SimulatorSettings::default();
    let ms = |key: &str, default: Duration| v.millis(key, default.as_millis() as u64);
    Ok(SimulatorSettings {
        sent_after: ms("sim_sent_ms", d.sent_after)?,
        delivered_after: ms("sim_delivered_ms", d.delivered_after)?,
        read_after: ms("sim_read_ms", d.read_after)?,
        read_share: v.share("sim_read_share", d.read_share)?,
        failure_share: v.share("sim_failure_share", d.failure_share)?,
        duplicate_share: v.share("sim_duplicate_share", d.duplicate_share)?,
        reorder_share: v.share("sim_reorder_share", d.reorder_share)?,
        lost_share: v.share("sim_lost_share", d.lost_share)?,
        starting_balance: v
            .amount("sim_balance", "an amount in USD")?
            .unwrap_or(d.starting_balance),
        template_review: ms("sim_template_review_ms", d.template_review)?,
        template_reject_share: v.share("sim_template_reject_share", d.template_reject_share)?,
        sender_step: ms("sim_sender_step_ms", d.sender_step)?,
        button_tap_share: v.share("sim_button_tap_share", d.button_tap_share)?,
        inbound_url: None,
    })
}

pub fn reconcile(v: &Values) -> anyhow::Result<ReconcileSettings> {
    Ok(ReconcileSettings {
        after: v
            .secs("reconcile_after_secs", 600)?
            .max(Duration::from_secs(1)),
        interval: v.secs("reconcile_interval_secs", 60)?,
        give_up_after: Duration::from_secs(v.num("reconcile_give_up_hours", 72u64)? * 3600),
    })
}

pub fn price_fetch(v: &Values) -> anyhow::Result<PriceFetchSettings> {
    Ok(PriceFetchSettings {
        interval: v.secs("price_fetch_secs", 10)?,
        per_second: v.num("price_fetch_per_sec", 20u32)?.max(1),
    })
}

pub fn credentials(v: &Values) -> anyhow::Result<CredentialSettings> {
    Ok(CredentialSettings {
        file: v.get("twilio_credentials_file").map(PathBuf::from),
        poll: v.millis("credentials_poll_ms", 2000)?,
        secret_key: match v.get("secret_key") {
            None => None,
            Some(k) => Some(
                crate::domain::secret_key::SecretKey::parse(k)
                    .map_err(|e| anyhow!("secret_key: {e}"))?,
            ),
        },
    })
}

pub fn replies(v: &Values) -> anyhow::Result<ReplySettings> {
    let keywords = crate::domain::consent::Keywords::parse(
        v.get("opt_out_keywords")
            .unwrap_or(crate::domain::consent::DEFAULT_OPT_OUT),
        v.get("opt_in_keywords")
            .unwrap_or(crate::domain::consent::DEFAULT_OPT_IN),
    )
    .map_err(|e| anyhow!("opt_out_keywords / opt_in_keywords: {e}"))?;
    // `off` turns a confirmation off.
    let reply_text = |key: &str, default: &str| match v.get(key) {
        Some(t) if t.eq_ignore_ascii_case("off") => None,
        Some(t) => Some(t.to_owned()),
        None => Some(default.to_owned()),
    };
    Ok(ReplySettings {
        keywords,
        opt_out_reply: reply_text("opt_out_reply", DEFAULT_OPT_OUT_REPLY),
        opt_in_reply: reply_text("opt_in_reply", DEFAULT_OPT_IN_REPLY),
    })
}

pub fn bots(v: &Values) -> anyhow::Result<BotSettings> {
    let d = BotSettings::default();
    let reply_budget = v.millis("bot_reply_budget_ms", d.reply_budget.as_millis() as u64)?;
    anyhow::ensure!(
        reply_budget >= Duration::from_millis(100) && reply_budget <= MAX_BOT_REPLY_BUDGET,
        "bot_reply_budget_ms must be between 100 and {} (Twilio waits 15 s for a webhook's answer)",
        MAX_BOT_REPLY_BUDGET.as_millis()
    );
    let handoff_keyword = v
        .get("bot_handoff_keyword")
        .map(crate::domain::consent::normalize)
        .unwrap_or(d.handoff_keyword);
    let fallback_reply = v
        .get("bot_fallback_reply")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or(d.fallback_reply, str::to_owned);
    let handoff_reply = match v.get("bot_handoff_reply") {
        Some(t) if t.eq_ignore_ascii_case("off") || t.trim().is_empty() => None,
        Some(t) => Some(t.to_owned()),
        None => d.handoff_reply,
    };
    Ok(BotSettings {
        session_idle: v.secs("bot_session_idle_secs", d.session_idle.as_secs())?,
        reply_budget,
        handoff_keyword,
        max_fallbacks: v.num("bot_max_fallbacks", d.max_fallbacks)?,
        fallback_reply,
        handoff_reply,
        breaker_failures: v.num("bot_breaker_failures", d.breaker_failures)?.max(1),
        breaker_pause: v.secs("bot_breaker_pause_secs", d.breaker_pause.as_secs())?,
    })
}

pub fn broadcasts(v: &Values) -> anyhow::Result<RunnerSettings> {
    let stale_after = Duration::from_secs(v.num("broadcast_stale_secs", 120u64)?.max(1));
    let pace = v.num("broadcast_pace", DEFAULT_BROADCAST_PACE)?;
    anyhow::ensure!(
        pace > 0.5 && pace <= 1.0,
        "broadcast_pace must be above 0.5 and at most 1, got {pace}"
    );
    Ok(RunnerSettings {
        stale_after,
        pace,
        ..Default::default()
    })
}

pub fn pacing(v: &Values, broadcasts: &RunnerSettings) -> anyhow::Result<SendPacing> {
    let pacing = SendPacing {
        pace: broadcasts.pace,
        max_wait: v.millis(
            "send_max_wait_ms",
            SendPacing::default().max_wait.as_millis() as u64,
        )?,
    };
    anyhow::ensure!(
        pacing.max_wait <= Duration::from_secs(60),
        "send_max_wait_ms must be at most 60000: a send waits that long inside its request"
    );
    Ok(pacing)
}

pub fn credit(v: &Values) -> anyhow::Result<Levels> {
    let d = Levels::default();
    let line = |key: &str, default| match v.get(key) {
        None => Ok(default),
        Some(t) => Threshold::parse(t).map_err(|e| anyhow!("{key}: {e}")),
    };
    let floor = |key: &str, default| -> anyhow::Result<_> {
        Ok(v.amount(key, "an amount such as 5.00")?.unwrap_or(default))
    };
    Ok(Levels {
        low: line("credit_low", d.low)?,
        critical: line("credit_critical", d.critical)?,
        low_floor: floor("credit_low_floor", d.low_floor)?,
        critical_floor: floor("credit_critical_floor", d.critical_floor)?,
        hysteresis: d.hysteresis,
    })
}

pub fn outbound_allow_hosts(v: &Values) -> Vec<String> {
    v.list("outbound_allow_hosts")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

pub fn alert_channels(v: &Values, allow_hosts: &[String]) -> anyhow::Result<Channels> {
    let allow = crate::domain::destination::AllowList::new(allow_hosts);
    let hook_url = |key: &str| -> anyhow::Result<Option<String>> {
        match v.get(key) {
            None => Ok(None),
            Some(u) => match crate::domain::destination::check_url(u, &allow) {
                Ok(_) => Ok(Some(u.to_owned())),
                Err(e) => bail!("{key} {u:?}: {e}"),
            },
        }
    };
    let webhook_url = hook_url("alert_webhook_url")?;
    let webhook_secret = v.secret("alert_webhook_secret");
    if webhook_url.is_some() && webhook_secret.is_none() {
        bail!(
            "alert_webhook_url needs alert_webhook_secret: the receiver checks each alert's signature with it"
        );
    }
    let whatsapp = v
        .list("alert_whatsapp")
        .into_iter()
        .map(|n| {
            crate::domain::PhoneNumber::parse(n)
                .map(|p| p.as_str().to_owned())
                .map_err(|e| anyhow!("alert_whatsapp: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topup_url = hook_url("topup_webhook_url")?;
    let topup_secret = v.secret("topup_webhook_secret");
    if topup_url.is_some() && topup_secret.is_none() {
        bail!(
            "topup_webhook_url needs topup_webhook_secret: the finance system checks each call's signature with it"
        );
    }
    Ok(Channels {
        webhook_url,
        webhook_secret,
        whatsapp,
        topup_url,
        topup_secret,
    })
}
