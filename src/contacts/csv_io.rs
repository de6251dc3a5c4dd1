//! Contact import and export as CSV.
//!
//! Import: a header row naming the columns, then one contact per line. `number` is required;
//! `profile_name` (or `name`), `tags` (separated by `;` or `|`) and `consent` (`opted_in`,
//! `opted_out` or empty) are optional; the export's other columns are accepted and ignored,
//! so an export can be edited and imported again. Every line is checked before anything is
//! written, and the whole file goes in one transaction: either every line is imported or
//! none is, with every problem reported by line number.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;

use crate::domain::PhoneNumber;
use crate::domain::consent::{Consent, ConsentChange, ConsentSource};
use crate::storage::contacts::{self, ChangeBy, ContactRow};

/// Largest import accepted, in lines.
pub const MAX_LINES: usize = 100_000;

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    pub line: u64,
    pub number: PhoneNumber,
    pub profile_name: Option<String>,
    /// `None`: the column is absent or empty, so existing tags stay.
    pub tags: Option<Vec<String>>,
    pub consent: Option<Consent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// What an import did (or, with errors, would not do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub imported: usize,
    pub created: usize,
    pub updated: usize,
    pub errors: Vec<LineError>,
}

const IGNORED: &[&str] = &[
    "deauthorized",
    "last_inbound_at",
    "window_expires_at",
    "wa_id",
    "created_at",
];

