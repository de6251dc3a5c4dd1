//! API bearer tokens: created once, stored as SHA-256 hashes, looked up by hash.

use sha2::Digest;
use sqlx::PgPool;

use crate::auth::Role;

/// Prefix that makes a wadash token recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "wdsh_";

pub fn hash(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random token (256 bits) and its stored id.
pub async fn create(pool: &PgPool, name: &str, role: Role) -> sqlx::Result<(i64, String)> {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let token = format!("{TOKEN_PREFIX}{}", crate::twilio::signature::hex(&raw));
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
