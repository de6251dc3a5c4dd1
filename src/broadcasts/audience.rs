//! Who a broadcast goes to: numbers pasted or uploaded (with per-recipient template
//! variables from CSV columns), contacts with a tag, or every opted-in contact; and who is
//! left out, and why.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::PhoneNumber;
use crate::sending::policy;
use crate::storage::broadcasts::NewRecipient;
use crate::storage::contacts::Recipient;

use super::Audience;

/// Largest audience accepted in one broadcast.
pub const MAX_RECIPIENTS: usize = 200_000;

/// A number as given, with the line it came from and its own template variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub line: u64,
    pub raw: String,
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A recipient left out, and why: `invalid: …`, `duplicate`, or a send-policy code
/// (`recipient_opted_out`, `recipient_deauthorized`, `recipient_number_changed`,
/// `outside_service_window`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Excluded {
    pub number: String,
    pub reason: String,
}

/// `audience` in an API request: exactly one of the fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    pub numbers: Option<Vec<String>>,
    /// CSV text with a `number` column; other columns are per-recipient template variables.
    pub csv: Option<String>,
    pub tag: Option<String>,
    pub all_opted_in: Option<bool>,
}

/// The audience an API request names, or what is wrong with it.
pub fn parse_audience(a: AudienceBody) -> Result<Audience, String> {
    let given = [
        a.numbers.is_some(),
        a.csv.is_some(),
        a.tag.is_some(),
        a.all_opted_in == Some(true),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        return Err(
            "audience must be exactly one of {numbers: [...]}, {csv: \"...\"}, {tag: \"...\"}, {all_opted_in: true}"
                .into(),
        );
    }
    if let Some(numbers) = a.numbers {
        let listed = listed(numbers);
        if listed.len() > MAX_RECIPIENTS {
            return Err(format!(
                "a broadcast goes to at most {MAX_RECIPIENTS} numbers"
            ));
        }
        return Ok(Audience::Listed(listed));
    }
    if let Some(csv) = a.csv {
        return parse_csv(csv.as_bytes()).map(Audience::Listed);
    }
    if let Some(tag) = a.tag {
        return Ok(Audience::Tag(tag));
    }
    Ok(Audience::AllOptedIn)
}

/// Numbers in the order given, each on its own line.
pub fn listed(numbers: Vec<String>) -> Vec<Listed> {
    numbers
        .into_iter()
        .enumerate()
        .map(|(i, raw)| Listed {
            line: i as u64 + 1,
            raw,
            variables: None,
        })
        .collect()
}

/// Whether `line` is a CSV header: one of its cells is `number` or `phone` (in any case,
/// perhaps quoted), wherever it stands (`first_name,phone,order_no`).
pub fn is_csv_header(line: &str) -> bool {
    line.split(',').any(|cell| {
        let cell = cell.trim().trim_matches('"').trim();
        cell.eq_ignore_ascii_case("number") || cell.eq_ignore_ascii_case("phone")
    })
}

/// Numbers pasted as text: one per line, or separated by commas or semicolons. A first line
/// naming a `number` (or `phone`) column is a CSV header (see [`parse_csv`]).
pub fn parse_pasted(text: &str) -> Result<Vec<Listed>, String> {
    let first = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .next()
        .unwrap_or("");
    if is_csv_header(first) {
        return parse_csv(text.as_bytes());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for part in line.split([',', ';']) {
            let part = part.trim();
            if !part.is_empty() {
                out.push(Listed {
                    line: i as u64 + 1,
                    raw: part.to_owned(),
                    variables: None,
                });
            }
        }
    }
    check_size(out)
}

/// A CSV file with a `number` column; every other column is a template variable named by its
/// header (`1`, `2`, … for Twilio's numbered placeholders, or any name).
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<Listed>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Line ends as `\n` alone: the csv crate counts a `\r\n` (a spreadsheet's export, or a
    // browser re-posting a form) wrongly, and the rows refused are named by their line.
    let unified;
    let bytes = if bytes.contains(&b'\r') {
        unified = unify_line_ends(bytes);
        unified.as_slice()
    } else {
        bytes
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("the header row cannot be read: {e}"))?
        .clone();
    let number_col = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("number") || h.eq_ignore_ascii_case("phone"))
        .ok_or("the CSV needs a number column")?;
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("line {}: not valid CSV: {e}", i + 2))?;
        let raw = record.get(number_col).unwrap_or("").to_owned();
        if raw.is_empty() && record.iter().all(str::is_empty) {
            continue;
        }
        let mut vars = serde_json::Map::new();
        for (j, h) in headers.iter().enumerate() {
            if j != number_col
                && let Some(v) = record.get(j).filter(|v| !v.is_empty())
            {
                vars.insert(h.to_owned(), serde_json::Value::String(v.to_owned()));
            }
        }
        out.push(Listed {
            line: record.position().map_or(i as u64 + 2, |p| p.line()),
            raw,
            variables: (!vars.is_empty()).then_some(vars),
        });
    }
    check_size(out)
}

