//! `/api/v1/contacts`: contacts, their consent and 24-hour window, tags, number changes,
//! CSV import and export.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::contacts::view::{ContactView, cursor_of, parse_cursor};
use crate::contacts::{self, Action, Actor, ContactError, csv_io};
use crate::domain::consent::ConsentSource;
use crate::error::ApiError;
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::contacts::{self as store, ContactFilter, ContactRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts", web::get().to(list))
        .service(
            web::resource("/contacts/import")
                .app_data(web::PayloadConfig::new(
                    crate::routes::transfer::CSV_UPLOAD_MAX,
                ))
                .route(web::post().to(import)),
        )
        .route("/contacts/export", web::get().to(export))
        .route("/contacts/{number}", web::get().to(get))
        .route("/contacts/{number}", web::patch().to(update))
        .route("/contacts/{number}/{action}", web::post().to(act));
}

fn contact_error(e: ContactError) -> ApiError {
    use actix_web::http::StatusCode;
    match e {
        ContactError::Invalid(m) => ApiError::BadRequest(m),
        ContactError::NotFound(_) => ApiError::NotFound(e.to_string()),
        ContactError::NumberTaken(_) => {
            ApiError::Other(StatusCode::CONFLICT, "number_taken", e.to_string())
        }
        ContactError::Database(e) => e.into(),
    }
}

fn actor_name<R>(caller: &ApiCaller<R>) -> String {
    format!("api token #{}", caller.token_id)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    tag: Option<String>,
    consent: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<ContactView>,
    next_cursor: Option<String>,
}

async fn list(
    _: ApiCaller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = super::page_limit(q.limit, 50, 500)?;
    if let Some(c) = q.consent.as_deref()
        && !["opted_in", "opted_out", "unknown", "deauthorized", ""].contains(&c)
    {
        return Err(ApiError::BadRequest(format!(
            "consent must be opted_in, opted_out, unknown or deauthorized, got {c:?}"
        )));
    }
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            parse_cursor(c).ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    let filter = ContactFilter {
        q: q.q,
        tag: q.tag.map(|t| t.trim().to_lowercase()),
        consent: q.consent,
    };
    let rows = store::list(&state.pool, &filter, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<ContactRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    let now = Utc::now();
    Ok(HttpResponse::Ok().json(Page {
        items: rows.into_iter().map(|c| ContactView::new(c, now)).collect(),
        next_cursor,
    }))
}

async fn get(
    _: ApiCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let number = contacts::parse_number(&path).map_err(contact_error)?;
    let contact = store::get(&state.pool, number.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no contact has the number {number}")))?;
    let history = store::history(&state.pool, contact.id).await?;
    let previous = store::retired_of(&state.pool, contact.id).await?;
    let mut view = ContactView::new(contact, Utc::now());
    view.history = Some(history);
    view.previous_numbers = Some(previous);
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    note: Option<String>,
}

async fn act(
    caller: ApiCaller<Operator>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (number, action) = path.into_inner();
    let action = Action::parse(&action).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no contact action {action:?}; use opt-out, opt-in, deauthorize or reauthorize"
        ))
    })?;
    let number = contacts::parse_number(&number).map_err(contact_error)?;
    let body: ActBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let name = actor_name(&caller);
    let contact = contacts::act(
        &state.pool,
        &number,
        action,
        Actor {
            source: ConsentSource::Api,
            name: &name,
            note: body.note.as_deref(),
        },
    )
    .await
    .map_err(contact_error)?;
    Ok(HttpResponse::Ok().json(ContactView::new(contact, Utc::now())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    tags: Option<Vec<String>>,
    profile_name: Option<String>,
    /// Moves the contact to this number; the old one is refused from then on.
    number: Option<String>,
}

async fn update(
    caller: ApiCaller<Operator>,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: UpdateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let mut number = contacts::parse_number(&path).map_err(contact_error)?;
    if let Some(new) = body.number.as_deref() {
        let new = contacts::parse_number(new).map_err(contact_error)?;
        if new != number {
            contacts::change_number(&state.pool, &number, &new, &actor_name(&caller))
                .await
                .map_err(contact_error)?;
            number = new;
        }
    }
    let tags = match &body.tags {
        None => None,
        Some(t) => Some(
            contacts::normalize_tags(t.iter().map(String::as_str)).map_err(ApiError::BadRequest)?,
        ),
    };
    let contact = contacts::update(&state.pool, &number, tags, body.profile_name.as_deref())
        .await
        .map_err(contact_error)?;
    Ok(HttpResponse::Ok().json(ContactView::new(contact, Utc::now())))
}

async fn import(
    caller: ApiCaller<Operator>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::StatusCode;
    let report = match csv_io::parse(&body) {
        Ok(lines) => csv_io::import(&state.pool, &lines, &actor_name(&caller)).await?,
        Err(errors) => csv_io::ImportReport {
            errors,
            ..Default::default()
        },
    };
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(HttpResponse::build(status).json(report))
}

async fn export(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(crate::routes::transfer::csv_download(
        "wadash-contacts.csv",
        "contact export",
        csv_io::export_stream(state.pool.clone()),
    ))
}
