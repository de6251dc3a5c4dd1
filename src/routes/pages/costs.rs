//! `GET /costs`: what traffic cost over a range of days — spend by day (a chart), category,
//! country, sender and broadcast, cost per user reached, and the send-time estimate against
//! what Twilio charged. The figures are the API's ([`crate::costs::report`]); this module
//! only formats them.

use actix_web::{HttpResponse, web};
use askama::Template;
use rust_decimal::Decimal;

use super::format::{Money, count};
use super::{Chrome, CurrentUser, PageError, html};
use crate::costs::report::{Line, Report};
use crate::costs::{self, Range};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/costs", web::get().to(page));
}

/// One line of a table, formatted.
pub struct Row {
    pub key: String,
    pub label: String,
    pub href: Option<String>,
    pub messages: String,
    pub unpriced: String,
    pub spend: Money,
    pub estimated: Money,
    /// What Twilio charged, and "4 of 10 messages", once some prices are in.
    pub actual: Option<(Money, String)>,
    /// Charged − estimate, and that as a share of the estimate.
    pub variance: Option<(Money, String)>,
    pub reached: String,
    /// Per user reached (often below a cent: shown to a hundredth of one).
    pub per_user: Option<Money>,
}

fn row(l: &Line, label: String, href: Option<String>, currency: &str) -> Row {
    let money = |d: Decimal| Money::new(d, currency);
    Row {
        key: l.key.clone(),
        label,
        href,
        messages: count(l.messages),
        unpriced: if l.unpriced > 0 {
            count(l.unpriced)
        } else {
            String::new()
        },
        spend: money(l.spend),
        estimated: money(l.estimated),
        actual: (l.actual_messages > 0).then(|| {
            (
                money(l.actual),
                format!("{} of {}", count(l.actual_messages), count(l.messages)),
            )
        }),
        variance: l.variance().map(|(d, share)| {
            let share = share.map_or_else(String::new, |p| {
                let sign = if p.is_sign_negative() {
                    "\u{2212}"
                } else {
                    "+"
                };
                format!("{sign}{} %", p.abs().normalize())
            });
            (money(d).signed(), share)
        }),
        reached: l.users_reached.map_or_else(|| "–".into(), count),
        per_user: l.cost_per_user.map(|d| money(d).unit()),
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
    /// "1 message", "1,234 messages".
    messages_text: String,
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
                (
                    d,
                    spend.try_into().unwrap_or(0.0),
                    Money::new(spend, "").shown(),
                )
            })
            .collect();
        Self {
            chrome,
            from: range.first.to_string(),
            to: range.last.to_string(),
            error: None,
            currency: r.currency.clone(),
            total: Some(row(&r.total, "Total".into(), None, &r.currency)),
            messages_text: super::format::plural(r.total.messages, "message", "messages"),
            chart: super::chart::spend_svg(&days, &r.currency),
            by_day: r
                .by_day
                .iter()
                .rev()
                .map(|l| row(l, l.key.clone(), None, &r.currency))
                .collect(),
            by_category: r
                .by_category
                .iter()
                .map(|l| row(l, l.key.clone(), None, &r.currency))
                .collect(),
            by_country: r
                .by_country
                .iter()
                .map(|l| row(l, country_label(&l.key), None, &r.currency))
                .collect(),
            by_sender: r
                .by_sender
                .iter()
                .map(|l| row(l, sender_label(&l.key), None, &r.currency))
                .collect(),
            by_broadcast: r
                .by_broadcast
                .iter()
                .map(|l| {
                    let label = l
                        .label
                        .clone()
                        .unwrap_or_else(|| format!("Broadcast {}", l.key));
                    row(
                        l,
                        label,
                        Some(format!("/broadcasts/{}", l.key)),
                        &r.currency,
                    )
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
                messages_text: String::new(),
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
