//! Building a Google client for the Dialogflow adapters (CX and ES) the one way both use:
//! credentials (the entered service account, else application-default credentials), the
//! endpoint, the retry policy, and the errors of a credential source that found nothing.

use google_cloud_auth::credentials::Credentials;
use google_cloud_gax::client_builder::ClientBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use serde_json::Value;

use super::BotError;
use super::cloud::google_error;
use super::credentials::{CredentialSource, google_adc_looked_at, process_env};

/// How a Google client was built: which service (for messages) and where its credentials
/// come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GoogleClient {
    pub service: &'static str,
    pub source: CredentialSource,
}

impl GoogleClient {
    /// Configures `builder` (a `Sessions::builder()` of CX or ES): at most one retry, and only
    /// of a failure before the request was sent (DetectIntent is not idempotent); `endpoint`
    /// when given; the service account from `service_account_json` when given, else the
    /// SDK's application-default credentials. The caller builds it and maps a build failure
    /// with [`GoogleClient::build_error`].
    pub fn configure<F, Cr>(
        service: &'static str,
        builder: ClientBuilder<F, Cr>,
        endpoint: Option<String>,
        service_account_json: Option<&str>,
    ) -> Result<(ClientBuilder<F, Cr>, GoogleClient), BotError>
    where
        Credentials: Into<Cr>,
    {
        let mut builder = builder.with_retry_policy(Aip194Strict.with_attempt_limit(2));
        if let Some(url) = endpoint {
            builder = builder.with_endpoint(url);
        }
        let source = match service_account(service_account_json)? {
            Some(credentials) => {
                builder = builder.with_credentials(credentials);
                CredentialSource::ServiceAccountEntered
            }
            None => CredentialSource::ApplicationDefault,
        };
        Ok((builder, GoogleClient { service, source }))
    }

    /// A client that could not be built: with application-default credentials that is the
    /// credentials not found or not readable (e.g. `GOOGLE_APPLICATION_CREDENTIALS` naming a
    /// missing file), an auth error naming what was looked at.
    pub fn build_error(self, err: google_cloud_gax::client_builder::Error) -> BotError {
        match self.source {
            CredentialSource::ApplicationDefault => BotError::Auth(format!(
                "{}: application default credentials found none (looked at {}): {err}",
                self.service,
                google_adc_looked_at(&process_env)
            )),
            _ => BotError::Failed(format!("{}: {err}", self.service)),
        }
    }

    /// A failed call. An authentication failure with application-default credentials (no
    /// file, and the metadata server gave no token) names what was looked at.
    pub fn call_error(self, err: google_cloud_gax::error::Error) -> BotError {
        let no_token = err.is_authentication();
        match google_error(self.service, err) {
            BotError::Auth(detail)
                if no_token && self.source == CredentialSource::ApplicationDefault =>
            {
                BotError::Auth(format!(
                    "application default credentials gave no token (looked at {}): {detail}",
                    google_adc_looked_at(&process_env)
                ))
            }
            other => other,
        }
    }
}

/// Service-account credentials from the configured JSON key, or `None` for
/// application-default credentials.
fn service_account(json: Option<&str>) -> Result<Option<Credentials>, BotError> {
    let Some(json) = json.map(str::trim).filter(|j| !j.is_empty()) else {
        return Ok(None);
    };
    let key: Value = serde_json::from_str(json)
        .map_err(|e| BotError::Auth(format!("service_account_json is not JSON: {e}")))?;
    google_cloud_auth::credentials::service_account::Builder::new(key)
        .build()
        .map(Some)
        .map_err(|e| BotError::Auth(format!("service_account_json: {e}")))
}
