//! `wadash simulator`: only the built-in Twilio simulator, until SIGINT or SIGTERM.

use std::io::Write as _;

use crate::config::Settings;

pub(super) async fn run(bind: &str, auth_token: String, settings: Settings) -> anyhow::Result<()> {
    let sim = crate::twilio::simulator::Simulator::start_on(
        bind,
        secrecy::SecretString::from(auth_token),
        crate::config::SimulatorSettings {
            // The wadash that plays the other side, when its public URL is configured here.
            inbound_url: settings
                .public_url
                .as_deref()
                .map(|u| format!("{}/wa", u.trim_end_matches('/'))),
            ..settings.simulator.clone()
        },
    )?;
    println!("TWILIO_API_BASE={}", sim.url());
    println!("TWILIO_ACCOUNT_SID={}", sim.account_sid());
    std::io::stdout().flush()?;
    crate::startup::wait_for_signal().await;
    sim.stop().await;
    Ok(())
}
