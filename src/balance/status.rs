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
    let scheduled = balance::scheduled_broadcast_cost(pool, day).await?
        + scheduled_reminder_cost(pool, now + day).await?;
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

/// Occurrences of one reminder counted at most (a reminder every minute has 1,440 a day).
const MAX_OCCURRENCES: usize = 1_440;

/// What active reminders will send before `until`: every occurrence to every recipient (a
/// tag's contacts as they are now), each at the price table's estimate for the recipient's
/// country on that day, outside the 24-hour window (the upper bound), a template as marketing.
/// What the table cannot price counts nothing.
async fn scheduled_reminder_cost(pool: &PgPool, until: DateTime<Utc>) -> sqlx::Result<Decimal> {
    use std::collections::HashMap;

    use crate::costs::CostFacts;
    use crate::pricing::Category;

    let due = crate::storage::reminders::due_before(pool, until).await?;
    if due.is_empty() {
        return Ok(Decimal::ZERO);
    }
    let table = crate::storage::prices::all(pool).await?;
    // Recipients per country, per audience (one query per tag).
    let mut audiences: HashMap<Option<String>, HashMap<&'static str, i64>> = HashMap::new();
    let mut total = Decimal::ZERO;
    for r in &due {
        let (Some(next), Ok(sched)) = (r.next_at, crate::reminders::schedule_of(r)) else {
            continue;
        };
        let countries = match (&r.to_number, &r.to_tag) {
            (Some(n), _) => HashMap::from([(crate::costs::country_of(n), 1)]),
            (None, Some(tag)) => {
                let key = Some(tag.clone());
                if !audiences.contains_key(&key) {
                    let mut by_country = HashMap::new();
                    for n in crate::storage::contacts::audience(pool, Some(tag)).await? {
                        *by_country.entry(crate::costs::country_of(&n)).or_insert(0) += 1;
                    }
                    audiences.insert(key.clone(), by_country);
                }
                audiences[&key].clone()
            }
            (None, None) => continue,
        };
        let facts = CostFacts {
            category: if r.content_sid.is_some() {
                Category::Marketing
            } else {
                Category::Service
            },
            in_window: false,
            broadcast_id: None,
        };
        for at in crate::reminders::occurrences_before(&sched, next, until, MAX_OCCURRENCES) {
            for (country, n) in &countries {
                if let Ok(b) = crate::costs::estimate(&table, country, &facts, at) {
                    total += b.total * Decimal::from(*n);
                }
            }
        }
    }
    Ok(total)
}
