//! Login throttling: after too many failures within a window, an account (whoever tries it)
//! and a client address (whatever account it tries) are refused until the window passes.
//! Failures are rows in `login_failures`, so the limit holds across instances.

use std::time::Duration;

use sqlx::PgPool;

/// Failed attempts allowed per account within [`WINDOW`].
pub const PER_ACCOUNT: i64 = 5;
/// Failed attempts allowed per client address within [`WINDOW`].
pub const PER_CLIENT: i64 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

pub fn account_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn client_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// `Some(wait)` when either key is over its limit: how long until the oldest counted failure
/// leaves the window.
pub async fn blocked(pool: &PgPool, account: &str, client: &str) -> sqlx::Result<Option<Duration>> {
    let rows: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
        r#"SELECT key, count(*), extract(epoch FROM min(at) + make_interval(secs => $2) - now())::float8
           FROM login_failures
           WHERE key = ANY($1) AND at > now() - make_interval(secs => $2)
           GROUP BY key"#,
    )
    .bind([account, client])
    .bind(WINDOW.as_secs_f64())
    .fetch_all(pool)
    .await?;
    for (key, n, wait) in rows {
        let limit = if key == account {
            PER_ACCOUNT
        } else {
            PER_CLIENT
        };
        if n >= limit {
            return Ok(Some(Duration::from_secs_f64(wait.unwrap_or(0.0).max(1.0))));
        }
    }
    Ok(None)
}

pub async fn record_failure(pool: &PgPool, account: &str, client: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO login_failures (key) SELECT unnest($1::text[])")
        .bind([account, client])
        .execute(pool)
        .await?;
    // Keep the table small: forget failures that no longer count.
    sqlx::query("DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)")
        .bind(WINDOW.as_secs_f64() * 2.0)
        .execute(pool)
        .await?;
    Ok(())
}

/// A successful login clears the account's failures (not the client's).
pub async fn clear_account(pool: &PgPool, account: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(account)
        .execute(pool)
        .await?;
    Ok(())
}
