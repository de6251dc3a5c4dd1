//! A broadcast's results as CSV, one row per recipient, read a thousand recipients at a time
//! so that a large broadcast streams instead of filling memory.

use futures_util::Stream;
use sqlx::PgPool;

use crate::storage::broadcasts::{self as store, RecipientRow};

const HEADER: &str = "number,state,message_status,message_sid,error_code,error_reason,error_message,attempts,sent_at\r\n";
const CHUNK: i64 = 1000;

/// The file name the results are downloaded as.
pub fn filename(id: i64) -> String {
    format!("wadash-broadcast-{id}.csv")
}

/// The CSV text, header first, in chunks; a database error ends it.
pub fn csv_chunks(pool: PgPool, id: i64) -> impl Stream<Item = Result<bytes::Bytes, sqlx::Error>> {
    futures_util::stream::unfold((Some(None::<String>), true), move |(after, first)| {
        let pool = pool.clone();
        async move {
            let after = after?;
            let rows = match store::recipients(&pool, id, None, after.as_deref(), CHUNK).await {
                Ok(r) => r,
                Err(e) => return Some((Err(e), (None, false))),
            };
            let mut out = String::new();
            if first {
                out.push_str(HEADER);
            }
            for r in &rows {
                out.push_str(&csv_line(r));
            }
            let next = (rows.len() as i64 == CHUNK).then(|| rows.last().map(|r| r.number.clone()));
            Some((Ok(bytes::Bytes::from(out)), (next, false)))
        }
    })
}

fn csv_line(r: &RecipientRow) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record([
        r.number.as_str(),
        &r.state,
        r.message_status.as_deref().unwrap_or(""),
        r.message_sid.as_deref().unwrap_or(""),
        &r.error_code.map(|c| c.to_string()).unwrap_or_default(),
        r.error_reason.as_deref().unwrap_or(""),
        r.error_message.as_deref().unwrap_or(""),
        &r.attempts.to_string(),
        &r.sent_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    ]);
    String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
}
