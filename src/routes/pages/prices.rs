//! `/admin/prices` (admin role): the price table as people read it — by kind, then country
//! and category, each row marked in force, superseded or future today — with who uploaded it
//! and when; a CSV upload that replaces the whole table or changes nothing (every bad line
//! listed); the table as CSV in the upload format (`/admin/prices.csv`); and the estimate of
//! one message with the rows it used, by the same code as `POST /api/v1/prices/estimate`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError, format, multipart};
use crate::domain::Role;
use crate::domain::{Direction, PhoneNumber};
use crate::pricing::{self, Category, Kind, LineError, Price, export};
use crate::routes::pages::Allowed;
use crate::routes::price_estimate::{self, Estimate, EstimateFailure, EstimateRequest};
use crate::routes::roles::Admin;
use crate::routes::transfer::PRICE_BOOK_MAX;
use crate::state::AppState;
use crate::storage::prices::{self as store, Listed, Standing, Summary};

/// Rows rendered per page: the table may hold 100,000.
const PAGE_ROWS: i64 = 500;
/// Bad lines listed after a refused upload; a file that is wrong throughout (say, another
/// format) would otherwise make a page as long as itself.
const SHOWN_ERRORS: usize = 1_000;
/// A bad line is shown up to this many characters.
const LINE_PREVIEW: usize = 200;
/// The file or the pasted text, each up to the API's limit, plus the form's own bytes.
const UPLOAD_LIMIT: usize = 2 * PRICE_BOOK_MAX + 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/prices")
            .app_data(web::PayloadConfig::new(UPLOAD_LIMIT))
            .route(web::get().to(page))
            .route(web::post().to(upload)),
    )
    .route("/admin/prices.csv", web::get().to(download));
}

/// The page's query: which page of the table, an upload's confirmation, and the estimate
/// form (a GET: it changes nothing, and its result can be linked).
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    page: Option<String>,
    uploaded: Option<String>,
    to: Option<String>,
    category: Option<String>,
    /// `in` or `out` of the 24-hour window.
    window: Option<String>,
    failed: Option<String>,
    open: Option<String>,
    date: Option<String>,
}

struct RowItem {
    effective_from: String,
    kind: &'static str,
    country: String,
    category: String,
    amount: format::Money,
    /// CSS class suffix and words.
    standing: &'static str,
    standing_label: &'static str,
}

fn row_item(p: &Price, standing: Option<Standing>) -> RowItem {
    RowItem {
        effective_from: p.effective_from.to_string(),
        kind: p.kind.as_str(),
        country: p.country.clone(),
        category: p.category.clone(),
        amount: format::Money::new(p.amount, &p.currency).unit(),
        standing: standing.map_or("", Standing::as_str),
        standing_label: match standing {
            Some(Standing::InForce) => "in force",
            Some(Standing::Superseded) => "superseded",
            Some(Standing::Future) => "future",
            None => "",
        },
    }
}

/// The rows of one kind on this page.
struct KindGroup {
    kind: &'static str,
    title: &'static str,
    note: &'static str,
    rows: Vec<RowItem>,
}

fn kind_text(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::TwilioMessage => (
            "Twilio, per message",
            "Every message, inbound or outbound, by the country of the contact's number.",
        ),
        Kind::TwilioFailed => (
            "Twilio, per failed message",
            "Charged instead of the fee per message when a message fails.",
        ),
        Kind::MetaTemplate => (
            "Meta, per template message (from 2025-07-01)",
            "Each delivered template by country and category. Free-form (service) messages, \
             and utility templates inside the 24-hour window, are free.",
        ),
        Kind::MetaConversation => (
            "Meta, per conversation (before 2025-07-01)",
            "The first template of a category opened a 24-hour conversation, charged once.",
        ),
    }
}

