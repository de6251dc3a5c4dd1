//! The Twilio credentials one source gives (environment, credentials file, API): which of
//! them are set, and whether each has the shape Twilio gives it.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What one source says. Any field may be missing.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSet {
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default, with = "opt_secret")]
    pub auth_token: Option<SecretString>,
    #[serde(default, with = "opt_secret")]
    pub auth_token_secondary: Option<SecretString>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default, with = "opt_secret")]
    pub api_secret: Option<SecretString>,
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: bool| if o { "[set]" } else { "[unset]" };
        f.debug_struct("CredentialSet")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &set(self.auth_token.is_some()))
            .field(
                "auth_token_secondary",
                &set(self.auth_token_secondary.is_some()),
            )
            .field("api_key", &self.api_key)
            .field("api_secret", &set(self.api_secret.is_some()))
            .finish()
    }
}

impl CredentialSet {
    /// Drops empty strings and checks the shape of each value.
    pub fn validated(self) -> Result<Self, String> {
        fn clean(v: Option<String>) -> Option<String> {
            v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
        }
        fn clean_secret(v: Option<SecretString>) -> Option<SecretString> {
            v.and_then(|s| {
                let t = s.expose_secret().trim();
                (!t.is_empty()).then(|| SecretString::from(t.to_owned()))
            })
        }
        let out = Self {
            account_sid: clean(self.account_sid),
            auth_token: clean_secret(self.auth_token),
            auth_token_secondary: clean_secret(self.auth_token_secondary),
            api_key: clean(self.api_key),
            api_secret: clean_secret(self.api_secret),
        };
        if let Some(sid) = &out.account_sid
            && !(sid.len() == 34
                && sid.starts_with("AC")
                && sid[2..].bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(format!(
                "account_sid {sid:?} is not an account SID (AC followed by 32 characters)"
            ));
        }
        if let Some(key) = &out.api_key
            && !key.starts_with("SK")
        {
            return Err(format!("api_key {key:?} is not an API key SID (SK…)"));
        }
        if out.api_key.is_some() != out.api_secret.is_some() {
            return Err("api_key and api_secret go together".into());
        }
        if out.auth_token_secondary.is_some() && out.auth_token.is_none() {
            return Err("auth_token_secondary needs an auth_token".into());
        }
        for (name, token) in [
            ("auth_token", &out.auth_token),
            ("auth_token_secondary", &out.auth_token_secondary),
            ("api_secret", &out.api_secret),
        ] {
            if let Some(t) = token
                && (t.expose_secret().len() > 256
                    || t.expose_secret()
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()))
            {
                return Err(format!("{name} contains spaces or control characters"));
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.account_sid.is_none() && self.auth_token.is_none() && self.api_key.is_none()
    }
}

/// Serde for `Option<SecretString>` from plain strings.
mod opt_secret {
    use secrecy::SecretString;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
    }
}
