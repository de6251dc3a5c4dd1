//! `wadash migrate`: create the database if it is missing and apply the migrations.

use secrecy::ExposeSecret as _;

use crate::config::{Settings, redact_url};

pub(super) async fn run(settings: Settings) -> anyhow::Result<()> {
    crate::database::prepare(&settings.database).await?;
    println!(
        "database {} is up to date",
        redact_url(settings.database.url.expose_secret())
    );
    Ok(())
}
