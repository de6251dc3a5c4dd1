//! `GET /costs`: what traffic cost over a range of days — spend by day (a chart), category,
//! country, sender and broadcast, cost per user reached, and the send-time estimate against
//! what Twilio charged. The figures are the API's ([`crate::costs::report`]); this module
//! only formats them.

use actix_web::{HttpResponse, web};
use askama::Template;
use rust_decimal::Decimal;

use super::{Chrome, CurrentUser, PageError, html};
use crate::costs::report::{Line, Report};
use crate::costs::{self, Range};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/costs", web::get().to(page));
}

/// An amount as shown: at most four decimals, no trailing zeros.
fn money(d: Decimal) -> String {
    d.round_dp(4).normalize().to_string()
}

/// One line of a table, formatted.
pub struct Row {
    pub key: String,
    pub label: String,
    pub href: Option<String>,
    pub messages: String,
    pub unpriced: i64,
    pub spend: String,
    pub estimated: String,
    /// "0.07 (4 of 10 messages)", or "–".
    pub actual: String,
    /// "+0.0028 (+4.2 %)", or "–".
    pub variance: String,
    pub reached: String,
    pub per_user: String,
}

fn row(l: &Line, label: String, href: Option<String>) -> Row {
    Row {
        key: l.key.clone(),
        label,
        href,
        messages: super::format::count(l.messages),
        unpriced: l.unpriced,
        spend: money(l.spend),
        estimated: money(l.estimated),
        actual: if l.actual_messages > 0 {
            format!(
                "{} ({} of {})",
                money(l.actual),
                super::format::count(l.actual_messages),
                super::format::count(l.messages)
            )
        } else {
            "–".into()
        },
        variance: match l.variance() {
            Some((d, share)) => {
                let sign = if d.is_sign_negative() { "" } else { "+" };
                match share {
                    Some(p) => format!("{sign}{} ({sign}{p} %)", money(d)),
                    None => format!("{sign}{}", money(d)),
                }
            }
            None => "–".into(),
        },
        reached: l
            .users_reached
            .map(super::format::count)
            .unwrap_or_else(|| "–".into()),
        per_user: l.cost_per_user.map(money).unwrap_or_else(|| "–".into()),
    }
}

fn country_label(code: &str) -> String {
    if code == crate::pricing::ANY {
        "other / unknown".into()
    } else {
        code.to_owned()
    }
}

fn sender_label(s: &str) -> String {
    s.trim_start_matches("whatsapp:").to_owned()
}

#[derive(Template)]
#[template(path = "costs.html")]
struct CostsPage {
    chrome: Chrome,
    from: String,
    to: String,
    error: Option<String>,
    currency: String,
    total: Option<Row>,
    chart: String,
    by_day: Vec<Row>,
    by_category: Vec<Row>,
    by_country: Vec<Row>,
    by_sender: Vec<Row>,
    by_broadcast: Vec<Row>,
}

impl CostsPage {
    fn of(chrome: Chrome, range: Range, r: &Report) -> Self {
        // Every day of the range in the chart, zero where nothing was spent.
        let spent: std::collections::HashMap<&str, &Line> =
            r.by_day.iter().map(|l| (l.key.as_str(), l)).collect();
        let days: Vec<(chrono::NaiveDate, f64, String)> = range
            .first
            .iter_days()
            .take_while(|d| *d <= range.last)
            .map(|d| {
                let spend = spent
                    .get(d.to_string().as_str())
                    .map_or(Decimal::ZERO, |l| l.spend);
                (d, spend.try_into().unwrap_or(0.0), money(spend))
            })
            .collect();
        Self {
            chrome,
            from: range.first.to_string(),
            to: range.last.to_string(),
            error: None,
            currency: r.currency.clone(),
            total: Some(row(&r.total, "Total".into(), None)),
            chart: super::chart::spend_svg(&days, &r.currency),
            by_day: r
                .by_day
                .iter()
                .rev()
                .map(|l| row(l, l.key.clone(), None))
                .collect(),
            by_category: r
                .by_category
                .iter()
                .map(|l| row(l, l.key.clone(), None))
                .collect(),
            by_country: r
                .by_country
                .iter()
                .map(|l| row(l, country_label(&l.key), None))
                .collect(),
            by_sender: r
                .by_sender
                .iter()
                .map(|l| row(l, sender_label(&l.key), None))
                .collect(),
            by_broadcast: r
                .by_broadcast
                .iter()
                .map(|l| {
                    let label = l
                        .label
                        .clone()
                        .unwrap_or_else(|| format!("Broadcast {}", l.key));
                    row(l, label, Some(format!("/broadcasts/{}", l.key)))
                })
                .collect(),
        }
    }
}

async fn page(
    user: CurrentUser,
    q: web::Query<crate::costs::RangeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::for_user(&user, &state, "costs");
    let today = chrono::Utc::now().date_naive();
    let range = match Range::parse(q.from.as_deref(), q.to.as_deref(), today) {
        Ok(r) => r,
        Err(e) => {
            let page = CostsPage {
                chrome,
                from: q.from.clone().unwrap_or_default(),
                to: q.to.clone().unwrap_or_default(),
                error: Some(e),
                currency: String::new(),
                total: None,
                chart: String::new(),
                by_day: Vec::new(),
                by_category: Vec::new(),
                by_country: Vec::new(),
                by_sender: Vec::new(),
                by_broadcast: Vec::new(),
            };
            let mut resp = html(&page)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    let report = costs::report_for(&state.pool, &state.prices, range).await?;
    html(&CostsPage::of(chrome, range, &report))
}
