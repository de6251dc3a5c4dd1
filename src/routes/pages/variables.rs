//! Template variables as rows of fields (placeholder, value) on the send and broadcast forms:
//! read from the posted form (`var_name_0`, `var_value_0`, …), assembled into the JSON object
//! the services take, and written back as rows. A form posted with the JSON text itself in
//! `content_variables` (a script) is still read as before.

use std::collections::HashMap;

/// Rows read from one form (forms.js adds rows up to this many).
pub const MAX_ROWS: usize = 20;
/// Empty rows always offered below the filled ones, for browsers without JavaScript.
const SPARE_ROWS: usize = 2;
/// Rows shown on a blank form.
const FIRST_ROWS: usize = 3;

/// One row of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRow {
    pub index: usize,
    pub name: String,
    pub value: String,
}

/// The variables as JSON text: from the filled rows in `fields` (the form's other fields), or,
/// when no row is filled, the raw `json` field; None when neither holds anything. A row with
/// a value and no placeholder, or a placeholder named twice, is refused with its row number.
pub fn assemble(fields: &HashMap<String, String>, json: &str) -> Result<Option<String>, String> {
    let mut vars = serde_json::Map::new();
    for i in 0..MAX_ROWS {
        let name = fields
            .get(&format!("var_name_{i}"))
            .map_or("", |n| n.trim());
        let value = fields
            .get(&format!("var_value_{i}"))
            .map_or("", String::as_str);
        let name = name.trim_start_matches("{{").trim_end_matches("}}").trim();
        if name.is_empty() {
            if !value.trim().is_empty() {
                return Err(format!(
                    "template variable row {} has a value but no placeholder: write its number (1 for {{{{1}}}})",
                    i + 1
                ));
            }
            continue;
        }
        if vars.contains_key(name) {
            return Err(format!(
                "the placeholder {{{{{name}}}}} is given twice (row {}): give each once",
                i + 1
            ));
        }
        vars.insert(name.to_owned(), serde_json::Value::String(value.to_owned()));
    }
    if !vars.is_empty() {
        return Ok(Some(serde_json::Value::Object(vars).to_string()));
    }
    let json = json.trim();
    Ok((!json.is_empty()).then(|| json.to_owned()))
}

/// The rows to show for the variables `json` (an object's entries, numbers in order), then
/// empty rows to fill.
pub fn rows(json: &str) -> Vec<VarRow> {
    let mut filled: Vec<(String, String)> = match serde_json::from_str(json.trim()) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => Vec::new(),
    };
    filled.sort_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.clone()));
    filled.truncate(MAX_ROWS);
    let total = (filled.len() + SPARE_ROWS).clamp(FIRST_ROWS, MAX_ROWS);
    (0..total)
        .map(|index| {
            let (name, value) = filled.get(index).cloned().unwrap_or_default();
            VarRow { index, name, value }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filled_rows_become_the_json_object_and_empty_rows_are_skipped() {
        let f = form(&[
            ("var_name_0", "1"),
            ("var_value_0", "Ada \"L\""),
            ("var_name_1", ""),
            ("var_value_1", ""),
            ("var_name_2", "{{2}}"),
            ("var_value_2", "Monday"),
        ]);
        let json = assemble(&f, "").unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v, serde_json::json!({"1": "Ada \"L\"", "2": "Monday"}));
    }

    #[test]
    fn without_rows_the_raw_json_field_is_read_and_bad_rows_are_refused() {
        assert_eq!(
            assemble(&form(&[]), " {\"1\":\"x\"} ").unwrap().as_deref(),
            Some("{\"1\":\"x\"}")
        );
        assert_eq!(assemble(&form(&[]), "  ").unwrap(), None);
        let e = assemble(&form(&[("var_value_1", "x")]), "").unwrap_err();
        assert!(e.contains("row 2"), "{e}");
        let twice = form(&[
            ("var_name_0", "1"),
            ("var_value_0", "a"),
            ("var_name_1", "1"),
            ("var_value_1", "b"),
        ]);
        assert!(assemble(&twice, "").unwrap_err().contains("twice"));
    }

    #[test]
    fn rows_show_the_variables_in_number_order_then_spare_rows() {
        let r = rows("{\"10\":\"j\",\"2\":\"b\",\"1\":\"a\"}");
        let names: Vec<&str> = r.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["1", "2", "10", "", ""]);
        assert_eq!(r[2].value, "j");
        assert_eq!(r[4].index, 4);
        assert_eq!(rows("").len(), 3);
        assert_eq!(rows("not json").len(), 3);
    }
}
