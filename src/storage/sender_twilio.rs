//! WhatsApp senders as Twilio's Senders API lists them: applying one sync (new senders
//! imported, Twilio's state written, senders gone from Twilio marked) with each sender's
//! history of changes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::sync_state::{self, Sync};
use crate::domain::sender_health::{self, Change, Known, SenderRecord};

/// One line of a sender's history.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ChangeRow {
    pub field: String,
    #[serde(rename = "from")]
    pub old_value: Option<String>,
    #[serde(rename = "to")]
    pub new_value: Option<String>,
    pub changed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: i64,
    address: String,
    twilio_status: Option<String>,
    quality_rating: Option<String>,
    messaging_limit: Option<String>,
    webhooks_ok: Option<bool>,
    gone: bool,
    at_twilio: bool,
}

/// Applies Twilio's whole list of WhatsApp senders (`fresh`): senders wadash did not know are
/// added (`active` when online, else `pending`; `mps` messages per second), Twilio's state is
/// written on every listed sender, and a sender Twilio listed before and no longer does is
/// marked gone. A `pending` sender that comes online becomes `active`; `active` and `disabled`
/// are the business's to change. The Messaging Service each is in is written only when
/// `services_known` (the services were read). `public_url` decides whether webhooks are wadash's (unknown
/// without one). A sender wadash registered, retired or moved between services after `mark`
/// (taken before `fresh` was read) is left as it is: `fresh` may predate that. Returns the
/// changes with the sender's id. Concurrent calls are serialised.
pub async fn apply(
    pool: &PgPool,
    fresh: &[SenderRecord],
    public_url: Option<&str>,
    mps: f64,
    services_known: bool,
    mark: sync_state::Mark,
) -> sqlx::Result<Vec<(i64, Change)>> {
    let mut tx = pool.begin().await?;
    sync_state::lock(&mut tx, Sync::Senders).await?;
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT id, address, twilio_status, quality_rating, messaging_limit, webhooks_ok,
                twilio_gone_at IS NOT NULL AS gone, twilio_sid IS NOT NULL AS at_twilio
           FROM senders WHERE kind = 'number'",
    )
    .fetch_all(&mut *tx)
    .await?;
    let by_address: HashMap<&str, &Stored> =
        stored.iter().map(|s| (s.address.as_str(), s)).collect();
    let mut changes = Vec::new();
    for r in fresh {
        let online = sender_health::is_online(&r.status);
        let id = match by_address.get(r.address.as_str()) {
            Some(s) => s.id,
            None => {
                sqlx::query_scalar(
                    "INSERT INTO senders (address, kind, label, status, mps)
                     VALUES ($1, 'number', $2, $3, $4)
                     ON CONFLICT (address) DO UPDATE SET updated_at = now()
                     RETURNING id",
                )
                .bind(&r.address)
                .bind(r.display_name.as_deref().unwrap_or_default())
                .bind(if online { "active" } else { "pending" })
                .bind(mps)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let hooks = public_url.map(|p| {
            sender_health::webhooks_ok(
                p,
                r.callback_url.as_deref(),
                r.status_callback_url.as_deref(),
            )
        });
        let before = by_address.get(r.address.as_str()).map(|s| known(s));
        let after = Known {
            status: Some(r.status.clone()),
            quality_rating: r.quality_rating.clone(),
            messaging_limit: r.messaging_limit.clone(),
            webhooks_ok: hooks,
            gone: false,
        };
        let written = sqlx::query(
            "UPDATE senders SET twilio_sid = $2, twilio_status = $3, offline_reasons = $4::jsonb,
                    quality_rating = $5, messaging_limit = $6, callback_url = $7,
                    status_callback_url = $8, webhooks_ok = $9, waba_id = $10,
                    twilio_profile = $11::jsonb, twilio_synced_at = now(), twilio_gone_at = NULL,
                    status = CASE WHEN status = 'pending' AND $12 THEN 'active' ELSE status END,
                    messaging_service_sid = CASE WHEN $13 THEN $14 ELSE messaging_service_sid END,
                    updated_at = now()
              WHERE id = $1 AND (local_change IS NULL OR local_change <= $15)",
        )
        .bind(id)
        .bind(&r.twilio_sid)
        .bind(&r.status)
        .bind(serde_json::to_string(&r.offline_reasons).unwrap_or_else(|_| "[]".into()))
        .bind(&r.quality_rating)
        .bind(&r.messaging_limit)
        .bind(&r.callback_url)
        .bind(&r.status_callback_url)
        .bind(hooks)
        .bind(&r.waba_id)
        .bind(r.profile.to_string())
        .bind(online)
        .bind(services_known)
        .bind(&r.messaging_service_sid)
        .bind(mark.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The guard is checked on the row as it is when written (a local write that committed
        // meanwhile included): only what was written goes into the history.
        if written == 1 {
            changes.extend(
                sender_health::between(&r.address, before.as_ref(), &after)
                    .into_iter()
                    .map(|c| (id, c)),
            );
        }
    }
    let listed: HashSet<&str> = fresh.iter().map(|r| r.address.as_str()).collect();
    for s in stored
        .iter()
        .filter(|s| s.at_twilio && !s.gone && !listed.contains(s.address.as_str()))
    {
        let marked = sqlx::query(
            "UPDATE senders SET twilio_gone_at = now(), updated_at = now()
              WHERE id = $1 AND (local_change IS NULL OR local_change <= $2)",
        )
        .bind(s.id)
        .bind(mark.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked == 1 {
            let mut after = known(s);
            after.gone = true;
            changes.extend(
                sender_health::between(&s.address, Some(&known(s)), &after)
                    .into_iter()
                    .map(|c| (s.id, c)),
            );
        }
    }
    sqlx::query(
        "INSERT INTO sender_changes (sender_id, field, old_value, new_value)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(changes.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|(_, c)| c.field.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|(_, c)| c.from.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|(_, c)| c.to.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    sync_state::record_success(&mut tx, Sync::Senders).await?;
    tx.commit().await?;
    Ok(changes)
}

fn known(s: &Stored) -> Known {
    Known {
        status: s.twilio_status.clone(),
        quality_rating: s.quality_rating.clone(),
        messaging_limit: s.messaging_limit.clone(),
        webhooks_ok: s.webhooks_ok,
        gone: s.gone,
    }
}

/// A sender's history, oldest first.
pub async fn history(pool: &PgPool, sender_id: i64) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as(
        "SELECT field, old_value, new_value, changed_at FROM sender_changes
          WHERE sender_id = $1 ORDER BY id",
    )
    .bind(sender_id)
    .fetch_all(pool)
    .await
}
