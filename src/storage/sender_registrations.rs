//! WhatsApp numbers being registered at Twilio (`sender_registrations`): one open
//! registration per number, claimed while a call to Twilio is under way, and the sender row it
//! creates once Twilio has it.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::sender_health::{self, Known};

/// A claim on a registration older than this is taken to be a call that never finished (the
/// instance stopped mid-way): another attempt may take it over.
pub const STALE_CLAIM_SECS: i64 = 120;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Registration {
    pub id: i64,
    pub number: String,
    pub waba_id: String,
    pub verification_method: String,
    pub profile: Option<serde_json::Value>,
    pub step: String,
    pub sender_id: Option<i64>,
    pub twilio_sid: Option<String>,
    /// The sender's status at Twilio as last seen.
    pub twilio_status: Option<String>,
    /// The sender's status in wadash (`pending`, `active`…).
    pub sender_status: Option<String>,
    pub last_error: Option<String>,
    pub last_error_code: Option<i64>,
    pub self_signup: bool,
    /// Being submitted, but for so long that the call is taken to have died with its instance.
    pub stale: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT r.id, r.number, r.waba_id, r.verification_method, r.profile, r.step,
        r.sender_id, r.twilio_sid, s.twilio_status, s.status AS sender_status, r.last_error,
        r.last_error_code, r.self_signup,
        -- STALE_CLAIM_SECS
        (r.step = 'submitting' AND r.claimed_at < now() - make_interval(secs => 120)) AS stale,
        r.created_by, r.created_at, r.updated_at
   FROM sender_registrations r LEFT JOIN senders s ON s.id = r.sender_id";

/// The first step's values.
#[derive(Debug, Clone)]
pub struct NewRegistration<'a> {
    pub number: &'a str,
    pub waba_id: &'a str,
    pub verification_method: &'a str,
    pub profile: Option<serde_json::Value>,
    pub created_by: &'a str,
}

/// Whether `e` is the one-open-registration-per-number rule.
pub fn is_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505")
            && db.constraint() == Some("sender_registrations_open_number"))
}

/// Opens a registration: a `draft`, or already claimed for a call to Twilio (`claimed`), so
/// no one else can take it over. A number with an open registration is a unique violation
/// (see [`is_taken`]).
pub async fn insert(pool: &PgPool, r: &NewRegistration<'_>, claimed: bool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO sender_registrations
             (number, waba_id, verification_method, profile, step, claimed_at, created_by)
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN 'submitting' ELSE 'draft' END,
                 CASE WHEN $5 THEN now() END, $6)
         RETURNING id",
    )
    .bind(r.number)
    .bind(r.waba_id)
    .bind(r.verification_method)
    .bind(&r.profile)
    .bind(claimed)
    .bind(r.created_by)
    .fetch_one(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<Registration>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The open registration of `number` (E.164), if any.
pub async fn open_for(pool: &PgPool, number: &str) -> sqlx::Result<Option<Registration>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.number = $1 AND r.step IN ('draft', 'submitting', 'submitted')"
    )))
    .bind(number)
    .fetch_optional(pool)
    .await
}

/// The latest registration of sender `sender_id`.
pub async fn of_sender(pool: &PgPool, sender_id: i64) -> sqlx::Result<Option<Registration>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.sender_id = $1 ORDER BY r.id DESC LIMIT 1"
    )))
    .bind(sender_id)
    .fetch_optional(pool)
    .await
}

/// Registrations not finished, newest first (the wizard offers to resume them); one whose
/// sender the sync already found online is done, whatever its step says.
pub async fn open(pool: &PgPool) -> sqlx::Result<Vec<Registration>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.step IN ('draft', 'submitting', 'submitted')
            AND s.twilio_status IS DISTINCT FROM 'ONLINE' ORDER BY r.id DESC"
    )))
    .fetch_all(pool)
    .await
}

