//! Contacts, their consent history and their retired numbers.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::domain::consent::{Consent, ConsentChange, ConsentSource};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: i64,
    pub number: String,
    pub wa_id: Option<String>,
    pub profile_name: Option<String>,
    pub consent: String,
    pub deauthorized_at: Option<DateTime<Utc>>,
    pub first_inbound_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ContactRow {
    pub fn consent(&self) -> Consent {
        Consent::parse(&self.consent).unwrap_or(Consent::Unknown)
    }

    pub fn is_deauthorized(&self) -> bool {
        self.deauthorized_at.is_some()
    }
}

const COLUMNS: &str = "id, number, wa_id, profile_name, consent, deauthorized_at, \
    first_inbound_at, last_inbound_at, tags, created_at, updated_at";

/// What an inbound message tells about its sender.
#[derive(Debug, Clone)]
pub struct InboundContact<'a> {
    pub number: &'a str,
    pub wa_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Creates or updates the contact an inbound message came from and locks its row for the
/// rest of the transaction. The window only moves forward, so a webhook delivered late or
/// twice never shortens it.
pub async fn upsert_inbound(
    conn: &mut PgConnection,
    c: &InboundContact<'_>,
) -> sqlx::Result<ContactRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contacts (number, wa_id, profile_name, first_inbound_at, last_inbound_at) \
         VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (number) DO UPDATE SET \
           wa_id = COALESCE(EXCLUDED.wa_id, contacts.wa_id), \
           profile_name = COALESCE(EXCLUDED.profile_name, contacts.profile_name), \
           first_inbound_at = LEAST(contacts.first_inbound_at, EXCLUDED.first_inbound_at), \
           last_inbound_at = GREATEST(contacts.last_inbound_at, EXCLUDED.last_inbound_at), \
           updated_at = now() \
         RETURNING {COLUMNS}"
    )))
    .bind(c.number)
    .bind(c.wa_id.filter(|s| !s.is_empty()))
    .bind(c.profile_name.filter(|s| !s.is_empty()))
    .bind(c.at)
    .fetch_one(conn)
    .await
}

pub async fn get(pool: &PgPool, number: &str) -> sqlx::Result<Option<ContactRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE number = $1"
    )))
    .bind(number)
    .fetch_optional(pool)
    .await
}

/// The contact with `number`, created (consent unknown) if there is none, locked for the
/// rest of the transaction.
pub async fn ensure_locked(conn: &mut PgConnection, number: &str) -> sqlx::Result<ContactRow> {
    sqlx::query("INSERT INTO contacts (number) VALUES ($1) ON CONFLICT (number) DO NOTHING")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE number = $1 FOR UPDATE"
    )))
    .bind(number)
    .fetch_one(conn)
    .await
}

/// The contact with `number`, locked, if it exists.
pub async fn get_locked(conn: &mut PgConnection, number: &str) -> sqlx::Result<Option<ContactRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE number = $1 FOR UPDATE"
    )))
    .bind(number)
    .fetch_optional(conn)
    .await
}

/// Who did a change, and why.
#[derive(Debug, Clone, Copy)]
pub struct ChangeBy<'a> {
    pub source: ConsentSource,
    pub actor: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub message_sid: Option<&'a str>,
}

