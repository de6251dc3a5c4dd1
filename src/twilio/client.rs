//! The Twilio REST client (API 2010-04-01): create, fetch and list messages, read the balance.
//!
//! One `reqwest::Client` with a base URL (`TWILIO_API_BASE`, so tests point it at Prism or a
//! local mock), a timeout, HTTP basic auth with the account SID and auth token or an API key
//! and secret, typed request and response structs, and Twilio's error JSON turned into
//! [`TwilioError::Api`] whose text a person understands.
//!
//! Retries: reads (`GET`) are retried on 429 and 5xx with exponential backoff and full jitter
//! (honouring `Retry-After`). Creating a message is retried only on 429 and 503, the answers
//! that mean Twilio did not take the request: Twilio has no idempotency key for messages, and
//! retrying after a 500 or a timeout could send the customer the same message twice.
//! Other 4xx are never retried.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::WhatsAppAddress;
use crate::domain::error_codes;

/// Twilio accepts at most ten media URLs per message.
pub const MAX_MEDIA: usize = 10;

/// The REST credential: username (account SID or API key SID) and its secret.
#[derive(Clone)]
pub struct RestCredentials {
    pub username: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for RestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay between zero and the exponential ceiling for `attempt`.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let millis = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::random_range(0..=millis))
    }
}

/// Where Twilio's REST API and its media URLs live.
pub const TWILIO_API: &str = "https://api.twilio.com";

/// A downloaded media file.
#[derive(Debug, Clone)]
pub struct MediaFile {
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Who a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A WhatsApp sender number (`whatsapp:+…`).
    From(WhatsAppAddress),
    /// A Messaging Service (`MG…`), which picks the sender.
    MessagingService(String),
}

/// A message to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateMessage {
    pub to: WhatsAppAddress,
    pub sender: Sender,
    pub body: Option<String>,
    pub media_urls: Vec<String>,
    /// An approved template (`HX…`) with its variables as a JSON object text.
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
}

/// A Twilio Message resource, as much of it as wadash uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MessageResource {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// Exact decimal as Twilio writes it (negative: a charge), e.g. `-0.00500`.
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub price_unit: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub num_media: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<MessageResource>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

/// Filters for listing messages.
#[derive(Debug, Clone, Default)]
pub struct ListMessages {
    pub to: Option<String>,
    pub from: Option<String>,
    /// Only messages sent on or after this day (`DateSent>=`, Twilio's granularity is a day).
    pub sent_on_or_after: Option<chrono::NaiveDate>,
    /// Page size asked of Twilio (1–1000).
    pub page_size: u32,
    /// Stop after this many pages (a guard against listing a whole account by mistake).
    pub max_pages: u32,
}

/// The account balance. Child (sub-)accounts carry no balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub account_sid: Option<String>,
    pub balance: Option<Decimal>,
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BalanceJson {
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    balance: Option<String>,
    #[serde(default)]
    currency: Option<String>,
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct ErrorJson {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TwilioError {
    /// Twilio answered with an error.
    #[error("{}", api_text(*.status, *.code, .message, .more_info.as_deref()))]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
        more_info: Option<String>,
    },
    #[error("Twilio did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach Twilio: {0}")]
    Transport(String),
    #[error("Twilio's answer could not be read: {0}")]
    Decode(String),
    /// Refused before anything was sent.
    #[error("{0}")]
    Invalid(String),
}

impl TwilioError {
    /// The Twilio error code, if Twilio gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            TwilioError::Api { code, .. } => *code,
            _ => None,
        }
    }
}

fn api_text(status: u16, code: Option<i64>, message: &str, more_info: Option<&str>) -> String {
    let mut s = match code {
        Some(c) => format!("Twilio refused the request (HTTP {status}, error {c}): {message}"),
        None => format!("Twilio refused the request (HTTP {status}): {message}"),
    };
    if let Some(info) = code
        .and_then(|c| i32::try_from(c).ok())
        .and_then(error_codes::lookup)
    {
        s.push_str(&format!(" — {} {}", info.meaning, info.action));
    } else if status == 401 {
        s.push_str(" — check TWILIO_ACCOUNT_SID and the auth token or API key.");
    }
    if let Some(url) = more_info {
        s.push_str(&format!(" ({url})"));
    }
    s
}

