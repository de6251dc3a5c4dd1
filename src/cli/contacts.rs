//! `wadash contacts …`: import and export contacts as CSV, and change a number's consent.

use std::io::Write as _;

use anyhow::Context as _;

use super::ContactsCommand;
use crate::config::Settings;

pub(super) async fn run(command: ContactsCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::contacts::{Action, Actor};
    use crate::domain::consent::ConsentSource;
    let pool = crate::database::prepare(&settings.database).await?;
    let actor = super::actor();
    let (action, number, note) = match command {
        ContactsCommand::Import { file } => {
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let report = match crate::contacts::csv_io::parse(&bytes) {
                Ok(lines) => crate::contacts::csv_io::import(&pool, &lines, &actor).await?,
                Err(errors) => crate::contacts::csv_io::ImportReport {
                    errors,
                    ..Default::default()
                },
            };
            if !report.errors.is_empty() {
                for e in &report.errors {
                    eprintln!("line {}: {}", e.line, e.message);
                }
                anyhow::bail!(
                    "nothing was imported: {} line(s) need fixing",
                    report.errors.len()
                );
            }
            println!(
                "imported {} contacts ({} new, {} updated)",
                report.imported, report.created, report.updated
            );
            return Ok(());
        }
        ContactsCommand::Export => {
            use futures_util::TryStreamExt as _;
            let mut chunks = std::pin::pin!(crate::contacts::csv_io::export_stream(pool.clone()));
            while let Some(chunk) = chunks.try_next().await? {
                std::io::stdout().lock().write_all(&chunk)?;
            }
            return Ok(());
        }
        ContactsCommand::OptOut { number, note } => (Action::OptOut, number, note),
        ContactsCommand::OptIn { number, note } => (Action::OptIn, number, note),
        ContactsCommand::Deauthorize { number, note } => (Action::Deauthorize, number, note),
        ContactsCommand::Reauthorize { number, note } => (Action::Reauthorize, number, note),
    };
    let number = crate::contacts::parse_number(&number)?;
    let c = crate::contacts::act(
        &pool,
        &number,
        action,
        Actor {
            source: ConsentSource::Cli,
            name: &actor,
            note: note.as_deref(),
        },
    )
    .await?;
    let consent = if c.is_deauthorized() {
        "deauthorized"
    } else {
        c.consent.as_str()
    };
    println!("{} {consent}", c.number);
    Ok(())
}