/// Consecutive rows of a kind in one group (the listing is ordered by kind).
fn groups(rows: Vec<Listed>) -> Vec<KindGroup> {
    let mut out: Vec<KindGroup> = Vec::new();
    for r in rows {
        let item = row_item(&r.price, Some(r.standing));
        match out.last_mut() {
            Some(g) if g.kind == r.price.kind.as_str() => g.rows.push(item),
            _ => {
                let (title, note) = kind_text(r.price.kind);
                out.push(KindGroup {
                    kind: r.price.kind.as_str(),
                    title,
                    note,
                    rows: vec![item],
                });
            }
        }
    }
    out
}

struct SummaryView {
    rows: i64,
    in_force: i64,
    superseded: i64,
    future: i64,
    currency: String,
    /// A second currency: only a table edited outside wadash can have one.
    other_currency: Option<String>,
    uploaded_by: Option<String>,
    uploaded: Option<format::Stamp>,
    is_default: bool,
}

fn summary_view(s: Summary, tz: chrono_tz::Tz) -> SummaryView {
    SummaryView {
        rows: s.rows,
        in_force: s.in_force,
        future: s.future,
        superseded: (s.rows - s.in_force - s.future).max(0),
        currency: s.currency.unwrap_or_default(),
        other_currency: s.other_currency,
        uploaded_by: s.uploaded_by,
        uploaded: format::Stamp::of(s.uploaded_at, tz),
        is_default: s.is_default,
    }
}

/// Which rows this page shows, and links to its neighbours.
struct Paging {
    first: i64,
    last: i64,
    not_shown: i64,
    prev: Option<i64>,
    next: Option<i64>,
}

/// The estimate form as typed (kept when it is refused).
#[derive(Debug, Clone)]
struct EstimateForm {
    to: String,
    category: String,
    /// `in` or `out`.
    window: String,
    failed: bool,
    open: bool,
    date: String,
}

impl EstimateForm {
    /// Outside the window, delivered, today.
    fn blank() -> Self {
        Self {
            to: String::new(),
            category: String::new(),
            window: "out".into(),
            failed: false,
            open: false,
            date: Utc::now().date_naive().to_string(),
        }
    }
}

struct UsedRow {
    fee: &'static str,
    row: RowItem,
}

struct EstimateResult {
    to: String,
    country: &'static str,
    twilio_fee: format::Money,
    meta_fee: format::Money,
    total: format::Money,
    used: Vec<UsedRow>,
}

/// A refused upload: what was sent, and its bad lines.
struct Refused {
    source: String,
    errors: Vec<LineProblem>,
    total_errors: usize,
}

struct LineProblem {
    line: u64,
    text: String,
    message: String,
}

#[derive(Template)]
#[template(path = "prices.html")]
struct PricesPage {
    chrome: Chrome,
    today: String,
    summary: SummaryView,
    groups: Vec<KindGroup>,
    paging: Paging,
    notice: Option<String>,
    refused: Option<Refused>,
    /// The pasted text, kept after a refusal.
    pasted: String,
    max_lines: usize,
    categories: &'static [(&'static str, &'static str)],
    form: EstimateForm,
    estimate: Option<EstimateResult>,
    estimate_error: Option<String>,
}

const CATEGORIES: &[(&str, &str)] = &[
    ("", "free-form message (service)"),
    ("marketing", "marketing template"),
    ("utility", "utility template"),
    ("authentication", "authentication template"),
];

