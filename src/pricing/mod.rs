//! Prices: the price table as data (uploaded as CSV, with effective dates) and the estimator
//! that says what one message costs. Pure: storage is in `src/storage/prices.rs`, the API in
//! `src/routes/api/prices.rs`.
//!
//! What a WhatsApp message through Twilio costs is two fees:
//! - Twilio's fee, for every message in either direction (a lower one for a failed message);
//! - Meta's fee, by the recipient's country and the template's category. Since 2025-07-01
//!   Meta charges per delivered template message: marketing and authentication templates
//!   always, utility templates only outside the 24-hour customer service window; free-form
//!   (service) messages are free. Before that, Meta charged per 24-hour conversation: the
//!   first business-initiated template of a category opened a conversation of that category,
//!   charged once, and further templates of that category to the contact within 24 hours were
//!   free.
//!
//! The estimator cannot know which conversations Meta had open for a past date, so the caller
//! says ([`Message::conversation_open`]); broadcast previews assume none is open, the upper
//! bound. Service conversations of the old model are not charged here (Meta made them free
//! from 2024-11-01; earlier periods' service fees are out of scope).
//!
//! Which row applies: for each fee, the rows of its kind effective on the message's date (UTC)
//! are tried from the most specific to the least, `(country, category)`, `(country, *)`,
//! `(*, category)`, `(*, *)`; within the first that has any, the latest `effective_from`
//! wins. So a newer `*` row does not override an older row for a named country: a new rate
//! card names its countries again.

pub mod book;
pub mod country;
pub mod export;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::Direction;
pub use crate::domain::price::{Category, Kind, Price, decimal_text};

/// The first day Meta charged per template message instead of per conversation.
pub const PER_MESSAGE_FROM: NaiveDate = NaiveDate::from_ymd_opt(2025, 7, 1).expect("a date");

/// Largest upload accepted, in lines.
pub const MAX_LINES: usize = 100_000;

/// The header an upload must start with.
pub const HEADER: &str = "effective_from,kind,country,category,amount,currency";

/// The table shipped with wadash, seeded at first start when the table is empty. Its Meta
/// rows are placeholders (see docs/money.md).
pub const DEFAULT_TABLE: &str = include_str!("../../data/prices-default.csv");

/// "Any country" or "any category" in a row.
pub const ANY: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// Parses and validates a whole upload: every line is checked and every problem reported by
/// line number; the table is usable only if there is none. A table holds one currency (the
/// currency Twilio bills the account in), so costs can be added up.
pub fn parse(bytes: &[u8]) -> Result<Vec<Price>, Vec<LineError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![LineError {
            line: 1,
            message: format!("the file is not UTF-8 text: {e}"),
        }]
    })?;
    // One price per line and no field holds a line break, so lines are split here and each
    // is read as CSV alone: line numbers are the file's, blank lines included.
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| l).unwrap_or_default();
    let columns: Vec<String> = fields(header)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if columns.join(",") != HEADER {
        return Err(vec![LineError {
            line: 1,
            message: format!("the first line must be the header {HEADER}"),
        }]);
    }
    let mut prices = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<(NaiveDate, Kind, String, String), u64> = HashMap::new();
    let mut currency: Option<(String, u64)> = None;
    for (n, (line, text)) in lines.enumerate() {
        if n >= MAX_LINES {
            errors.push(LineError {
                line,
                message: format!("a price table holds at most {MAX_LINES} rows"),
            });
            break;
        }
        let price = match fields(text).and_then(|f| row(&f)) {
            Ok(p) => p,
            Err(message) => {
                errors.push(LineError { line, message });
                continue;
            }
        };
        let key = (
            price.effective_from,
            price.kind,
            price.country.clone(),
            price.category.clone(),
        );
        if let Some(first) = seen.insert(key, line) {
            errors.push(LineError {
                line,
                message: format!("the same date, kind, country and category are on line {first}"),
            });
            continue;
        }
        match &currency {
            None => currency = Some((price.currency.clone(), line)),
            Some((c, first)) if *c != price.currency => {
                errors.push(LineError {
                    line,
                    message: format!(
                        "a table holds one currency: line {first} uses {c}, this line {}",
                        price.currency
                    ),
                });
                continue;
            }
            Some(_) => {}
        }
        prices.push(price);
    }
    if prices.is_empty() && errors.is_empty() {
        errors.push(LineError {
            line: 2,
            message: "the table has no prices".into(),
        });
    }
    if errors.is_empty() {
        Ok(prices)
    } else {
        Err(errors)
    }
}

fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(r)) => Ok(r.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(format!("not valid CSV: {e}")),
        None => Ok(Vec::new()),
    }
}

fn row(f: &[String]) -> Result<Price, String> {
    let [effective_from, kind, country, category, amount, currency] = f else {
        return Err(format!("expected 6 fields ({HEADER}), found {}", f.len()));
    };
    let effective_from = NaiveDate::parse_from_str(effective_from, "%Y-%m-%d").map_err(|_| {
        format!("effective_from must be a date like 2025-07-01, got {effective_from:?}")
    })?;
    let kind = Kind::parse(kind)?;
    let country = country.to_ascii_uppercase();
    if country != ANY && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(format!(
            "country must be an ISO 3166 alpha-2 code such as IN, or * for everywhere else, got {country:?}"
        ));
    }
    let category = category.to_ascii_lowercase();
    if !kind.is_meta() && category != ANY {
        return Err(format!(
            "Twilio's fee does not depend on the category: write * for {}",
            kind.as_str()
        ));
    }
    if category != ANY {
        Category::parse(&category)?;
    }
    let amount: Decimal = amount
        .parse()
        .map_err(|_| format!("amount must be a decimal number such as 0.005, got {amount:?}"))?;
    if amount.is_sign_negative() {
        return Err(format!("amount cannot be negative, got {amount}"));
    }
    let currency = currency.to_ascii_uppercase();
    if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(format!(
            "currency must be an ISO 4217 code such as USD, got {currency:?}"
        ));
    }
    Ok(Price {
        effective_from,
        kind,
        country,
        category,
        amount,
        currency,
    })
}

/// The shipped default table.
pub fn default_table() -> Vec<Price> {
    parse(DEFAULT_TABLE.as_bytes()).expect("the default price table is valid")
}

/// One message, as much as pricing needs to know of it.
#[derive(Debug, Clone)]
pub struct Message {
    pub direction: Direction,
    pub failed: bool,
    /// The template's category; `None` for a free-form (service) message.
    pub template: Option<Category>,
    /// The recipient's country ([`country::of`]), or `*`.
    pub country: String,
    /// Whether the contact's 24-hour customer service window is open.
    pub in_window: bool,
    /// Per-conversation model (before 2025-07-01) only: whether a conversation of the
    /// template's category is already open with the contact, so this template is free. The
    /// caller knows (or assumes) it; wadash keeps no conversation ledger.
    pub conversation_open: bool,
    pub at: DateTime<Utc>,
}

/// What a message costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breakdown {
    #[serde(serialize_with = "decimal_text")]
    pub twilio_fee: Decimal,
    #[serde(serialize_with = "decimal_text")]
    pub meta_fee: Decimal,
    #[serde(serialize_with = "decimal_text")]
    pub total: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error(
        "the price table has no {kind} price for country {country}, category {category} on {date} (nor a * row): upload a table that covers it"
    )]
    NoPrice {
        kind: &'static str,
        country: String,
        category: String,
        date: NaiveDate,
    },
    #[error("the prices are in different currencies ({0} and {1}): upload a table in one currency")]
    MixedCurrencies(String, String),
}

