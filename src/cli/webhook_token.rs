//! `wadash webhook-token`: the auth token webhooks are validated with in simulator mode.

use secrecy::ExposeSecret as _;

use crate::config::Settings;

pub(super) async fn run(settings: Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.twilio.credentials.auth_token.is_none(),
        "TWILIO_AUTH_TOKEN is configured: webhooks are validated with it, not with a generated token"
    );
    let pool = crate::database::prepare(&settings.database).await?;
    let token = crate::twilio::webhook_keys::simulator_token(&pool).await?;
    println!("{}", token.expose_secret());
    Ok(())
}
