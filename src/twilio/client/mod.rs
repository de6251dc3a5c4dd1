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
//!
//! This file holds the client and its HTTP calls; the request and response types are in
//! `resources`, the error in `error`, the backoff in `retry` and the create form in
//! `message_form`, all re-exported here.

mod error;
mod message_form;
pub(crate) mod paging;
mod resources;
mod retry;
pub(crate) mod transport;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

pub use error::TwilioError;
pub use message_form::{MAX_MEDIA, create_form};
pub use resources::{Balance, CreateMessage, ListMessages, MediaFile, MessageResource, Sender};
pub use retry::RetryPolicy;

use error::without_url;
use resources::{BalanceJson, MessagePage};
use transport::{Body, Transport};

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

/// Where Twilio's REST API and its media URLs live.
pub const TWILIO_API: &str = "https://api.twilio.com";

/// The REST client. Cheap to clone; credentials can be replaced while running.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    transport: Transport,
    /// For media downloads only: follows no redirect by itself (`fetch_media` does).
    media_http: reqwest::Client,
    base_url: reqwest::Url,
    base: Arc<str>,
    account_sid: Arc<str>,
    status_callback: Option<Arc<str>>,
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
            transport: Transport {
                http,
                credentials: Arc::new(RwLock::new(credentials)),
                retry,
                timeout,
            },
            media_http,
            base_url,
            base: base.trim_end_matches('/').into(),
            account_sid: account_sid.into(),
            status_callback: status_callback.map(Into::into),
        })
    }

    /// Switches to new credentials; requests started afterwards use them.
    pub fn set_credentials(&self, credentials: RestCredentials) {
        *self
            .transport
            .credentials
            .write()
            .expect("credentials lock") = credentials;
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
        let creds = self.transport.credentials();
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
                true => TwilioError::Timeout(self.transport.timeout),
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
        let body = form.map_or(Body::None, Body::Form);
        self.transport.json(method, url, body, retry_on).await
    }

    /// A Content API client (templates) at `base` that shares this client's HTTP connections,
    /// credentials (rotated together), timeout and retry policy.
    pub fn content(
        &self,
        base: &str,
    ) -> Result<crate::twilio::content::ContentClient, TwilioError> {
        crate::twilio::content::ContentClient::new(base, self.transport.clone())
    }

    /// A Messaging API client (WhatsApp senders, Messaging Services) at `base`, sharing this
    /// client's connections, credentials, timeout and retry policy.
    pub fn messaging(
        &self,
        base: &str,
    ) -> Result<crate::twilio::messaging::MessagingClient, TwilioError> {
        crate::twilio::messaging::MessagingClient::new(base, self.transport.clone())
    }
}

/// A client for account `AC0…0` with a short backoff and three attempts, whose Content and
/// Messaging clients unit tests point at wiremock.
#[cfg(test)]
pub(crate) fn double() -> TwilioClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    TwilioClient::new(
        "http://127.0.0.1:9",
        "AC00000000000000000000000000000000",
        RestCredentials {
            username: "AC00000000000000000000000000000000".into(),
            secret: SecretString::from("tok".to_owned()),
        },
        None,
        Duration::from_secs(5),
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
    )
    .expect("a fixed client builds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WhatsAppAddress;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const AC: &str = "AC00000000000000000000000000000000";

    pub(super) fn client(server: &MockServer, timeout: Duration) -> TwilioClient {
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

    pub(super) fn text(to: &str, body: &str) -> CreateMessage {
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
}
