//! `wadash user add`: a dashboard user, with a password read from standard input or generated.

use anyhow::Context as _;

use super::UserCommand;
use crate::config::Settings;
use crate::storage;

pub(super) async fn run(command: UserCommand, settings: Settings) -> anyhow::Result<()> {
    let UserCommand::Add {
        username,
        role,
        password_stdin,
    } = command;
    let username = crate::accounts::normalize_username(&username)
        .map_err(|e| anyhow::anyhow!("--username: {e}"))?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (crate::accounts::password::generate(), true)
    };
    crate::accounts::password::check_policy(&password)
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pool = crate::database::prepare(&settings.database).await?;
    let phc = tokio::task::spawn_blocking(move || {
        let h = crate::accounts::password::hash(&password);
        (h, password)
    })
    .await?;
    let (phc, password) = phc;
    let created = storage::users::create(&pool, &username, &phc, role)
        .await
        .context("adding the user")?;
    anyhow::ensure!(created.is_some(), "the username {username} is taken");
    println!("added {username} with role {role}");
    if generated {
        println!("password (shown only now): {password}");
    }
    Ok(())
}
