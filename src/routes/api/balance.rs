//! `GET /api/v1/balance`: the latest reading, the burn rate and the runway (DESIGN.md).

use actix_web::{HttpResponse, web};
use chrono::{TimeDelta, Utc};
use serde::Serialize;

use super::auth::ApiCaller;
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::balance;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/balance", web::get().to(get));
}

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
    /// The last 24 hours' readings, oldest first.
    pub readings: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub read_at: chrono::DateTime<Utc>,
    pub balance: String,
}

pub async fn view(state: &AppState) -> Result<BalanceView, sqlx::Error> {
    let now = Utc::now();
    let day = TimeDelta::hours(24);
    let readings = balance::since(&state.pool, now - day, 2000).await?;
    let latest = match readings.last() {
        Some(r) => Some(r.clone()),
        None => balance::latest(&state.pool).await?,
    };
    let (spent, priced) = balance::spend_since(&state.pool, now - day).await?;
    let traffic = (priced > 0)
        .then(|| crate::balance::burn_from_traffic(spent, day))
        .flatten();
    let (burn, source) = match crate::balance::burn_from_readings(&readings) {
        Some(b) => (Some(b), Some("readings")),
        None => (traffic, traffic.map(|_| "traffic")),
    };
    let runway = match (&latest, burn) {
        (Some(l), Some(b)) => crate::balance::runway_hours(l.balance, b),
        _ => None,
    };
    Ok(BalanceView {
        balance: latest.as_ref().map(|l| crate::balance::money(l.balance)),
        currency: latest.as_ref().map(|l| l.currency.clone()),
        read_at: latest.as_ref().map(|l| l.read_at),
        burn_per_hour: burn.map(crate::balance::money),
        burn_source: source,
        runway_hours: runway.map(|h| (h * 100.0).round() / 100.0),
        runway: runway.map(crate::balance::human_runway),
        traffic_burn_per_hour: traffic.map(crate::balance::money),
        readings: readings
            .iter()
            .map(|r| Point {
                read_at: r.read_at,
                balance: crate::balance::money(r.balance),
            })
            .collect(),
    })
}

async fn get(caller: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(view(&state).await?))
}
