//! The balance as the dashboard, the API and the alerting see it: the latest reading, the
//! pace of spending over the last 24 hours, the runway, and the credit level.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

use super::{Level, Levels};
use crate::storage::balance::{self, Reading};

/// Where the credit level is remembered between readings (for its hysteresis).
pub const LEVEL_KEY: &str = "credit_level";

/// The last computed status, reused while no new reading has arrived (for at most a
/// minute): pages refresh every second in every open tab, and the figures only change with a
/// reading. Checking for a new reading is one primary-key lookup.
#[derive(Debug, Default)]
pub struct Cache {
    last: std::sync::Mutex<Option<(Key, std::time::Instant, Status)>>,
}

type Key = (Option<i64>, Option<String>);

impl Cache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);

    pub async fn get(&self, pool: &PgPool, levels: &Levels) -> sqlx::Result<Status> {
        // The newest reading and the level assessed after it (written just after it).
        let newest = (
            balance::newest_id(pool).await?,
            crate::storage::instance_settings::get(pool, LEVEL_KEY).await?,
        );
        if let Some((id, at, s)) = self.last.lock().expect("balance cache").as_ref()
            && *id == newest
            && at.elapsed() < Self::TTL
        {
            return Ok(s.clone());
        }
        let s = current(pool, levels, Utc::now()).await?;
        *self.last.lock().expect("balance cache") =
            Some((newest, std::time::Instant::now(), s.clone()));
        Ok(s)
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    pub latest: Option<Reading>,
    /// The last 24 hours' readings, oldest first.
    pub readings: Vec<Reading>,
    pub burn_per_hour: Option<Decimal>,
    /// `readings` or `traffic`.
    pub burn_source: Option<&'static str>,
    pub traffic_burn_per_hour: Option<Decimal>,
    pub runway_hours: Option<f64>,
    /// What broadcasts already queued for the next 24 hours will cost (their estimates).
    pub scheduled_cost: Decimal,
    /// The pace the lines are drawn at: the spend per hour plus the queued work's, spread
    /// over the day (none while neither is known).
    pub line_pace: Option<Decimal>,
    /// The level as last assessed (after the latest reading).
    pub level: Level,
    pub low_at: Decimal,
    pub critical_at: Decimal,
}

pub async fn current(pool: &PgPool, levels: &Levels, now: DateTime<Utc>) -> sqlx::Result<Status> {
    let day = TimeDelta::hours(24);
    let readings = balance::since(pool, now - day, 2000).await?;
    let latest = match readings.last() {
        Some(r) => Some(r.clone()),
        None => balance::latest(pool).await?,
    };
    let (spent, priced) = balance::spend_since(pool, now - day).await?;
    let traffic = (priced > 0)
        .then(|| super::burn_from_traffic(spent, day))
        .flatten();
    let (burn, source) = match super::burn_from_readings(&readings) {
        Some(b) => (Some(b), Some("readings")),
        None => (traffic, traffic.map(|_| "traffic")),
    };
    let runway = match (&latest, burn) {
        (Some(l), Some(b)) => super::runway_hours(l.balance, b),
        _ => None,
    };
    let level = crate::storage::instance_settings::get(pool, LEVEL_KEY)
        .await?
        .and_then(|l| Level::parse(&l))
        .unwrap_or(Level::Ok);
    let scheduled = balance::scheduled_broadcast_cost(pool, day).await?;
    let line_pace = match (burn, scheduled > Decimal::ZERO) {
        (b, false) => b,
        (b, true) => Some(b.unwrap_or_default() + scheduled / Decimal::from(24)),
    };
    let (critical_at, low_at) = levels.lines(line_pace);
    Ok(Status {
        latest,
        readings,
        burn_per_hour: burn,
        burn_source: source,
        traffic_burn_per_hour: traffic,
        runway_hours: runway,
        scheduled_cost: scheduled,
        line_pace,
        level,
        low_at,
        critical_at,
    })
}

/// Re-assesses the level after a reading and remembers it; returns (before, after).
pub async fn reassess(
    pool: &PgPool,
    levels: &Levels,
    now: DateTime<Utc>,
) -> sqlx::Result<(Level, Level)> {
    let s = current(pool, levels, now).await?;
    let Some(latest) = &s.latest else {
        return Ok((s.level, s.level));
    };
    let next = super::level(s.level, latest.balance, s.line_pace, levels);
    if next != s.level {
        crate::storage::instance_settings::put(pool, LEVEL_KEY, next.as_str()).await?;
        match next {
            Level::Ok => {
                tracing::info!(balance = %latest.balance, "credit is back above the low line")
            }
            _ => {
                tracing::warn!(level = next.as_str(), balance = %latest.balance, low_at = %s.low_at, critical_at = %s.critical_at, "credit level changed")
            }
        }
    }
    Ok((s.level, next))
}
