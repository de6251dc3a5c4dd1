//! Broadcasts: one message to many recipients, previewed, queued durably per recipient, sent
//! at the sender's rate across every instance, exactly once.
//!
//! - [`audience`]: who it goes to and who is left out, and why;
//! - [`mapping`]: which CSV column (or value for everyone) fills each template placeholder,
//!   and the first recipients' messages as they will read;
//! - [`holds`]: a broadcast held for a reason that may clear — its template deleted or no
//!   longer approved ([`template_hold`]), its sender offline at Twilio — resumes by itself
//!   when a sync finds it cleared;
//! - [`preview`] / [`create`]: what will happen, then the queue;
//! - [`lifecycle`]: pause, resume, cancel, retry and release;
//! - [`view`] / [`results`]: where its recipients are, and the results as CSV;
//! - [`delivery`]: sending one queued recipient, and looking up at Twilio a recipient whose
//!   sender died between calling Twilio and recording the answer;
//! - the runner in `src/jobs/broadcasts.rs` claims due recipients and paces them through the
//!   shared send slots.

pub mod audience;
pub mod delivery;
pub mod holds;
pub mod lifecycle;
pub mod mapping;
pub mod results;
pub mod taps;
pub mod template_hold;
pub mod view;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::window::Window;
use crate::domain::{Direction, WhatsAppAddress};
use crate::pricing::{self, Category, EstimateError};
use crate::sending::policy::{self, Refusal};
use crate::storage::broadcasts::{self as store, BroadcastRow, NewBroadcast, NewRecipient};
use crate::twilio::client::{CreateMessage, Sender};
use audience::{Excluded, Listed, listed};

/// Broadcasts are paced this share of the sender's limit by default (see
/// `config::DEFAULT_BROADCAST_PACE`).
pub const PACE: f64 = crate::config::DEFAULT_BROADCAST_PACE;

/// Who a broadcast is for.
#[derive(Debug, Clone)]
pub enum Audience {
    Listed(Vec<Listed>),
    Tag(String),
    AllOptedIn,
}

impl Audience {
    fn describe(&self) -> serde_json::Value {
        match self {
            Audience::Listed(l) => serde_json::json!({ "numbers": l.len() }),
            Audience::Tag(t) => serde_json::json!({ "tag": t }),
            Audience::AllOptedIn => serde_json::json!({ "all_opted_in": true }),
        }
    }
}

/// A broadcast as asked for.
#[derive(Debug, Clone)]
pub struct BroadcastRequest {
    pub name: Option<String>,
    pub body: Option<String>,
    pub media: Vec<String>,
    pub content_sid: Option<String>,
    /// A JSON object shared by every recipient; CSV columns override it per recipient.
    pub content_variables: Option<serde_json::Value>,
    /// `whatsapp:+…` or `MG…`; the default sender when None.
    pub sender: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    pub audience: Audience,
    pub created_by: String,
    pub reminder_id: Option<i64>,
    /// An idempotency key: a second request with the same key finds the first broadcast.
    pub request_key: Option<String>,
    /// The template's category, for the cost estimate; a template is priced as marketing
    /// (the dearest) unless told.
    pub template_category: Option<Category>,
    /// Which CSV column (or value for everyone) fills each placeholder; None: the CSV's
    /// columns are named after the placeholders (`1`, `2`, …).
    pub mapping: Option<mapping::Mapping>,
}

