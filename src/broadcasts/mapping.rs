//! Which CSV column, or which value for everyone, fills each placeholder of a template: the
//! mapping an operator chooses on the broadcast preview (or a program sends), checked against
//! the template's placeholders and the CSV's columns, applied to every row, and the first rows'
//! messages rendered with their own values. Plain data and pure functions: nothing here is
//! HTML or touches the database.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::audience::Listed;

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// The recipient's cell in this CSV column.
    Column(String),
    /// The same text for every recipient.
    Value(String),
}

/// Placeholder name (`1`, `2`, …) → where its value comes from.
pub type Mapping = BTreeMap<String, Source>;

/// A placeholder as people read it: `{{1}}`.
fn braced(name: &str) -> String {
    format!("{{{{{name}}}}}")
}

/// The placeholder a column's header names, if it names one: `1`, `{{1}}` or `{{ 1 }}`.
fn placeholder_named(header: &str) -> &str {
    header
        .trim()
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim()
}

/// The mapping to offer first: each placeholder filled by the column named after it (`1` or
/// `{{1}}`, see [`placeholder_named`]), when the CSV has one; the others left to choose.
pub fn default_for(placeholders: &[String], columns: &[String]) -> Mapping {
    placeholders
        .iter()
        .filter_map(|p| {
            columns
                .iter()
                .find(|c| placeholder_named(c).eq_ignore_ascii_case(p))
                .map(|c| (p.clone(), Source::Column(c.clone())))
        })
        .collect()
}

/// `given` kept for the template's `placeholders` only (a mapping made for another template
/// loses the rest), and completed with [`default_for`] where it says nothing.
pub fn settle(given: &Mapping, placeholders: &[String], columns: &[String]) -> Mapping {
    let mut out = default_for(placeholders, columns);
    for p in placeholders {
        if let Some(s) = given.get(p) {
            out.insert(p.clone(), s.clone());
        }
    }
    out
}

