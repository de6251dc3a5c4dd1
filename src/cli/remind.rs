//! `wadash remind`: schedule a reminder, one-off or recurring.

use super::RemindArgs;
use crate::config::Settings;
use crate::storage;

pub(super) async fn run(args: RemindArgs, settings: Settings) -> anyhow::Result<()> {
    let pool = crate::database::prepare(&settings.database).await?;
    let input = crate::reminders::ReminderInput {
        to: args.to,
        tag: args.tag,
        body: args.content.body,
        media_url: (!args.content.media.is_empty()).then(|| serde_json::json!(args.content.media)),
        content_sid: args.content.content_sid,
        sender: None,
        at: Some(args.at),
        every: args.every,
        timezone: args.timezone,
        status: None,
    };
    let by = super::actor();
    let new = crate::reminders::validate(&input, None, &by, chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!(e))?;
    let row = storage::reminders::insert(&pool, &new).await?;
    println!(
        "reminder #{} {} ({}, {}), next at {}",
        row.id,
        row.status,
        row.recurrence,
        row.timezone,
        row.next_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into())
    );
    Ok(())
}