/// What a broadcast will do, before anything is queued.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub sender: String,
    pub mps: f64,
    #[serde(skip)]
    pub recipients: Vec<NewRecipient>,
    #[serde(rename = "recipients")]
    pub recipient_count: usize,
    pub excluded: Vec<Excluded>,
    /// Exact decimal, written as text (`"0.500"`) like Twilio's prices.
    #[serde(serialize_with = "decimal_text")]
    pub estimated_cost: Decimal,
    /// The price table's currency.
    pub cost_currency: String,
    /// At the sender's rate.
    pub estimated_seconds: f64,
    pub start_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(Refusal),
    #[error("nobody is left to send to: every recipient was excluded")]
    NoRecipients(Vec<Excluded>),
    /// The idempotency key was used already, by this broadcast.
    #[error("a broadcast with this idempotency key exists already: #{0}")]
    Duplicate(i64),
    /// The price table cannot price a recipient.
    #[error(transparent)]
    Pricing(#[from] EstimateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn decimal_text<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

pub fn sender_of(address: &str) -> Result<Sender, String> {
    if address.starts_with("MG") {
        Ok(Sender::MessagingService(address.to_owned()))
    } else {
        WhatsAppAddress::parse(address).map(Sender::From)
    }
}

fn sender_address(s: &Sender) -> String {
    match s {
        Sender::From(a) => a.as_str().to_owned(),
        Sender::MessagingService(mg) => mg.clone(),
    }
}

/// The message for one recipient: the broadcast's content with the recipient's variables
/// merged over the shared ones.
pub fn message_for(
    b: &BroadcastRow,
    number: &str,
    variables: Option<&serde_json::Value>,
) -> Result<CreateMessage, String> {
    let to = crate::domain::PhoneNumber::parse(number)?.whatsapp();
    let mut vars = b.content_variables.clone();
    if let Some(serde_json::Value::Object(own)) = variables {
        let mut merged = match vars.take() {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        merged.extend(own.clone());
        vars = Some(serde_json::Value::Object(merged));
    }
    Ok(CreateMessage {
        to,
        sender: sender_of(&b.sender)?,
        body: b.body.clone(),
        media_urls: b.media.clone(),
        content_sid: b.content_sid.clone(),
        content_variables: vars.map(|v| v.to_string()),
    })
}

/// How far in the past a start time may be and still mean "now": the time it takes to fill in
/// and confirm a form, or two clocks that disagree a little.
pub const START_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// A start time further back than [`START_GRACE`] is refused, with when it was: starting at
/// once when someone asked for 09:00 and it is 11:00 would surprise them.
pub fn check_start(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if at >= now - START_GRACE {
        return Ok(());
    }
    let ago = (now - at).num_minutes();
    let ago = match ago {
        0..=119 => format!("{ago} min ago"),
        120..=2879 => format!("{} h ago", ago / 60),
        _ => format!("{} days ago", ago / 1440),
    };
    Err(format!(
        "the start time {} UTC has passed ({ago}): leave it empty to start at once, or choose a later time",
        at.format("%Y-%m-%d %H:%M")
    ))
}

/// Validates the request and works out recipients, exclusions, cost and duration.
/// When the catalogue knows template `sid`, every recipient's variables (its own over the
/// shared ones) must fill its placeholders exactly; refused with the first rows that do not.
async fn check_catalogued_variables(
    pool: &PgPool,
    sid: &str,
    req: &BroadcastRequest,
) -> Result<(), BroadcastError> {
    let Some(t) = crate::storage::templates::get(pool, sid).await? else {
        return Ok(());
    };
    if t.deleted_at.is_some() {
        return Ok(());
    }
    let facts = policy::TemplateFacts {
        name: t.name.clone(),
        status: t.status.clone(),
        deleted: false,
        types: Vec::new(),
        placeholders: policy::placeholders_of(&t.types.0),
    };
    let shared = req
        .content_variables
        .as_ref()
        .and_then(|v| v.as_object())
        .map(policy::filled)
        .unwrap_or_default();
    let rows: Vec<(String, std::collections::BTreeSet<String>)> = match &req.audience {
        Audience::Listed(l) if l.iter().any(|x| x.variables.is_some()) => l
            .iter()
            .map(|x| {
                let mut given = shared.clone();
                given.extend(x.variables.as_ref().map(policy::filled).unwrap_or_default());
                (format!("line {} ({})", x.line, x.raw), given)
            })
            .collect(),
        _ => vec![(String::new(), shared)],
    };
    let mut bad = Vec::new();
    for (row, given) in &rows {
        if let Err(r) = policy::check_variables(sid, &facts, given) {
            bad.push(match row.is_empty() {
                true => r.to_string(),
                false => format!("{row}: {r}"),
            });
        }
    }
    match bad.len() {
        0 => Ok(()),
        n => Err(BroadcastError::Invalid(format!(
            "{n} {} the template's placeholders: {}",
            if n == 1 {
                "recipient does not fill"
            } else {
                "recipients do not fill"
            },
            bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ))),
    }
}

/// The request with its mapping applied: each listed recipient's variables become the mapped
/// columns (see [`mapping`]); refused, naming the placeholder, when the mapping does not fit
/// the template (when catalogued) or the CSV. None when there is no mapping.
async fn mapped(
    pool: &PgPool,
    req: &BroadcastRequest,
) -> Result<Option<BroadcastRequest>, BroadcastError> {
    let Some(m) = &req.mapping else {
        return Ok(None);
    };
    let Audience::Listed(listed) = &req.audience else {
        return Err(BroadcastError::Invalid(
            "a variable mapping maps the columns of a CSV: give the audience as a CSV".into(),
        ));
    };
    let Some(sid) = req.content_sid.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Err(BroadcastError::Invalid(
            "a variable mapping fills a template's placeholders, but no template (content SID) is chosen".into(),
        ));
    };
    // The catalogue's placeholders when it knows the template; else the ones mapped.
    let placeholders: Vec<String> = match crate::storage::templates::get(pool, sid).await? {
        Some(t) if t.deleted_at.is_none() => {
            policy::placeholders_of(&t.types.0).into_iter().collect()
        }
        _ => m.keys().cloned().collect(),
    };
    let problems = mapping::problems(m, &placeholders, &mapping::columns_of(listed));
    if !problems.is_empty() {
        return Err(BroadcastError::Invalid(format!(
            "the variable mapping does not fit: {}",
            problems.join("; ")
        )));
    }
    let mut out = req.clone();
    out.audience = Audience::Listed(mapping::apply(m, listed.clone()));
    out.mapping = None;
    Ok(Some(out))
}

/// The catalogued template `sid` as the mapping step shows it; None when the catalogue does
/// not know it (or Twilio deleted it): its variables are then given as before.
pub async fn mapping_template(
    pool: &PgPool,
    sid: &str,
) -> Result<Option<mapping::TemplateInfo>, sqlx::Error> {
    let Some(t) = crate::storage::templates::get(pool, sid.trim()).await? else {
        return Ok(None);
    };
    if t.deleted_at.is_some() {
        return Ok(None);
    }
    Ok(Some(mapping::TemplateInfo {
        placeholders: mapping::in_order(policy::placeholders_of(&t.types.0)),
        text: mapping::text_of(&t.types.0),
        samples: t.variables.0.clone(),
        buttons: crate::domain::interactive::offered_buttons(&t.types.0)
            .into_iter()
            .map(|b| b.title)
            .collect(),
        sid: t.sid,
        name: t.name,
        status: t.status,
        category: t.category,
    }))
}

pub async fn preview(
    pool: &PgPool,
    configured_default: &Sender,
    req: &BroadcastRequest,
    now: DateTime<Utc>,
) -> Result<Preview, BroadcastError> {
    Ok(preview_with(pool, configured_default, req, now, false)
        .await?
        .0)
}

/// Like [`preview`] for a reminder's occurrence, which is queued even when its sender cannot
/// send just now (offline at Twilio, no longer listed, or de-authorized here): the refusal
/// comes back beside the preview, so the occurrence can wait held rather than be lost.
pub async fn preview_for_reminder(
    pool: &PgPool,
    configured_default: &Sender,
    req: &BroadcastRequest,
    now: DateTime<Utc>,
) -> Result<(Preview, Option<Refusal>), BroadcastError> {
    preview_with(pool, configured_default, req, now, true).await
}

async fn preview_with(
    pool: &PgPool,
    configured_default: &Sender,
    req: &BroadcastRequest,
    now: DateTime<Utc>,
    sender_may_wait: bool,
) -> Result<(Preview, Option<Refusal>), BroadcastError> {
    let mapped = mapped(pool, req).await?;
    let req = mapped.as_ref().unwrap_or(req);
    if let Some(at) = req.start_at {
        check_start(at, now).map_err(BroadcastError::Invalid)?;
    }
    let body = req.body.clone().filter(|b| !b.trim().is_empty());
    let content_sid = req.content_sid.clone().filter(|c| !c.trim().is_empty());
    if let Some(v) = &req.content_variables
        && !v.is_object()
    {
        return Err(BroadcastError::Invalid(
            "content_variables must be a JSON object, e.g. {\"1\": \"Ada\"}".into(),
        ));
    }
    let sender = match req
        .sender
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => sender_of(s).map_err(|e| BroadcastError::Invalid(format!("sender: {e}")))?,
        None => crate::sending::current_default(pool, configured_default)
            .await
            .map_err(|e| BroadcastError::Invalid(e.to_string()))?,
    };
    let address = sender_address(&sender);
    let row = crate::storage::senders::by_address(pool, &address).await?;
    let waits_for_sender = match policy::check_sender(&address, row.as_ref()) {
        Ok(()) => None,
        Err(r @ (Refusal::SenderOffline { .. } | Refusal::SenderDisabled { .. }))
            if sender_may_wait =>
        {
            Some(r)
        }
        Err(r) => return Err(BroadcastError::Refused(r)),
    };
    let mps = crate::sending::pacing::mps_of(&address, row.as_ref());
    // Rows of a CSV with their own variables are checked each, with the shared ones under
    // them; the shared ones alone may leave gaps the rows fill.
    let per_recipient = match &req.audience {
        Audience::Listed(l) => {
            audience::check_variables(
                req.content_variables.as_ref().and_then(|v| v.as_object()),
                l,
                content_sid.is_some(),
            )
            .map_err(BroadcastError::Invalid)?;
            l.iter().any(|x| x.variables.is_some())
        }
        _ => false,
    };
    // A catalogued template's placeholders are filled exactly, for every recipient.
    if let Some(sid) = content_sid.as_deref() {
        check_catalogued_variables(pool, sid, req).await?;
    }
    // The content is checked as Twilio would, once, on a stand-in recipient.
    let sample = CreateMessage {
        to: WhatsAppAddress::parse("+10000000000").expect("a valid stand-in"),
        sender: sender.clone(),
        body: body.clone(),
        media_urls: req.media.clone(),
        content_sid: content_sid.clone(),
        content_variables: req
            .content_variables
            .as_ref()
            .filter(|_| !per_recipient)
            .map(|v| v.to_string()),
    };
    crate::twilio::client::create_form(&sample, None)
        .map_err(|e| BroadcastError::Invalid(e.to_string()))?;

    let (numbers, mut excluded) = match &req.audience {
        Audience::Listed(l) => audience::normalize(l.clone()),
        Audience::Tag(t) => {
            let tag = t.trim().to_lowercase();
            if tag.is_empty() {
                return Err(BroadcastError::Invalid("the tag is empty".into()));
            }
            let numbers = crate::storage::contacts::audience(pool, Some(&tag)).await?;
            audience::normalize(listed(numbers))
        }
        Audience::AllOptedIn => audience::normalize(listed(
            crate::storage::contacts::audience(pool, None).await?,
        )),
    };
    let keys: Vec<String> = numbers.iter().map(|(n, _)| n.as_str().to_owned()).collect();
    let known = crate::storage::contacts::recipients_bulk(pool, &keys).await?;
    let (recipients, refused) = audience::apply_policy(numbers, &known, content_sid.is_none(), now);
    excluded.extend(refused);
    let n = recipients.len();
    let start_at = req.start_at.unwrap_or(now).max(now);
    // Priced in the category WhatsApp set for the template, else the one declared, else
    // marketing (the dearest usual one).
    let catalogued = match content_sid.as_deref() {
        Some(sid) => crate::storage::templates::get(pool, sid)
            .await?
            .and_then(|t| t.category)
            .and_then(|c| Category::parse(&c).ok()),
        None => None,
    };
    let template = content_sid.is_some().then(|| {
        catalogued
            .or(req.template_category)
            .unwrap_or(Category::Marketing)
    });
    let table = crate::storage::prices::all(pool).await?;
    let (estimated_cost, cost_currency) =
        estimate_cost(&table, &recipients, &known, template, start_at)?;
    let preview = Preview {
        sender: address,
        mps,
        recipient_count: n,
        recipients,
        excluded,
        estimated_cost,
        cost_currency,
        estimated_seconds: n as f64 / (mps * PACE),
        start_at,
    };
    Ok((preview, waits_for_sender))
}

