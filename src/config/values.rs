//! The raw `key → text` settings and how each kind of value is read from them: numbers,
//! durations, shares, amounts and secrets, each with an error that names the key.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use rust_decimal::Decimal;
use secrecy::SecretString;

/// Settings by file key; a blank value counts as absent.
pub struct Values<'a>(pub &'a BTreeMap<String, String>);

impl Values<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    pub fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(|s| SecretString::from(s.to_owned()))
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> anyhow::Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| anyhow!("{key} must be a number, got {s:?}")),
        }
    }

    pub fn millis(&self, key: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_millis(self.num(key, default)?))
    }

    pub fn secs(&self, key: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_secs(self.num(key, default)?))
    }

    /// A share between 0 and 1.
    pub fn share(&self, key: &str, default: f64) -> anyhow::Result<f64> {
        let v = self.num(key, default)?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&v),
            "{key} must be between 0 and 1, got {v}"
        );
        Ok(v)
    }

    /// A non-negative amount of money; `what` completes "{key} must be …" when it is not.
    pub fn amount(&self, key: &str, what: &str) -> anyhow::Result<Option<Decimal>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<Decimal>()
                .ok()
                .filter(|d| !d.is_sign_negative())
                .map(Some)
                .ok_or_else(|| anyhow!("{key} must be {what}, got {v:?}")),
        }
    }

    /// A comma-separated list, blanks dropped.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Raw settings from `(key, value)` pairs, for tests.
#[cfg(test)]
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_value_is_read_or_explained_by_its_key() {
        let m = map(&[
            ("n", " 7 "),
            ("blank", "  "),
            ("bad", "x"),
            ("share", "1.5"),
            ("money", "-1"),
            ("hosts", "a, ,b,"),
        ]);
        let v = Values(&m);
        assert_eq!(v.num("n", 1u32).unwrap(), 7);
        assert_eq!(v.num("blank", 3u32).unwrap(), 3);
        assert_eq!(v.get("blank"), None);
        assert!(
            v.num("bad", 1u32)
                .unwrap_err()
                .to_string()
                .contains("bad must be a number")
        );
        assert_eq!(v.secs("n", 1).unwrap(), Duration::from_secs(7));
        assert_eq!(
            v.millis("missing", 250).unwrap(),
            Duration::from_millis(250)
        );
        assert!(
            v.share("share", 0.5)
                .unwrap_err()
                .to_string()
                .contains("between 0 and 1")
        );
        assert_eq!(
            v.amount("money", "an amount").unwrap_err().to_string(),
            "money must be an amount, got \"-1\""
        );
        assert_eq!(v.amount("missing", "an amount").unwrap(), None);
        assert_eq!(v.list("hosts"), ["a", "b"]);
    }
}
