//! The price table in memory, for pricing every message at send time without reading the
//! table each time. An upload (on any instance) changes the table's version; the book asks
//! for the version — one primary-key lookup — at most every [`CHECK_EVERY`], and reloads the
//! table only when it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use super::Price;
use crate::storage::prices as store;

/// How stale a price book may be after another instance uploads a table.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

struct Loaded {
    version: Option<String>,
    checked: Instant,
    table: Arc<Vec<Price>>,
}

#[derive(Clone)]
pub struct PriceBook {
    pool: PgPool,
    loaded: Arc<Mutex<Option<Loaded>>>,
}

impl std::fmt::Debug for PriceBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceBook").finish_non_exhaustive()
    }
}

impl PriceBook {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            loaded: Arc::new(Mutex::new(None)),
        }
    }

    /// The current table. Callers pricing at once wait for one load, not one each.
    pub async fn table(&self) -> sqlx::Result<Arc<Vec<Price>>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.as_mut() {
            if l.checked.elapsed() < CHECK_EVERY {
                return Ok(l.table.clone());
            }
            let version = store::version(&self.pool).await?;
            if version == l.version {
                l.checked = Instant::now();
                return Ok(l.table.clone());
            }
        }
        // Read the version first: a table replaced between the two reads is noticed at the
        // next check, never missed.
        let version = store::version(&self.pool).await?;
        let table = Arc::new(store::all(&self.pool).await?);
        *loaded = Some(Loaded {
            version,
            checked: Instant::now(),
            table: table.clone(),
        });
        Ok(table)
    }

    /// Forgets the table, so the next use reads it (after an upload on this instance).
    pub async fn invalidate(&self) {
        *self.loaded.lock().await = None;
    }
}
