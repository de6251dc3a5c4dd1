//! `wadash broadcast`: queue a broadcast to the numbers in a file and follow it with a progress
//! bar until it is sent (sending it from this process when Twilio credentials are set here).

use crate::domain::BroadcastStatus;
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::BroadcastArgs;
use crate::config::Settings;
use crate::storage;

pub(super) async fn run(args: BroadcastArgs, settings: Settings) -> anyhow::Result<()> {
    use crate::broadcasts::{Audience, BroadcastRequest, audience};
    let text = if args.to_file.as_os_str() == "-" {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read_to_string(&args.to_file)
            .with_context(|| format!("reading {}", args.to_file.display()))?
    };
    let listed = audience::parse_pasted(&text).map_err(|e| anyhow::anyhow!(e))?;
    let content_variables = match &args.content_variables {
        None => None,
        Some(v) => Some(
            serde_json::from_str::<serde_json::Value>(v)
                .context("--content-variables must be a JSON object")?,
        ),
    };
    let start_at = match &args.start_at {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .context("--start-at must be an RFC 3339 time")?
                .with_timezone(&chrono::Utc),
        ),
    };
    let pool = crate::database::prepare(&settings.database).await?;
    let configured = crate::startup::configured_sender(&settings)?;
    crate::senders::register_configured(&pool, &configured).await?;
    let req = BroadcastRequest {
        name: args.name,
        body: args.content.body,
        media: args.content.media,
        content_sid: args.content.content_sid,
        content_variables,
        sender: args.sender,
        start_at,
        audience: Audience::Listed(listed),
        created_by: super::actor(),
        reminder_id: None,
        request_key: None,
        template_category: None,
        mapping: None,
    };
    let (row, preview) = crate::broadcasts::create(
        &pool,
        &configured,
        settings.broadcast_reserve,
        &req,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| match e {
        crate::broadcasts::BroadcastError::NoRecipients(excluded) => {
            for x in &excluded {
                eprintln!("left out {}: {}", x.number, x.reason);
            }
            anyhow::anyhow!("nobody is left to send to")
        }
        other => anyhow::anyhow!(other),
    })?;
    for x in &preview.excluded {
        eprintln!("left out {}: {}", x.number, x.reason);
    }
    eprintln!(
        "broadcast #{} queued: {} recipients from {} at {:.2} msg/s, about {:.0} s, estimated {} {}",
        row.id,
        preview.recipient_count,
        preview.sender,
        preview.mps,
        preview.estimated_seconds,
        preview.estimated_cost,
        preview.cost_currency
    );
    println!("{}", row.id);
    if args.no_wait {
        return Ok(());
    }
    // With live credentials this process sends too (alongside any running server: they share
    // the queue); without, a running `wadash serve` does the sending.
    let public_url = super::public_url(&settings);
    let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
    let stop = CancellationToken::new().drop_guard();
    let runner = match crate::startup::twilio_client(&effective, &settings.twilio, &public_url)? {
        Some(client) => Some(crate::startup::start_broadcast_runner(
            pool.clone(),
            client,
            crate::pricing::book::PriceBook::new(pool.clone()),
            settings.broadcasts,
            stop.token().clone(),
        )),
        None => {
            eprintln!(
                "no Twilio credentials here: waiting for a running `wadash serve` to send it"
            );
            None
        }
    };
    let bar = crate::progress::ProgressBar::new("sent");
    let started = std::time::Instant::now();
    let total = preview.recipient_count as u64;
    let outcome = loop {
        let counts = storage::broadcasts::counts(&pool, row.id).await?;
        let done = total.saturating_sub(counts.pending as u64);
        let ok = (counts.sent + counts.delivered + counts.read) as u64;
        bar.update(done, total, ok, started.elapsed());
        let status = storage::broadcasts::get(&pool, row.id)
            .await?
            .map(|b| b.status);
        if let Some(s @ (BroadcastStatus::Completed | BroadcastStatus::Canceled)) = status {
            break (s, counts);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    drop(stop);
    if let Some(r) = runner {
        let _ = r.await;
    }
    let (status, c) = outcome;
    println!(
        "broadcast #{} {status}: {} sent, {} delivered, {} read, {} failed, {} undelivered, {} canceled",
        row.id, c.sent, c.delivered, c.read, c.failed, c.undelivered, c.canceled
    );
    anyhow::ensure!(
        c.failed == 0,
        "{} recipients failed (see the broadcast's page)",
        c.failed
    );
    Ok(())
}
