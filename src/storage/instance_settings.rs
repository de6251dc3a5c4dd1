//! Instance-wide values kept in the database (`instance_settings`), such as the simulator's
//! generated auth token.

use sqlx::PgPool;

/// Returns the value under `key`, storing `candidate` first if there is none. Safe when
/// several instances start at once: exactly one candidate wins and all read it.
pub async fn get_or_insert(pool: &PgPool, key: &str, candidate: &str) -> sqlx::Result<String> {
    sqlx::query(
        "INSERT INTO instance_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(candidate)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
}

pub async fn get(pool: &PgPool, key: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// The value under `key` with the time it was last written.
pub async fn get_with_time(
    pool: &PgPool,
    key: &str,
) -> sqlx::Result<Option<(String, chrono::DateTime<chrono::Utc>)>> {
    sqlx::query_as("SELECT value, updated_at FROM instance_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// Stores `value` under `key`, replacing what was there.
pub async fn put(pool: &PgPool, key: &str, value: &str) -> sqlx::Result<()> {
    sqlx::query(
        r#"INSERT INTO instance_settings (key, value) VALUES ($1, $2)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"#,
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes `key`; true if it was there.
pub async fn delete(pool: &PgPool, key: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM instance_settings WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}
