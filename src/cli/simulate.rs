//! `wadash simulate`: inbound traffic, signed like Twilio's, at a running instance's /wa.

use anyhow::Context as _;
use secrecy::SecretString;

use super::TrafficArgs;
use crate::config::Settings;

pub(super) async fn run(args: TrafficArgs, settings: Settings) -> anyhow::Result<()> {
    let url = args.url.unwrap_or_else(|| super::public_url(&settings));
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--url must start with http:// or https://, got {url:?}"
    );
    let to = match args.to {
        Some(t) => crate::domain::WhatsAppAddress::parse(&t)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?
            .as_str()
            .to_owned(),
        None => settings.twilio.default_from.clone(),
    };
    let (token, account) = match args.auth_token.filter(|t| !t.trim().is_empty()) {
        Some(t) => (SecretString::from(t.trim().to_owned()), None),
        None => {
            let pool = crate::database::prepare(&settings.database).await.context(
                "reading the instance's auth token from its database (or pass --auth-token)",
            )?;
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let token = match effective.webhook_tokens().into_iter().next() {
                Some(t) => t,
                None => crate::twilio::webhook_keys::simulator_token(&pool).await?,
            };
            (token, effective.set.account_sid.clone())
        }
    };
    let account_sid = account.unwrap_or_else(|| crate::twilio::simulator::account_sid_for(&token));
    let plan = crate::simulate::Plan {
        url: url.trim_end_matches('/').to_owned(),
        token,
        account_sid,
        to,
        rate: args.rate,
        duration: args.duration,
        customers: args.customers.max(1),
        concurrency: 64,
    };
    eprintln!(
        "sending {} inbound messages to {}/wa at {}/s from {} customers",
        plan.total(),
        plan.url,
        plan.rate,
        plan.customers
    );
    let bar = crate::progress::ProgressBar::new("messages");
    let report = crate::simulate::run(&plan, &bar).await?;
    let kinds: Vec<String> = report
        .by_kind
        .iter()
        .map(|(k, n)| format!("{n} {}", k.label()))
        .collect();
    println!(
        "sent {} in {:.1} s ({:.1}/s): {}; accepted {}, p50 {:.1} ms, p99 {:.1} ms",
        report.sent,
        report.elapsed.as_secs_f64(),
        report.sent as f64 / report.elapsed.as_secs_f64().max(1e-3),
        kinds.join(", "),
        report.accepted,
        report.p50.as_secs_f64() * 1e3,
        report.p99.as_secs_f64() * 1e3,
    );
    if report.ok() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for (status, n) in &report.refused {
        let why = match status {
            403 => {
                " (signature refused: the token is not the one the instance validates with, or --url is not its public URL)"
            }
            503 => " (the instance's database is unavailable)",
            _ => "",
        };
        problems.push(format!("{n} answered HTTP {status}{why}"));
    }
    if report.failed > 0 {
        problems.push(format!(
            "{} got no answer (is the instance running at {}?)",
            report.failed, plan.url
        ));
    }
    anyhow::bail!("{}", problems.join("; "))
}
