//! The credentials file named by `WADASH_TWILIO_CREDENTIALS_FILE`: TOML with any of
//! `account_sid`, `auth_token`, `auth_token_secondary`, `api_key`, `api_secret`. A secret
//! manager or a rotation script rewrites it; wadash notices within the poll interval, or at
//! once on SIGHUP.

use std::path::Path;

use super::CredentialSet;

/// Reads and validates the file. The error names the file and what is wrong, never a value.
pub fn read(path: &Path) -> anyhow::Result<CredentialSet> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<CredentialSet, String> {
    let set: CredentialSet = toml::from_str(text).map_err(|e| {
        // toml's message quotes the offending line, which may hold a secret: keep only
        // the first line of the explanation.
        let msg = e.message().lines().next().unwrap_or("invalid TOML").to_owned();
        format!("{msg} (expected keys: account_sid, auth_token, auth_token_secondary, api_key, api_secret)")
    })?;
    set.validated()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn parses_the_documented_keys() {
        let s = parse(
            "account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"new\"\nauth_token_secondary = \"old\"\n",
        )
        .unwrap();
        assert_eq!(s.auth_token.unwrap().expose_secret(), "new");
        assert_eq!(s.auth_token_secondary.unwrap().expose_secret(), "old");
    }

    #[test]
    fn errors_never_quote_a_secret() {
        for bad in [
            "auth_token = \"s3cr3t-value\"\nauth_tokn = \"s3cr3t-value\"",
            "auth_token = s3cr3t-value",
            "auth_token = \"s3cr3t value\"",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }
}