/// Everything a render needs besides the table itself.
struct Extras {
    page: i64,
    notice: Option<String>,
    refused: Option<Refused>,
    pasted: String,
    form: EstimateForm,
    estimate: Option<EstimateResult>,
    estimate_error: Option<(StatusCode, String)>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    x: Extras,
) -> Result<HttpResponse, PageError> {
    let today = Utc::now().date_naive();
    let summary = store::summary(&state.pool, today).await?;
    let pages = (summary.rows + PAGE_ROWS - 1) / PAGE_ROWS;
    let page = x.page.clamp(1, pages.max(1));
    let offset = (page - 1) * PAGE_ROWS;
    let rows = store::page(&state.pool, today, offset, PAGE_ROWS).await?;
    let shown = rows.len() as i64;
    let paging = Paging {
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        not_shown: summary.rows - shown,
        prev: (page > 1).then_some(page - 1),
        next: (page < pages).then_some(page + 1),
    };
    let status = match (&x.refused, &x.estimate_error) {
        (Some(_), _) => StatusCode::UNPROCESSABLE_ENTITY,
        (None, Some((s, _))) => *s,
        (None, None) => StatusCode::OK,
    };
    crate::routes::pages::html_with(
        &PricesPage {
            chrome: Chrome::for_user(user, state, "prices"),
            today: today.to_string(),
            summary: summary_view(summary, user.tz),
            groups: groups(rows),
            paging,
            notice: x.notice,
            refused: x.refused,
            pasted: x.pasted,
            max_lines: pricing::MAX_LINES,
            categories: CATEGORIES,
            form: x.form,
            estimate: x.estimate,
            estimate_error: x.estimate_error.map(|(_, m)| m),
        },
        status,
    )
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty() && s != "0")
}

/// Reads the estimate form; `Err` is a message for the person who typed it.
fn estimate_request(f: &EstimateForm) -> Result<EstimateRequest, String> {
    let to = PhoneNumber::parse(&f.to).map_err(|e| format!("Destination: {e}"))?;
    let template = match f.category.as_str() {
        "" => None,
        c => Some(Category::parse(c)?),
    };
    let date = NaiveDate::parse_from_str(f.date.trim(), "%Y-%m-%d")
        .map_err(|_| format!("Date must be like 2026-07-01, got {:?}", f.date))?;
    let in_window = match f.window.as_str() {
        "in" => true,
        "out" | "" => false,
        w => return Err(format!("window must be in or out, got {w:?}")),
    };
    Ok(EstimateRequest {
        to,
        template,
        in_window,
        direction: Direction::Outbound,
        failed: f.failed,
        conversation_open: f.open,
        at: date.and_time(chrono::NaiveTime::MIN).and_utc(),
    })
}

fn estimate_result(to: &PhoneNumber, e: Estimate) -> EstimateResult {
    let mut used = vec![UsedRow {
        fee: "Twilio",
        row: row_item(&e.twilio_row, None),
    }];
    if let Some(m) = &e.meta_row {
        used.push(UsedRow {
            fee: "Meta",
            row: row_item(m, None),
        });
    }
    EstimateResult {
        to: to.to_string(),
        country: e.country,
        twilio_fee: format::Money::new(e.breakdown.twilio_fee, &e.breakdown.currency).unit(),
        meta_fee: format::Money::new(e.breakdown.meta_fee, &e.breakdown.currency).unit(),
        total: format::Money::new(e.breakdown.total, &e.breakdown.currency).unit(),
        used,
    }
}

