//! A broadcast as the JSON API and the pages show it: the row with where its recipients are,
//! the buckets recipients are listed by, and the cursor of a page of broadcasts.

use serde::Serialize;
use sqlx::PgPool;

use crate::storage::broadcasts::{self as store, BroadcastRow, Counts, Reached};

/// The buckets a broadcast's recipients are listed by (`?status=`).
pub const BUCKETS: &[&str] = &[
    "pending",
    "sent",
    "delivered",
    "read",
    "failed",
    "undelivered",
    "canceled",
];

/// A broadcast with where its recipients are.
#[derive(Debug, Serialize)]
pub struct BroadcastView {
    #[serde(flatten)]
    pub broadcast: BroadcastRow,
    /// Recipients queued, in all.
    pub recipients: i64,
    pub counts: Counts,
    /// How far the messages got, as the overview's funnel counts (pages only).
    #[serde(skip)]
    pub reached: Reached,
}

pub async fn view(pool: &PgPool, row: BroadcastRow) -> Result<BroadcastView, sqlx::Error> {
    let (counts, reached) = store::counts_and_reached(pool, row.id).await?;
    let recipients = counts.pending
        + counts.sent
        + counts.delivered
        + counts.read
        + counts.failed
        + counts.undelivered
        + counts.canceled;
    Ok(BroadcastView {
        broadcast: row,
        recipients,
        counts,
        reached,
    })
}

/// A bucket asked for, if it is one of [`BUCKETS`], or what is wrong with it.
pub fn check_bucket(bucket: Option<&str>) -> Result<(), String> {
    match bucket {
        Some(b) if !BUCKETS.contains(&b) => {
            Err(format!("status must be one of {}", BUCKETS.join(", ")))
        }
        _ => Ok(()),
    }
}

/// The cursor of the page of broadcasts after `last` (newest first).
pub fn list_cursor(last: &BroadcastRow) -> String {
    format!(
        "{},{}",
        last.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        last.id
    )
}
