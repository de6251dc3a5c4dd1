//! The price table written back as CSV in the upload format, so that a download can be edited
//! and uploaded again: same header, same columns, one price per line.
//!
//! No field needs quoting: [`super::parse`] admits only dates, kind and category names,
//! two-letter countries, decimals and three-letter currencies, none of which holds a comma,
//! a quote or a line break. Amounts keep the scale they were uploaded with (`0.0050` stays
//! `0.0050`), so a download of an upload is the upload, less comments and blank lines.

use std::fmt::Write;

use super::{HEADER, Price};

/// The table as CSV text, header first, rows in the order given, `\n` line ends.
pub fn to_csv(prices: &[Price]) -> String {
    let mut out = String::with_capacity(HEADER.len() + 1 + prices.len() * 56);
    out.push_str(HEADER);
    out.push('\n');
    for p in prices {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            p.effective_from.format("%Y-%m-%d"),
            p.kind.as_str(),
            p.country,
            p.category,
            p.amount,
            p.currency
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{DEFAULT_TABLE, default_table, parse};

    #[test]
    fn the_default_table_written_out_is_the_shipped_file() {
        assert_eq!(to_csv(&default_table()), DEFAULT_TABLE);
    }

    #[test]
    fn a_written_table_parses_back_to_the_same_rows_with_their_scale() {
        let csv = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.0050,EUR
2025-07-01,meta_template,IN,marketing,0.0118,EUR
2026-01-01,meta_template,*,*,1,EUR
";
        let table = parse(csv.as_bytes()).unwrap();
        let written = to_csv(&table);
        assert_eq!(written, csv);
        assert_eq!(parse(written.as_bytes()).unwrap(), table);
    }
}
