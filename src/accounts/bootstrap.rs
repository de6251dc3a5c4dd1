//! The first admin. On a database without users, `wadash serve` creates `admin` with the
//! password from `WADASH_ADMIN_PASSWORD`, or with a generated one that it prints once, on
//! standard output (never into the log).

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::accounts::password;
use crate::storage::users;

pub const FIRST_ADMIN: &str = "admin";

/// What happened at start-up.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstAdmin {
    /// Users exist already.
    NotNeeded,
    /// Created with the configured password.
    Configured,
    /// Created with this generated password (show it once).
    Generated(String),
}

pub async fn ensure_first_admin(
    pool: &PgPool,
    configured: Option<&SecretString>,
) -> anyhow::Result<FirstAdmin> {
    if users::count(pool).await? > 0 {
        return Ok(FirstAdmin::NotNeeded);
    }
    let (pw, generated) = match configured {
        Some(p) => {
            password::check_policy(p.expose_secret())
                .map_err(|e| anyhow::anyhow!("WADASH_ADMIN_PASSWORD: {e}"))?;
            (p.expose_secret().to_owned(), false)
        }
        None => (password::generate(), true),
    };
    let to_hash = pw.clone();
    let phc = tokio::task::spawn_blocking(move || password::hash(&to_hash)).await?;
    match users::create_first(pool, FIRST_ADMIN, &phc, generated).await? {
        None => Ok(FirstAdmin::NotNeeded),
        Some(_) if generated => Ok(FirstAdmin::Generated(pw)),
        Some(_) => Ok(FirstAdmin::Configured),
    }
}

/// Runs [`ensure_first_admin`] and tells the person starting wadash.
pub async fn announce_first_admin(
    pool: &PgPool,
    configured: Option<&SecretString>,
) -> anyhow::Result<()> {
    match ensure_first_admin(pool, configured).await? {
        FirstAdmin::NotNeeded => {}
        FirstAdmin::Configured => tracing::info!(
            "created the first user `admin` with the password from WADASH_ADMIN_PASSWORD"
        ),
        FirstAdmin::Generated(pw) => {
            tracing::warn!(
                "created the first user `admin` with a generated password, printed once on standard output; change it after logging in"
            );
            println!(
                "\nwadash: first start — log in as `admin` with password: {pw}\n        (shown only now; set WADASH_ADMIN_PASSWORD to choose it)\n"
            );
        }
    }
    Ok(())
}
