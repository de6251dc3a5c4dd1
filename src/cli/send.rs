//! `wadash send`: one WhatsApp message, sent from this process; prints its SID and status.

use super::SendArgs;
use crate::config::Settings;

pub(super) async fn run(args: SendArgs, settings: Settings) -> anyhow::Result<()> {
    let SendArgs {
        to,
        body,
        media,
        from,
        content_sid,
        content_variables,
        force,
    } = args;
    let request = crate::sending::SendRequest {
        to,
        body,
        media_urls: media,
        content_sid,
        content_variables,
        from,
    };
    let configured = crate::startup::configured_sender(&settings)?;
    let public_url = super::public_url(&settings);
    let pool = crate::database::prepare(&settings.database).await?;
    let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
    let Some(client) = crate::startup::twilio_client(&effective, &settings.twilio, &public_url)?
    else {
        anyhow::bail!(
            "no Twilio credentials are configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET), or name a credentials file in WADASH_TWILIO_CREDENTIALS_FILE"
        );
    };
    crate::senders::register_configured(&pool, &configured).await?;
    let default = crate::sending::current_default(&pool, &configured).await?;
    let msg = crate::sending::prepare(&request, &default)?;
    let opts = crate::sending::SendOptions {
        force,
        pacing: settings.pacing,
        ..Default::default()
    };
    let prices = crate::pricing::book::PriceBook::new(pool.clone());
    let sent = crate::sending::send(&client, &pool, &prices, &msg, opts).await?;
    for warning in &sent.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{} {}", sent.sid, sent.status);
    Ok(())
}
