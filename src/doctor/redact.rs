//! Keeps secrets out of what `wadash doctor` prints: every configured secret (database
//! password, auth tokens, API secret, admin password, the token a probe is signed with; the
//! secret key is never put into any text) is replaced by `***` wherever it appears, even inside an error message.

use std::sync::Mutex;

use secrecy::ExposeSecret as _;

use crate::config::Settings;

#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Mutex<Vec<String>>,
}

impl Redactor {
    /// Knows every secret in `settings`.
    pub fn of(settings: &Settings) -> Self {
        let r = Self::default();
        if let Some(pw) = database_password(settings.database.url.expose_secret()) {
            r.add_str(&pw);
            r.add_str(&percent_decoded(&pw));
        }
        let c = &settings.twilio.credentials;
        for s in [&c.auth_token, &c.auth_token_secondary, &c.api_secret]
            .into_iter()
            .flatten()
        {
            r.add(s);
        }
        if let Some(pw) = &settings.admin_password {
            r.add(pw);
        }
        r
    }

    pub fn add(&self, secret: &secrecy::SecretString) {
        self.add_str(secret.expose_secret());
    }

    fn add_str(&self, secret: &str) {
        // Very short values would blank out ordinary words; none of wadash's secrets is this
        // short (tokens are 32 characters, passwords at least 12).
        if secret.len() >= 4 {
            self.secrets
                .lock()
                .expect("redactor lock")
                .push(secret.to_owned());
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn clean(&self, text: &str) -> String {
        let mut secrets = self.secrets.lock().expect("redactor lock").clone();
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for s in &secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// The password in `scheme://user:password@host/…`, as written (possibly percent-encoded).
fn database_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pw = userinfo.split_once(':')?.1;
    (!pw.is_empty()).then(|| pw.to_owned())
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn every_configured_secret_is_blanked_wherever_it_appears() {
        let mut v = std::collections::BTreeMap::new();
        v.insert(
            "database_url".to_owned(),
            "postgres://wadash:p%40ss-w0rd@db.example/wadash".to_owned(),
        );
        v.insert("twilio_account_sid".to_owned(), "AC123".to_owned());
        v.insert(
            "twilio_auth_token".to_owned(),
            "tok-abcdef-123456".to_owned(),
        );
        v.insert(
            "admin_password".to_owned(),
            "a-long-admin-password".to_owned(),
        );
        let s = Settings::from_values(&v).unwrap();
        let r = Redactor::of(&s);
        let text = "url postgres://wadash:p%40ss-w0rd@db, decoded p@ss-w0rd, token tok-abcdef-123456, pw a-long-admin-password, sid AC123";
        let clean = r.clean(text);
        for secret in [
            "p%40ss-w0rd",
            "p@ss-w0rd",
            "tok-abcdef-123456",
            "a-long-admin-password",
        ] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(clean.contains("sid AC123"), "not a secret: {clean}");
    }

    #[test]
    fn the_password_is_found_in_the_url() {
        assert_eq!(
            database_password("postgres://u:pw1@h:5432/db?sslmode=require").as_deref(),
            Some("pw1")
        );
        assert_eq!(database_password("postgres://u@h/db"), None);
        assert_eq!(database_password("postgres://h/db"), None);
        assert_eq!(percent_decoded("a%2Fb%zz"), "a/b%zz");
    }
}
