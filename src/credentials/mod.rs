//! Twilio credentials that change while wadash runs.
//!
//! Three sources, highest precedence first:
//! 1. **api** — set with `PUT /api/v1/settings/twilio`, stored in the database sealed with
//!    `WADASH_SECRET_KEY` ([`sealed`]); every instance on the database picks it up;
//! 2. **file** — the file named by `WADASH_TWILIO_CREDENTIALS_FILE` ([`file`]), re-read when
//!    it changes and on SIGHUP;
//! 3. **environment** — `TWILIO_*` (or `wadash.toml`), read at start.
//!
//! The auth tokens (primary and secondary) come together from the highest source that has a
//! primary token, the API key and secret together from the highest source that has a key, the
//! account SID from the highest source that has one. [`manager`] applies a change to the REST
//! client and to webhook validation without a restart.

pub mod file;
pub mod manager;
pub mod sealed;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Digest;

use crate::twilio::client::RestCredentials;

pub use crate::domain::credential_set::CredentialSet;
pub use manager::CredentialManager;

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Environment,
    File,
    Api,
}

/// The credentials in force, with where each group came from.
#[derive(Clone, Default)]
pub struct Effective {
    pub set: CredentialSet,
    pub account_source: Option<Source>,
    pub token_source: Option<Source>,
    pub api_key_source: Option<Source>,
}

impl Effective {
    /// Merges sources; later entries take precedence over earlier ones.
    pub fn merge(layers: &[(Source, &CredentialSet)]) -> Self {
        let mut out = Effective::default();
        for (source, set) in layers {
            if set.account_sid.is_some() {
                out.set.account_sid.clone_from(&set.account_sid);
                out.account_source = Some(*source);
            }
            if set.auth_token.is_some() {
                out.set.auth_token.clone_from(&set.auth_token);
                out.set
                    .auth_token_secondary
                    .clone_from(&set.auth_token_secondary);
                out.token_source = Some(*source);
            }
            if set.api_key.is_some() && set.api_secret.is_some() {
                out.set.api_key.clone_from(&set.api_key);
                out.set.api_secret.clone_from(&set.api_secret);
                out.api_key_source = Some(*source);
            }
        }
        out
    }

    /// Live mode needs an account and a REST credential.
    pub fn is_live(&self) -> bool {
        self.set.account_sid.is_some() && self.rest_credentials().is_some()
    }

    /// An API key and secret if there are, else the account SID and auth token.
    pub fn rest_credentials(&self) -> Option<RestCredentials> {
        let s = &self.set;
        match (&s.api_key, &s.api_secret, &s.account_sid, &s.auth_token) {
            (Some(key), Some(secret), _, _) => Some(RestCredentials {
                username: key.clone(),
                secret: secret.clone(),
            }),
            (_, _, Some(sid), Some(token)) => Some(RestCredentials {
                username: sid.clone(),
                secret: token.clone(),
            }),
            _ => None,
        }
    }

    /// The tokens webhook signatures are checked against, primary first.
    pub fn webhook_tokens(&self) -> Vec<SecretString> {
        [&self.set.auth_token, &self.set.auth_token_secondary]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// A digest of every value, to tell whether anything changed (never shown).
    pub fn fingerprint(&self) -> [u8; 32] {
        let s = &self.set;
        let mut h = sha2::Sha256::new();
        for v in [
            s.account_sid.as_deref(),
            s.auth_token.as_ref().map(|t| t.expose_secret()),
            s.auth_token_secondary.as_ref().map(|t| t.expose_secret()),
            s.api_key.as_deref(),
            s.api_secret.as_ref().map(|t| t.expose_secret()),
        ] {
            match v {
                Some(v) => {
                    h.update([1u8]);
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
                None => h.update([0u8]),
            }
        }
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(sid: Option<&str>, token: Option<&str>, secondary: Option<&str>) -> CredentialSet {
        CredentialSet {
            account_sid: sid.map(Into::into),
            auth_token: token.map(|t| SecretString::from(t.to_owned())),
            auth_token_secondary: secondary.map(|t| SecretString::from(t.to_owned())),
            api_key: None,
            api_secret: None,
        }
    }

    fn tokens(e: &Effective) -> Vec<String> {
        e.webhook_tokens()
            .iter()
            .map(|t| t.expose_secret().to_owned())
            .collect()
    }

    #[test]
    fn tokens_move_together_from_the_highest_source_that_has_one() {
        let env = set(Some("AC1"), Some("env-primary"), Some("env-secondary"));
        let file = set(None, Some("file-primary"), None);
        let e = Effective::merge(&[(Source::Environment, &env), (Source::File, &file)]);
        assert_eq!(
            tokens(&e),
            ["file-primary"],
            "the env secondary does not leak in"
        );
        assert_eq!(e.token_source, Some(Source::File));
        assert_eq!(e.account_source, Some(Source::Environment));
        assert_eq!(e.set.account_sid.as_deref(), Some("AC1"));

        let api = set(None, None, None);
        let e = Effective::merge(&[
            (Source::Environment, &env),
            (Source::File, &file),
            (Source::Api, &api),
        ]);
        assert_eq!(
            tokens(&e),
            ["file-primary"],
            "an empty source changes nothing"
        );
    }

    #[test]
    fn api_keys_are_preferred_for_rest_calls_but_never_sign_webhooks() {
        let mut s = set(Some("AC1"), Some("tok"), None);
        s.api_key = Some("SK1".into());
        s.api_secret = Some(SecretString::from("sec".to_owned()));
        let e = Effective::merge(&[(Source::Environment, &s)]);
        assert!(e.is_live());
        assert_eq!(e.rest_credentials().unwrap().username, "SK1");
        assert_eq!(tokens(&e), ["tok"]);
        assert!(!Effective::merge(&[(Source::File, &set(None, Some("t"), None))]).is_live());
    }

    #[test]
    fn fingerprint_changes_with_any_value_and_only_then() {
        let a = Effective::merge(&[(Source::File, &set(Some("AC1"), Some("t1"), None))]);
        let b = Effective::merge(&[(Source::Api, &set(Some("AC1"), Some("t1"), None))]);
        let c = Effective::merge(&[(Source::File, &set(Some("AC1"), Some("t1"), Some("t0")))]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        let ok = set(
            Some("AC0123456789abcdef0123456789abcdef"),
            Some(" tok "),
            None,
        )
        .validated()
        .unwrap();
        assert_eq!(ok.auth_token.unwrap().expose_secret(), "tok");
        assert!(set(Some("ACshort"), None, None).validated().is_err());
        assert!(set(None, None, Some("x")).validated().is_err());
        assert!(set(None, Some("a b"), None).validated().is_err());
        let mut s = set(None, None, None);
        s.api_key = Some("SK1".into());
        assert!(s.validated().is_err(), "a key without its secret");
        assert!(
            format!("{:?}", set(None, Some("hidden"), None))
                .find("hidden")
                .is_none()
        );
    }
}