/// Claims draft `id` for a call creating it at Twilio (or takes over a claim gone stale),
/// changing its first step's values and profile to `r`'s. `false`: it is not a draft (being
/// submitted by someone else, already at Twilio, closed).
pub async fn claim(pool: &PgPool, id: i64, r: &NewRegistration<'_>) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE sender_registrations
            SET step = 'submitting', claimed_at = now(), waba_id = $2, verification_method = $3,
                profile = $4, updated_at = now()
          WHERE id = $1
            AND (step = 'draft'
                 OR (step = 'submitting' AND claimed_at < now() - make_interval(secs => $5)))",
    )
    .bind(id)
    .bind(r.waba_id)
    .bind(r.verification_method)
    .bind(&r.profile)
    .bind(STALE_CLAIM_SECS as f64)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Keeps the profile typed in draft `id` without submitting it.
pub async fn save_profile(pool: &PgPool, id: i64, profile: &serde_json::Value) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sender_registrations SET profile = $2, updated_at = now()
          WHERE id = $1 AND step = 'draft'",
    )
    .bind(id)
    .bind(profile)
    .execute(pool)
    .await?;
    Ok(())
}

/// The call to Twilio failed: back to a draft, with why.
pub async fn stopped(
    pool: &PgPool,
    id: i64,
    error: &str,
    code: Option<i64>,
    self_signup: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sender_registrations
            SET step = 'draft', claimed_at = NULL, last_error = $2, last_error_code = $3,
                self_signup = $4, updated_at = now()
          WHERE id = $1 AND step = 'submitting'",
    )
    .bind(id)
    .bind(error)
    .bind(code)
    .bind(self_signup)
    .execute(pool)
    .await?;
    Ok(())
}

/// A WhatsApp sender Twilio has just accepted.
#[derive(Debug, Clone)]
pub struct Accepted<'a> {
    /// `whatsapp:+E164`.
    pub address: &'a str,
    pub label: &'a str,
    pub mps: f64,
    pub twilio_sid: &'a str,
    pub twilio_status: &'a str,
    pub waba_id: &'a str,
    pub callback_url: &'a str,
    pub status_callback_url: &'a str,
    pub profile: serde_json::Value,
}

/// Twilio accepted registration `id`: its sender row is created (`pending`, linked to the
/// SID; a row wadash already had for the address is linked instead) and the registration is
/// `submitted`. Returns the sender's id.
pub async fn submitted(pool: &PgPool, id: i64, s: &Accepted<'_>) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let sender_id: i64 = sqlx::query_scalar(
        "INSERT INTO senders (address, kind, label, status, mps, twilio_sid, twilio_status,
                              waba_id, callback_url, status_callback_url, webhooks_ok,
                              twilio_profile, twilio_synced_at, local_change)
         VALUES ($1, 'number', $2, 'pending', $3, $4, $5, $6, $7, $8, true, $9, now(),
                 nextval('local_changes'))
         ON CONFLICT (address) DO UPDATE
            SET twilio_sid = EXCLUDED.twilio_sid, twilio_status = EXCLUDED.twilio_status,
                waba_id = EXCLUDED.waba_id, callback_url = EXCLUDED.callback_url,
                status_callback_url = EXCLUDED.status_callback_url, webhooks_ok = true,
                twilio_profile = EXCLUDED.twilio_profile, twilio_synced_at = now(),
                twilio_gone_at = NULL, updated_at = now(), local_change = EXCLUDED.local_change
         RETURNING id",
    )
    .bind(s.address)
    .bind(s.label)
    .bind(s.mps)
    .bind(s.twilio_sid)
    .bind(s.twilio_status)
    .bind(s.waba_id)
    .bind(s.callback_url)
    .bind(s.status_callback_url)
    .bind(&s.profile)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sender_changes (sender_id, field, old_value, new_value)
         VALUES ($1, 'status', NULL, $2)",
    )
    .bind(sender_id)
    .bind(s.twilio_status)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sender_registrations
            SET step = 'submitted', claimed_at = NULL, sender_id = $2, twilio_sid = $3,
                last_error = NULL, last_error_code = NULL, self_signup = false, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(sender_id)
    .bind(s.twilio_sid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(sender_id)
}

