//! `wadash simulate sender-offline|sender-online`: takes a WhatsApp sender of a running
//! instance's built-in Twilio simulator offline with Twilio-style reasons, or brings it back,
//! through the simulator's control endpoint, so the alert path and the held work can be seen
//! without Twilio. The simulator is found where `wadash serve` recorded it in the database
//! (or `--simulator-url`), and called with the account's credentials as Twilio's API is.

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};

use super::SimSenderArgs;
use crate::config::Settings;

/// The simulator to talk to: its URL, account SID and auth token.
pub(super) struct SimTarget {
    pub url: String,
    pub account_sid: String,
    pub token: SecretString,
}

/// Finds the simulator: `url` if given, else the one the instance on this database recorded;
/// the token: `auth_token` if given, else the one the instance validates with.
pub(super) async fn target(
    settings: &Settings,
    url: Option<String>,
    auth_token: Option<String>,
) -> anyhow::Result<SimTarget> {
    let pool = crate::database::prepare(&settings.database)
        .await
        .context("reading the instance's simulator from its database")?;
    let url = match url.filter(|u| !u.trim().is_empty()) {
        Some(u) => u,
        None => crate::storage::instance_settings::get(&pool, crate::twilio::simulator::URL_KEY)
            .await?
            .context(
                "no built-in simulator is recorded in this database: start `wadash serve` in simulator mode (no Twilio account configured), or pass --simulator-url",
            )?,
    };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "the simulator's URL must start with http:// or https://, got {url:?}"
    );
    let token = match auth_token.filter(|t| !t.trim().is_empty()) {
        Some(t) => SecretString::from(t.trim().to_owned()),
        None => {
            let (_, effective) = crate::startup::resolve_credentials(settings, &pool).await?;
            match effective.webhook_tokens().into_iter().next() {
                Some(t) => t,
                None => crate::twilio::webhook_keys::simulator_token(&pool).await?,
            }
        }
    };
    Ok(SimTarget {
        url: url.trim_end_matches('/').to_owned(),
        account_sid: crate::twilio::simulator::account_sid_for(&token),
        token,
    })
}

/// The control call's body: offline with one reason (`Some((code, message))`), or back.
pub fn request(sender: &str, reason: Option<(&str, &str)>) -> serde_json::Value {
    match reason {
        Some((code, message)) => serde_json::json!({
            "sender_id": sender,
            "offline": true,
            "offline_reasons": [{
                "code": code,
                "message": message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            }],
        }),
        None => serde_json::json!({"sender_id": sender, "offline": false, "offline_reasons": []}),
    }
}

pub(super) async fn run(
    args: SimSenderArgs,
    reason: Option<(String, String)>,
    settings: Settings,
) -> anyhow::Result<()> {
    let sender = crate::domain::WhatsAppAddress::parse(&args.sender)
        .map_err(|e| anyhow::anyhow!("--sender: {e}"))?
        .as_str()
        .to_owned();
    if let Some((code, message)) = &reason {
        anyhow::ensure!(
            !code.trim().is_empty() && code.trim().bytes().all(|b| b.is_ascii_digit()),
            "--reason-code must be Twilio's numeric error code, e.g. 63112; got {code:?}"
        );
        anyhow::ensure!(!message.trim().is_empty(), "--reason must not be empty");
    }
    let sim = target(&settings, args.simulator_url, args.auth_token).await?;
    let body = request(&sender, reason.as_ref().map(|(c, m)| (c.trim(), m.trim())));
    let answer = reqwest::Client::new()
        .post(format!("{}/simulator/senders/offline", sim.url))
        .basic_auth(&sim.account_sid, Some(sim.token.expose_secret()))
        .json(&body)
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
        .with_context(|| {
            format!(
                "the simulator at {} did not answer (is `wadash serve` running?)",
                sim.url
            )
        })?;
    let status = answer.status();
    let json: serde_json::Value = answer.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "the simulator refused (HTTP {}): {}",
            status.as_u16(),
            json["message"].as_str().unwrap_or("no reason given")
        );
    }
    println!(
        "{} is {} at the simulator{}",
        sender,
        json["status"].as_str().unwrap_or("?"),
        reason
            .map(|(c, m)| format!(" ({}: {})", c.trim(), m.trim()))
            .unwrap_or_default()
    );
    eprintln!(
        "the instance sees it with its next sender sync (WADASH_SENDER_SYNC_SECS), or now with `wadash senders sync` or \"Sync now\" on /admin/senders"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_request_carries_twilio_s_reason_shape() {
        let off = request("whatsapp:+15550000001", Some(("63112", "Meta disabled it")));
        assert_eq!(off["offline"], true);
        assert_eq!(off["offline_reasons"][0]["code"], "63112");
        assert_eq!(
            off["offline_reasons"][0]["more_info"],
            "https://www.twilio.com/docs/errors/63112"
        );
        let on = request("whatsapp:+15550000001", None);
        assert_eq!(on["offline"], false);
        assert_eq!(on["offline_reasons"], serde_json::json!([]));
    }
}
