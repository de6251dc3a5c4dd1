//! The message log (`/messages`, filters in the URL, keyset pages), its CSV export
//! (`/messages/export.csv`, streamed page by page in constant memory), one message with its
//! whole event timeline (`/messages/{sid}`).

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::format;
use super::overview::{RecentRow, recent_row};
use super::{Chrome, CurrentUser, PageError, html};
use crate::domain::{MessageSid, MessageStatus};
use crate::routes::message_query::{ListQuery, Parsed};
use crate::state::AppState;
use crate::storage::messages::{self, Cursor, MessageFilter, MessageRow};

const PAGE: i64 = 50;
const EXPORT_CHUNK: i64 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages", web::get().to(log))
        .route("/messages/export.csv", web::get().to(export))
        .route("/messages/{sid}", web::get().to(one));
}

#[derive(Template)]
#[template(path = "messages.html", blocks = ["live"])]
struct LogPage {
    chrome: Chrome,
    /// The first page follows new messages live; later pages stay put.
    live: bool,
    q: FilterValues,
    statuses: &'static [&'static str],
    recent: Vec<RecentRow>,
    /// The query strings of the older and the newer page.
    older: Option<String>,
    newer: Option<String>,
    export: String,
    filtered: bool,
}

/// The filter form's current values, as text.
struct FilterValues {
    status: String,
    direction: String,
    number: String,
    sender: String,
    since: String,
    until: String,
    error_code: String,
    q: String,
}

impl From<&ListQuery> for FilterValues {
    fn from(q: &ListQuery) -> Self {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        Self {
            status: v(&q.status),
            direction: v(&q.direction),
            number: v(&q.number),
            sender: v(&q.sender),
            since: v(&q.since),
            until: v(&q.until),
            error_code: v(&q.error_code),
            q: v(&q.q),
        }
    }
}

const STATUSES: &[&str] = &[
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "undelivered",
    "canceled",
    "received",
];

/// `?fragment=live` asks for only the part a live update replaces.
#[derive(serde::Deserialize)]
pub struct FragmentQuery {
    fragment: Option<String>,
}

impl FragmentQuery {
    pub fn live(&self) -> bool {
        self.fragment.as_deref() == Some("live")
    }
}

async fn log(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    fragment: web::Query<FragmentQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = query.into_inner();
    let Parsed { filter, cursor, .. } = q.parse(PAGE, PAGE).map_err(PageError::BadRequest)?;
    let found = messages::page(&state.pool, &filter, cursor.as_ref(), PAGE).await?;
    let now = Utc::now();
    let mut export_q = q.clone();
    export_q.cursor = None;
    let page = LogPage {
        live: found.newer.is_none(),
        chrome: Chrome::for_user(&user, &state, "messages"),
        statuses: STATUSES,
        recent: found
            .rows
            .iter()
            .map(|m| recent_row(m, now, user.tz))
            .collect(),
        older: found.older.map(|c| q.with_cursor(Some(c.encode()))),
        newer: found.newer.map(|c| q.with_cursor(Some(c.encode()))),
        export: export_q.with_cursor(None),
        filtered: !q.with_cursor(None).is_empty(),
        q: FilterValues::from(&q),
    };
    if fragment.live() {
        return html(&page.as_live());
    }
    html(&page)
}

