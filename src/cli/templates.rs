//! `wadash templates list|sync`: the WhatsApp templates wadash knows, and a sync from Twilio.

use super::TemplatesCommand;
use crate::config::Settings;
use crate::storage::templates::Filter;

pub(super) async fn run(command: TemplatesCommand, settings: Settings) -> anyhow::Result<()> {
    let pool = crate::database::prepare(&settings.database).await?;
    match command {
        TemplatesCommand::List { status } => {
            let filter = Filter {
                status: status.map(|s| s.trim().to_lowercase()),
                ..Default::default()
            };
            let mut after: Option<String> = None;
            let mut n = 0;
            loop {
                let (page, next) =
                    crate::templates::page(&pool, &filter, after.as_deref(), 500).await?;
                for t in &page {
                    println!(
                        "{}  {:<12} {:<15} {:<6} {}",
                        t.sid,
                        t.whatsapp.status,
                        t.whatsapp.category.as_deref().unwrap_or("-"),
                        t.language,
                        t.name
                    );
                }
                n += page.len();
                match next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            let state = crate::templates::sync_state(&pool).await?;
            let when = state.last_ok_at.map_or("never".to_owned(), |t| {
                t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
            eprintln!("{n} template(s); last synced from Twilio: {when}");
            if let Some(e) = state.last_error.filter(|_| state.failures > 0) {
                eprintln!("the last {} sync(s) failed: {e}", state.failures);
            }
            Ok(())
        }
        TemplatesCommand::Sync => {
            let public_url = super::public_url(&settings);
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let Some(client) =
                crate::startup::twilio_client(&effective, &settings.twilio, &public_url)?
            else {
                anyhow::bail!(
                    "no Twilio credentials are configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET); in simulator mode `wadash serve` syncs the simulator's templates itself"
                );
            };
            let content = client.content(&settings.twilio.content_base)?;
            let channels = crate::alerts::channels::ChannelStore::with_allowed_hosts(
                pool.clone(),
                settings.alert_channels.clone(),
                settings.credentials.secret_key.clone(),
                crate::outbound::AllowList::new(&settings.outbound_allow_hosts),
            );
            let synced = crate::templates::sync_and_alert(&pool, &content, &channels).await?;
            for c in &synced.changes {
                println!(
                    "{}  {} {} → {}",
                    c.sid,
                    c.field.as_str(),
                    c.from.as_deref().unwrap_or("(new)"),
                    c.to.as_deref().unwrap_or("-")
                );
            }
            eprintln!(
                "{} template(s) at Twilio; {} change(s)",
                synced.templates,
                synced.changes.len()
            );
            Ok(())
        }
    }
}
