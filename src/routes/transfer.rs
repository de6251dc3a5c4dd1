//! Files that cross HTTP in both directions, for the JSON API and the pages alike: the size
//! limits of uploads, and CSV downloads streamed from the database.

use actix_web::HttpResponse;
use futures_util::{Stream, TryStreamExt as _};

/// Largest CSV upload: a broadcast's audience of `broadcasts::audience::MAX_RECIPIENTS`
/// numbers with variables, a contact import.
pub const CSV_UPLOAD_MAX: usize = 32 * 1024 * 1024;

/// Largest price book upload: 100,000 rows of about 60 bytes.
pub const PRICE_BOOK_MAX: usize = 8 * 1024 * 1024;

/// A CSV file streamed as it is read; an error mid-way is logged (as `what`) and ends the
/// download, which the client sees as a truncated transfer rather than a short file.
pub fn csv_download<S, E>(filename: &str, what: &'static str, rows: S) -> HttpResponse
where
    S: Stream<Item = Result<bytes::Bytes, E>> + 'static,
    E: std::fmt::Display,
{
    let body = rows.map_err(move |e| {
        tracing::error!(error = %e, "{what} stopped");
        actix_web::error::ErrorInternalServerError("export failed")
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}