/// What is wrong with `m` for a template with `placeholders` and a CSV whose columns with a
/// value are `columns`, each naming its placeholder; empty when nothing is.
pub fn problems(m: &Mapping, placeholders: &[String], columns: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in placeholders {
        match m.get(p) {
            None => out.push(format!(
                "{} is not mapped: choose the CSV column that fills it, or a value for everyone",
                braced(p)
            )),
            Some(Source::Column(c)) if !columns.iter().any(|x| x == c) => out.push(format!(
                "{} is mapped to the column {c:?}, which the CSV does not have (or where every cell is empty); its columns are {}",
                braced(p),
                if columns.is_empty() {
                    "none but the number".to_owned()
                } else {
                    columns.join(", ")
                }
            )),
            Some(Source::Value(v)) if v.trim().is_empty() => out.push(format!(
                "{} is to be the same for everyone, but that value is empty: write it, or choose a column",
                braced(p)
            )),
            Some(_) => {}
        }
    }
    let known: BTreeSet<&String> = placeholders.iter().collect();
    for p in m.keys().filter(|p| !known.contains(p)) {
        out.push(format!(
            "the template has no placeholder {}: map only {}",
            braced(p),
            placeholders
                .iter()
                .map(|p| braced(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// The columns that hold a value in at least one row, by name.
pub fn columns_of(listed: &[Listed]) -> Vec<String> {
    let set: BTreeSet<&String> = listed
        .iter()
        .flat_map(|l| l.variables.iter().flat_map(|v| v.keys()))
        .collect();
    set.into_iter().cloned().collect()
}

/// One row's variables under `m`: each placeholder's cell (or value for everyone); a cell
/// left empty gives nothing, so the exact-placeholder check names the row.
pub fn row_variables(
    m: &Mapping,
    own: Option<&serde_json::Map<String, serde_json::Value>>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (p, source) in m {
        let value = match source {
            Source::Value(v) => Some(v.clone()),
            Source::Column(c) => own
                .and_then(|o| o.get(c))
                .and_then(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned),
        };
        if let Some(v) = value {
            out.insert(p.clone(), serde_json::Value::String(v));
        }
    }
    out
}

/// Every row with its variables replaced by the mapped ones (columns not mapped are dropped).
pub fn apply(m: &Mapping, listed: Vec<Listed>) -> Vec<Listed> {
    listed
        .into_iter()
        .map(|mut l| {
            let vars = row_variables(m, l.variables.as_ref());
            l.variables = (!vars.is_empty()).then_some(vars);
            l
        })
        .collect()
}

/// A piece of a rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The template's own text.
    Text(String),
    /// A placeholder filled with the recipient's value.
    Value(String),
    /// A placeholder nothing fills (named).
    Missing(String),
}

/// `text` with its `{{n}}` placeholders filled from `values` (those without a value, or with a
/// blank one, are [`Piece::Missing`]).
pub fn render(text: &str, values: &serde_json::Map<String, serde_json::Value>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let push_text = |out: &mut Vec<Piece>, s: &str| {
        if s.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(Piece::Text(t)) => t.push_str(s),
            _ => out.push(Piece::Text(s.to_owned())),
        }
    };
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        let simple = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !simple {
            push_text(&mut out, &rest[..open + 1]);
            rest = &rest[open + 1..];
            continue;
        }
        push_text(&mut out, &rest[..open]);
        let value = values
            .get(name)
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .filter(|v| !v.trim().is_empty());
        out.push(match value {
            Some(v) => Piece::Value(v),
            None => Piece::Missing(name.to_owned()),
        });
        rest = &after[close + 2..];
    }
    push_text(&mut out, rest);
    out
}

/// The text a template's preview renders: the body of its first content type that has one
/// (else a card's title), from Twilio's `types` object.
pub fn text_of(types: &serde_json::Value) -> String {
    let Some(types) = types.as_object() else {
        return String::new();
    };
    ["body", "title"]
        .iter()
        .find_map(|field| {
            types
                .values()
                .find_map(|def| def.get(field).and_then(|v| v.as_str()))
        })
        .unwrap_or_default()
        .to_owned()
}

/// One of the first recipients, with its message as it will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The CSV line.
    pub line: u64,
    /// The number as given.
    pub number: String,
    pub pieces: Vec<Piece>,
    /// The placeholders nothing fills for this recipient.
    pub missing: Vec<String>,
}

/// The first `n` rows of `listed` (already mapped) with `text` rendered for each, their own
/// variables over the `shared` ones.
pub fn samples(
    text: &str,
    listed: &[Listed],
    shared: Option<&serde_json::Map<String, serde_json::Value>>,
    n: usize,
) -> Vec<Sample> {
    listed
        .iter()
        .take(n)
        .map(|l| {
            let mut values = shared.cloned().unwrap_or_default();
            if let Some(own) = &l.variables {
                values.extend(own.clone());
            }
            let pieces = render(text, &values);
            let mut missing: Vec<String> = Vec::new();
            for p in &pieces {
                if let Piece::Missing(name) = p
                    && !missing.contains(name)
                {
                    missing.push(name.clone());
                }
            }
            Sample {
                line: l.line,
                number: l.raw.clone(),
                pieces,
                missing,
            }
        })
        .collect()
}

/// What the mapping step needs of a catalogued template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub sid: String,
    pub name: String,
    /// WhatsApp's status, verbatim.
    pub status: String,
    pub category: Option<String>,
    /// The text rendered per recipient (see [`text_of`]).
    pub text: String,
    /// Its placeholders, in number order.
    pub placeholders: Vec<String>,
    /// Sample values by placeholder, as hints.
    pub samples: BTreeMap<String, String>,
    /// The titles of its quick-reply buttons or list items, in order.
    pub buttons: Vec<String>,
}

/// Placeholders in number order (`1`, `2`, … `10`), any named ones after.
pub fn in_order(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().collect();
    v.sort_by_key(|n| (n.parse::<u64>().map_or((1, 0), |x| (0, x)), n.clone()));
    v.dedup();
    v
}

/// How many recipients the preview renders.
pub const SAMPLE_ROWS: usize = 5;

/// The mapping step for a template and a listed audience: the CSV's columns, the mapping in
/// force (`given` settled, or the default), what is wrong with it, and the first recipients'
/// messages under it. Without CSV columns there is nothing to map: the rows are rendered
/// with the variables for everyone alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub columns: Vec<String>,
    pub mapping: Mapping,
    pub problems: Vec<String>,
    pub samples: Vec<Sample>,
}

