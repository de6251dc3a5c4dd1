//! What traffic costs. Every message sent through wadash is priced when it is sent, with the
//! price table as it stands (`src/pricing/`), and stored in `message_costs`; once the message
//! is final, the price fetcher (`src/jobs/prices.rs`) asks Twilio what it actually charged
//! (status callbacks carry no price). The cost page and `GET /api/v1/costs` add both up
//! ([`report`]).

pub mod report;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::{Direction, PhoneNumber};
use crate::pricing::{self, Breakdown, Category, EstimateError, Price};
use crate::twilio::client::{CreateMessage, Sender};

/// How long after a send its price is first asked for: most messages are final by then.
pub const FIRST_PRICE_CHECK: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// What pricing needs to know about a send beyond the message itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostFacts {
    /// Meta's category: `service` for free-form messages.
    pub category: Category,
    /// Whether the recipient's 24-hour window was open as wadash knew it.
    pub in_window: bool,
    pub broadcast_id: Option<i64>,
}

/// The category a message is priced in. A template whose category the sender did not say is
/// priced as marketing, the dearest, so that an estimate is never too low; free-form text is
/// a service message whatever was said.
pub fn category_of(msg: &CreateMessage, declared: Option<Category>) -> Category {
    if msg.content_sid.is_some() {
        declared
            .filter(|c| *c != Category::Service)
            .unwrap_or(Category::Marketing)
    } else {
        Category::Service
    }
}

/// The recipient's country for pricing (`*` when the number is not understood).
pub fn country_of(number: &str) -> &'static str {
    PhoneNumber::parse(number)
        .map(|n| pricing::country::of(&n))
        .unwrap_or(pricing::country::ELSEWHERE)
}

/// What one outbound message is expected to cost, assuming it is delivered.
pub fn estimate(
    table: &[Price],
    country: &str,
    facts: &CostFacts,
    at: DateTime<Utc>,
) -> Result<Breakdown, EstimateError> {
    pricing::estimate(
        table,
        &pricing::Message {
            direction: Direction::Outbound,
            failed: false,
            template: (facts.category != Category::Service).then_some(facts.category),
            country: country.to_owned(),
            in_window: facts.in_window,
            // wadash keeps no ledger of Meta's conversations: the upper bound.
            conversation_open: false,
            at,
        },
    )
}

/// The cost row of a message sent now by `sender` to `to` (`whatsapp:+…` or `+…`), with its
/// estimate by `table` (none when the table cannot price it: counted as unpriced).
pub fn new_cost(
    table: &[Price],
    sid: &str,
    sender: String,
    to: &str,
    facts: &CostFacts,
    now: DateTime<Utc>,
) -> crate::storage::costs::NewCost {
    let recipient = to.trim_start_matches("whatsapp:").to_owned();
    let country = country_of(&recipient);
    let estimated = match estimate(table, country, facts, now) {
        Ok(b) => Some((b.total, b.currency)),
        Err(e) => {
            tracing::warn!(%sid, error = %e, "no estimate for a sent message");
            None
        }
    };
    crate::storage::costs::NewCost {
        sid: sid.to_owned(),
        sender,
        recipient,
        country: country.to_owned(),
        category: facts.category.as_str().to_owned(),
        in_window: facts.in_window,
        broadcast_id: facts.broadcast_id,
        estimated,
        created_at: now,
        check_at: now + FIRST_PRICE_CHECK,
        content_sid: None,
    }
}

/// The sender as stored with a cost: `whatsapp:+…` or `MG…`.
pub fn sender_of(msg: &CreateMessage) -> String {
    match &msg.sender {
        Sender::From(a) => a.as_str().to_owned(),
        Sender::MessagingService(mg) => mg.clone(),
    }
}

/// A range as asked for in a query string (`?from=YYYY-MM-DD&to=YYYY-MM-DD`), before
/// [`Range::parse`] checks it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The days a report covers, in UTC, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: chrono::NaiveDate,
    pub last: chrono::NaiveDate,
}

/// The longest range one report covers.
pub const MAX_DAYS: i64 = 366;
/// The range when none is asked for: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

