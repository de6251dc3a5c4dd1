//! `wadash senders list|sync`: the WhatsApp senders with Twilio's view of them, and a sync
//! of Twilio's senders now.

use super::SendersCommand;
use crate::config::Settings;
use crate::onboarding::sync::{SyncContext, sync_and_alert};
use crate::storage::sync_state::{self, Sync};

pub(super) async fn run(command: SendersCommand, settings: Settings) -> anyhow::Result<()> {
    let pool = crate::database::prepare(&settings.database).await?;
    match command {
        SendersCommand::List => {
            let rows = crate::storage::senders::all(&pool).await?;
            for s in &rows {
                let t = &s.twilio;
                let hooks = match t.webhooks_ok {
                    Some(true) => "webhooks:wadash",
                    Some(false) => "webhooks:ELSEWHERE",
                    None => "-",
                };
                let reasons = crate::domain::sender_health::reasons_text(&t.offline_reasons.0);
                println!(
                    "{:<24} {:<9} {:<8} {:<22} {:<8} {:<20} {}{}",
                    s.address,
                    s.kind,
                    s.status.as_str(),
                    match (&t.twilio_status, t.twilio_gone_at) {
                        (_, Some(_)) => "GONE",
                        (Some(st), None) => st.as_str(),
                        (None, None) => "-",
                    },
                    t.quality_rating.as_deref().unwrap_or("-"),
                    t.messaging_limit.as_deref().unwrap_or("-"),
                    hooks,
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!("  offline: {reasons}")
                    }
                );
            }
            let state = sync_state::get(&pool, Sync::Senders).await?;
            let when = state.last_ok_at.map_or("never".to_owned(), |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
            eprintln!("{} sender(s); last synced from Twilio: {when}", rows.len());
            if let Some(e) = state.last_error.filter(|_| state.failures > 0) {
                eprintln!(
                    "the last {} sync(s) failed, so Twilio's view may be stale: {e}",
                    state.failures
                );
            }
            Ok(())
        }
        SendersCommand::Sync => {
            let public_url = super::public_url(&settings);
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let messaging =
                match crate::startup::twilio_client(&effective, &settings.twilio, &public_url)? {
                    Some(client) => client.messaging(&settings.twilio.messaging_base)?,
                    // Simulator mode: the simulator of the `wadash serve` on this database.
                    None => {
                        let sim = super::sim_sender::target(&settings, None, None).await?;
                        crate::twilio::client::TwilioClient::new(
                            &sim.url,
                            &sim.account_sid,
                            crate::twilio::client::RestCredentials {
                                username: sim.account_sid.clone(),
                                secret: sim.token,
                            },
                            None,
                            settings.twilio.timeout,
                            crate::twilio::client::RetryPolicy::default(),
                        )?
                        .messaging(&sim.url)?
                    }
                };
            let channels = crate::alerts::channels::ChannelStore::with_allowed_hosts(
                pool.clone(),
                settings.alert_channels.clone(),
                settings.credentials.secret_key.clone(),
                crate::outbound::AllowList::new(&settings.outbound_allow_hosts),
            );
            let ctx = SyncContext::of_instance(&public_url);
            let synced = sync_and_alert(&pool, &messaging, &channels, &ctx).await?;
            for c in &synced.changes {
                println!(
                    "{}  {} {} → {}{}",
                    c.address,
                    c.field.as_str(),
                    c.from.as_deref().unwrap_or("(new)"),
                    c.to.as_deref().unwrap_or("-"),
                    if c.alerts() { "  (alert)" } else { "" }
                );
            }
            eprintln!(
                "{} WhatsApp sender(s) at Twilio; {} change(s)",
                synced.senders,
                synced.changes.len()
            );
            Ok(())
        }
    }
}
