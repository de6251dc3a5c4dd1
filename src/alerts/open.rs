//! The open alerts as every page's banner shows them: a snapshot kept in memory per instance,
//! so that rendering a page costs no query.
//!
//! The live hub refreshes it *before* it sends an `alerts` change-log row to this instance's
//! browsers (see `startup.rs`), so a page that reacts to the event finds it current; a slow
//! timer refreshes it too, in case the change log was missed. Refreshes are serialized, so
//! an older read never overwrites a newer one. The [`Snapshot::version`] lets a page that was
//! rendered just before a change, and connected to `/events` just after it, notice that its
//! banner is stale (the SSE `hello` carries the version).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::Digest;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::storage::alerts::{self, AlertRow};

/// The most open alerts kept; a banner shows a few and links to the rest.
const LIMIT: i64 = 200;

#[derive(Debug, Default)]
pub struct Snapshot {
    /// Firing first, then acknowledged; critical first; newest first.
    pub alerts: Vec<AlertRow>,
    /// Names this set of open alerts and their states (the same on every instance).
    pub version: String,
}

impl Snapshot {
    pub fn new(alerts: Vec<AlertRow>) -> Self {
        let mut h = sha2::Sha256::new();
        for a in &alerts {
            h.update(format!("{}:{};", a.id, a.state).as_bytes());
        }
        let version = crate::domain::hex(&h.finalize()[..8]);
        Self { alerts, version }
    }
}

#[derive(Default)]
struct Inner {
    current: RwLock<Arc<Snapshot>>,
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Clone, Default)]
pub struct OpenAlerts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OpenAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAlerts")
            .field("open", &self.current().alerts.len())
            .finish()
    }
}

impl OpenAlerts {
    /// The snapshot as it is (no query).
    pub fn current(&self) -> Arc<Snapshot> {
        self.inner.current.read().expect("snapshot lock").clone()
    }

    /// Reads the open alerts from the database and keeps them (one indexed query).
    pub async fn refresh(&self, pool: &PgPool) -> sqlx::Result<Arc<Snapshot>> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let fresh = Arc::new(Snapshot::new(alerts::open(pool, LIMIT).await?));
        *self.inner.current.write().expect("snapshot lock") = fresh.clone();
        Ok(fresh)
    }

    /// Refreshes every `period` until shutdown: the fallback for missed change-log rows.
    pub fn start(
        &self,
        pool: PgPool,
        period: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        crate::tasks::every("open alerts", period, shutdown, move || {
            let (this, pool) = (this.clone(), pool.clone());
            async move {
                this.refresh(&pool).await?;
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: i64, state: &str) -> AlertRow {
        AlertRow {
            id,
            kind: "credit_low".into(),
            subject: String::new(),
            severity: "warning".into(),
            state: crate::domain::alert_state::AlertState::parse(state).unwrap(),
            message: "m".into(),
            fired_at: chrono::Utc::now(),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
        }
    }

    #[test]
    fn the_version_changes_with_the_set_and_the_states_only() {
        let a = Snapshot::new(vec![alert(1, "firing")]);
        let mut later = alert(1, "firing");
        later.message = "other words".into();
        assert_eq!(a.version, Snapshot::new(vec![later]).version);
        assert_ne!(
            a.version,
            Snapshot::new(vec![alert(1, "acknowledged")]).version
        );
        assert_ne!(a.version, Snapshot::new(vec![]).version);
        assert_ne!(
            a.version,
            Snapshot::new(vec![alert(1, "firing"), alert(2, "firing")]).version
        );
    }
}
