//! The country of an E.164 number, from its calling code: the key of Meta's rate card.
//!
//! Calling codes are a prefix code (no code is a prefix of another assigned code), except that
//! shared codes are split by the digits after them; the longest matching prefix wins. The
//! table covers the largest WhatsApp markets and their neighbours, not the whole ITU list:
//! any other number prices as `*` ("everywhere else"), which is how Meta's card groups the
//! rest of the world anyway.

use crate::domain::PhoneNumber;

/// The "everywhere else" country of the price table.
pub const ELSEWHERE: &str = "*";

/// (calling code without `+`, ISO 3166 alpha-2). The North American Numbering Plan (`1`) is
/// priced as the US: Meta prices US and Canada alike, and telling them apart needs the area
/// code list.
pub const CALLING_CODES: &[(&str, &str)] = &[
    ("1", "US"),
    ("7", "RU"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("36", "HU"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("58", "VE"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("93", "AF"),
    ("94", "LK"),
    ("98", "IR"),
    ("212", "MA"),
    ("213", "DZ"),
    ("216", "TN"),
    ("233", "GH"),
    ("234", "NG"),
    ("254", "KE"),
    ("351", "PT"),
    ("353", "IE"),
    ("380", "UA"),
    ("852", "HK"),
    ("880", "BD"),
    ("962", "JO"),
    ("965", "KW"),
    ("966", "SA"),
    ("968", "OM"),
    ("971", "AE"),
    ("972", "IL"),
    ("973", "BH"),
    ("974", "QA"),
    ("977", "NP"),
];

/// The country a number's calling code belongs to, or [`ELSEWHERE`].
pub fn of(number: &PhoneNumber) -> &'static str {
    let digits = number.as_str().trim_start_matches('+');
    CALLING_CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map_or(ELSEWHERE, |(_, country)| country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(n: &str) -> &'static str {
        of(&PhoneNumber::parse(n).unwrap())
    }

    #[test]
    fn the_largest_markets_are_known_by_their_calling_code() {
        for (number, want) in [
            ("+14155238886", "US"),
            ("+14165550100", "US"),
            ("+919900000001", "IN"),
            ("+5511987654321", "BR"),
            ("+6281234567890", "ID"),
            ("+5215512345678", "MX"),
            ("+4915123456789", "DE"),
            ("+447700900123", "GB"),
            ("+33612345678", "FR"),
            ("+393123456789", "IT"),
            ("+34612345678", "ES"),
            ("+31612345678", "NL"),
            ("+905321234567", "TR"),
            ("+79161234567", "RU"),
            ("+966501234567", "SA"),
            ("+971501234567", "AE"),
            ("+201001234567", "EG"),
            ("+2348031234567", "NG"),
            ("+27821234567", "ZA"),
            ("+923001234567", "PK"),
            ("+5491123456789", "AR"),
            ("+573001234567", "CO"),
            ("+972501234567", "IL"),
            ("+60123456789", "MY"),
            ("+6581234567", "SG"),
        ] {
            assert_eq!(country(number), want, "{number}");
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_unknown_codes_are_elsewhere() {
        // 2 alone is no code; 27 (ZA) and 234 (NG) share the leading 2.
        assert_eq!(country("+27821234567"), "ZA");
        assert_eq!(country("+2348031234567"), "NG");
        // 9 alone is no code: 972 is Israel, not 97-something or 9.
        assert_eq!(country("+972501234567"), "IL");
        assert_eq!(
            country("+3541234567"),
            ELSEWHERE,
            "Iceland is not in the table"
        );
        assert_eq!(
            country("+6791234567"),
            ELSEWHERE,
            "Fiji is not in the table"
        );
    }

    #[test]
    fn no_code_in_the_table_is_listed_twice() {
        let mut codes: Vec<&str> = CALLING_CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
