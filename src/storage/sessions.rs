//! Dashboard sessions, found by the SHA-256 of the cookie's token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::Digest;
use sqlx::{FromRow, PgPool};

/// A session older than this ends, however active.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// A session not used for this long ends (a working day and then some).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

fn id_of(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> String {
    crate::domain::random_hex(32)
}

/// A session together with its user.
#[derive(Debug, Clone, FromRow)]
pub struct SessionUser {
    pub user_id: i64,
    pub username: String,
    pub role: String,
    pub csrf_token: String,
    pub last_seen_at: DateTime<Utc>,
    /// The IANA name of the zone the person reads times in (None: UTC).
    pub time_zone: Option<String>,
}

/// Starts a session; returns the cookie token. `replaces` is the session the browser had
/// before (ended, so a session id fixed by an attacker before login is worthless after it).
pub async fn create(pool: &PgPool, user_id: i64, replaces: Option<&str>) -> sqlx::Result<String> {
    let token = random_token();
    let mut tx = pool.begin().await?;
    if let Some(old) = replaces {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id_of(old))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO sessions (id, user_id, csrf_token, expires_at) \
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(id_of(&token))
    .bind(user_id)
    .bind(random_token())
    .bind(ABSOLUTE_LIFETIME.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(token)
}

/// The live session for `token`, if any: not expired, not idle too long, user not disabled.
pub async fn find(pool: &PgPool, token: &str) -> sqlx::Result<Option<SessionUser>> {
    sqlx::query_as(
        "SELECT s.user_id, u.username, u.role, s.csrf_token, s.last_seen_at, u.time_zone \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.expires_at > now() \
           AND s.last_seen_at > now() - make_interval(secs => $2) \
           AND u.disabled_at IS NULL",
    )
    .bind(id_of(token))
    .bind(IDLE_TIMEOUT.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Marks the session as used now (callers do this at most once a minute).
pub async fn touch(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id = $1")
        .bind(id_of(token))
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id_of(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes expired sessions.
pub async fn purge_expired(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM sessions WHERE expires_at < now() \
         OR last_seen_at < now() - make_interval(secs => $1)",
    )
    .bind(IDLE_TIMEOUT.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}
