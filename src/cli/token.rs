//! `wadash token create`: an API token, printed once.

use std::io::Write as _;

use anyhow::Context as _;

use super::TokenCommand;
use crate::config::Settings;
use crate::storage;

pub(super) async fn run(command: TokenCommand, settings: Settings) -> anyhow::Result<()> {
    let TokenCommand::Create { name, role } = command;
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "--name must not be empty");
    let pool = crate::database::prepare(&settings.database).await?;
    let (id, token) = storage::tokens::create(&pool, name, role)
        .await
        .context("creating the token")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created API token #{id} {name:?} with role {role}; it is shown only now:"
    )?;
    writeln!(out, "{token}")?;
    Ok(())
}
