//! `/contacts`: the list (filters in the URL, keyset pages, a tag cloud) and its CSV export.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ContactItem, TagLink, item, tag_link};
use crate::contacts::view::{cursor_of, parse_cursor};
use crate::routes::pages::{Chrome, CurrentUser, PageError, html};
use crate::state::AppState;
use crate::storage::contacts::{self as store, ContactFilter, ContactRow};

const PAGE: i64 = 50;
/// How many tags the list's tag cloud shows (the most used).
const TAG_CLOUD: usize = 60;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts", web::get().to(list))
        .route("/contacts/export.csv", web::get().to(export));
}

/// The list's and the contact page's filters and links, in the URL.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

const CONSENT_FILTERS: &[(&str, &str)] = &[
    ("opted_in", "opted in"),
    ("opted_out", "opted out"),
    ("unknown", "unknown"),
    ("deauthorized", "de-authorized"),
];

#[derive(Template)]
#[template(path = "contacts.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    tag: String,
    consent: String,
    consents: &'static [(&'static str, &'static str)],
    contacts: Vec<ContactItem>,
    tags: Vec<TagLink>,
    more_tags: usize,
    next: Option<String>,
    filtered: bool,
}

async fn list(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = query.into_inner();
    let consent = nonempty(&q.consent);
    if let Some(c) = consent.as_deref()
        && !CONSENT_FILTERS.iter().any(|(k, _)| *k == c)
    {
        return Err(PageError::BadRequest(format!(
            "consent must be opted_in, opted_out, unknown or deauthorized, got {c:?}"
        )));
    }
    let after = match nonempty(&q.cursor) {
        None => None,
        Some(c) => Some(
            parse_cursor(&c)
                .ok_or_else(|| PageError::BadRequest("the page link is not valid".into()))?,
        ),
    };
    let filter = ContactFilter {
        q: nonempty(&q.q),
        tag: nonempty(&q.tag).map(|t| t.to_lowercase()),
        consent: consent.clone(),
    };
    let (rows, all_tags) = tokio::try_join!(
        store::list(&state.pool, &filter, after, PAGE + 1),
        store::tags(&state.pool)
    )?;
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<ContactRow> = rows.into_iter().take(PAGE as usize).collect();
    let next = if more {
        rows.last().map(|last| {
            serde_urlencoded::to_string(ListQuery {
                cursor: Some(cursor_of(last)),
                ..q.clone()
            })
            .unwrap_or_default()
        })
    } else {
        None
    };
    let now = Utc::now();
    let more_tags = all_tags.len().saturating_sub(TAG_CLOUD);
    html(&ListPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        filtered: filter.q.is_some() || filter.tag.is_some() || filter.consent.is_some(),
        q: filter.q.unwrap_or_default(),
        tag: filter.tag.unwrap_or_default(),
        consent: filter.consent.unwrap_or_default(),
        consents: CONSENT_FILTERS,
        contacts: rows.into_iter().map(|c| item(c, now, user.tz)).collect(),
        tags: all_tags
            .iter()
            .take(TAG_CLOUD)
            .map(|(t, n)| tag_link(t, *n))
            .collect(),
        more_tags,
        next,
    })
}

async fn export(user: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    tracing::info!(username = %user.username, "contacts CSV export");
    let mut resp = crate::routes::transfer::csv_download(
        "wadash-contacts.csv",
        "contact export",
        crate::contacts::csv_io::export_stream(state.pool.clone()),
    );
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
