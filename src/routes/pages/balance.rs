//! `GET /balance`: the Twilio balance, how fast it is spent and how long it lasts, with the
//! last 24 hours' readings as a chart. The figures come from the API's view
//! ([`crate::balance::view`]) and refresh on the `stats` event.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{TimeDelta, Utc};
use serde::Deserialize;

use super::format::{Money, Relative, Stamp, plural};
use super::{Chrome, CurrentUser, PageError, html};
use crate::balance::view::{BalanceView, view};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/balance", web::get().to(page));
}

#[derive(Debug, Deserialize)]
pub struct BalanceQuery {
    /// `live`: only the part that live updates replace.
    pub fragment: Option<String>,
}

/// The balance's figures as the pages show them.
pub struct Figures {
    /// None before the first reading.
    pub balance: Option<Money>,
    /// When it was read, said relative to now ("read 3 min ago").
    pub read: Option<Relative>,
    /// Spend per hour; None when nothing is being spent (or known to be).
    pub burn: Option<Money>,
    /// Where the burn rate comes from, in words.
    pub burn_source: &'static str,
    /// The traffic figure when the burn rate comes from the readings.
    pub traffic_burn: Option<Money>,
    /// "3 d 4 h".
    pub runway: Option<String>,
    /// "(1 reading)", "(12 readings)".
    pub readings: String,
}

impl Figures {
    pub fn from_view(v: &BalanceView, tz: chrono_tz::Tz) -> Self {
        let now = Utc::now();
        let unit = v.currency.as_deref().unwrap_or("");
        let amount = |a: &String| Money::parse(a, unit);
        Self {
            balance: v.balance.as_ref().and_then(amount),
            read: Stamp::of(v.read_at, tz).map(|s| s.ago(now)),
            burn: v
                .burn_per_hour
                .as_ref()
                .and_then(amount)
                .map(Money::per_hour),
            burn_source: match v.burn_source {
                Some("readings") => "from the drops between balance readings (top-ups excluded)",
                Some("traffic") => "from the prices of the messages sent (fewer than two readings)",
                _ => "",
            },
            traffic_burn: match v.burn_source {
                Some("readings") => v
                    .traffic_burn_per_hour
                    .as_ref()
                    .and_then(amount)
                    .map(Money::per_hour),
                _ => None,
            },
            runway: v.runway.clone(),
            readings: plural(v.readings.len() as i64, "reading", "readings"),
        }
    }
}

#[derive(Template)]
#[template(path = "balance.html", blocks = ["live"])]
struct BalancePage {
    chrome: Chrome,
    f: Figures,
    chart: String,
}

async fn page(
    user: CurrentUser,
    query: web::Query<BalanceQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let v = view(&state.pool, &state.balance, &state.credit).await?;
    let until = Utc::now();
    let points: Vec<_> = v
        .readings
        .iter()
        .map(|p| (p.read_at, p.balance.clone()))
        .collect();
    let chart = super::chart::balance_svg(
        &points,
        until - TimeDelta::hours(24),
        until,
        v.currency.as_deref().unwrap_or(""),
        user.tz,
    );
    let page = BalancePage {
        chrome: Chrome::for_user(&user, &state, "balance"),
        f: Figures::from_view(&v, user.tz),
        chart,
    };
    if query.fragment.as_deref() == Some("live") {
        return html(&page.as_live());
    }
    html(&page)
}
