//! The client's error, and Twilio's error JSON turned into text a person understands: the
//! code's meaning and what to do (from [`error_codes`]), or a hint for a 401.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::domain::error_codes;

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

    /// The error for Twilio's answer `status` with body `bytes` (Twilio's error JSON, or
    /// anything else: then the status's reason is the message).
    pub(super) fn from_answer(status: StatusCode, bytes: &[u8]) -> Self {
        let err: ErrorJson = serde_json::from_slice(bytes).unwrap_or(ErrorJson {
            code: None,
            message: None,
            more_info: None,
        });
        TwilioError::Api {
            status: status.as_u16(),
            code: err.code,
            message: err
                .message
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            more_info: err.more_info,
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

/// reqwest's error text includes the URL, which includes the account SID; keep the cause only.
pub(super) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "Twilio");
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use crate::twilio::client::tests::{client, text};

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
}
