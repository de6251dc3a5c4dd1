//! People who use the dashboard: passwords, usernames, login throttling and the first admin.
//! Sessions live in `storage::sessions`; the page-side extractor in `routes::pages::session`.

pub mod admins;
pub mod bootstrap;
pub mod password;
pub mod throttle;

/// Lower-cases and checks a username: 1–64 of `a-z 0-9 . _ - @`.
pub fn normalize_username(raw: &str) -> Result<String, String> {
    let u = raw.trim().to_lowercase();
    if u.is_empty() || u.len() > 64 {
        return Err("a username has 1 to 64 characters".into());
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("a username may use letters, digits and . _ - @ only".into());
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_and_plain() {
        assert_eq!(normalize_username(" Ada.L@ops ").unwrap(), "ada.l@ops");
        for bad in ["", "a b", "<script>", &"x".repeat(65)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }
}