/// What sending to every recipient at `at` costs by the price table, in its currency.
///
/// Each recipient is priced by the country of their number and whether their window is open
/// at `at` as wadash knows it (utility templates are free inside it); free-form messages go
/// only to open windows, so they cost Twilio's fee alone. Before 2025-07-01 every recipient
/// is assumed to open a new conversation: an upper bound. The table holds one currency (the
/// upload refuses mixed ones); should rows disagree anyway, the preview fails rather than
/// add up different money.
pub fn estimate_cost(
    table: &[pricing::Price],
    recipients: &[NewRecipient],
    known: &std::collections::BTreeMap<String, crate::storage::contacts::Recipient>,
    template: Option<Category>,
    at: DateTime<Utc>,
) -> Result<(Decimal, String), EstimateError> {
    // Prices depend only on the country and the window: a handful of estimates for any
    // audience size.
    let mut seen: std::collections::HashMap<(&'static str, bool), pricing::Breakdown> =
        std::collections::HashMap::new();
    let mut total = Decimal::ZERO;
    let mut currency: Option<String> = None;
    for r in recipients {
        let country = crate::domain::PhoneNumber::parse(&r.number)
            .map(|n| pricing::country::of(&n))
            .unwrap_or(pricing::country::ELSEWHERE);
        let last_inbound = known
            .get(&r.number)
            .and_then(|k| k.contact.as_ref())
            .and_then(|c| c.last_inbound_at);
        let in_window = matches!(Window::at(last_inbound, at), Window::Open { .. });
        let b = match seen.get(&(country, in_window)) {
            Some(b) => b,
            None => {
                let m = pricing::Message {
                    direction: Direction::Outbound,
                    failed: false,
                    template,
                    country: country.to_owned(),
                    in_window,
                    conversation_open: false,
                    at,
                };
                let b = pricing::estimate(table, &m)?;
                seen.entry((country, in_window)).or_insert(b)
            }
        };
        match &currency {
            Some(c) if *c != b.currency => {
                return Err(EstimateError::MixedCurrencies(
                    c.clone(),
                    b.currency.clone(),
                ));
            }
            Some(_) => {}
            None => currency = Some(b.currency.clone()),
        }
        total += b.total;
    }
    let currency = match currency {
        Some(c) => c,
        // Nobody to send to: the table's currency, USD for an empty table.
        None => table
            .first()
            .map_or_else(|| "USD".to_owned(), |p| p.currency.clone()),
    };
    Ok((total, currency))
}

/// Previews and queues the broadcast in one transaction.
pub async fn create(
    pool: &PgPool,
    configured_default: &Sender,
    reserve: Option<Decimal>,
    req: &BroadcastRequest,
    now: DateTime<Utc>,
) -> Result<(BroadcastRow, Preview), BroadcastError> {
    if let Some(key) = &req.request_key
        && let Some(existing) = store::by_request_key(pool, key).await?
    {
        return Err(BroadcastError::Duplicate(existing.id));
    }
    let p = preview(pool, configured_default, req, now).await?;
    if p.recipients.is_empty() {
        return Err(BroadcastError::NoRecipients(p.excluded));
    }
    let held = match reserve {
        Some(reserve) => held_by_reserve(pool, reserve, &p).await?,
        None => None,
    };
    let mut tx = pool.begin().await?;
    let row = match queue(&mut tx, req, &p, held, now).await {
        Ok(row) => row,
        // The same key submitted twice at the same moment: the other one won.
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("broadcasts_request_key_key") => {
            drop(tx);
            let key = req.request_key.as_deref().unwrap_or_default();
            let existing = store::by_request_key(pool, key).await?;
            return Err(match existing {
                Some(b) => BroadcastError::Duplicate(b.id),
                None => BroadcastError::Invalid("the idempotency key was taken meanwhile".into()),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    tracing::info!(broadcast = row.id, recipients = p.recipients.len(), excluded = p.excluded.len(), by = %req.created_by, "broadcast queued");
    Ok((row, p))
}

/// Why the broadcast must wait for an admin: its estimated cost would take the last known
/// balance below `reserve`. Without a reading nothing is held (wadash cannot know).
pub async fn held_by_reserve(
    pool: &PgPool,
    reserve: Decimal,
    p: &Preview,
) -> Result<Option<String>, sqlx::Error> {
    let Some(latest) = crate::storage::balance::latest(pool).await? else {
        return Ok(None);
    };
    let after = latest.balance - p.estimated_cost;
    Ok((after < reserve).then(|| {
        format!(
            "held: its estimated cost of {} {} would take the balance of {} below the reserve of {}; an admin must release it",
            p.estimated_cost,
            p.cost_currency,
            crate::domain::price::money(latest.balance),
            crate::domain::price::money(reserve)
        )
    }))
}

/// Queues a previewed broadcast within the caller's transaction (`held`: waiting for an
/// admin, with the reason).
pub async fn queue(
    conn: &mut sqlx::PgConnection,
    req: &BroadcastRequest,
    p: &Preview,
    held: Option<String>,
    now: DateTime<Utc>,
) -> Result<BroadcastRow, sqlx::Error> {
    let name = req
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Broadcast of {}", now.format("%Y-%m-%d %H:%M UTC")));
    let new = NewBroadcast {
        name: name.chars().take(200).collect(),
        body: req.body.clone().filter(|b| !b.trim().is_empty()),
        media: req.media.clone(),
        content_sid: req.content_sid.clone().filter(|c| !c.trim().is_empty()),
        content_variables: req.content_variables.clone(),
        template_category: req
            .template_category
            .filter(|c| *c != Category::Service && req.content_sid.is_some()),
        sender: p.sender.clone(),
        mps: p.mps,
        start_at: p.start_at,
        audience: req.audience.describe(),
        excluded: serde_json::to_value(&p.excluded).unwrap_or_default(),
        estimated_cost: Some(p.estimated_cost),
        reminder_id: req.reminder_id,
        created_by: Some(req.created_by.clone()),
        request_key: req.request_key.clone(),
        held_reason: held,
    };
    let row = store::insert(conn, &new, &p.recipients, now).await?;
    if let Some(m) = &req.mapping {
        store::set_mapping(
            &mut *conn,
            row.id,
            &serde_json::to_value(m).unwrap_or_default(),
        )
        .await?;
    }
    Ok(row)
}

/// Twilio error codes worth sending again later: queue overflow, rate limits, a temporarily
/// unreachable handset, unknown errors.
pub const RETRYABLE_CODES: &[i32] = &[30001, 30003, 30008, 63018, 63038, 63032];

/// Twilio refusing the account itself (authentication, a suspended account, no balance): no
/// message can go, so the broadcast pauses instead of failing every recipient.
pub const ACCOUNT_CODES: &[i64] = &[20003, 20005, 20008, 30002];

pub fn is_retryable(code: Option<i64>) -> bool {
    code.is_some_and(|c| RETRYABLE_CODES.iter().any(|r| i64::from(*r) == c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_that_has_passed_is_refused_with_when_it_was() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T11:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let min = chrono::TimeDelta::minutes;
        assert_eq!(check_start(now + min(30), now), Ok(()));
        assert_eq!(check_start(now, now), Ok(()));
        assert_eq!(check_start(now - min(2), now), Ok(()), "within the grace");
        let e = check_start(now - min(120), now).unwrap_err();
        assert!(
            e.starts_with("the start time 2026-12-06 09:00 UTC has passed (2 h ago)"),
            "{e}"
        );
        assert!(
            check_start(now - min(3), now)
                .unwrap_err()
                .contains("(3 min ago)")
        );
        assert!(
            check_start(now - min(3 * 1440), now)
                .unwrap_err()
                .contains("(3 days ago)")
        );
    }

    #[test]
    fn per_recipient_variables_override_the_shared_ones() {
        let now = Utc::now();
        let b = BroadcastRow {
            id: 1,
            name: "x".into(),
            status: crate::domain::BroadcastStatus::Running,
            body: None,
            media: vec![],
            content_sid: Some("HX0123".into()),
            content_variables: Some(serde_json::json!({"1": "friend", "2": "Monday"})),
            template_category: None,
            sender: "whatsapp:+14155238886".into(),
            mps: 80.0,
            start_at: now,
            audience: serde_json::json!({}),
            excluded: serde_json::json!([]),
            estimated_cost: None,
            reminder_id: None,
            created_by: None,
            paused_reason: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        let own = serde_json::json!({"1": "Asha"});
        let m = message_for(&b, "+919900000001", Some(&own)).unwrap();
        let vars: serde_json::Value =
            serde_json::from_str(m.content_variables.as_deref().unwrap()).unwrap();
        assert_eq!(vars, serde_json::json!({"1": "Asha", "2": "Monday"}));
        assert_eq!(m.to.as_str(), "whatsapp:+919900000001");
        let m = message_for(&b, "+919900000002", None).unwrap();
        let vars: serde_json::Value =
            serde_json::from_str(m.content_variables.as_deref().unwrap()).unwrap();
        assert_eq!(vars, serde_json::json!({"1": "friend", "2": "Monday"}));
    }

    #[test]
    fn retryable_codes_are_the_temporary_ones() {
        assert!(is_retryable(Some(30001)));
        assert!(is_retryable(Some(63018)));
        assert!(
            !is_retryable(Some(21211)),
            "an invalid number stays invalid"
        );
        assert!(
            !is_retryable(Some(63016)),
            "outside the window: a template is needed"
        );
        assert!(!is_retryable(None));
    }
}
