//! Dashboard users.

use chrono::{DateTime, Utc};
use sqlx::{Connection as _, FromRow, PgConnection, PgPool};

use crate::domain::Role;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

/// Creates a user; `None` if the username is taken.
pub async fn create(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: Role,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_optional(pool)
    .await
}

/// Creates `username` only while there are no users at all; `Some(id)` if this call did.
/// Two instances starting at once cannot both create a first admin. `generated`: the
/// password is one wadash made up (recorded until it is changed).
pub async fn create_first(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    generated: bool,
) -> sqlx::Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let id = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, password_generated) \
         SELECT $1, $2, 'admin', $3 WHERE NOT EXISTS (SELECT 1 FROM users) RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(generated)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn by_username(pool: &PgPool, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT * FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await
}

pub async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as("SELECT * FROM users ORDER BY username")
        .fetch_all(pool)
        .await
}

pub async fn count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
}

pub async fn set_role(conn: &mut PgConnection, id: i64, role: Role) -> sqlx::Result<bool> {
    Ok(sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role.as_str())
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

/// Disables (or re-enables) a user. Disabling also ends the user's sessions.
pub async fn set_disabled(conn: &mut PgConnection, id: i64, disabled: bool) -> sqlx::Result<bool> {
    let mut tx = conn.begin().await?;
    let n = sqlx::query(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END WHERE id = $1",
    )
    .bind(id)
    .bind(disabled)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// Sets a new password and ends every session of the user.
/// Sets the zone the user reads times in (an IANA name checked by the caller; None: UTC).
pub async fn set_time_zone(pool: &PgPool, id: i64, zone: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET time_zone = $2 WHERE id = $1")
        .bind(id)
        .bind(zone)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_password(pool: &PgPool, id: i64, password_hash: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2, password_generated = false WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The ids of the active admins, locked until the caller's transaction ends, so that two
/// admins demoting or disabling each other at the same moment cannot both pass the check
/// that one admin remains (the second waits, then sees the first's change).
pub async fn lock_active_admins(conn: &mut PgConnection) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE",
    )
    .fetch_all(conn)
    .await
}

/// The enabled users whose password is still the one wadash generated at first start.
pub async fn with_generated_password(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT username FROM users WHERE password_generated AND disabled_at IS NULL ORDER BY username",
    )
    .fetch_all(pool)
    .await
}
