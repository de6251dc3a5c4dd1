//! The cost report: spend over a date range by day, category, country, sender and broadcast,
//! with cost per user reached and the estimate against what Twilio charged. Pure: the
//! database hands over its groups ([`Group`], one per day × category × country × sender ×
//! broadcast) and this module adds them up, so every view agrees with every other.
//!
//! "Spend" is the best figure known for each message: what Twilio charged where the price
//! fetcher has it, the send-time estimate otherwise. Received messages cost Twilio's
//! per-message fee (Meta charges nothing for them); they are priced here by the table's fee
//! for their day, appear as the category `inbound`, and are not split by country.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::pricing::{self, Kind, Price};
pub use crate::storage::costs::{Group, InboundGroup, Inputs, Reached};

/// One line of a view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Line {
    pub key: String,
    /// A name for the key where it has one (a broadcast's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub messages: i64,
    pub unpriced: i64,
    #[serde(serialize_with = "normalized_text")]
    pub estimated: Decimal,
    pub actual_messages: i64,
    #[serde(serialize_with = "normalized_text")]
    pub actual: Decimal,
    #[serde(serialize_with = "normalized_text")]
    pub estimated_of_actual: Decimal,
    #[serde(serialize_with = "normalized_text")]
    pub spend: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_reached: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_decimal_text"
    )]
    pub cost_per_user: Option<Decimal>,
}

/// Amounts as exact decimal text without trailing zeros ("0.104", not "0.104000").
fn normalized_text<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.normalize().to_string())
}

fn optional_decimal_text<S: serde::Serializer>(
    d: &Option<Decimal>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.normalize().to_string()),
        None => s.serialize_none(),
    }
}

