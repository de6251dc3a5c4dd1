//! The balance as the API and the dashboard show it: the latest reading, the burn rate, the
//! runway and where the credit lines are, as exact decimal text.

use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;

use super::Levels;
use super::status::Cache;

#[derive(Debug, Serialize)]
pub struct BalanceView {
    /// Exact decimal text; null before the first reading (or for a subaccount).
    pub balance: Option<String>,
    pub currency: Option<String>,
    pub read_at: Option<chrono::DateTime<Utc>>,
    /// Spend per hour over the last 24 hours: from the readings when two or more span a
    /// minute, else from the messages' prices.
    pub burn_per_hour: Option<String>,
    /// `readings` or `traffic`.
    pub burn_source: Option<&'static str>,
    pub runway_hours: Option<f64>,
    /// The same runway in words ("3 d 4 h").
    pub runway: Option<String>,
    /// Spend per hour from the last 24 hours' message prices.
    pub traffic_burn_per_hour: Option<String>,
    /// `ok`, `low` or `critical`, as assessed after the latest reading.
    pub level: crate::balance::Level,
    /// What broadcasts queued for the next 24 hours will cost by their estimates; lines in
    /// hours of spend count it in the pace.
    pub scheduled_cost_24h: String,
    /// Where the low and critical lines are now (hours-of-spend lines move with the pace).
    pub low_at: String,
    pub critical_at: String,
    /// The last 24 hours' readings, oldest first.
    pub readings: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub read_at: chrono::DateTime<Utc>,
    pub balance: String,
}

/// The current figures (from `cache`, recomputed when a reading or level changed).
pub async fn view(pool: &PgPool, cache: &Cache, levels: &Levels) -> sqlx::Result<BalanceView> {
    let s = cache.get(pool, levels).await?;
    let money = crate::balance::money;
    Ok(BalanceView {
        balance: s.latest.as_ref().map(|l| money(l.balance)),
        currency: s.latest.as_ref().map(|l| l.currency.clone()),
        read_at: s.latest.as_ref().map(|l| l.read_at),
        burn_per_hour: s.burn_per_hour.map(money),
        burn_source: s.burn_source,
        runway_hours: s.runway_hours.map(|h| (h * 100.0).round() / 100.0),
        runway: s.runway_hours.map(crate::balance::human_runway),
        traffic_burn_per_hour: s.traffic_burn_per_hour.map(money),
        level: s.level,
        scheduled_cost_24h: money(s.scheduled_cost),
        low_at: money(s.low_at),
        critical_at: money(s.critical_at),
        readings: s
            .readings
            .iter()
            .map(|r| Point {
                read_at: r.read_at,
                balance: money(r.balance),
            })
            .collect(),
    })
}
