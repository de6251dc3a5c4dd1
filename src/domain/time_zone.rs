//! Time zones by their IANA names ("Asia/Kolkata", "Europe/Berlin", "UTC"), as people type
//! them: for reminders' schedules and the zone each user reads times in.

use chrono_tz::Tz;

/// Parses an IANA zone name ("Asia/Kolkata", "Europe/Berlin", "UTC"); clear error otherwise.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a time zone is needed: an IANA name like Europe/Berlin or UTC".into());
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    // chrono-tz matches names exactly unless built with its case-insensitive feature (and
    // its build-time dependencies); a linear scan of ~600 names is cheap at the edge.
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            format!(
                "`{name}` is not a known time zone: use an IANA name like Asia/Kolkata, \
                 Europe/Berlin or UTC"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tz_takes_iana_names_and_rejects_the_rest() {
        assert_eq!(parse_tz("Asia/Kolkata").unwrap(), Tz::Asia__Kolkata);
        assert_eq!(parse_tz("Europe/Berlin").unwrap(), Tz::Europe__Berlin);
        assert_eq!(parse_tz(" UTC ").unwrap(), Tz::UTC);
        assert_eq!(
            parse_tz("america/new_york").unwrap(),
            Tz::America__New_York,
            "case does not matter"
        );
        assert!(
            parse_tz("Mars/Olympus_Mons")
                .unwrap_err()
                .contains("`Mars/Olympus_Mons` is not a known time zone")
        );
        assert!(parse_tz("").unwrap_err().contains("a time zone is needed"));
        assert!(parse_tz("+05:30").unwrap_err().contains("IANA name"));
    }
}