/// One CSV field: quoted when needed, and text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) neutralised with a leading apostrophe.
fn csv_field(out: &mut String, value: &str, free_text: bool) {
    let formula = free_text && value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = formula || value.contains([',', '"', '\n', '\r']) || value.starts_with(' ');
    if needs_quotes {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

const CSV_HEADER: &str = "sid,direction,created_at,from,to,status,error_code,error_message,body,num_media,sent_at,delivered_at,read_at,failed_at,price,price_unit\r\n";

fn csv_row(out: &mut String, m: &MessageRow) {
    let t = |d: &Option<chrono::DateTime<Utc>>| d.map(|d| format::iso(&d)).unwrap_or_default();
    let media = m.media.as_array().map_or(0, |a| a.len()).to_string();
    let fields: [(String, bool); 16] = [
        (m.sid.clone(), false),
        (m.direction.clone(), false),
        (format::iso(&m.created_at), false),
        (m.from_addr.clone().unwrap_or_default(), false),
        (m.to_addr.clone().unwrap_or_default(), false),
        (m.status.clone().unwrap_or_default(), false),
        (
            m.error_code.map(|c| c.to_string()).unwrap_or_default(),
            false,
        ),
        (m.error_message.clone().unwrap_or_default(), true),
        (m.body.clone().unwrap_or_default(), true),
        (media, false),
        (t(&m.sent_at), false),
        (t(&m.delivered_at), false),
        (t(&m.read_at), false),
        (t(&m.failed_at), false),
        (m.price.clone().unwrap_or_default(), false),
        (m.price_unit.clone().unwrap_or_default(), false),
    ];
    for (i, (value, free)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, value, *free);
    }
    out.push_str("\r\n");
}

async fn export(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Parsed { filter, .. } = query
        .into_inner()
        .parse(PAGE, PAGE)
        .map_err(PageError::BadRequest)?;
    tracing::info!(username = %user.username, "CSV export");
    let pool = state.pool.clone();
    // One page of rows in memory at a time, however large the export.
    let state0: (Option<Cursor>, bool, MessageFilter) = (None, true, filter);
    let body = futures_util::stream::unfold(state0, move |(cursor, first, filter)| {
        let pool = pool.clone();
        async move {
            if !first && cursor.is_none() {
                return None;
            }
            let mut chunk = String::new();
            if first {
                chunk.push_str(CSV_HEADER);
            }
            match messages::list(&pool, &filter, cursor.as_ref(), EXPORT_CHUNK).await {
                Ok((rows, next)) => {
                    for m in &rows {
                        csv_row(&mut chunk, m);
                    }
                    Some((
                        Ok::<_, actix_web::Error>(Bytes::from(chunk)),
                        (next, false, filter),
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "CSV export stopped");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        (None, false, filter),
                    ))
                }
            }
        }
    });
    let name = format!("wadash-messages-{}.csv", Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}

struct EventItem {
    status: String,
    error: String,
    source: String,
    when: format::Stamp,
    /// Arrived after a later stage had already been reported.
    late: bool,
    params: String,
}

#[derive(Template)]
#[template(path = "message.html", blocks = ["live"])]
struct MessagePage {
    chrome: Chrome,
    m: MessageRow,
    party: String,
    media: super::media::MediaLinks,
    milestones: Vec<(&'static str, format::Stamp)>,
    error_help: Option<(&'static str, &'static str)>,
    events: Vec<EventItem>,
    /// Warnings of the send that led here, shown once.
    warnings: Vec<String>,
    /// Its cost, when wadash sent it.
    cost: Option<crate::storage::costs::MessageCost>,
    /// What Twilio reported it cost, and what wadash estimated.
    price: Option<format::Money>,
    estimate: Option<format::Money>,
    /// A button tapped or a list item chosen, for an inbound message.
    tap: Option<super::tap::TapView>,
    /// For an outbound message with buttons: the taps that answered it, (tap's SID, tap).
    answers: Vec<(String, super::tap::TapView)>,
    /// For an inbound message given to a bot: what came of it.
    bot: Option<super::conversation::BotTurnView>,
}

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    fragment: web::Query<FragmentQuery>,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sid = MessageSid::parse(&path.into_inner())
        .map_err(|_| PageError::NotFound("no such message".into()))?;
    let m = messages::get(&state.pool, sid.as_str())
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no message {sid}")))?;
    let rows = messages::events(&state.pool, sid.as_str()).await?;
    let mut highest = -1i16;
    let events = rows
        .into_iter()
        .map(|e| {
            let rank = MessageStatus::parse(&e.status).rank().unwrap_or(-1);
            let late = rank >= 0 && rank < highest;
            highest = highest.max(rank);
            EventItem {
                error: e.error_code.map(|c| c.to_string()).unwrap_or_default(),
                source: e.source,
                when: format::Stamp::new(e.received_at, user.tz),
                late,
                params: serde_json::to_string_pretty(&e.params).unwrap_or_default(),
                status: e.status,
            }
        })
        .collect();
    let milestone = |label, t: &Option<chrono::DateTime<Utc>>| {
        t.map(|t| (label, format::Stamp::new(t, user.tz)))
    };
    let milestones = [
        milestone("Created", &Some(m.created_at)),
        milestone("Sent", &m.sent_at),
        milestone("Delivered", &m.delivered_at),
        milestone("Read", &m.read_at),
        milestone("Failed", &m.failed_at),
    ]
    .into_iter()
    .flatten()
    .collect();
    let inbound = m.direction == "inbound";
    let party = if inbound { &m.from_addr } else { &m.to_addr }
        .as_deref()
        .unwrap_or("")
        .trim_start_matches("whatsapp:")
        .to_owned();
    let media = super::media::links(&m, state.twilio.account_sid());
    let error_help = m
        .error_code
        .and_then(crate::domain::error_codes::lookup)
        .map(|i| (i.meaning, i.action));
    let cost = crate::storage::costs::of_message(&state.pool, sid.as_str()).await?;
    let tap = match inbound {
        true => {
            crate::storage::interactive::for_messages(&state.pool, std::slice::from_ref(&m.sid))
                .await?
                .remove(&m.sid)
                .map(super::tap::TapView::from)
        }
        false => None,
    };
    let answers = match inbound {
        true => Vec::new(),
        false => crate::storage::interactive::answers_to(&state.pool, std::slice::from_ref(&m.sid))
            .await?
            .remove(&m.sid)
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.message_sid.clone(), super::tap::TapView::from(t)))
            .collect(),
    };
    let bot = match inbound {
        true => crate::storage::bots::turn(&state.pool, &m.sid)
            .await?
            .map(super::conversation::BotTurnView::of),
        false => None,
    };
    let price = m
        .price
        .as_deref()
        .and_then(|p| format::Money::parse(p, m.price_unit.as_deref().unwrap_or("")))
        .map(format::Money::unit);
    let estimate = cost.as_ref().and_then(|c| {
        format::Money::parse(c.estimated.as_deref()?, c.currency.as_deref().unwrap_or(""))
            .map(format::Money::unit)
    });
    let page = MessagePage {
        tap,
        bot,
        answers,
        price,
        estimate,
        cost,
        chrome: Chrome::for_user(&user, &state, "messages"),
        party,
        media,
        milestones,
        error_help,
        events,
        m,
        warnings: super::warnings_of(&req),
    };
    if fragment.live() {
        return html(&page.as_live());
    }
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        let mut s = String::new();
        csv_field(&mut s, "plain", true);
        s.push('|');
        csv_field(&mut s, "a,b \"c\"", true);
        s.push('|');
        csv_field(&mut s, "=HYPERLINK(\"x\")", true);
        s.push('|');
        csv_field(&mut s, "-5", false);
        assert_eq!(s, "plain|\"a,b \"\"c\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|-5");
    }
}
