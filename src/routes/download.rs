//! Downloads shared by the JSON API and the pages: a CSV attachment streamed as it is read.

use actix_web::HttpResponse;
use futures_util::{Stream, StreamExt};

/// `body` as the CSV file `filename`; an error in the stream (logged where it happened) ends
/// the download.
pub fn csv_attachment<E: 'static>(
    filename: &str,
    body: impl Stream<Item = Result<bytes::Bytes, E>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body.map(|chunk| {
            chunk.map_err(|_| actix_web::error::ErrorInternalServerError("export failed"))
        }))
}
