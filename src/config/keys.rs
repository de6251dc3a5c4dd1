//! The names of the settings (file key and environment variable) and reading `wadash.toml`.

use std::collections::BTreeMap;

use anyhow::bail;

/// Every key wadash reads: (file key, environment variable).
pub const KEYS: &[(&str, &str)] = &[
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
    ("ingest_linger_us", "WADASH_INGEST_LINGER_US"),
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
    ("twilio_content_base", "TWILIO_CONTENT_BASE"),
    ("twilio_messaging_base", "TWILIO_MESSAGING_BASE"),
    ("template_sync_secs", "WADASH_TEMPLATE_SYNC_SECS"),
    ("sender_sync_secs", "WADASH_SENDER_SYNC_SECS"),
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
    ("bot_session_idle_secs", "WADASH_BOT_SESSION_IDLE_SECS"),
    ("bot_reply_budget_ms", "WADASH_BOT_REPLY_BUDGET_MS"),
    ("bot_handoff_keyword", "WADASH_BOT_HANDOFF_KEYWORD"),
    ("bot_max_fallbacks", "WADASH_BOT_MAX_FALLBACKS"),
    ("bot_fallback_reply", "WADASH_BOT_FALLBACK_REPLY"),
    ("bot_handoff_reply", "WADASH_BOT_HANDOFF_REPLY"),
    ("bot_breaker_failures", "WADASH_BOT_BREAKER_FAILURES"),
    ("bot_breaker_pause_secs", "WADASH_BOT_BREAKER_PAUSE_SECS"),
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
    ("sim_template_review_ms", "WADASH_SIM_TEMPLATE_REVIEW_MS"),
    (
        "sim_template_reject_share",
        "WADASH_SIM_TEMPLATE_REJECT_SHARE",
    ),
    ("sim_sender_step_ms", "WADASH_SIM_SENDER_STEP_MS"),
    ("sim_button_tap_share", "WADASH_SIM_BUTTON_TAP_SHARE"),
];

/// The settings in a `wadash.toml`; an unknown key is an error.
pub fn parse_file(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian package's example settings (`deploy/debian/wadash.env`) list every setting,
    /// set or commented out, and nothing wadash does not read.
    #[test]
    fn the_packaged_example_settings_name_every_setting_and_only_those() {
        let example = include_str!("../../deploy/debian/wadash.env");
        let named: Vec<&str> = example
            .lines()
            .filter_map(|l| l.trim_start_matches('#').split_once('='))
            .map(|(name, _)| name)
            .filter(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
            })
            .collect();
        for (_, env) in KEYS {
            assert!(
                named.contains(env),
                "{env} is missing from deploy/debian/wadash.env"
            );
        }
        for name in &named {
            assert!(
                KEYS.iter().any(|(_, env)| env == name),
                "deploy/debian/wadash.env names {name}, which wadash does not read"
            );
        }
    }
}