/// Parses and validates a whole file.
pub fn parse(bytes: &[u8]) -> Result<Vec<ImportLine>, Vec<LineError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header_error = |message: String| vec![LineError { line: 1, message }];
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("the header row cannot be read: {e}")))?
        .clone();
    let mut columns: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = match h.to_ascii_lowercase().as_str() {
            "number" | "phone" => "number",
            "profile_name" | "name" => "profile_name",
            "tags" => "tags",
            "consent" => "consent",
            other if IGNORED.contains(&other) => continue,
            other => {
                return Err(header_error(format!(
                    "unknown column {other:?}; use number, profile_name, tags, consent"
                )));
            }
        };
        if columns.insert(name, i).is_some() {
            return Err(header_error(format!("the column {name:?} appears twice")));
        }
    }
    if !columns.contains_key("number") {
        return Err(header_error(
            "the header row must name a number column (number,profile_name,tags,consent)".into(),
        ));
    }

    let newlines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        // The reader skips blank lines (and its line count misses them): the line as the file
        // has it is counted from the record's byte offset.
        let offset = match &record {
            Ok(r) => r.position().map(|p| p.byte()),
            Err(e) => e.position().map(|p| p.byte()),
        };
        let line = offset.map_or(i as u64 + 2, |b| {
            // The offset is where reading began, before any blank lines the reader skipped.
            let start = bytes
                .iter()
                .skip(b as usize)
                .position(|c| *c != b'\n' && *c != b'\r')
                .map_or(bytes.len(), |k| b as usize + k);
            newlines.partition_point(|&n| n < start) as u64 + 1
        });
        if i >= MAX_LINES {
            errors.push(LineError {
                line,
                message: format!("an import holds at most {MAX_LINES} contacts"),
            });
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(LineError {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let field = |name: &str| {
            columns
                .get(name)
                .and_then(|&i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        let mut fail = |message: String| errors.push(LineError { line, message });
        let number = match PhoneNumber::parse(field("number").unwrap_or("")) {
            Ok(n) => n,
            Err(e) => {
                fail(e);
                continue;
            }
        };
        if let Some(first) = seen.insert(number.as_str().to_owned(), line) {
            fail(format!("{number} is already on line {first}"));
            continue;
        }
        let tags = match field("tags") {
            None => None,
            Some(t) => match super::normalize_tags(t.split([';', '|'])) {
                Ok(t) => Some(t),
                Err(e) => {
                    fail(e);
                    continue;
                }
            },
        };
        let consent = match field("consent") {
            None => None,
            Some("opted_in") => Some(Consent::OptedIn),
            Some("opted_out") => Some(Consent::OptedOut),
            Some(other) => {
                fail(format!(
                    "consent must be opted_in, opted_out or empty, got {other:?}"
                ));
                continue;
            }
        };
        let profile_name = field("profile_name").map(str::to_owned);
        if profile_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200)
        {
            fail("profile_name is limited to 200 characters".into());
            continue;
        }
        lines.push(ImportLine {
            line,
            number,
            profile_name,
            tags,
            consent,
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// Imports validated lines in one transaction. An import never opts a contact back in who
/// opted out themselves (by keyword): such lines are errors, and nothing is imported.
pub async fn import(
    pool: &PgPool,
    lines: &[ImportLine],
    actor: &str,
) -> sqlx::Result<ImportReport> {
    let mut tx = pool.begin().await?;
    let mut report = ImportReport::default();
    for l in lines {
        let existed = contacts::get_locked(&mut tx, l.number.as_str())
            .await?
            .is_some();
        let c = contacts::ensure_locked(&mut tx, l.number.as_str()).await?;
        if let Some(name) = &l.profile_name {
            contacts::set_profile_name(&mut tx, c.id, name).await?;
        }
        if let Some(tags) = &l.tags {
            contacts::set_tags(&mut tx, c.id, tags).await?;
        }
        if let Some(consent) = l.consent
            && consent != c.consent()
        {
            if consent == Consent::OptedIn && opted_out_by_keyword(&mut tx, &c).await? {
                report.errors.push(LineError {
                    line: l.line,
                    message: format!(
                        "{} opted out themselves; an import cannot opt them back in (they can send START)",
                        l.number
                    ),
                });
                continue;
            }
            let change = match consent {
                Consent::OptedIn => ConsentChange::OptedIn,
                _ => ConsentChange::OptedOut,
            };
            contacts::apply_change(
                &mut tx,
                c.id,
                change,
                ChangeBy {
                    source: ConsentSource::Import,
                    actor: Some(actor),
                    detail: Some(&format!("line {}", l.line)),
                    message_sid: None,
                },
            )
            .await?;
        }
        report.imported += 1;
        if existed {
            report.updated += 1;
        } else {
            report.created += 1;
        }
    }
    if report.errors.is_empty() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
        report.imported = 0;
        report.created = 0;
        report.updated = 0;
    }
    Ok(report)
}

async fn opted_out_by_keyword(conn: &mut sqlx::PgConnection, c: &ContactRow) -> sqlx::Result<bool> {
    if c.consent() != Consent::OptedOut {
        return Ok(false);
    }
    let source: Option<String> = sqlx::query_scalar(
        "SELECT source FROM consent_events WHERE contact_id = $1 AND change = 'opted_out' \
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(c.id)
    .fetch_optional(conn)
    .await?;
    Ok(source.as_deref() == Some("keyword"))
}

pub const EXPORT_HEADER: &str =
    "number,profile_name,consent,deauthorized,last_inbound_at,window_expires_at,tags\r\n";

/// One contact as an export line (RFC 4180, CRLF). Cells that a spreadsheet would run as
/// a formula are prefixed with `'`.
pub fn export_line(c: &ContactRow) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(128));
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let name = c.profile_name.as_deref().map(defuse).unwrap_or_default();
    w.write_record([
        c.number.as_str(),
        &name,
        &c.consent,
        if c.is_deauthorized() { "yes" } else { "" },
        &time(c.last_inbound_at),
        &time(crate::domain::window::Window::expires_at(c.last_inbound_at)),
        &c.tags.join(";"),
    ])
    .expect("writing to memory");
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("the cells are text")
}

/// Every contact as CSV, a thousand at a time along the list's index, so an export of any
/// size holds one page in memory.
pub fn export_stream(
    pool: PgPool,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, sqlx::Error>> {
    const CHUNK: i64 = 1000;
    futures_util::stream::try_unfold(
        (Some(None::<(chrono::DateTime<chrono::Utc>, i64)>), true),
        move |(after, first)| {
            let pool = pool.clone();
            async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let rows = contacts::list(&pool, &contacts::ContactFilter::default(), after, CHUNK)
                    .await?;
                let mut out = String::new();
                if first {
                    out.push_str(EXPORT_HEADER);
                }
                for c in &rows {
                    out.push_str(&export_line(c));
                }
                let next = match rows.last() {
                    Some(last) if rows.len() as i64 == CHUNK => {
                        Some(Some((last.updated_at, last.id)))
                    }
                    _ => None,
                };
                Ok(Some((bytes::Bytes::from(out), (next, false))))
            }
        },
    )
}

fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_files_parse_with_every_column() {
        let csv = "\u{feff}number,name,tags,consent\n\
                   +919900000001,Asha,vip;North,opted_in\n\
                   \"+91 99000 00002\",\"Ravi, Jr.\",,opted_out\n\
                   \n\
                   +919900000003,,,\n";
        let lines = parse(csv.as_bytes()).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].number.as_str(), "+919900000001");
        assert_eq!(lines[0].tags, Some(vec!["north".into(), "vip".into()]));
        assert_eq!(lines[0].consent, Some(Consent::OptedIn));
        assert_eq!(lines[1].number.as_str(), "+919900000002");
        assert_eq!(lines[1].profile_name.as_deref(), Some("Ravi, Jr."));
        assert_eq!(lines[1].tags, None);
        assert_eq!((lines[2].line, lines[2].consent), (5, None));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let csv = "number,consent,tags\n\
                   +919900000001,opted_in,\n\
                   9900000002,,\n\
                   +919900000001,,\n\
                   +919900000004,maybe,\n\
                   +919900000005,,bad tag\n";
        let errors = parse(csv.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{errors:?}");
        assert!(errors[0].message.contains("E.164"), "{errors:?}");
        assert!(errors[1].message.contains("line 2"), "{errors:?}");
        assert!(errors[2].message.contains("consent"));
        assert!(errors[3].message.contains("tag"));
    }

    #[test]
    fn header_problems_are_line_one() {
        for csv in [
            "name\nAsha\n",
            "number,colour\n+919900000001,red\n",
            "number,number\n",
        ] {
            let e = parse(csv.as_bytes()).unwrap_err();
            assert_eq!(e[0].line, 1, "{csv:?}: {e:?}");
        }
        let export_columns = format!("{EXPORT_HEADER}+919900000001,Asha,opted_in,,,,vip\r\n");
        assert_eq!(
            parse(export_columns.as_bytes()).unwrap().len(),
            1,
            "an export imports"
        );
    }

    #[test]
    fn exports_quote_and_defuse_cells() {
        let now = chrono::Utc::now();
        let c = ContactRow {
            id: 1,
            number: "+919900000001".into(),
            wa_id: None,
            profile_name: Some("=HYPERLINK(\"x\"), \"Asha\"".into()),
            consent: "opted_in".into(),
            deauthorized_at: Some(now),
            first_inbound_at: None,
            last_inbound_at: None,
            tags: vec!["a".into(), "b".into()],
            created_at: now,
            updated_at: now,
        };
        let line = export_line(&c);
        assert_eq!(
            line,
            "+919900000001,\"'=HYPERLINK(\"\"x\"\"), \"\"Asha\"\"\",opted_in,yes,,,a;b\r\n"
        );
    }
}