/// The row that prices `kind` for `country` and `category` on `date`.
pub fn lookup<'a>(
    table: &'a [Price],
    kind: Kind,
    country: &str,
    category: &str,
    date: NaiveDate,
) -> Result<&'a Price, EstimateError> {
    [
        (country, category),
        (country, ANY),
        (ANY, category),
        (ANY, ANY),
    ]
    .into_iter()
    .find_map(|(c, g)| {
        table
            .iter()
            .filter(|p| {
                p.kind == kind && p.country == c && p.category == g && p.effective_from <= date
            })
            .max_by_key(|p| p.effective_from)
    })
    .ok_or_else(|| EstimateError::NoPrice {
        kind: kind.as_str(),
        country: country.to_owned(),
        category: category.to_owned(),
        date,
    })
}

/// What an estimate used: the fees and the row behind each, so a person can check them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote<'a> {
    pub breakdown: Breakdown,
    pub twilio_row: &'a Price,
    /// `None` when Meta charges nothing for this message (nothing to look up).
    pub meta_row: Option<&'a Price>,
}

/// What `m` costs by `table`.
pub fn estimate(table: &[Price], m: &Message) -> Result<Breakdown, EstimateError> {
    quote(table, m).map(|q| q.breakdown)
}

/// What `m` costs by `table`, with the rows used.
pub fn quote<'a>(table: &'a [Price], m: &Message) -> Result<Quote<'a>, EstimateError> {
    let date = m.at.date_naive();
    let twilio_kind = if m.failed {
        Kind::TwilioFailed
    } else {
        Kind::TwilioMessage
    };
    let twilio = lookup(table, twilio_kind, &m.country, ANY, date)?;
    let meta = match m.template {
        // Meta charges only what the business sends and is delivered.
        _ if m.failed || m.direction == Direction::Inbound => None,
        None | Some(Category::Service) => None,
        Some(c) if date >= PER_MESSAGE_FROM => {
            if c == Category::Utility && m.in_window {
                None
            } else {
                Some(lookup(
                    table,
                    Kind::MetaTemplate,
                    &m.country,
                    c.as_str(),
                    date,
                )?)
            }
        }
        Some(_) if m.conversation_open => None,
        Some(c) => Some(lookup(
            table,
            Kind::MetaConversation,
            &m.country,
            c.as_str(),
            date,
        )?),
    };
    let meta_fee = match meta {
        Some(p) if p.currency != twilio.currency => {
            return Err(EstimateError::MixedCurrencies(
                twilio.currency.clone(),
                p.currency.clone(),
            ));
        }
        Some(p) => p.amount,
        None => Decimal::ZERO,
    };
    Ok(Quote {
        breakdown: Breakdown {
            twilio_fee: twilio.amount,
            meta_fee,
            total: twilio.amount + meta_fee,
            currency: twilio.currency.clone(),
        },
        twilio_row: twilio,
        meta_row: meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    const TABLE: &str = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.005,USD
2025-01-01,twilio_failed,*,*,0.001,USD
2026-01-01,twilio_message,*,*,0.006,USD
2025-01-01,meta_conversation,IN,marketing,0.0099,USD
2025-01-01,meta_conversation,*,*,0.05,USD
2025-07-01,meta_template,IN,marketing,0.0118,USD
2025-07-01,meta_template,IN,*,0.0014,USD
2025-07-01,meta_template,*,marketing,0.0625,USD
2025-07-01,meta_template,*,*,0.008,USD
";

    fn table() -> Vec<Price> {
        parse(TABLE.as_bytes()).unwrap()
    }

    fn at(day: &str) -> DateTime<Utc> {
        format!("{day}T12:00:00Z").parse().unwrap()
    }

    fn outbound(template: Option<Category>, country: &str, day: &str) -> Message {
        Message {
            direction: Direction::Outbound,
            failed: false,
            template,
            country: country.into(),
            in_window: false,
            conversation_open: false,
            at: at(day),
        }
    }

    fn fees(m: &Message) -> (Decimal, Decimal, Decimal) {
        let b = estimate(&table(), m).unwrap();
        assert_eq!(b.currency, "USD");
        (b.twilio_fee, b.meta_fee, b.total)
    }

    #[test]
    fn every_message_pays_twilios_fee_in_either_direction() {
        let mut m = outbound(None, "IN", "2025-08-01");
        m.in_window = true;
        assert_eq!(fees(&m), (dec("0.005"), dec("0"), dec("0.005")));
        m.direction = Direction::Inbound;
        assert_eq!(fees(&m), (dec("0.005"), dec("0"), dec("0.005")));
    }

    #[test]
    fn a_failed_message_pays_the_failed_fee_instead_and_nothing_to_meta() {
        let mut m = outbound(Some(Category::Marketing), "IN", "2025-08-01");
        m.failed = true;
        assert_eq!(fees(&m), (dec("0.001"), dec("0"), dec("0.001")));
    }

    #[test]
    fn a_later_row_replaces_an_earlier_one_from_its_date() {
        let m = outbound(None, "IN", "2025-12-31");
        assert_eq!(fees(&m).0, dec("0.005"));
        let m = outbound(None, "IN", "2026-01-01");
        assert_eq!(fees(&m).0, dec("0.006"));
    }

    #[test]
    fn templates_pay_metas_fee_by_country_and_category_from_july_2025() {
        for (category, country, want) in [
            (Category::Marketing, "IN", dec("0.0118")),
            (Category::Authentication, "IN", dec("0.0014")),
            (Category::Utility, "IN", dec("0.0014")),
            (Category::Marketing, "BR", dec("0.0625")),
            (Category::Authentication, "*", dec("0.008")),
        ] {
            let m = outbound(Some(category), country, "2025-07-01");
            assert_eq!(
                fees(&m),
                (dec("0.005"), want, dec("0.005") + want),
                "{category:?} to {country}"
            );
        }
    }

    #[test]
    fn service_messages_and_utility_templates_in_the_window_are_free_at_meta() {
        let mut m = outbound(Some(Category::Utility), "IN", "2025-08-01");
        m.in_window = true;
        assert_eq!(fees(&m).1, dec("0"));
        m.template = Some(Category::Service);
        assert_eq!(fees(&m).1, dec("0"));
        m.template = Some(Category::Marketing);
        assert_eq!(
            fees(&m).1,
            dec("0.0118"),
            "marketing is charged in the window too"
        );
    }

    #[test]
    fn inbound_templates_are_not_charged_by_meta() {
        let mut m = outbound(Some(Category::Marketing), "IN", "2025-08-01");
        m.direction = Direction::Inbound;
        assert_eq!(fees(&m).1, dec("0"));
    }

    #[test]
    fn before_july_2025_the_first_template_of_a_category_opens_a_charged_conversation() {
        let m = outbound(Some(Category::Marketing), "IN", "2025-06-30");
        assert_eq!(fees(&m), (dec("0.005"), dec("0.0099"), dec("0.0149")));
        let m = outbound(Some(Category::Utility), "IN", "2025-06-30");
        assert_eq!(fees(&m).1, dec("0.05"), "no IN utility row: the * row");
        let mut m = outbound(Some(Category::Marketing), "IN", "2025-06-30");
        m.conversation_open = true;
        assert_eq!(
            fees(&m).1,
            dec("0"),
            "once per category per 24 h: an open conversation is not charged again"
        );
    }

    #[test]
    fn a_quote_names_the_rows_it_used_and_none_for_a_free_meta_fee() {
        let t = table();
        let q = quote(&t, &outbound(Some(Category::Utility), "IN", "2025-08-01")).unwrap();
        assert_eq!(
            (q.twilio_row.kind, q.twilio_row.amount),
            (Kind::TwilioMessage, dec("0.005"))
        );
        let meta = q.meta_row.unwrap();
        assert_eq!(
            (meta.country.as_str(), meta.category.as_str(), meta.amount),
            ("IN", "*", dec("0.0014")),
            "no IN utility row: the IN * row"
        );
        assert_eq!(q.breakdown.total, dec("0.0064"));
        let q = quote(&t, &outbound(None, "IN", "2026-02-01")).unwrap();
        assert_eq!(q.twilio_row.effective_from.to_string(), "2026-01-01");
        assert_eq!(q.meta_row, None);
    }

    #[test]
    fn a_date_without_any_price_is_an_error_not_zero() {
        let m = outbound(None, "IN", "2024-12-31");
        assert!(matches!(
            estimate(&table(), &m),
            Err(EstimateError::NoPrice { .. })
        ));
    }

    #[test]
    fn the_most_specific_row_wins_then_the_latest() {
        let t = table();
        let d = NaiveDate::from_ymd_opt(2025, 8, 1).unwrap();
        let p = |c, g| lookup(&t, Kind::MetaTemplate, c, g, d).unwrap().amount;
        assert_eq!(p("IN", "marketing"), dec("0.0118"));
        assert_eq!(p("IN", "utility"), dec("0.0014"));
        assert_eq!(p("DE", "marketing"), dec("0.0625"));
        assert_eq!(p("DE", "utility"), dec("0.008"));
    }

    #[test]
    fn an_upload_reports_every_bad_line_with_its_number() {
        let csv = "effective_from,kind,country,category,amount,currency\n\
                   2025-01-01,twilio_message,*,*,0.005,USD\n\
                   \n\
                   2025-13-01,twilio_message,*,*,0.005,USD\n\
                   2025-01-01,sms,*,*,0.005,USD\n\
                   2025-01-01,meta_template,India,marketing,0.01,USD\n\
                   2025-01-01,meta_template,IN,promo,0.01,USD\n\
                   2025-01-01,twilio_failed,*,marketing,0.001,USD\n\
                   2025-01-01,meta_template,IN,marketing,-1,USD\n\
                   2025-01-01,meta_template,IN,marketing,abc,USD\n\
                   2025-01-01,twilio_message,*,*,0.005,USD\n\
                   2025-01-01,twilio_failed,*,*,0.001,EUR\n\
                   2025-01-01,twilio_failed,*,*\n";
        let errors = parse(csv.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], "{errors:#?}");
        assert!(
            errors[8].message.contains("line 2"),
            "{}",
            errors[8].message
        );
    }

    #[test]
    fn an_upload_needs_the_header_and_at_least_one_price() {
        let e = parse(b"kind,amount\ntwilio_message,0.005\n").unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(parse(HEADER.as_bytes()).is_err());
        let ok = parse(b"\xEF\xBB\xBFEffective_From,Kind,Country,Category,Amount,Currency\r\n2025-01-01,twilio_message,*,*,\"0.005\",usd\r\n").unwrap();
        assert_eq!(ok[0].currency, "USD");
        assert_eq!(ok[0].amount, dec("0.005"));
    }

    #[test]
    fn the_default_table_is_valid_and_charges_twilios_stated_fees() {
        let t = default_table();
        let mut m = outbound(None, "IN", "2026-11-24");
        m.in_window = true;
        let b = estimate(&t, &m).unwrap();
        assert_eq!((b.total, b.currency.as_str()), (dec("0.005"), "USD"));
        m.failed = true;
        assert_eq!(estimate(&t, &m).unwrap().total, dec("0.001"));
        for c in [
            Category::Marketing,
            Category::Utility,
            Category::Authentication,
        ] {
            let m = outbound(Some(c), "FJ", "2026-11-24");
            assert!(estimate(&t, &m).is_ok(), "{c:?} everywhere else");
            let m = outbound(Some(c), "FJ", "2025-03-01");
            assert!(estimate(&t, &m).is_ok(), "{c:?} per conversation");
        }
    }
}