/// Writes sender `sender_id`'s status at Twilio as the wizard just read it, with its history
/// line; online, a `pending` sender becomes `active` and its registration is done.
pub async fn record_status(pool: &PgPool, sender_id: i64, status: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    record_status_in(&mut tx, sender_id, status).await?;
    tx.commit().await
}

async fn record_status_in(
    conn: &mut PgConnection,
    sender_id: i64,
    status: &str,
) -> sqlx::Result<()> {
    let before: Option<Option<String>> =
        sqlx::query_scalar("SELECT twilio_status FROM senders WHERE id = $1 FOR UPDATE")
            .bind(sender_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(before) = before else {
        return Ok(());
    };
    let online = sender_health::is_online(status);
    if before.as_deref() != Some(status) {
        let known = |s: Option<String>| Known {
            status: s,
            quality_rating: None,
            messaging_limit: None,
            webhooks_ok: None,
            gone: false,
        };
        for c in sender_health::between("", Some(&known(before)), &known(Some(status.into()))) {
            sqlx::query(
                "INSERT INTO sender_changes (sender_id, field, old_value, new_value)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(sender_id)
            .bind(c.field.as_str())
            .bind(&c.from)
            .bind(&c.to)
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE senders
            SET twilio_status = $2, twilio_synced_at = now(),
                status = CASE WHEN status = 'pending' AND $3 THEN 'active' ELSE status END,
                updated_at = now(), local_change = nextval('local_changes')
          WHERE id = $1",
    )
    .bind(sender_id)
    .bind(status)
    .bind(online)
    .execute(&mut *conn)
    .await?;
    if online {
        sqlx::query(
            "UPDATE sender_registrations SET step = 'online', updated_at = now()
              WHERE sender_id = $1 AND step = 'submitted'",
        )
        .bind(sender_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Closes the registration of `number` that Twilio finished with: `online` when its sender is
/// online, `cancelled` when its sender is gone from Twilio (removed there, or de-authorized),
/// so the number can be registered again.
pub async fn close_finished(pool: &PgPool, number: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sender_registrations r
            SET step = CASE WHEN s.twilio_gone_at IS NULL AND s.twilio_sid IS NOT NULL
                            THEN 'online' ELSE 'cancelled' END,
                updated_at = now()
           FROM senders s
          WHERE s.id = r.sender_id AND r.number = $1 AND r.step = 'submitted'
            AND (s.twilio_gone_at IS NOT NULL OR s.twilio_sid IS NULL OR s.twilio_status = 'ONLINE')",
    )
    .bind(number)
    .execute(pool)
    .await?;
    Ok(())
}

/// The sender wadash knows at Twilio for `address` (`whatsapp:+…`) and still listed there.
pub async fn registered_sender(pool: &PgPool, address: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM senders WHERE address = $1 AND twilio_sid IS NOT NULL
            AND twilio_gone_at IS NULL",
    )
    .bind(address)
    .fetch_optional(pool)
    .await
}

/// Gives up registration `id` (nothing is changed at Twilio). `false`: it was not open.
pub async fn cancel(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE sender_registrations SET step = 'cancelled', claimed_at = NULL, updated_at = now()
          WHERE id = $1 AND step IN ('draft', 'submitted')",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Closes (`online`) every submitted registration whose sender Twilio now has online, as a
/// sync just stored it; how many.
pub async fn close_online(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE sender_registrations r SET step = 'online', updated_at = now() \
         FROM senders s \
         WHERE r.step = 'submitted' AND s.id = r.sender_id \
           AND s.twilio_status IN ('ONLINE', 'ONLINE:UPDATING')",
    )
    .execute(pool)
    .await?
    .rows_affected())
}
