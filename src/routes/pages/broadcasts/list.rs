//! The list of broadcasts, newest first, with how far each got.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::super::{Chrome, CurrentUser, PageError, format, html};
use super::{progress, status_label};
use crate::broadcasts::view::{list_cursor, view};
use crate::state::AppState;
use crate::storage::broadcasts::{self as store, BroadcastRow};

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    cursor: Option<String>,
}

struct ListItem {
    id: i64,
    name: String,
    status: String,
    status_label: &'static str,
    created_by: String,
    created: format::Stamp,
    start: format::Stamp,
    recipients: String,
    /// Recipients no longer waiting, of all, 0–100.
    progress: i64,
    progress_text: String,
    /// Delivered and read as the funnel counts them (reached at least), failed and
    /// undelivered as they are.
    delivered: String,
    read: String,
    failed: String,
}

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct ListPage {
    chrome: Chrome,
    items: Vec<ListItem>,
    next: Option<String>,
    paged: bool,
}

pub(super) async fn list(
    user: CurrentUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            crate::contacts::view::parse_cursor(c)
                .ok_or_else(|| PageError::BadRequest("the page link is not valid".into()))?,
        ),
    };
    let rows = store::list(&state.pool, after, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<BroadcastRow> = rows.into_iter().take(PAGE as usize).collect();
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|b| serde_urlencoded::to_string([("cursor", list_cursor(b))]).unwrap_or_default());
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let v = view(&state.pool, row).await?;
        let (progress, progress_text) = progress(v.recipients, v.counts.pending);
        let b = v.broadcast;
        items.push(ListItem {
            id: b.id,
            status_label: status_label(b.status),
            created_by: b.created_by.unwrap_or_default(),
            created: format::Stamp::new(b.created_at, user.tz),
            start: format::Stamp::new(b.start_at, user.tz),
            recipients: format::count(v.recipients),
            progress,
            progress_text,
            delivered: format::count(v.reached.delivered),
            read: format::count(v.reached.read),
            failed: format::count(v.counts.failed + v.counts.undelivered),
            name: b.name,
            status: b.status.to_string(),
        });
    }
    html(&ListPage {
        chrome: Chrome::for_user(&user, &state, "broadcasts"),
        items,
        next,
        paged: after.is_some(),
    })
}
