//! The alert evaluator: every `interval`, one instance (an advisory lock) checks the rules
//! against the database and fires or resolves alerts. Each check reads a bounded, indexed
//! range (messages created within the rule's window, or for the failure rate the window's
//! roll-up rows), never the whole history.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::channels::ChannelStore;
use super::rules::{self, Rules};
use crate::storage::alerts;

/// Where the reconciler notes when it last settled messages whose callbacks were lost.
pub const LOST_KEY: &str = "reconcile_lost_at";
const LOCK: i64 = 0x7761_6461_7368_0a1e;

#[derive(Clone)]
pub struct Evaluator {
    pub pool: PgPool,
    pub channels: ChannelStore,
}

pub fn start(
    e: Evaluator,
    interval: Duration,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(crate::tasks::every(
        "alert rules",
        interval,
        shutdown,
        move || {
            let e = e.clone();
            async move {
                e.run_once(Utc::now()).await?;
                Ok(())
            }
        },
    ))
}

/// One condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub kind: &'static str,
    pub subject: String,
    pub severity: &'static str,
    pub message: String,
}

impl Evaluator {
    /// Checks every rule; returns the conditions that hold (None when another instance is
    /// evaluating).
    pub async fn run_once(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Vec<Firing>>> {
        crate::storage::with_session_lock(&self.pool, LOCK, self.evaluate(now)).await
    }

    async fn evaluate(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Firing>> {
        let r = rules::load(&self.pool).await?;
        let mut all = Vec::new();
        for (kind, enabled, firing) in [
            (
                "failure_rate",
                r.failure_rate.enabled,
                failure_rate(&self.pool, &r, now).await?,
            ),
            (
                "error_code",
                r.error_codes.enabled,
                error_codes(&self.pool, &r).await?,
            ),
            (
                "callbacks_stalled",
                r.callbacks_stalled.enabled,
                stalled(&self.pool, &r).await?,
            ),
            (
                "lost_callbacks",
                r.lost_callbacks.enabled,
                lost(&self.pool, &r, now).await?,
            ),
        ] {
            let firing = if enabled { firing } else { Vec::new() };
            self.apply(kind, &firing).await?;
            all.extend(firing);
        }
        Ok(all)
    }

    /// Fires what holds and is not open; resolves what is open and no longer holds.
    async fn apply(&self, kind: &str, firing: &[Firing]) -> sqlx::Result<()> {
        let names = self.channels.current().await.channels.names();
        let mut tx = self.pool.begin().await?;
        for f in firing {
            alerts::fire(&mut tx, f.kind, &f.subject, f.severity, &f.message, &names).await?;
        }
        for subject in alerts::open_subjects(&mut tx, kind).await? {
            if !firing.iter().any(|f| f.subject == subject) {
                alerts::resolve(&mut tx, kind, &subject, &names).await?;
            }
        }
        tx.commit().await
    }
}

/// Failed and undelivered messages per sender over the rule's window, from the roll-ups: the
/// window is widened to the start of its first five-minute bucket (so by up to five minutes),
/// which the message says.
async fn failure_rate(pool: &PgPool, r: &Rules, now: DateTime<Utc>) -> sqlx::Result<Vec<Firing>> {
    let f = &r.failure_rate;
    let since = crate::storage::rollups::bucket_of(
        now - chrono::TimeDelta::minutes(f.window_minutes.into()),
    );
    let minutes = ((now - since).num_seconds() + 59) / 60;
    let rows = crate::storage::rollups::failure_counts(pool, since).await?;
    Ok(rows
        .into_iter()
        .filter(|(_, failed, settled)| {
            *settled >= i64::from(f.min_messages) && *failed as f64 / *settled as f64 >= f.threshold
        })
        .map(|(sender, failed, settled)| Firing {
            kind: "failure_rate",
            message: format!(
                "{failed} of {settled} messages from {sender} failed in the last {minutes} min ({:.0} %)",
                failed as f64 * 100.0 / settled as f64
            ),
            subject: sender,
            severity: "critical",
        })
        .collect())
}

async fn error_codes(pool: &PgPool, r: &Rules) -> sqlx::Result<Vec<Firing>> {
    let e = &r.error_codes;
    if e.codes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT error_code, count(*) FROM messages \
         WHERE created_at >= now() - make_interval(mins => $1) AND error_code = ANY($2) \
         GROUP BY 1",
    )
    .bind(e.window_minutes as i32)
    .bind(&e.codes)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, n)| *n >= i64::from(e.count))
        .map(|(code, n)| {
            let meaning = crate::domain::error_codes::lookup(code)
                .map_or("unknown", |i| i.meaning.trim_end_matches('.'));
            Firing {
                kind: "error_code",
                subject: code.to_string(),
                severity: "warning",
                message: format!(
                    "error {code} ({meaning}) {n} times in the last {} min",
                    e.window_minutes
                ),
            }
        })
        .collect())
}

async fn stalled(pool: &PgPool, r: &Rules) -> sqlx::Result<Vec<Firing>> {
    let s = &r.callbacks_stalled;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages \
         WHERE created_at >= now() - make_interval(mins => $1 * 2) \
           AND created_at < now() - make_interval(mins => $1) \
           AND direction = 'outbound' AND status IN ('accepted', 'scheduled', 'queued', 'sending')",
    )
    .bind(s.minutes as i32)
    .fetch_one(pool)
    .await?;
    Ok(if n >= i64::from(s.min_messages) {
        vec![Firing {
            kind: "callbacks_stalled",
            subject: String::new(),
            severity: "critical",
            message: format!(
                "{n} messages sent {}–{} min ago have had no status callback: is /sts reachable from Twilio?",
                s.minutes,
                s.minutes * 2
            ),
        }]
    } else {
        Vec::new()
    })
}

async fn lost(pool: &PgPool, r: &Rules, now: DateTime<Utc>) -> sqlx::Result<Vec<Firing>> {
    let l = &r.lost_callbacks;
    let noted = crate::storage::instance_settings::get(pool, LOST_KEY).await?;
    let recent = noted.as_deref().and_then(|v| {
        let (at, n) = v.split_once('|')?;
        let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
        (now - at <= chrono::TimeDelta::minutes(i64::from(l.window_minutes))).then(|| n.to_owned())
    });
    Ok(recent
        .map(|n| Firing {
            kind: "lost_callbacks",
            subject: String::new(),
            severity: "warning",
            message: format!(
                "reconciliation settled {n} messages whose status callbacks never came (within the last {} min)",
                l.window_minutes
            ),
        })
        .into_iter()
        .collect())
}
