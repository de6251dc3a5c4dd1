//! `wadash serve`: the web server, with the background jobs, until SIGINT or SIGTERM.

use secrecy::ExposeSecret as _;

use crate::config::{Settings, redact_url};
use crate::startup::Application;

pub(super) async fn run(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(database = %redact_url(settings.database.url.expose_secret()), "starting wadash {}", env!("CARGO_PKG_VERSION"));
    // Handlers first: a SIGTERM while the database is prepared still stops cleanly.
    let stop = crate::startup::wait_for_signal();
    let app = Application::build(settings).await?;
    app.run_until(stop).await
}
