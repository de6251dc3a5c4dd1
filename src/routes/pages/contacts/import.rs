//! `/contacts/import`: CSV import, a file or pasted into a form; a refused import shows every
//! bad line.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::contacts::csv_io;
use crate::routes::pages::Allowed;
use crate::routes::pages::upload::{self, Uploaded};
use crate::routes::pages::{Chrome, PageError, format, html};
use crate::routes::roles::Operator;
use crate::state::AppState;

/// An import of `csv_io::MAX_LINES` lines, pasted or as a file, fits with room to spare; a
/// larger upload is refused in words (see `upload::Uploaded`).
const IMPORT_FORM_LIMIT: usize = 16 * 1024 * 1024;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/contacts/import")
            .app_data(upload::Limit(IMPORT_FORM_LIMIT))
            .route(web::get().to(import_form))
            .route(web::post().to(import)),
    );
}

#[derive(Template)]
#[template(path = "contacts_import.html")]
struct ImportPage {
    chrome: Chrome,
    csv: String,
    errors: Vec<csv_io::LineError>,
    /// ("12 contacts", new, updated).
    done: Option<(String, usize, usize)>,
    max_lines: usize,
}

#[derive(Deserialize)]
struct ImportedQuery {
    imported: Option<usize>,
    created: Option<usize>,
    updated: Option<usize>,
}

async fn import_form(
    user: Allowed<Operator>,
    q: web::Query<ImportedQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    html(&ImportPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        csv: String::new(),
        errors: Vec::new(),
        done: q.imported.map(|n| {
            (
                format::plural(n as i64, "contact", "contacts"),
                q.created.unwrap_or(0),
                q.updated.unwrap_or(0),
            )
        }),
        max_lines: csv_io::MAX_LINES,
    })
}

#[derive(Deserialize)]
struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

async fn import(
    Uploaded {
        user, form, file, ..
    }: Uploaded<ImportForm, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    // A chosen file is imported in place of any pasted text.
    let (text, unreadable) = match file.as_ref().map(upload::text_of) {
        None => (form.csv, None),
        Some(Ok(t)) => (t, None),
        Some(Err(e)) => (form.csv, Some(e)),
    };
    let report = if let Some(e) = unreadable {
        csv_io::ImportReport {
            errors: vec![csv_io::LineError {
                line: 1,
                message: e,
            }],
            ..Default::default()
        }
    } else if text.trim().is_empty() {
        csv_io::ImportReport {
            errors: vec![csv_io::LineError {
                line: 1,
                message: "choose a CSV file, or paste the CSV text, starting with its header row"
                    .into(),
            }],
            ..Default::default()
        }
    } else {
        match csv_io::parse(text.as_bytes()) {
            Ok(lines) => csv_io::import(&state.pool, &lines, &user.username).await?,
            Err(errors) => csv_io::ImportReport {
                errors,
                ..Default::default()
            },
        }
    };
    if report.errors.is_empty() {
        tracing::info!(
            username = %user.username,
            imported = report.imported,
            created = report.created,
            "contacts imported"
        );
        return Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!(
                    "/contacts/import?imported={}&created={}&updated={}",
                    report.imported, report.created, report.updated
                ),
            ))
            .finish());
    }
    let mut resp = html(&ImportPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        csv: text,
        errors: report.errors,
        done: None,
        max_lines: csv_io::MAX_LINES,
    })?;
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

crate::routes::pages::guard::csrf_forms!(ImportForm);
