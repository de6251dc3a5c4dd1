//! One authenticated JSON request to any of Twilio's APIs, with the retry rules the REST
//! client documents: shared by the 2010 REST client and the Content API client, so both use
//! the same credentials (rotated in one place), timeouts and backoff.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;

use super::error::{TwilioError, without_url};
use super::{RestCredentials, RetryPolicy};

/// What a request carries.
pub(crate) enum Body<'a> {
    None,
    /// `application/x-www-form-urlencoded`, as the 2010 API takes it.
    Form(&'a [(&'static str, String)]),
    /// `application/json`, as the Content API takes it.
    Json(&'a serde_json::Value),
}

/// The HTTP client, the current credentials and the retry policy. Cheap to clone: clones
/// share the credentials.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) credentials: Arc<RwLock<RestCredentials>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
}

/// A configured base URL (`TWILIO_CONTENT_BASE`, …) checked: http(s) and parseable, without
/// a trailing slash. `api` names it in the error.
pub(crate) fn checked_base(base: &str, api: &str) -> Result<String, TwilioError> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| TwilioError::Invalid(format!("the {api} base URL is invalid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TwilioError::Invalid(format!(
            "the {api} base URL must be http(s), not {}",
            url.scheme()
        )));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

impl Transport {
    pub(crate) fn credentials(&self) -> RestCredentials {
        self.credentials.read().expect("credentials lock").clone()
    }

    /// Sends a request and decodes a JSON answer (see [`send`](Self::send)).
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Body<'_>,
        retry_on: &[StatusCode],
    ) -> Result<T, TwilioError> {
        let bytes = self.send(method, url, body, retry_on).await?;
        serde_json::from_slice(&bytes).map_err(|e| TwilioError::Decode(e.to_string()))
    }

    /// Sends a request and returns the body of a 2xx answer. `GET` and `DELETE` (idempotent)
    /// are retried on timeouts, transport errors, 429 and 5xx; other methods on 429, on the
    /// statuses in `retry_on`, and on a connection that failed before the request was written.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Body<'_>,
        retry_on: &[StatusCode],
    ) -> Result<bytes::Bytes, TwilioError> {
        let idempotent = method == Method::GET || method == Method::DELETE;
        let mut attempt = 0;
        loop {
            let creds = self.credentials();
            let mut req = self
                .http
                .request(method.clone(), url)
                .basic_auth(&creds.username, Some(creds.secret.expose_secret()));
            req = match body {
                Body::None => req,
                Body::Form(f) => req.form(f),
                Body::Json(j) => req.json(j),
            };
            let started = std::time::Instant::now();
            let result = req.send().await;
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            let resp = match result {
                Ok(r) => r,
                Err(e) if e.is_timeout() => {
                    if idempotent && !last {
                        tokio::time::sleep(self.retry.delay(attempt, None)).await;
                        continue;
                    }
                    return Err(TwilioError::Timeout(self.timeout));
                }
                Err(e) => {
                    // A connection that failed before the request was written is safe to retry.
                    if (idempotent || e.is_connect()) && !last {
                        tokio::time::sleep(self.retry.delay(attempt, None)).await;
                        continue;
                    }
                    return Err(TwilioError::Transport(without_url(&e)));
                }
            };
            let status = resp.status();
            tracing::debug!(%method, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, attempt, "twilio request");
            if status.is_success() {
                return resp
                    .bytes()
                    .await
                    .map_err(|e| TwilioError::Transport(without_url(&e)));
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (idempotent && status.is_server_error())
                || retry_on.contains(&status);
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = resp.bytes().await.unwrap_or_default();
            if retryable && !last {
                tracing::warn!(%method, status = status.as_u16(), attempt, "Twilio asked us to retry");
                tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
                continue;
            }
            return Err(TwilioError::from_answer(status, &bytes));
        }
    }
}