/// Applies `change` to the contact's row and appends it to the history. Returns false (and
/// changes nothing) when the change was already recorded for the same inbound message.
pub async fn apply_change(
    conn: &mut PgConnection,
    contact_id: i64,
    change: ConsentChange,
    by: ChangeBy<'_>,
) -> sqlx::Result<bool> {
    let recorded = sqlx::query(
        "INSERT INTO consent_events (contact_id, change, source, detail, actor, message_sid) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_sid) DO NOTHING",
    )
    .bind(contact_id)
    .bind(change.as_str())
    .bind(by.source.as_str())
    .bind(by.detail)
    .bind(by.actor)
    .bind(by.message_sid)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !recorded {
        return Ok(false);
    }
    let sql = match change {
        ConsentChange::OptedIn => {
            "UPDATE contacts SET consent = 'opted_in', updated_at = now() WHERE id = $1"
        }
        ConsentChange::OptedOut => {
            "UPDATE contacts SET consent = 'opted_out', updated_at = now() WHERE id = $1"
        }
        ConsentChange::Deauthorized => {
            "UPDATE contacts SET deauthorized_at = COALESCE(deauthorized_at, now()), \
             updated_at = now() WHERE id = $1"
        }
        ConsentChange::Reauthorized => {
            "UPDATE contacts SET deauthorized_at = NULL, updated_at = now() WHERE id = $1"
        }
    };
    sqlx::query(sql).bind(contact_id).execute(conn).await?;
    Ok(true)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ConsentEventRow {
    pub change: String,
    pub source: String,
    pub detail: Option<String>,
    pub actor: Option<String>,
    pub message_sid: Option<String>,
    pub at: DateTime<Utc>,
}

/// A contact's consent history, newest first.
pub async fn history(pool: &PgPool, contact_id: i64) -> sqlx::Result<Vec<ConsentEventRow>> {
    sqlx::query_as(
        "SELECT change, source, detail, actor, message_sid, at FROM consent_events \
         WHERE contact_id = $1 ORDER BY at DESC, id DESC",
    )
    .bind(contact_id)
    .fetch_all(pool)
    .await
}

pub async fn set_tags(
    conn: &mut PgConnection,
    contact_id: i64,
    tags: &[String],
) -> sqlx::Result<()> {
    sqlx::query("UPDATE contacts SET tags = $2, updated_at = now() WHERE id = $1")
        .bind(contact_id)
        .bind(tags)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_profile_name(
    conn: &mut PgConnection,
    contact_id: i64,
    name: &str,
) -> sqlx::Result<()> {
    // An empty name is no name.
    sqlx::query(
        "UPDATE contacts SET profile_name = NULLIF($2, ''), updated_at = now() WHERE id = $1",
    )
    .bind(contact_id)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the contact to `new_number` and retires the old one. Fails with a unique violation
/// when another contact has `new_number`.
pub async fn change_number(
    conn: &mut PgConnection,
    contact: &ContactRow,
    new_number: &str,
    actor: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE contacts SET number = $2, updated_at = now() WHERE id = $1")
        .bind(contact.id)
        .bind(new_number)
        .execute(&mut *conn)
        .await?;
    // The new number may itself have been retired before (a change undone).
    sqlx::query("DELETE FROM retired_numbers WHERE number = $1")
        .bind(new_number)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO retired_numbers (number, contact_id, replaced_by, actor) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (number) DO UPDATE SET contact_id = EXCLUDED.contact_id, \
           replaced_by = EXCLUDED.replaced_by, actor = EXCLUDED.actor, retired_at = now()",
    )
    .bind(&contact.number)
    .bind(contact.id)
    .bind(new_number)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RetiredRow {
    pub number: String,
    pub contact_id: i64,
    pub replaced_by: String,
    pub actor: Option<String>,
    pub retired_at: DateTime<Utc>,
}

/// The numbers a contact used before, newest first.
pub async fn retired_of(pool: &PgPool, contact_id: i64) -> sqlx::Result<Vec<RetiredRow>> {
    sqlx::query_as(
        "SELECT number, contact_id, replaced_by, actor, retired_at FROM retired_numbers \
         WHERE contact_id = $1 ORDER BY retired_at DESC",
    )
    .bind(contact_id)
    .fetch_all(pool)
    .await
}

/// What wadash knows about a number it is asked to send to: its contact, or else the
/// contact that used to have it.
#[derive(Debug, Clone, Default)]
pub struct Recipient {
    pub contact: Option<ContactRow>,
    pub retired: Option<RetiredRow>,
}

pub async fn recipient(pool: &PgPool, number: &str) -> sqlx::Result<Recipient> {
    let contact = get(pool, number).await?;
    let retired = if contact.is_some() {
        None
    } else {
        sqlx::query_as(
            "SELECT number, contact_id, replaced_by, actor, retired_at FROM retired_numbers \
             WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(pool)
        .await?
    };
    Ok(Recipient { contact, retired })
}

/// Which contacts a list shows.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Part of the number or the profile name.
    pub q: Option<String>,
    pub tag: Option<String>,
    /// `opted_in`, `opted_out`, `unknown` or `deauthorized`.
    pub consent: Option<String>,
}

/// Contacts most recently active first, `limit` at a time after the `(updated_at, id)`
/// cursor.
pub async fn list(
    pool: &PgPool,
    filter: &ContactFilter,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<ContactRow>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    q.push(COLUMNS).push(" FROM contacts WHERE true");
    if let Some(text) = filter.q.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", super::escape_like(text));
        q.push(" AND (number LIKE ")
            .push_bind(pattern.clone())
            .push(" OR profile_name ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(tag) = filter.tag.as_deref().filter(|s| !s.is_empty()) {
        q.push(" AND tags @> ARRAY[")
            .push_bind(tag.to_owned())
            .push("]::text[]");
    }
    match filter.consent.as_deref() {
        Some("deauthorized") => {
            q.push(" AND deauthorized_at IS NOT NULL");
        }
        Some(c @ ("opted_in" | "opted_out" | "unknown")) => {
            q.push(" AND deauthorized_at IS NULL AND consent = ")
                .push_bind(c.to_owned());
        }
        _ => {}
    }
    if let Some((at, id)) = after {
        q.push(" AND (updated_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY updated_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}

/// Every tag in use with its number of contacts, most used first.
pub async fn tags(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT tag, count(*) FROM contacts, unnest(tags) AS tag \
         GROUP BY tag ORDER BY count(*) DESC, tag",
    )
    .fetch_all(pool)
    .await
}

/// [`recipient`] for many numbers at once (a broadcast's audience), by number.
pub async fn recipients_bulk(
    pool: &PgPool,
    numbers: &[String],
) -> sqlx::Result<std::collections::BTreeMap<String, Recipient>> {
    let mut out = std::collections::BTreeMap::new();
    for chunk in numbers.chunks(10_000) {
        let contacts: Vec<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contacts WHERE number = ANY($1)"
        )))
        .bind(chunk)
        .fetch_all(pool)
        .await?;
        for c in contacts {
            out.insert(
                c.number.clone(),
                Recipient {
                    contact: Some(c),
                    retired: None,
                },
            );
        }
        let retired: Vec<RetiredRow> = sqlx::query_as(
            "SELECT number, contact_id, replaced_by, actor, retired_at FROM retired_numbers \
             WHERE number = ANY($1)",
        )
        .bind(chunk)
        .fetch_all(pool)
        .await?;
        for r in retired {
            out.entry(r.number.clone()).or_insert(Recipient {
                contact: None,
                retired: Some(r),
            });
        }
    }
    Ok(out)
}

/// The numbers of contacts with `tag`, or of every opted-in contact when `tag` is None,
/// leaving out de-authorized ones (the send policy would refuse them anyway).
pub async fn audience(pool: &PgPool, tag: Option<&str>) -> sqlx::Result<Vec<String>> {
    match tag {
        Some(t) => {
            sqlx::query_scalar(
                "SELECT number FROM contacts WHERE tags @> ARRAY[$1]::text[] ORDER BY number",
            )
            .bind(t)
            .fetch_all(pool)
            .await
        }
        None => {
            sqlx::query_scalar(
                "SELECT number FROM contacts WHERE consent = 'opted_in' \
                 AND deauthorized_at IS NULL ORDER BY number",
            )
            .fetch_all(pool)
            .await
        }
    }
}
