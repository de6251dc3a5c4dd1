//! The Content wadash created at Twilio for each question with choices a bot asked
//! (`bot_choice_contents`), so that each is created once per account, also with several
//! instances: a key is claimed with `INSERT … ON CONFLICT` before Twilio is called.

use sqlx::PgPool;

/// What asking for a key gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The Content exists: send with this SID.
    Ready(String),
    /// This caller claimed the key: it creates the Content, then [`fill`]s or [`release`]s.
    /// `taken_over`: the claim was a dead instance's, which may have created the Content at
    /// Twilio before it died.
    Mine { taken_over: bool },
    /// Another caller is creating it: ask again in a moment.
    Busy,
}

/// The Content for `key`, or the claim to create it. A claim left unfilled for
/// `stale_secs` (its instance died) is taken over.
pub async fn claim(
    pool: &PgPool,
    key: &str,
    account_sid: &str,
    shape: &str,
    types: &serde_json::Value,
    stale_secs: f64,
) -> sqlx::Result<Claim> {
    let ready: Option<String> = sqlx::query_scalar(
        "UPDATE bot_choice_contents SET last_used_at = now() \
         WHERE key = $1 AND content_sid IS NOT NULL RETURNING content_sid",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    if let Some(sid) = ready {
        return Ok(Claim::Ready(sid));
    }
    // `xmax = 0` on the returned row: inserted now, not a stale claim taken over.
    let mine: Option<bool> = sqlx::query_scalar(
        "INSERT INTO bot_choice_contents AS c (key, account_sid, shape, types) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET claimed_at = now() \
           WHERE c.content_sid IS NULL AND c.claimed_at < now() - make_interval(secs => $5) \
         RETURNING c.xmax = 0",
    )
    .bind(key)
    .bind(account_sid)
    .bind(shape)
    .bind(types)
    .bind(stale_secs)
    .fetch_optional(pool)
    .await?;
    if let Some(inserted) = mine {
        return Ok(Claim::Mine {
            taken_over: !inserted,
        });
    }
    // Filled between the two statements, or still being created.
    let sid: Option<Option<String>> =
        sqlx::query_scalar("SELECT content_sid FROM bot_choice_contents WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(match sid.flatten() {
        Some(sid) => Claim::Ready(sid),
        None => Claim::Busy,
    })
}

/// Records the Content created for a claimed key.
pub async fn fill(pool: &PgPool, key: &str, content_sid: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE bot_choice_contents SET content_sid = $2, created_at = now(), \
           last_used_at = now() WHERE key = $1",
    )
    .bind(key)
    .bind(content_sid)
    .execute(pool)
    .await
    .map(drop)
}

/// Gives up a claim whose Content could not be created (a later answer tries again).
pub async fn release(pool: &PgPool, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM bot_choice_contents WHERE key = $1 AND content_sid IS NULL")
        .bind(key)
        .execute(pool)
        .await
        .map(drop)
}
