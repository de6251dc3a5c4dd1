//! API bearer tokens: created once, stored as SHA-256 hashes, looked up by hash.

use sha2::Digest;
use sqlx::PgPool;

use crate::domain::Role;

/// Prefix that makes a wadash token recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "wdsh_";

pub fn hash(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random token (256 bits) and its stored id.
pub async fn create(pool: &PgPool, name: &str, role: Role) -> sqlx::Result<(i64, String)> {
    let token = format!("{TOKEN_PREFIX}{}", crate::domain::random_hex(32));
    let id = sqlx::query_scalar(
        "INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash(&token))
    .fetch_one(pool)
    .await?;
    Ok((id, token))
}

/// The role of a valid, unrevoked token.
pub async fn authenticate(pool: &PgPool, token: &str) -> sqlx::Result<Option<(i64, Role)>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "UPDATE api_tokens SET last_used_at = now() \
         WHERE token_hash = $1 AND revoked_at IS NULL \
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') \
         RETURNING id, role",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    if let Some((id, role)) = row {
        return Ok(Role::parse(&role).map(|r| (id, r)));
    }
    // Used within the last minute (so not updated) or unknown/revoked.
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id, role)| Role::parse(&role).map(|r| (id, r))))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: Option<String>,
}

/// Every token, newest first, with the name of who created it (never the token).
pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(
        "SELECT t.id, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at, \
                u.username AS created_by \
         FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by ORDER BY t.id DESC",
    )
    .fetch_all(pool)
    .await
}

pub async fn set_creator(pool: &PgPool, id: i64, user_id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_tokens SET created_by = $2 WHERE id = $1")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revokes a token; true if it was live.
pub async fn revoke(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    Ok(
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
            > 0,
    )
}