impl Line {
    fn keyed(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Default::default()
        }
    }

    fn add(&mut self, g: &Group) {
        self.messages += g.messages;
        self.unpriced += g.unpriced;
        self.estimated += g.estimated;
        self.actual_messages += g.actual_messages;
        self.actual += g.actual;
        self.estimated_of_actual += g.estimated_of_actual;
        self.spend += g.spend;
    }

    fn add_inbound(&mut self, messages: i64, cost: Option<Decimal>) {
        self.messages += messages;
        match cost {
            Some(c) => {
                self.estimated += c;
                self.spend += c;
            }
            None => self.unpriced += messages,
        }
    }

    fn reached(&mut self, users: i64) {
        self.users_reached = Some(users);
        self.cost_per_user = (users > 0).then(|| (self.spend / Decimal::from(users)).round_dp(6));
    }

    /// How far the estimate was off for the messages whose price is known: `actual −
    /// estimate`, and that as a share of the estimate.
    pub fn variance(&self) -> Option<(Decimal, Option<Decimal>)> {
        (self.actual_messages > 0).then(|| {
            let d = self.actual - self.estimated_of_actual;
            let share = (!self.estimated_of_actual.is_zero())
                .then(|| (d / self.estimated_of_actual * Decimal::ONE_HUNDRED).round_dp(1));
            (d, share)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    pub total: Line,
    pub by_day: Vec<Line>,
    pub by_category: Vec<Line>,
    pub by_country: Vec<Line>,
    pub by_sender: Vec<Line>,
    pub by_broadcast: Vec<Line>,
}

/// Twilio's fee for one received message on `day`, by the table.
fn inbound_fee(table: &[Price], day: NaiveDate) -> Option<Decimal> {
    pricing::lookup(table, Kind::TwilioMessage, pricing::ANY, pricing::ANY, day)
        .ok()
        .map(|p| p.amount)
}

fn sorted_by_spend(map: BTreeMap<String, Line>) -> Vec<Line> {
    let mut lines: Vec<Line> = map.into_values().collect();
    lines.sort_by(|a, b| b.spend.cmp(&a.spend).then_with(|| a.key.cmp(&b.key)));
    lines
}

/// Adds everything up.
pub fn build(from: DateTime<Utc>, to: DateTime<Utc>, inputs: &Inputs, table: &[Price]) -> Report {
    let mut total = Line::keyed("total");
    let mut by_day: BTreeMap<String, Line> = BTreeMap::new();
    let mut by_category: BTreeMap<String, Line> = BTreeMap::new();
    let mut by_country: BTreeMap<String, Line> = BTreeMap::new();
    let mut by_sender: BTreeMap<String, Line> = BTreeMap::new();
    let mut by_broadcast: BTreeMap<String, Line> = BTreeMap::new();
    fn line<'a>(map: &'a mut BTreeMap<String, Line>, key: &str) -> &'a mut Line {
        map.entry(key.to_owned())
            .or_insert_with(|| Line::keyed(key))
    }
    for g in &inputs.groups {
        total.add(g);
        line(&mut by_day, &g.day.to_string()).add(g);
        line(&mut by_category, &g.category).add(g);
        line(&mut by_country, &g.country).add(g);
        line(&mut by_sender, &g.sender).add(g);
        if let Some(id) = g.broadcast_id {
            line(&mut by_broadcast, &id.to_string()).add(g);
        }
    }
    for i in &inputs.inbound {
        let cost = inbound_fee(table, i.day).map(|fee| fee * Decimal::from(i.messages));
        total.add_inbound(i.messages, cost);
        line(&mut by_day, &i.day.to_string()).add_inbound(i.messages, cost);
        line(&mut by_category, "inbound").add_inbound(i.messages, cost);
        line(&mut by_sender, &i.sender).add_inbound(i.messages, cost);
    }
    total.reached(inputs.reached.total);
    for (key, l) in by_broadcast.iter_mut() {
        let id: i64 = key.parse().unwrap_or_default();
        l.label = inputs.broadcast_names.get(&id).cloned();
        l.reached(inputs.reached.by_broadcast.get(&id).copied().unwrap_or(0));
    }
    let currency = inputs
        .currency
        .clone()
        .or_else(|| table.first().map(|p| p.currency.clone()))
        .unwrap_or_else(|| "USD".to_owned());
    Report {
        from,
        to,
        currency,
        total,
        by_day: by_day.into_values().collect(),
        by_category: sorted_by_spend(by_category),
        by_country: sorted_by_spend(by_country),
        by_sender: sorted_by_spend(by_sender),
        by_broadcast: sorted_by_spend(by_broadcast),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn group(
        d: &str,
        category: &str,
        country: &str,
        broadcast: Option<i64>,
        n: i64,
        est: &str,
        actual: Option<(i64, &str, &str)>,
    ) -> Group {
        let (actual_messages, actual, est_of_actual) =
            actual.map_or((0, "0", "0"), |(k, a, e)| (k, a, e));
        Group {
            day: day(d),
            category: category.into(),
            country: country.into(),
            sender: "whatsapp:+14155238886".into(),
            broadcast_id: broadcast,
            messages: n,
            unpriced: 0,
            estimated: dec(est),
            actual_messages,
            actual: dec(actual),
            estimated_of_actual: dec(est_of_actual),
            // The best figure: actual where known, the estimate for the rest.
            spend: dec(actual) + dec(est) - dec(est_of_actual),
        }
    }

    fn table() -> Vec<Price> {
        pricing::parse(
            b"effective_from,kind,country,category,amount,currency\n\
              2025-01-01,twilio_message,*,*,0.005,USD\n\
              2026-11-24,twilio_message,*,*,0.006,USD\n",
        )
        .unwrap()
    }

    #[test]
    fn every_view_adds_up_to_the_total() {
        let inputs = Inputs {
            groups: vec![
                group(
                    "2026-11-23",
                    "marketing",
                    "IN",
                    Some(7),
                    10,
                    "0.168",
                    Some((4, "0.07", "0.0672")),
                ),
                group("2026-11-23", "service", "BR", None, 5, "0.025", None),
                group(
                    "2026-11-24",
                    "utility",
                    "IN",
                    Some(7),
                    2,
                    "0.0128",
                    Some((2, "0.0128", "0.0128")),
                ),
            ],
            inbound: vec![
                InboundGroup {
                    day: day("2026-11-23"),
                    sender: "whatsapp:+14155238886".into(),
                    messages: 3,
                },
                InboundGroup {
                    day: day("2026-11-24"),
                    sender: "whatsapp:+14155238886".into(),
                    messages: 1,
                },
            ],
            reached: Reached {
                total: 8,
                by_broadcast: [(7, 6)].into(),
            },
            broadcast_names: [(7, "Diwali offer".to_owned())].into(),
            currency: Some("USD".into()),
        };
        let r = build(Utc::now(), Utc::now(), &inputs, &table());
        // Outbound 17 + inbound 4; inbound at 0.005 on the 23rd and 0.006 from the 24th.
        assert_eq!(r.total.messages, 21);
        assert_eq!(
            r.total.estimated,
            dec("0.2058") + dec("0.015") + dec("0.006")
        );
        assert_eq!(r.total.actual, dec("0.0828"));
        assert_eq!(r.total.actual_messages, 6);
        for view in [&r.by_day, &r.by_category, &r.by_sender] {
            let spend: Decimal = view.iter().map(|l| l.spend).sum();
            let n: i64 = view.iter().map(|l| l.messages).sum();
            assert_eq!((spend, n), (r.total.spend, r.total.messages));
        }
        // Inbound messages have no country: the countries add up to the outbound spend.
        let outbound: Decimal = inputs.groups.iter().map(|g| g.spend).sum();
        assert_eq!(
            r.by_country.iter().map(|l| l.spend).sum::<Decimal>(),
            outbound
        );
        assert_eq!(
            r.by_day.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
            ["2026-11-23", "2026-11-24"]
        );
        let inbound = r.by_category.iter().find(|l| l.key == "inbound").unwrap();
        assert_eq!((inbound.messages, inbound.spend), (4, dec("0.021")));
        // Sorted by spend, dearest first.
        assert_eq!(r.by_category[0].key, "marketing");
        assert_eq!(r.total.users_reached, Some(8));
        assert_eq!(
            r.total.cost_per_user,
            Some((r.total.spend / dec("8")).round_dp(6))
        );
        let b = &r.by_broadcast[0];
        assert_eq!(
            (
                b.key.as_str(),
                b.label.as_deref(),
                b.messages,
                b.users_reached
            ),
            ("7", Some("Diwali offer"), 12, Some(6))
        );
    }

    #[test]
    fn variance_compares_like_with_like() {
        let mut l = Line::keyed("x");
        assert_eq!(l.variance(), None);
        l.add(&group(
            "2026-11-23",
            "marketing",
            "IN",
            None,
            10,
            "0.168",
            Some((4, "0.07", "0.0672")),
        ));
        let (d, share) = l.variance().unwrap();
        assert_eq!(d, dec("0.0028"));
        assert_eq!(share, Some(dec("4.2")));
    }

    #[test]
    fn nobody_reached_has_no_cost_per_user_and_unpriced_inbound_is_counted() {
        let inputs = Inputs {
            inbound: vec![InboundGroup {
                day: day("2024-01-01"),
                sender: "s".into(),
                messages: 2,
            }],
            ..Default::default()
        };
        let r = build(Utc::now(), Utc::now(), &inputs, &table());
        assert_eq!(r.total.cost_per_user, None);
        assert_eq!(
            (r.total.messages, r.total.unpriced, r.total.spend),
            (2, 2, Decimal::ZERO)
        );
    }
}