impl Range {
    /// From `from` and `to` (`YYYY-MM-DD`, both optional) as of `today`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        today: chrono::NaiveDate,
    ) -> Result<Self, String> {
        let date = |name: &str, v: Option<&str>| -> Result<Option<chrono::NaiveDate>, String> {
            match v.map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{name} must be a date like 2026-11-24, got {v:?}")),
            }
        };
        let last = date("to", to)?.unwrap_or(today);
        let first = date("from", from)?.unwrap_or(last - chrono::TimeDelta::days(DEFAULT_DAYS - 1));
        if first > last {
            return Err(format!("from ({first}) is after to ({last})"));
        }
        if (last - first).num_days() >= MAX_DAYS {
            return Err(format!("a report covers at most {MAX_DAYS} days"));
        }
        Ok(Self { first, last })
    }

    /// `[from, to)` as instants.
    pub fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        (
            start(self.first),
            start(self.last + chrono::TimeDelta::days(1)),
        )
    }
}

/// The cost report for `range`.
pub async fn report_for(
    pool: &sqlx::PgPool,
    prices: &crate::pricing::book::PriceBook,
    range: Range,
) -> sqlx::Result<report::Report> {
    let (from, to) = range.bounds();
    let inputs = crate::storage::costs::report_inputs(pool, from, to).await?;
    let table = prices.table().await?;
    Ok(report::build(from, to, &inputs, &table))
}

/// Twilio's `price` (a decimal string, negative for a charge) as the amount charged.
pub fn charged(price: &str) -> Option<Decimal> {
    price.trim().parse::<Decimal>().ok().map(|d| d.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WhatsAppAddress;

    fn msg(content_sid: Option<&str>) -> CreateMessage {
        CreateMessage {
            to: WhatsAppAddress::parse("+919900000000").unwrap(),
            sender: Sender::From(WhatsAppAddress::parse("+14155238886").unwrap()),
            body: Some("hi".into()),
            media_urls: vec![],
            content_sid: content_sid.map(str::to_owned),
            content_variables: None,
        }
    }

    const TABLE: &str = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.005,USD
2025-01-01,twilio_failed,*,*,0.001,USD
2025-07-01,meta_template,IN,marketing,0.0118,USD
2025-07-01,meta_template,IN,utility,0.0014,USD
2025-07-01,meta_template,*,*,0.03,USD
";

    fn at() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn free_form_is_service_and_templates_default_to_marketing() {
        assert_eq!(
            category_of(&msg(None), Some(Category::Marketing)),
            Category::Service
        );
        assert_eq!(category_of(&msg(Some("HX1")), None), Category::Marketing);
        assert_eq!(
            category_of(&msg(Some("HX1")), Some(Category::Utility)),
            Category::Utility
        );
        assert_eq!(
            category_of(&msg(Some("HX1")), Some(Category::Service)),
            Category::Marketing
        );
    }

    #[test]
    fn estimates_follow_country_category_and_window() {
        let table = pricing::parse(TABLE.as_bytes()).unwrap();
        let cost = |country: &str, category, in_window| {
            estimate(
                &table,
                country,
                &CostFacts {
                    category,
                    in_window,
                    broadcast_id: None,
                },
                at(),
            )
            .unwrap()
            .total
            .to_string()
        };
        assert_eq!(cost("IN", Category::Service, true), "0.005");
        assert_eq!(cost("IN", Category::Marketing, true), "0.0168");
        assert_eq!(cost("IN", Category::Utility, false), "0.0064");
        assert_eq!(cost("IN", Category::Utility, true), "0.005");
        assert_eq!(cost("BR", Category::Authentication, false), "0.035");
        assert_eq!(country_of("+919900000000"), "IN");
        assert_eq!(country_of("nonsense"), "*");
    }

    #[test]
    fn ranges_default_to_thirty_days_and_are_checked() {
        let today: chrono::NaiveDate = "2026-11-24".parse().unwrap();
        let r = Range::parse(None, None, today).unwrap();
        assert_eq!(
            (r.first.to_string(), r.last.to_string()),
            ("2026-10-26".into(), "2026-11-24".into())
        );
        let (from, to) = r.bounds();
        assert_eq!(from.to_rfc3339(), "2026-10-26T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        let r = Range::parse(Some("2026-11-01"), Some(""), today).unwrap();
        assert_eq!(r.first.to_string(), "2026-11-01");
        assert!(Range::parse(Some("2026-11-25"), Some("2026-11-24"), today).is_err());
        assert!(
            Range::parse(Some("2024-01-01"), None, today)
                .unwrap_err()
                .contains("366")
        );
        assert!(
            Range::parse(Some("yesterday"), None, today)
                .unwrap_err()
                .contains("from")
        );
    }

    #[test]
    fn twilio_prices_are_charges() {
        assert_eq!(charged("-0.00500").unwrap().to_string(), "0.00500");
        assert_eq!(charged("0.0050").unwrap().to_string(), "0.0050");
        assert!(charged("").is_none());
        assert!(charged("n/a").is_none());
    }
}
