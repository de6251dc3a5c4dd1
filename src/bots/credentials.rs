//! Where a cloud bot's credentials come from — entered with the connection or found by the
//! provider's standard chain — and, when a chain finds none, what it looked at (names and
//! paths only, never a value).

use crate::domain::bot::{BotConfig, BotKind};

/// A cloud bot's credential source (the API's `credentials`, the admin page's line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// Lex: the connection's `access_key_id` / `secret_access_key`.
    AccessKeyEntered,
    /// Lex without a key pair: aws-config's default credential chain.
    AwsDefaultChain,
    /// Dialogflow: the connection's `service_account_json`.
    ServiceAccountEntered,
    /// Dialogflow without a key: google-cloud-auth's application-default credentials.
    ApplicationDefault,
}

impl CredentialSource {
    /// What the admin page and the API say.
    pub fn label(self) -> &'static str {
        match self {
            CredentialSource::AccessKeyEntered => "access key entered",
            CredentialSource::AwsDefaultChain => "AWS default chain",
            CredentialSource::ServiceAccountEntered => "service-account JSON entered",
            CredentialSource::ApplicationDefault => "application default credentials",
        }
    }

    /// The source of a stored connection of `kind` with the secrets `secrets_set` (names;
    /// `"(sealed)"` when stored but unreadable here, which counts as entered). `None` for the
    /// demo bot, which needs no credentials.
    pub fn of_stored(kind: BotKind, secrets_set: &[String]) -> Option<Self> {
        let entered = |name: &str| secrets_set.iter().any(|s| s == name || s == "(sealed)");
        match kind {
            BotKind::LexV2 if entered("secret_access_key") => Some(Self::AccessKeyEntered),
            BotKind::LexV2 => Some(Self::AwsDefaultChain),
            BotKind::DialogflowCx | BotKind::DialogflowEs if entered("service_account_json") => {
                Some(Self::ServiceAccountEntered)
            }
            BotKind::DialogflowCx | BotKind::DialogflowEs => Some(Self::ApplicationDefault),
            BotKind::Demo => None,
        }
    }

    /// The source a configuration uses (the adapters' view, secrets in memory).
    pub fn of_config(config: &BotConfig) -> Option<Self> {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match config {
            BotConfig::LexV2(c) if given(&c.secret_access_key) => Some(Self::AccessKeyEntered),
            BotConfig::LexV2(_) => Some(Self::AwsDefaultChain),
            BotConfig::DialogflowCx(c) if given(&c.service_account_json) => {
                Some(Self::ServiceAccountEntered)
            }
            BotConfig::DialogflowEs(c) if given(&c.service_account_json) => {
                Some(Self::ServiceAccountEntered)
            }
            BotConfig::DialogflowCx(_) | BotConfig::DialogflowEs(_) => {
                Some(Self::ApplicationDefault)
            }
            BotConfig::Demo => None,
        }
    }
}

/// Reads one environment variable; the process environment in production
/// ([`process_env`]), explicit values in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as the SDKs' chains read it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn set_or_not(env: EnvLookup<'_>, name: &str) -> String {
    match env(name).filter(|v| !v.is_empty()) {
        Some(_) => format!("{name} set"),
        None => format!("{name} not set"),
    }
}

/// What aws-config's default chain looked at, in its order, for an error saying it found no
/// credentials: the environment, the shared files and profile, web identity, the container
/// endpoint, instance metadata. Variable names and file paths, never a value of a secret.
pub fn aws_chain_looked_at(env: EnvLookup<'_>) -> String {
    let home = env("HOME").unwrap_or_else(|| "~".into());
    let credentials_file =
        env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| format!("{home}/.aws/credentials"));
    let config_file = env("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
    let profile = env("AWS_PROFILE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".into());
    let imds = if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)".to_owned()
    } else {
        "EC2 instance metadata".to_owned()
    };
    format!(
        "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: {}, {}), profile {profile:?} \
         in {credentials_file} and {config_file}, web identity ({}), the ECS container \
         endpoint ({}, {}) and {imds}",
        set_or_not(env, "AWS_ACCESS_KEY_ID"),
        set_or_not(env, "AWS_SECRET_ACCESS_KEY"),
        set_or_not(env, "AWS_WEB_IDENTITY_TOKEN_FILE"),
        set_or_not(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        set_or_not(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    )
}

/// What google-cloud-auth's application-default credentials look at, in its order:
/// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's file, else the metadata server.
pub fn google_adc_looked_at(env: EnvLookup<'_>) -> String {
    let home = env("HOME").unwrap_or_else(|| "~".into());
    let metadata = env("GCE_METADATA_HOST")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "metadata.google.internal".into());
    let gcloud = format!("{home}/.config/gcloud/application_default_credentials.json");
    match env("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        Some(path) => format!("GOOGLE_APPLICATION_CREDENTIALS ({path})"),
        None => format!(
            "GOOGLE_APPLICATION_CREDENTIALS (not set), gcloud's file {gcloud} and the metadata \
             server {metadata}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_source_follows_what_was_entered() {
        let none: Vec<String> = Vec::new();
        let key = vec!["secret_access_key".to_owned()];
        let sa = vec!["service_account_json".to_owned()];
        let sealed = vec!["(sealed)".to_owned()];
        assert_eq!(
            CredentialSource::of_stored(BotKind::LexV2, &key),
            Some(CredentialSource::AccessKeyEntered)
        );
        assert_eq!(
            CredentialSource::of_stored(BotKind::LexV2, &none),
            Some(CredentialSource::AwsDefaultChain)
        );
        assert_eq!(
            CredentialSource::of_stored(BotKind::DialogflowEs, &sa),
            Some(CredentialSource::ServiceAccountEntered)
        );
        assert_eq!(
            CredentialSource::of_stored(BotKind::DialogflowCx, &sealed),
            Some(CredentialSource::ServiceAccountEntered)
        );
        assert_eq!(
            CredentialSource::of_stored(BotKind::DialogflowCx, &none).map(CredentialSource::label),
            Some("application default credentials")
        );
        assert_eq!(CredentialSource::of_stored(BotKind::Demo, &none), None);
    }

    #[test]
    fn what_the_chains_looked_at_names_places_never_values() {
        let env = env_of(&[
            ("HOME", "/home/w"),
            ("AWS_ACCESS_KEY_ID", "AKIDSECRETISH"),
            ("AWS_PROFILE", "bots"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let aws = aws_chain_looked_at(&env);
        assert!(aws.contains("AWS_ACCESS_KEY_ID set"), "{aws}");
        assert!(aws.contains("AWS_SECRET_ACCESS_KEY not set"), "{aws}");
        assert!(
            aws.contains("profile \"bots\" in /home/w/.aws/credentials"),
            "{aws}"
        );
        assert!(
            aws.contains("disabled by AWS_EC2_METADATA_DISABLED"),
            "{aws}"
        );
        assert!(!aws.contains("AKIDSECRETISH"), "{aws}");

        let google = google_adc_looked_at(&env_of(&[("HOME", "/home/w")]));
        assert!(
            google.contains("/home/w/.config/gcloud/application_default_credentials.json"),
            "{google}"
        );
        assert!(google.contains("metadata.google.internal"), "{google}");
        let google = google_adc_looked_at(&env_of(&[(
            "GOOGLE_APPLICATION_CREDENTIALS",
            "/etc/wadash/sa.json",
        )]));
        assert_eq!(
            google,
            "GOOGLE_APPLICATION_CREDENTIALS (/etc/wadash/sa.json)"
        );
    }
}
