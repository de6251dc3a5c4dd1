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