pub fn plan(
    t: &TemplateInfo,
    listed: &[Listed],
    shared: Option<&serde_json::Map<String, serde_json::Value>>,
    given: Option<&Mapping>,
) -> Plan {
    let columns = columns_of(listed);
    if columns.is_empty() {
        return Plan {
            samples: samples(&t.text, listed, shared, SAMPLE_ROWS),
            columns,
            mapping: Mapping::new(),
            problems: Vec::new(),
        };
    }
    let mapping = settle(
        &given.cloned().unwrap_or_default(),
        &t.placeholders,
        &columns,
    );
    let problems = problems(&mapping, &t.placeholders, &columns);
    let first: Vec<Listed> = listed.iter().take(SAMPLE_ROWS).cloned().collect();
    Plan {
        samples: samples(&t.text, &apply(&mapping, first), shared, SAMPLE_ROWS),
        columns,
        mapping,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn row(line: u64, raw: &str, vars: serde_json::Value) -> Listed {
        Listed {
            line,
            raw: raw.into(),
            variables: vars.as_object().cloned().filter(|m| !m.is_empty()),
        }
    }

    #[test]
    fn a_column_named_after_a_placeholder_is_chosen_first() {
        let m = default_for(&s(&["1", "2"]), &s(&["name", "{{2}}", "when"]));
        assert_eq!(m.len(), 1);
        assert_eq!(m["2"], Source::Column("{{2}}".into()));
        let m = default_for(&s(&["1"]), &s(&["1", "2"]));
        assert_eq!(m["1"], Source::Column("1".into()));
    }

    #[test]
    fn a_mapping_made_for_another_template_keeps_only_this_ones_placeholders() {
        let given: Mapping = [
            ("1".to_owned(), Source::Column("name".into())),
            ("3".to_owned(), Source::Value("x".into())),
        ]
        .into();
        let m = settle(&given, &s(&["1", "2"]), &s(&["name", "2"]));
        assert_eq!(m["1"], Source::Column("name".into()));
        assert_eq!(
            m["2"],
            Source::Column("2".into()),
            "the default fills the gap"
        );
        assert!(!m.contains_key("3"));
    }

    #[test]
    fn problems_name_the_placeholder() {
        let columns = s(&["name", "when"]);
        let m: Mapping = [
            ("1".to_owned(), Source::Column("nmae".into())),
            ("3".to_owned(), Source::Value("x".into())),
        ]
        .into();
        let p = problems(&m, &s(&["1", "2"]), &columns);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("{{1}} is mapped to the column \"nmae\"")
                && p[0].contains("name, when"),
            "{p:?}"
        );
        assert!(p[1].starts_with("{{2}} is not mapped"), "{p:?}");
        assert!(
            p[2].starts_with("the template has no placeholder {{3}}"),
            "{p:?}"
        );
        let m: Mapping = [
            ("1".to_owned(), Source::Column("name".into())),
            ("2".to_owned(), Source::Value("  ".into())),
        ]
        .into();
        let p = problems(&m, &s(&["1", "2"]), &columns);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("{{2}} is to be the same for everyone"));
        let m: Mapping = [
            ("1".to_owned(), Source::Column("name".into())),
            ("2".to_owned(), Source::Value("Monday".into())),
        ]
        .into();
        assert!(problems(&m, &s(&["1", "2"]), &columns).is_empty());
    }

    #[test]
    fn applying_puts_each_rows_cells_under_their_placeholders() {
        let listed = vec![
            row(
                2,
                "+919900000001",
                json!({"name": "Asha", "when": "Mon", "x": "drop"}),
            ),
            row(3, "+919900000002", json!({"name": "Ravi"})),
        ];
        let m: Mapping = [
            ("1".to_owned(), Source::Column("name".into())),
            ("2".to_owned(), Source::Column("when".into())),
            ("3".to_owned(), Source::Value("soon".into())),
        ]
        .into();
        let out = apply(&m, listed);
        assert_eq!(
            serde_json::Value::Object(out[0].variables.clone().unwrap()),
            json!({"1": "Asha", "2": "Mon", "3": "soon"})
        );
        assert_eq!(
            serde_json::Value::Object(out[1].variables.clone().unwrap()),
            json!({"1": "Ravi", "3": "soon"}),
            "an empty cell gives nothing, so the row is named by the placeholder check"
        );
        assert_eq!(columns_of(&out), s(&["1", "2", "3"]));
    }

    #[test]
    fn rendering_fills_values_and_flags_what_is_missing() {
        let vals = json!({"1": "<b>Asha</b>", "2": " "});
        let pieces = render(
            "Hi {{1}}, see you {{ 2 }} {{{x}}",
            vals.as_object().unwrap(),
        );
        assert_eq!(
            pieces,
            vec![
                Piece::Text("Hi ".into()),
                Piece::Value("<b>Asha</b>".into()),
                Piece::Text(", see you ".into()),
                Piece::Missing("2".into()),
                Piece::Text(" {".into()),
                Piece::Missing("x".into()),
            ]
        );
        let sample = samples(
            "Hi {{1}} on {{2}}",
            &[row(2, "+1", json!({"1": "Ada"}))],
            json!({"2": "Monday", "1": "friend"}).as_object(),
            5,
        );
        assert_eq!(sample[0].missing, Vec::<String>::new());
        assert_eq!(sample[0].pieces[1], Piece::Value("Ada".into()));
    }

    #[test]
    fn the_text_is_the_first_body() {
        assert_eq!(
            text_of(&json!({"twilio/quick-reply": {"body": "Hi {{1}}", "actions": []}})),
            "Hi {{1}}"
        );
        assert_eq!(
            text_of(&json!({"twilio/card": {"title": "Card {{1}}"}})),
            "Card {{1}}"
        );
        assert_eq!(text_of(&json!(null)), "");
    }

    #[test]
    fn the_mapping_reads_and_writes_as_the_api_documents_it() {
        let m: Mapping =
            serde_json::from_value(json!({"1": {"column": "first_name"}, "2": {"value": "Mon"}}))
                .unwrap();
        assert_eq!(m["1"], Source::Column("first_name".into()));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"1": {"column": "first_name"}, "2": {"value": "Mon"}})
        );
        assert!(serde_json::from_value::<Mapping>(json!({"1": {"col": "x"}})).is_err());
    }

    #[test]
    fn the_plan_maps_by_default_renders_the_first_rows_and_names_gaps() {
        let t = TemplateInfo {
            sid: "HX2".into(),
            name: "appointment_reminder".into(),
            status: "approved".into(),
            category: Some("utility".into()),
            text: "Your appointment with {{1}} is on {{2}}.".into(),
            placeholders: in_order(s(&["2", "1"])),
            samples: BTreeMap::new(),
            buttons: Vec::new(),
        };
        assert_eq!(t.placeholders, s(&["1", "2"]));
        let listed: Vec<Listed> = (0..7)
            .map(|i| {
                row(
                    i + 2,
                    &format!("+9199000000{i:02}"),
                    json!({"name": format!("N{i}"), "2": "Mon"}),
                )
            })
            .collect();
        let p = plan(&t, &listed, None, None);
        assert_eq!(p.columns, s(&["2", "name"]));
        assert_eq!(p.mapping.len(), 1, "only {{2}} has a column named after it");
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].starts_with("{{1}} is not mapped"));
        assert_eq!(p.samples.len(), SAMPLE_ROWS);
        assert_eq!(p.samples[0].missing, s(&["1"]));
        let given: Mapping = [("1".to_owned(), Source::Column("name".into()))].into();
        let p = plan(&t, &listed, None, Some(&given));
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.samples[4].pieces[1], Piece::Value("N4".into()));
        assert_eq!(p.samples[4].line, 6);
        let plain = vec![row(2, "+1", json!({}))];
        let p = plan(&t, &plain, json!({"1": "Dr Rao"}).as_object(), Some(&given));
        assert!(p.columns.is_empty() && p.mapping.is_empty() && p.problems.is_empty());
        assert_eq!(p.samples[0].missing, s(&["2"]));
        assert_eq!(
            in_order(s(&["10", "2", "b", "1", "a"])),
            s(&["1", "2", "10", "a", "b"])
        );
    }

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-zA-Z <>&{}]{1,8}"]
    }

    proptest! {
        /// Whatever the CSV and the mapping, applying keeps every row in order, gives each row
        /// only the mapped placeholders, and a placeholder's value is exactly its cell (or
        /// the value for everyone); rendering then shows every such value and flags the rest.
        #[test]
        fn mapping_keeps_rows_and_puts_exactly_the_mapped_cells(
            rows in proptest::collection::vec(proptest::collection::vec(cell(), 3), 0..12),
            choice in proptest::collection::vec(0usize..5, 1..4),
        ) {
            let headers = ["name", "when", "note"];
            let listed: Vec<Listed> = rows.iter().enumerate().map(|(i, cells)| {
                let vars: serde_json::Map<String, serde_json::Value> = headers.iter().zip(cells)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| ((*h).to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                Listed { line: i as u64 + 2, raw: format!("+9199000000{i:02}"),
                    variables: (!vars.is_empty()).then_some(vars) }
            }).collect();
            let m: Mapping = choice.iter().enumerate().map(|(i, c)| {
                let source = match c {
                    0..=2 => Source::Column(headers[*c].to_owned()),
                    3 => Source::Value("everyone".into()),
                    _ => Source::Column("absent".into()),
                };
                ((i + 1).to_string(), source)
            }).collect();
            let out = apply(&m, listed.clone());
            prop_assert_eq!(out.len(), listed.len());
            let text: String = m.keys().map(|p| format!("[{{{{{p}}}}}]")).collect();
            for (before, after) in listed.iter().zip(&out) {
                prop_assert_eq!(before.line, after.line);
                prop_assert_eq!(&before.raw, &after.raw);
                let vars = after.variables.clone().unwrap_or_default();
                for (p, source) in &m {
                    let expected = match source {
                        Source::Value(v) => Some(v.clone()),
                        Source::Column(c) => before.variables.as_ref()
                            .and_then(|o| o.get(c)).and_then(|v| v.as_str())
                            .filter(|v| !v.trim().is_empty()).map(str::to_owned),
                    };
                    prop_assert_eq!(vars.get(p).and_then(|v| v.as_str()).map(str::to_owned), expected.clone());
                    let pieces = render(&text, &vars);
                    match expected.filter(|v| !v.trim().is_empty()) {
                        Some(v) => prop_assert!(pieces.contains(&Piece::Value(v))),
                        None => prop_assert!(pieces.contains(&Piece::Missing(p.clone()))),
                    }
                }
                prop_assert!(vars.keys().all(|k| m.contains_key(k)));
            }
        }

        /// Rendering loses no text: with no values, the pieces put back together (missing
        /// placeholders as written) are the text again; with values, exactly the pieces that
        /// were missing for a known placeholder become its value.
        #[test]
        fn rendering_loses_no_text(text in "[a-z{}1-3]{0,40}") {
            let none = serde_json::Map::new();
            let bare = render(&text, &none);
            let back: String = bare.iter().map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Value(v) => v.clone(),
                Piece::Missing(n) => format!("{{{{{n}}}}}"),
            }).collect();
            prop_assert_eq!(&back, &text);
            let vals = json!({"1": "A", "2": "B"});
            let filled = render(&text, vals.as_object().unwrap());
            prop_assert_eq!(filled.len(), bare.len());
            for (b, f) in bare.iter().zip(&filled) {
                match b {
                    Piece::Missing(n) if n == "1" => prop_assert_eq!(f, &Piece::Value("A".into())),
                    Piece::Missing(n) if n == "2" => prop_assert_eq!(f, &Piece::Value("B".into())),
                    other => prop_assert_eq!(f, other),
                }
            }
        }
    }
}