/// `\r\n` and a lone `\r` as `\n`.
fn unify_line_ends(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.push(b'\n');
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn check_size(v: Vec<Listed>) -> Result<Vec<Listed>, String> {
    if v.len() > MAX_RECIPIENTS {
        return Err(format!(
            "a broadcast goes to at most {MAX_RECIPIENTS} numbers, got {}",
            v.len()
        ));
    }
    Ok(v)
}

/// Rows whose variables are refused are listed up to this many; the rest are counted.
const SHOWN_ROWS: usize = 5;

/// Every listed recipient's template variables (its own over the shared ones) give a value
/// to each placeholder any row fills: a CSV cell left empty where other rows have one, with
/// no value for everyone, would leave that recipient's placeholder unfilled. Without a
/// template (`template` false) the CSV may hold no variable columns at all: only a template
/// has placeholders. Refused with the rows that are wrong (line and number).
pub fn check_variables(
    shared: Option<&serde_json::Map<String, serde_json::Value>>,
    listed: &[Listed],
    template: bool,
) -> Result<(), String> {
    let mut columns: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
    for l in listed {
        columns.extend(l.variables.iter().flat_map(|v| v.keys()));
    }
    if columns.is_empty() {
        return Ok(());
    }
    if !template {
        let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
        return Err(format!(
            "the CSV's columns {} are template variables, but no template (content SID) is chosen: free-form text has no placeholders to fill; choose the template, \
             or remove the columns",
            names.join(", ")
        ));
    }
    let mut bad = Vec::new();
    let mut count = 0usize;
    for l in listed {
        let mut merged = shared.cloned().unwrap_or_default();
        if let Some(own) = &l.variables {
            merged.extend(own.clone());
        }
        for c in &columns {
            merged
                .entry((*c).clone())
                .or_insert_with(|| serde_json::Value::String(String::new()));
        }
        if let Err(e) = crate::domain::message_text::check_variables(&merged) {
            count += 1;
            if bad.len() < SHOWN_ROWS {
                bad.push(format!("line {} ({}): {e}", l.line, l.raw));
            }
        }
    }
    if count == 0 {
        return Ok(());
    }
    let more = count - bad.len();
    Err(format!(
        "{count} {} cannot fill the template: {}{}",
        if count == 1 { "row" } else { "rows" },
        bad.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Valid, distinct numbers in the order given; the rest excluded with the reason.
pub fn normalize(
    listed: Vec<Listed>,
) -> (Vec<(PhoneNumber, Option<serde_json::Value>)>, Vec<Excluded>) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut valid = Vec::new();
    let mut excluded = Vec::new();
    for l in listed {
        match PhoneNumber::parse(&l.raw) {
            Err(e) => excluded.push(Excluded {
                number: l.raw,
                reason: format!("invalid (line {}): {e}", l.line),
            }),
            Ok(n) => {
                if let Some(first) = seen.get(n.as_str()) {
                    excluded.push(Excluded {
                        number: n.to_string(),
                        reason: format!("duplicate of line {first}"),
                    });
                } else {
                    seen.insert(n.as_str().to_owned(), l.line);
                    valid.push((n, l.variables.map(serde_json::Value::Object)));
                }
            }
        }
    }
    (valid, excluded)
}

/// Splits numbers into recipients and exclusions by the send policy, with what wadash knows
/// about each (`known`, by number). `free_form` is true without a template.
pub fn apply_policy(
    numbers: Vec<(PhoneNumber, Option<serde_json::Value>)>,
    known: &BTreeMap<String, Recipient>,
    free_form: bool,
    now: DateTime<Utc>,
) -> (Vec<NewRecipient>, Vec<Excluded>) {
    let unknown = Recipient::default();
    let mut recipients = Vec::with_capacity(numbers.len());
    let mut excluded = Vec::new();
    for (n, variables) in numbers {
        let state = known.get(n.as_str()).unwrap_or(&unknown);
        match policy::check_recipient(n.as_str(), state, free_form, false, now) {
            Ok(_) => recipients.push(NewRecipient {
                number: n.as_str().to_owned(),
                variables,
            }),
            Err(refusal) => excluded.push(Excluded {
                number: n.as_str().to_owned(),
                reason: refusal.code().to_owned(),
            }),
        }
    }
    (recipients, excluded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::contacts::ContactRow;

    #[test]
    fn every_row_must_fill_the_placeholders_some_row_fills() {
        let rows = parse_csv(b"number,1,2\n+919900000001,Asha,Mon\n+919900000002,Ravi,\n").unwrap();
        let e = check_variables(None, &rows, true).unwrap_err();
        assert!(e.starts_with("1 row cannot fill"), "{e}");
        assert!(
            e.contains("line 3 (+919900000002)") && e.contains("{{2}}"),
            "{e}"
        );
        let shared = serde_json::json!({"2": "soon"});
        assert_eq!(check_variables(shared.as_object(), &rows, true), Ok(()));
        let e = check_variables(None, &rows, false).unwrap_err();
        assert!(
            e.contains("columns 1, 2") && e.contains("no template"),
            "{e}"
        );
        let plain = parse_pasted("+919900000001\n+919900000002").unwrap();
        assert_eq!(check_variables(None, &plain, false), Ok(()));
    }

    #[test]
    fn pasted_lists_take_lines_commas_and_semicolons() {
        let l = parse_pasted("+919900000001\n+919900000002, +919900000003;\n\n  +919900000004 ")
            .unwrap();
        let raws: Vec<&str> = l.iter().map(|x| x.raw.as_str()).collect();
        assert_eq!(
            raws,
            [
                "+919900000001",
                "+919900000002",
                "+919900000003",
                "+919900000004"
            ]
        );
        assert_eq!(l[3].line, 4);
    }

    #[test]
    fn csv_columns_become_per_recipient_variables() {
        let l = parse_csv(b"number,1,2\n+919900000001,Asha,Mon\n+919900000002,Ravi,\n").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            serde_json::Value::Object(l[0].variables.clone().unwrap()),
            serde_json::json!({"1": "Asha", "2": "Mon"})
        );
        assert_eq!(
            serde_json::Value::Object(l[1].variables.clone().unwrap()),
            serde_json::json!({"1": "Ravi"})
        );
        assert!(parse_csv(b"name\nAsha\n").is_err());
        for ends in ["\r\n", "\r", "\n"] {
            let text = format!("number,1{ends}+919900000001,Asha{ends}+919900000002,Ravi{ends}");
            let lines: Vec<u64> = parse_csv(text.as_bytes())
                .unwrap()
                .iter()
                .map(|l| l.line)
                .collect();
            assert_eq!(lines, [2, 3], "line ends {ends:?}");
        }
        let any_order =
            parse_pasted("first_name,Phone,order_no\nAsha,+919900000001,A-1\n").unwrap();
        assert_eq!(any_order[0].raw, "+919900000001");
        assert_eq!(
            serde_json::Value::Object(any_order[0].variables.clone().unwrap()),
            serde_json::json!({"first_name": "Asha", "order_no": "A-1"})
        );
        assert!(!is_csv_header("+919900000001, +919900000002"));
        let pasted = parse_pasted("number,1\n+919900000001,Asha\n").unwrap();
        assert!(
            pasted[0].variables.is_some(),
            "a pasted CSV keeps its columns"
        );
    }

    #[test]
    fn invalid_and_duplicate_numbers_are_listed_not_sent() {
        let l = parse_pasted("+919900000001\n9900000002\n+91 99000 00001\n+919900000003").unwrap();
        let (valid, excluded) = normalize(l);
        assert_eq!(valid.len(), 2);
        assert_eq!(excluded.len(), 2);
        assert!(
            excluded[0].reason.starts_with("invalid (line 2)"),
            "{excluded:?}"
        );
        assert_eq!(excluded[1].reason, "duplicate of line 1");
    }

    #[test]
    fn the_policy_excludes_opted_out_deauthorized_and_closed_windows() {
        let now = Utc::now();
        let contact = |n: &str, consent: &str, deauth: bool, hours_ago: Option<i64>| ContactRow {
            id: 1,
            number: n.into(),
            wa_id: None,
            profile_name: None,
            consent: consent.into(),
            deauthorized_at: deauth.then_some(now),
            first_inbound_at: None,
            last_inbound_at: hours_ago.map(|h| now - chrono::TimeDelta::hours(h)),
            tags: vec![],
            created_at: now,
            updated_at: now,
        };
        let mut known = BTreeMap::new();
        for (n, c, d, h) in [
            ("+919900000001", "opted_in", false, Some(1)),
            ("+919900000002", "opted_out", false, Some(1)),
            ("+919900000003", "opted_in", true, Some(1)),
            ("+919900000004", "opted_in", false, Some(30)),
        ] {
            known.insert(
                n.to_owned(),
                Recipient {
                    contact: Some(contact(n, c, d, h)),
                    retired: None,
                },
            );
        }
        let numbers: Vec<_> = [
            "+919900000001",
            "+919900000002",
            "+919900000003",
            "+919900000004",
            "+919900000005",
        ]
        .iter()
        .map(|n| (PhoneNumber::parse(n).unwrap(), None))
        .collect();
        let (r, e) = apply_policy(numbers.clone(), &known, true, now);
        let sent: Vec<&str> = r.iter().map(|x| x.number.as_str()).collect();
        assert_eq!(sent, ["+919900000001", "+919900000005"]);
        let reasons: Vec<&str> = e.iter().map(|x| x.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "recipient_opted_out",
                "recipient_deauthorized",
                "outside_service_window"
            ]
        );
        let (r, _) = apply_policy(numbers, &known, false, now);
        assert_eq!(r.len(), 3, "a template may go outside the window");
    }
}