async fn page(
    user: Allowed<Admin>,
    q: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    let page =
        match q.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => 1,
            Some(p) => p.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                PageError::BadRequest(format!("page must be 1 or more, got {p:?}"))
            })?,
        };
    let notice = q
        .uploaded
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| format!("Price table replaced: {n} rows uploaded."));
    let blank = EstimateForm::blank();
    let form = EstimateForm {
        to: q.to.clone().unwrap_or_default(),
        category: q.category.clone().unwrap_or_default(),
        window: q.window.clone().unwrap_or(blank.window),
        failed: flag(&q.failed),
        open: flag(&q.open),
        date: q
            .date
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(blank.date),
    };
    let (mut estimate, mut estimate_error) = (None, None);
    if !form.to.trim().is_empty() {
        match estimate_request(&form) {
            Err(m) => estimate_error = Some((StatusCode::BAD_REQUEST, m)),
            Ok(r) => match price_estimate::estimate(&state.pool, &r).await {
                Ok(e) => estimate = Some(estimate_result(&r.to, e)),
                Err(EstimateFailure::NoPrice(e)) => {
                    estimate_error = Some((StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
                }
                Err(EstimateFailure::Database(e)) => return Err(e.into()),
            },
        }
    }
    let x = Extras {
        page,
        notice,
        refused: None,
        pasted: String::new(),
        form,
        estimate,
        estimate_error,
    };
    render(&user, &state, x).await
}

/// What the upload form sent.
struct UploadForm {
    csrf: String,
    /// The chosen file's name and bytes, when one was chosen.
    file: Option<(String, Vec<u8>)>,
    pasted: String,
}

/// Reads the form as the page sends it (multipart, for the file), or URL-encoded with the
/// pasted text alone (a script, or a browser that lost the `enctype`).
async fn read_form(req: &HttpRequest, body: web::Bytes) -> Result<UploadForm, PageError> {
    if multipart::is_multipart(req.headers()) {
        let parts = multipart::parse(req.headers(), body)
            .await
            .map_err(PageError::BadRequest)?;
        let file = multipart::field(&parts, "file")
            .filter(|p| !p.data.is_empty())
            .map(|p| {
                let name = p.filename.clone().filter(|n| !n.is_empty());
                (name.unwrap_or_else(|| "the file".into()), p.data.clone())
            });
        return Ok(UploadForm {
            csrf: multipart::text(&parts, "csrf"),
            file,
            pasted: multipart::text(&parts, "csv"),
        });
    }
    #[derive(Deserialize)]
    struct Pasted {
        #[serde(default)]
        csrf: String,
        #[serde(default)]
        csv: String,
    }
    let f: Pasted = serde_urlencoded::from_bytes(&body)
        .map_err(|e| PageError::BadRequest(format!("the form could not be read: {e}")))?;
    Ok(UploadForm {
        csrf: f.csrf,
        file: None,
        pasted: f.csv,
    })
}

/// A line as the page shows it: shortened, lossy where it is not UTF-8.
fn line_text(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    match text.char_indices().nth(LINE_PREVIEW) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn refused(source: String, bytes: &[u8], errors: Vec<LineError>) -> Refused {
    // Split once: up to a thousand errors in an 8 MiB file must not rescan it each time.
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    Refused {
        source,
        total_errors: errors.len(),
        errors: errors
            .into_iter()
            .take(SHOWN_ERRORS)
            .map(|e| LineProblem {
                text: usize::try_from(e.line)
                    .ok()
                    .and_then(|n| lines.get(n.checked_sub(1)?))
                    .map(|l| line_text(l))
                    .unwrap_or_default(),
                line: e.line,
                message: e.message,
            })
            .collect(),
    }
}

async fn upload(
    user: CurrentUser,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let form = read_form(&req, body).await?;
    user.check_csrf(&form.csrf)?;
    user.require(Role::Admin)?;
    let (source, bytes) = match form.file {
        Some((name, bytes)) => (name, bytes),
        None => (
            "the pasted text".to_owned(),
            form.pasted.clone().into_bytes(),
        ),
    };
    let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
        Err(vec![LineError {
            line: 1,
            message: "choose a CSV file, or paste the table, starting with its header".into(),
        }])
    } else {
        pricing::parse(&bytes)
    };
    let prices = match parsed {
        Ok(p) => p,
        Err(errors) => {
            let x = Extras {
                page: 1,
                notice: None,
                refused: Some(refused(source, &bytes, errors)),
                pasted: form.pasted,
                form: EstimateForm::blank(),
                estimate: None,
                estimate_error: None,
            };
            return render(&user, &state, x).await;
        }
    };
    let mut tx = state.pool.begin().await?;
    store::replace(&mut tx, &prices, Some(&user.username)).await?;
    tx.commit().await?;
    state.prices.invalidate().await;
    tracing::info!(username = %user.username, rows = prices.len(), %source, "price table replaced");
    Ok(HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("/admin/prices?uploaded={}", prices.len()),
        ))
        .finish())
}

async fn download(
    user: Allowed<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let table = store::all(&state.pool).await?;
    tracing::info!(username = %user.username, rows = table.len(), "price table downloaded");
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((CONTENT_DISPOSITION, "attachment; filename=\"prices.csv\""))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(export::to_csv(&table)))
}