/// The REST client. Cheap to clone; credentials can be replaced while running.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: reqwest::Client,
    /// For media downloads only: follows no redirect by itself (`fetch_media` does).
    media_http: reqwest::Client,
    base_url: reqwest::Url,
    base: Arc<str>,
    account_sid: Arc<str>,
    credentials: Arc<RwLock<RestCredentials>>,
    status_callback: Option<Arc<str>>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl TwilioClient {
    /// `base` is e.g. `https://api.twilio.com`; `status_callback` is set on every created
    /// message (wadash passes `WADASH_PUBLIC_URL/sts`).
    pub fn new(
        base: &str,
        account_sid: &str,
        credentials: RestCredentials,
        status_callback: Option<String>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("wadash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Transport(e.to_string()))?;
        let base_url = reqwest::Url::parse(base)
            .map_err(|e| TwilioError::Invalid(format!("the Twilio base URL is invalid: {e}")))?;
        // Media redirects are followed by hand (`fetch_media`), so that the credentials are
        // decided for each hop.
        let media_http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("wadash/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TwilioError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            media_http,
            base_url,
            base: base.trim_end_matches('/').into(),
            account_sid: account_sid.into(),
            credentials: Arc::new(RwLock::new(credentials)),
            status_callback: status_callback.map(Into::into),
            retry,
            timeout,
        })
    }

    /// Switches to new credentials; requests started afterwards use them.
    pub fn set_credentials(&self, credentials: RestCredentials) {
        *self.credentials.write().expect("credentials lock") = credentials;
    }

    /// The base URL requests go to (Twilio, the simulator, or a test double).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    fn account_url(&self, tail: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{tail}",
            self.base, self.account_sid
        )
    }

    /// Creates (sends) a message. Returns Twilio's resource, whose `status` is usually
    /// `queued` or `accepted`; Twilio sends no callback for that first status.
    pub async fn create_message(
        &self,
        msg: &CreateMessage,
    ) -> Result<MessageResource, TwilioError> {
        self.create_message_with_callback(msg, self.status_callback.as_deref())
            .await
    }

    /// Like [`create_message`](Self::create_message) with another status callback URL.
    #[tracing::instrument(name = "twilio.create_message", skip_all)]
    pub async fn create_message_with_callback(
        &self,
        msg: &CreateMessage,
        status_callback: Option<&str>,
    ) -> Result<MessageResource, TwilioError> {
        let form = create_form(msg, status_callback)?;
        self.send_json(
            Method::POST,
            &self.account_url("Messages.json"),
            Some(&form),
            &[
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::SERVICE_UNAVAILABLE,
            ],
        )
        .await
    }

    #[tracing::instrument(name = "twilio.fetch_message", skip(self))]
    pub async fn fetch_message(&self, sid: &str) -> Result<MessageResource, TwilioError> {
        if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) || sid.is_empty() {
            return Err(TwilioError::Invalid(format!(
                "{sid:?} is not a message SID"
            )));
        }
        self.get_json(&self.account_url(&format!("Messages/{sid}.json")))
            .await
    }

    /// Lists messages matching `filter`, following `next_page_uri` up to `max_pages`.
    #[tracing::instrument(name = "twilio.list_messages", skip_all)]
    pub async fn list_messages(
        &self,
        filter: &ListMessages,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let mut query: Vec<(&str, String)> =
            vec![("PageSize", filter.page_size.clamp(1, 1000).to_string())];
        if let Some(to) = &filter.to {
            query.push(("To", to.clone()));
        }
        if let Some(from) = &filter.from {
            query.push(("From", from.clone()));
        }
        if let Some(day) = filter.sent_on_or_after {
            query.push(("DateSent>", day.format("%Y-%m-%d").to_string()));
        }
        let first = format!(
            "{}?{}",
            self.account_url("Messages.json"),
            serde_urlencoded::to_string(&query).map_err(|e| TwilioError::Invalid(e.to_string()))?
        );
        let mut url = first;
        let mut out = Vec::new();
        for _ in 0..filter.max_pages.max(1) {
            let page: MessagePage = self.get_json(&url).await?;
            out.extend(page.messages);
            match page.next_page_uri.filter(|u| !u.is_empty()) {
                // next_page_uri is a path on the same host.
                Some(next) if next.starts_with('/') => url = format!("{}{next}", self.base),
                Some(next) => {
                    return Err(TwilioError::Decode(format!(
                        "unexpected next_page_uri {next:?}"
                    )));
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Reads `Balance.json`. The balance is a string in Twilio's answer; it is parsed exactly.
    #[tracing::instrument(name = "twilio.fetch_balance", skip_all)]
    pub async fn fetch_balance(&self) -> Result<Balance, TwilioError> {
        let raw: BalanceJson = self.get_json(&self.account_url("Balance.json")).await?;
        let balance = match raw
            .balance
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(s.parse::<Decimal>().map_err(|_| {
                TwilioError::Decode(format!("balance {s:?} is not a decimal number"))
            })?),
        };
        Ok(Balance {
            account_sid: raw.account_sid,
            balance,
            currency: raw.currency,
        })
    }

    /// Downloads the media file `url` of message `message_sid`, as Twilio gave it in `MediaUrlN`,
    /// with the account's credentials, up to `max` bytes. Only the exact shape
    /// `https://api.twilio.com/2010-04-01/Accounts/{this account}/Messages/{message_sid}/Media/ME…`
    /// is fetched (see [`super::media`]), and from this client's base URL (Twilio, the
    /// simulator, or a test double). Twilio answers with a redirect to its CDN, which is
    /// followed without the credentials; a redirect anywhere else is refused.
    #[tracing::instrument(name = "twilio.fetch_media", skip(self, url, max))]
    pub async fn fetch_media(
        &self,
        message_sid: &str,
        url: &str,
        max: usize,
    ) -> Result<MediaFile, TwilioError> {
        let path = super::media::media_path(url, &self.account_sid, message_sid)
            .map_err(|e| TwilioError::Invalid(e.to_string()))?;
        let creds = self.credentials.read().expect("credentials lock").clone();
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| TwilioError::Invalid(e.to_string()))?;
        let mut credentials = true;
        let mut hops = 0;
        let mut resp = loop {
            let mut req = self.media_http.get(url.clone());
            if credentials {
                req = req.basic_auth(&creds.username, Some(creds.secret.expose_secret()));
            }
            let resp = req.send().await.map_err(|e| match e.is_timeout() {
                true => TwilioError::Timeout(self.timeout),
                false => TwilioError::Transport(without_url(&e)),
            })?;
            if !resp.status().is_redirection() {
                break resp;
            }
            hops += 1;
            if hops > super::media::MAX_REDIRECTS {
                return Err(TwilioError::Invalid("too many redirects".into()));
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| TwilioError::Invalid("a redirect without a Location".into()))?;
            let hop = super::media::next_hop(&url, location, &self.base_url)
                .map_err(TwilioError::Invalid)?;
            url = hop.url;
            credentials = hop.credentials;
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(TwilioError::Api {
                status: status.as_u16(),
                code: None,
                message: format!("media download failed: {status}"),
                more_info: None,
            });
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(TwilioError::Invalid(format!(
                "the media file is larger than {max} bytes"
            )));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TwilioError::Transport(without_url(&e)))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(TwilioError::Invalid(format!(
                    "the media file is larger than {max} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(MediaFile {
            content_type,
            bytes,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TwilioError> {
        self.send_json(Method::GET, url, None, &[]).await
    }

    /// Sends a request, retrying as the module documentation says. For `GET`, every 429 and
    /// 5xx is retryable; for other methods only the statuses in `retry_on`.
    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        form: Option<&[(&'static str, String)]>,
        retry_on: &[StatusCode],
    ) -> Result<T, TwilioError> {
        let idempotent = method == Method::GET;
        let mut attempt = 0;
        loop {
            let creds = self.credentials.read().expect("credentials lock").clone();
            let mut req = self
                .http
                .request(method.clone(), url)
                .basic_auth(&creds.username, Some(creds.secret.expose_secret()));
            if let Some(f) = form {
                req = req.form(f);
            }
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
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| TwilioError::Transport(without_url(&e)))?;
                return serde_json::from_slice(&bytes)
                    .map_err(|e| TwilioError::Decode(e.to_string()));
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
            let err: ErrorJson = serde_json::from_slice(&bytes).unwrap_or(ErrorJson {
                code: None,
                message: None,
                more_info: None,
            });
            return Err(TwilioError::Api {
                status: status.as_u16(),
                code: err.code,
                message: err
                    .message
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
                more_info: err.more_info,
            });
        }
    }
}

/// reqwest's error text includes the URL, which includes the account SID; keep the cause only.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "Twilio");
    }
    s
}

/// The exact form sent for `POST Messages.json` (validated before anything is sent). Public
/// so that the contract tests can show Prism the very bytes the client sends.
pub fn create_form(
    msg: &CreateMessage,
    status_callback: Option<&str>,
) -> Result<Vec<(&'static str, String)>, TwilioError> {
    let has_body = msg.body.as_deref().is_some_and(|b| !b.is_empty());
    if !has_body && msg.media_urls.is_empty() && msg.content_sid.is_none() {
        return Err(TwilioError::Invalid(
            "a message needs a body, a media URL or a template (content SID)".into(),
        ));
    }
    if msg.media_urls.len() > MAX_MEDIA {
        return Err(TwilioError::Invalid(format!(
            "Twilio accepts at most {MAX_MEDIA} media URLs, got {}",
            msg.media_urls.len()
        )));
    }
    for url in &msg.media_urls {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(TwilioError::Invalid(format!(
                "media URL {url:?} must be an http(s) URL Twilio can fetch"
            )));
        }
    }
    if msg.content_variables.is_some() && msg.content_sid.is_none() {
        return Err(TwilioError::Invalid(
            "content variables need a content SID".into(),
        ));
    }
    if let Some(vars) = &msg.content_variables
        && !serde_json::from_str::<serde_json::Value>(vars).is_ok_and(|v| v.is_object())
    {
        return Err(TwilioError::Invalid(
            "content variables must be a JSON object, e.g. {\"1\": \"Ada\"}".into(),
        ));
    }
    let mut form: Vec<(&'static str, String)> = vec![("To", msg.to.as_str().to_owned())];
    match &msg.sender {
        Sender::From(from) => form.push(("From", from.as_str().to_owned())),
        Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid.clone())),
    }
    if let Some(body) = msg.body.as_deref().filter(|b| !b.is_empty()) {
        form.push(("Body", body.to_owned()));
    }
    for url in &msg.media_urls {
        form.push(("MediaUrl", url.clone()));
    }
    if let Some(c) = &msg.content_sid {
        form.push(("ContentSid", c.clone()));
    }
    if let Some(v) = &msg.content_variables {
        form.push(("ContentVariables", v.clone()));
    }
    if let Some(cb) = status_callback {
        form.push(("StatusCallback", cb.to_owned()));
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const AC: &str = "AC00000000000000000000000000000000";

    fn client(server: &MockServer, timeout: Duration) -> TwilioClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        TwilioClient::new(
            &server.uri(),
            AC,
            RestCredentials {
                username: AC.into(),
                secret: SecretString::from("tok".to_owned()),
            },
            Some("https://wadash.example/sts".into()),
            timeout,
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
        )
        .unwrap()
    }

    fn text(to: &str, body: &str) -> CreateMessage {
        CreateMessage {
            to: WhatsAppAddress::parse(to).unwrap(),
            sender: Sender::From(WhatsAppAddress::parse("+14155238886").unwrap()),
            body: Some(body.into()),
            media_urls: vec![],
            content_sid: None,
            content_variables: None,
        }
    }

    fn message_json(status: &str) -> serde_json::Value {
        serde_json::json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": status, "to": "whatsapp:+919900000000",
            "from": "whatsapp:+14155238886", "body": "hi", "error_code": null, "price": null, "num_media": "0"})
    }

    #[tokio::test]
    async fn create_sends_twilios_form_with_basic_auth_and_status_callback() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{AC}/Messages.json")))
            .and(header(
                "authorization",
                "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDp0b2s=",
            ))
            .and(body_string_contains("To=whatsapp%3A%2B919900000000"))
            .and(body_string_contains("From=whatsapp%3A%2B14155238886"))
            .and(body_string_contains(
                "MediaUrl=https%3A%2F%2Fx%2Fa.png&MediaUrl=https%3A%2F%2Fx%2Fb.png",
            ))
            .and(body_string_contains(
                "StatusCallback=https%3A%2F%2Fwadash.example%2Fsts",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_json(message_json("queued")))
            .expect(1)
            .mount(&server)
            .await;
        let mut msg = text("+919900000000", "hi & <b>");
        msg.media_urls = vec!["https://x/a.png".into(), "https://x/b.png".into()];
        let m = client(&server, Duration::from_secs(5))
            .create_message(&msg)
            .await
            .unwrap();
        assert_eq!(m.status, "queued");
    }

    #[tokio::test]
    async fn create_retries_429_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).set_body_json(
                serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(message_json("accepted")))
            .expect(1)
            .mount(&server)
            .await;
        let m = client(&server, Duration::from_secs(5))
            .create_message(&text("+919900000000", "hi"))
            .await
            .unwrap();
        assert_eq!(m.status, "accepted");
    }

    #[tokio::test]
    async fn create_is_not_retried_after_a_500_so_it_cannot_send_twice() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_secs(5))
            .create_message(&text("+919900000000", "hi"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TwilioError::Api { status: 500, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn fetch_retries_500_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!(
                "/2010-04-01/Accounts/{AC}/Messages/SM0123456789abcdef0123456789abcdef.json"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(message_json("delivered")))
            .expect(1)
            .mount(&server)
            .await;
        let m = client(&server, Duration::from_secs(5))
            .fetch_message("SM0123456789abcdef0123456789abcdef")
            .await
            .unwrap();
        assert_eq!(m.status, "delivered");
    }

    #[tokio::test]
    async fn invalid_number_error_is_typed_and_explained_and_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21211, "message": "The 'To' number +1555 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_secs(5))
            .create_message(&text("+15550000000", "hi"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(21211));
        let text = err.to_string();
        assert!(
            text.contains("21211")
                && text.contains("E.164")
                && text.contains("twilio.com/docs/errors/21211"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn unauthorized_is_explained_and_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_secs(5))
            .fetch_balance()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TWILIO_ACCOUNT_SID"), "{err}");
    }

    #[tokio::test]
    async fn timeout_is_reported_and_a_create_is_not_resent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(message_json("queued"))
                    .set_delay(Duration::from_millis(500)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_millis(100))
            .create_message(&text("+919900000000", "hi"))
            .await
            .unwrap_err();
        assert_eq!(err, TwilioError::Timeout(Duration::from_millis(100)));
    }

    #[tokio::test]
    async fn list_follows_next_page_uri() {
        let server = MockServer::start().await;
        let base = format!("/2010-04-01/Accounts/{AC}/Messages.json");
        Mock::given(method("GET"))
            .and(path(base.clone()))
            .and(wiremock::matchers::query_param("Page", "1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"messages": [message_json("read")], "next_page_uri": null}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(base.clone()))
            .and(wiremock::matchers::query_param("To", "whatsapp:+919900000000"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "messages": [message_json("sent"), message_json("failed")],
                "next_page_uri": format!("{base}?To=whatsapp%3A%2B919900000000&PageSize=2&Page=1&PageToken=PAx")})))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        let all = client(&server, Duration::from_secs(5))
            .list_messages(&ListMessages {
                to: Some("whatsapp:+919900000000".into()),
                page_size: 2,
                max_pages: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        let statuses: Vec<&str> = all.iter().map(|m| m.status.as_str()).collect();
        assert_eq!(statuses, ["sent", "failed", "read"]);
    }

    #[tokio::test]
    async fn balance_is_parsed_exactly_and_child_accounts_have_none() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"account_sid": AC, "balance": "12.34567", "currency": "USD"}),
            ))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"account_sid": AC, "currency": null})),
            )
            .mount(&server)
            .await;
        let c = client(&server, Duration::from_secs(5));
        let b = c.fetch_balance().await.unwrap();
        assert_eq!(b.balance, Some("12.34567".parse::<Decimal>().unwrap()));
        assert_eq!(b.balance.unwrap().to_string(), "12.34567");
        assert_eq!(b.currency.as_deref(), Some("USD"));
        let child = c.fetch_balance().await.unwrap();
        assert_eq!(child.balance, None);
    }

    #[test]
    fn bad_messages_are_refused_before_sending() {
        let mut m = text("+919900000000", "");
        assert!(create_form(&m, None).is_err(), "nothing to send");
        m.media_urls = (0..11).map(|i| format!("https://x/{i}.png")).collect();
        assert!(
            create_form(&m, None)
                .unwrap_err()
                .to_string()
                .contains("at most 10")
        );
        m.media_urls = vec!["file:///etc/passwd".into()];
        assert!(create_form(&m, None).is_err());
        let mut t = text("+919900000000", "");
        t.content_sid = Some("HX123".into());
        t.content_variables = Some("[1]".into());
        assert!(create_form(&t, None).is_err());
        t.content_variables = Some("{\"1\":\"Ada\"}".into());
        let form = create_form(&t, None).unwrap();
        assert!(form.contains(&("ContentSid", "HX123".into())));
    }

    #[test]
    fn backoff_is_jittered_bounded_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for attempt in 0..10 {
            assert!(p.delay(attempt, None) <= Duration::from_millis(1000));
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_millis(1000)
        );
    }
}
