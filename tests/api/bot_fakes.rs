//! Local fakes of the cloud bot services (AWS Lex V2 runtime, Dialogflow CX and ES) over real
//! HTTP, for the adapters' tests and for black-box `/wa` tests that need a cloud bot.
//!
//! Each fake CHECKS what the official SDK sends before answering: Lex's `RecognizeText` path
//! and its SigV4 signature, recomputed here by hand from the test key pair (a wrong secret is
//! answered like AWS does, 403 `InvalidSignatureException`); Dialogflow's `:detectIntent` path
//! and its `Authorization: Bearer` token, a JWT that must carry an RS256 signature made with
//! the test service account's key (`tests/fixtures/TEST-ONLY-google-sa-key-*.pem`), else 401
//! `UNAUTHENTICATED`. What they answer is set with [`BotFake::reply`]; what they saw is in
//! [`BotFake::seen`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What a fake answers to the next requests.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with this JSON body, after this delay.
    Slow(Duration, Value),
    /// The service's error shape with this status and code (Lex: `x-amzn-ErrorType`;
    /// Google: `error.status`).
    Error(u16, &'static str),
    /// This status and body, verbatim (malformed answers).
    Raw(u16, &'static str),
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// Whether the request passed the path and signature / token checks, and why not.
    pub check: Result<(), String>,
}

/// A running fake: point a bot's `endpoint` at [`BotFake::uri`].
pub struct BotFake {
    pub server: MockServer,
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl BotFake {
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Sets what the fake answers from now on.
    pub fn reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

type Check = Box<dyn Fn(&Request) -> Result<(), String> + Send + Sync>;
type ErrorBody = fn(u16, &str) -> ResponseTemplate;

struct Responder {
    check: Check,
    error: ErrorBody,
    /// Status and code of a request that failed the checks.
    refused: (u16, &'static str),
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let check = (self.check)(request);
        self.seen.lock().unwrap().push(Seen {
            path: request.url.path().to_owned(),
            body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
            check: check.clone(),
        });
        if check.is_err() {
            return (self.error)(self.refused.0, self.refused.1);
        }
        match self.reply.lock().unwrap().clone() {
            Reply::Json(body) => ResponseTemplate::new(200).set_body_json(body),
            Reply::Slow(delay, body) => ResponseTemplate::new(200)
                .set_body_json(body)
                .set_delay(delay),
            Reply::Error(status, code) => (self.error)(status, code),
            Reply::Raw(status, body) => {
                ResponseTemplate::new(status).set_body_raw(body, "application/json")
            }
        }
    }
}

async fn start(
    check: Check,
    error: ErrorBody,
    refused: (u16, &'static str),
    reply: Reply,
) -> BotFake {
    let server = MockServer::start().await;
    let reply = Arc::new(Mutex::new(reply));
    let seen = Arc::new(Mutex::new(Vec::new()));
    Mock::given(any())
        .respond_with(Responder {
            check,
            error,
            refused,
            reply: reply.clone(),
            seen: seen.clone(),
        })
        .mount(&server)
        .await;
    BotFake {
        server,
        reply,
        seen,
    }
}

// ---------------------------------------------------------------------------------------
// AWS Lex V2

/// The bot and the key pair the Lex fake expects.
#[derive(Debug, Clone)]
pub struct LexExpect {
    pub bot_id: String,
    pub bot_alias_id: String,
    pub locale_id: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The session token of temporary credentials: when set, requests must carry it in a
    /// signed `x-amz-security-token` header; when not, they must not carry one.
    pub session_token: Option<String>,
}

impl LexExpect {
    pub fn test() -> Self {
        LexExpect {
            bot_id: "BOT0TEST01".into(),
            bot_alias_id: "ALIAS0TEST".into(),
            locale_id: "en_US".into(),
            region: "eu-west-1".into(),
            access_key_id: "AKIDTESTONLY0000".into(),
            secret_access_key: "test-only-secret-access-key/0000000000".into(),
            session_token: None,
        }
    }
}

/// A Lex V2 runtime that answers `RecognizeText` for `expect`'s bot when the request is
/// signed with its key pair.
pub async fn lex_fake(expect: LexExpect, reply: Reply) -> BotFake {
    let check: Check = Box::new(move |request| check_lex(&expect, request));
    start(check, lex_error, (403, "InvalidSignatureException"), reply).await
}

fn lex_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", code)
        .set_body_json(json!({"message": format!("fake {code}")}))
}

fn check_lex(e: &LexExpect, request: &Request) -> Result<(), String> {
    if request.method.as_str() != "POST" {
        return Err(format!("method {}", request.method));
    }
    let path = request.url.path();
    let prefix = format!(
        "/bots/{}/botAliases/{}/botLocales/{}/sessions/",
        e.bot_id, e.bot_alias_id, e.locale_id
    );
    let session = path
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("/text"))
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .ok_or_else(|| format!("unexpected path {path}"))?;
    let _ = session;
    verify_sigv4(e, request)
}

fn header<'a>(request: &'a Request, name: &str) -> Result<&'a str, String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("no {name} header"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// AWS Signature Version 4, recomputed from the request as received (docs: "Create a signed
/// AWS API request"): canonical request → string to sign → HMAC chain over the secret.
fn verify_sigv4(e: &LexExpect, request: &Request) -> Result<(), String> {
    let auth = header(request, "authorization")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = "";
    let mut signed_headers = "";
    let mut signature = "";
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let scope_parts: Vec<&str> = credential.splitn(2, '/').collect();
    let [key_id, scope] = scope_parts[..] else {
        return Err(format!("credential {credential}"));
    };
    if key_id != e.access_key_id {
        return Err(format!("access key {key_id}"));
    }
    let fields: Vec<&str> = scope.split('/').collect();
    let [date, region, service, "aws4_request"] = fields[..] else {
        return Err(format!("scope {scope}"));
    };
    if region != e.region || service != "lex" {
        return Err(format!("scope {scope}"));
    }
    let amz_date = header(request, "x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err(format!("x-amz-date {amz_date} outside scope {date}"));
    }
    let signed_at = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|err| format!("x-amz-date {amz_date}: {err}"))?
        .and_utc();
    if (chrono::Utc::now() - signed_at).num_minutes().abs() > 15 {
        return Err(format!("x-amz-date {amz_date} is stale"));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for needed in ["host", "x-amz-date"] {
        if !names.contains(&needed) {
            return Err(format!("{needed} is not signed"));
        }
    }
    let token = request
        .headers
        .get("x-amz-security-token")
        .map(|v| v.to_str().unwrap_or(""));
    match (e.session_token.as_deref(), token) {
        (Some(want), Some(got)) if want == got => {
            if !names.contains(&"x-amz-security-token") {
                return Err("x-amz-security-token is not signed".into());
            }
        }
        (Some(_), Some(_)) => return Err("x-amz-security-token is not the session token".into()),
        (Some(_), None) => return Err("no x-amz-security-token header".into()),
        (None, Some(_)) => return Err("an x-amz-security-token header without a session".into()),
        (None, None) => {}
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                v.to_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = match request.headers.get("x-amz-content-sha256") {
        Some(v) => v.to_str().unwrap_or("").to_owned(),
        None => hex(&Sha256::digest(&request.body)),
    };
    if payload_hash != hex(&Sha256::digest(&request.body)) {
        return Err("x-amz-content-sha256 is not the body's hash".into());
    }
    // Non-S3 services encode the (already encoded) path once more.
    let canonical_uri: String = request
        .url
        .path()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let mut query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", aws_encode(k), aws_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method.as_str()
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{}", e.secret_access_key).as_bytes(), date);
    let k_region = hmac_sha256(&k_date, region);
    let k_service = hmac_sha256(&k_region, service);
    let k_signing = hmac_sha256(&k_service, "aws4_request");
    let expected = hex(&hmac_sha256(&k_signing, &string_to_sign));
    if expected != signature {
        return Err("the SigV4 signature does not match".into());
    }
    Ok(())
}

fn aws_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A `RecognizeText` answer in the shape of the Lex V2 API reference: a question with an image
/// response card, an intent in progress with one filled and one empty slot.
pub fn lex_answer(session_id: &str) -> Value {
    json!({
        "sessionId": session_id,
        "messages": [
            {"contentType": "PlainText", "content": "What size would you like?"},
            {"contentType": "ImageResponseCard", "imageResponseCard": {
                "title": "Pizza sizes",
                "subtitle": "All prices include tax",
                "imageUrl": "https://example.com/sizes.png",
                "buttons": [{"text": "Small", "value": "small"}, {"text": "Large", "value": "large"}]
            }}
        ],
        "sessionState": {
            "dialogAction": {"type": "ElicitSlot", "slotToElicit": "Size"},
            "intent": {
                "name": "OrderPizza",
                "slots": {
                    "Crust": {"value": {"originalValue": "thin one", "interpretedValue": "thin", "resolvedValues": ["thin"]}},
                    "Size": null
                },
                "state": "InProgress",
                "confirmationState": "None"
            },
            "originatingRequestId": "5d1a7b1c-0000-4000-8000-000000000001"
        },
        "interpretations": [
            {"intent": {"name": "OrderPizza", "slots": {}, "state": "InProgress", "confirmationState": "None"},
             "nluConfidence": {"score": 0.91}, "interpretationSource": "Lex"},
            {"intent": {"name": "FallbackIntent", "slots": {}}, "interpretationSource": "Lex"}
        ],
        "requestAttributes": {}
    })
}

/// A `RecognizeText` answer closing `intent` with one plain message.
pub fn lex_closed(session_id: &str, intent: &str, text: &str) -> Value {
    json!({
        "sessionId": session_id,
        "messages": [{"contentType": "PlainText", "content": text}],
        "sessionState": {
            "dialogAction": {"type": "Close"},
            "intent": {"name": intent, "slots": {}, "state": "Fulfilled", "confirmationState": "None"}
        },
        "interpretations": [{"intent": {"name": intent, "slots": {}}, "nluConfidence": {"score": 1.0}}]
    })
}

// ---------------------------------------------------------------------------------------
// Dialogflow (CX and ES)

/// One of the two test-only RSA keys under tests/fixtures (never used anywhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    A,
    B,
}

impl TestKey {
    fn name(self) -> &'static str {
        match self {
            TestKey::A => "a",
            TestKey::B => "b",
        }
    }

    fn fixture(self, ext: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/TEST-ONLY-google-sa-key-{}.{ext}",
            env!("CARGO_MANIFEST_DIR"),
            self.name()
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The PKCS#8 PEM private key.
    pub fn private_pem(self) -> String {
        String::from_utf8(self.fixture("pem")).unwrap()
    }

    /// The PKCS#1 DER public key.
    pub fn public_der(self) -> Vec<u8> {
        self.fixture("pub.der")
    }
}

/// The service account every Dialogflow fake expects.
pub const SA_EMAIL: &str = "wadash-test@test-only-project.iam.gserviceaccount.com";

/// A service-account JSON key file for `key`, as the Google console gives one.
pub fn service_account_json(key: TestKey) -> String {
    json!({
        "type": "service_account",
        "project_id": "test-only-project",
        "private_key_id": format!("test-only-key-{}", key.name()),
        "private_key": key.private_pem(),
        "client_email": SA_EMAIL,
        "client_id": "100000000000000000000",
        "auth_uri": "http://127.0.0.1:9/o/oauth2/auth",
        "token_uri": "http://127.0.0.1:9/token",
        "universe_domain": "googleapis.com"
    })
    .to_string()
}

/// A Dialogflow fake that answers `POST {path_prefix}{session}:detectIntent` when the bearer
/// token is a JWT signed with `key` for [`SA_EMAIL`]. `path_prefix` is e.g.
/// `/v3/projects/p/locations/global/agents/a/sessions/`.
pub async fn dialogflow_fake(path_prefix: &str, key: TestKey, reply: Reply) -> BotFake {
    let prefix = path_prefix.to_owned();
    let public = key.public_der();
    let check: Check = Box::new(move |request| {
        if request.method.as_str() != "POST" {
            return Err(format!("method {}", request.method));
        }
        let path = request.url.path();
        path.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(":detectIntent"))
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .ok_or_else(|| format!("unexpected path {path}"))?;
        let auth = header(request, "authorization")?;
        let token = auth.strip_prefix("Bearer ").ok_or("not a bearer token")?;
        verify_jwt(token, &public)
    });
    start(check, google_error, (401, "UNAUTHENTICATED"), reply).await
}

fn google_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {"code": status, "message": format!("fake {code}"), "status": code}
    }))
}

/// A self-signed service-account JWT (Google AIP-4111): RS256 over `header.claims` with the
/// service account's key, issued by and for the service account, with a scope or audience,
/// not expired.
fn verify_jwt(token: &str, public_der: &[u8]) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, sig_b64] = parts[..] else {
        return Err("the bearer token is not a JWT".into());
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| format!("JWT base64: {e}"))
    };
    let header: Value = serde_json::from_slice(&decode(header_b64)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(claims_b64)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("JWT alg {}", header["alg"]));
    }
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_der,
    )
    .verify(
        format!("{header_b64}.{claims_b64}").as_bytes(),
        &decode(sig_b64)?,
    )
    .map_err(|_| "the JWT signature does not verify with the service account's key")?;
    if claims["iss"] != SA_EMAIL || claims["sub"] != SA_EMAIL {
        return Err(format!("JWT issuer {}", claims["iss"]));
    }
    let scoped = claims["scope"]
        .as_str()
        .is_some_and(|s| s.contains("https://www.googleapis.com/auth/cloud-platform"));
    if !scoped && claims["aud"].as_str().is_none() {
        return Err("JWT without scope or audience".into());
    }
    let now = chrono::Utc::now().timestamp();
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Err("JWT expired".into());
    }
    Ok(())
}

/// A CX `DetectIntentResponse` in the shape of the REST reference: a question, a Dialogflow
/// Messenger payload with chips and an image, a matched intent with parameters.
pub fn cx_answer() -> Value {
    json!({
        "responseId": "3c1f8f2e-0000-4000-8000-000000000002",
        "queryResult": {
            "text": "I want a pizza",
            "languageCode": "en",
            "parameters": {"size": "large", "toppings": ["ham", "olives"]},
            "responseMessages": [
                {"text": {"text": ["Which crust?"]}},
                {"payload": {"richContent": [[
                    {"type": "chips", "options": [{"text": "Thin"}, {"text": "Deep pan"}]},
                    {"type": "image", "rawUrl": "https://example.com/crusts.jpg", "accessibilityText": "Crusts"}
                ]]}}
            ],
            "currentPage": {"name": "projects/p/locations/global/agents/a/flows/00000000-0000-0000-0000-000000000000/pages/crust", "displayName": "Crust"},
            "intent": {"name": "projects/p/locations/global/agents/a/intents/i1", "displayName": "order.pizza"},
            "intentDetectionConfidence": 0.83,
            "match": {
                "intent": {"name": "projects/p/locations/global/agents/a/intents/i1", "displayName": "order.pizza"},
                "parameters": {"size": "large"},
                "resolvedInput": "I want a pizza",
                "matchType": "INTENT",
                "confidence": 0.83
            }
        }
    })
}

/// A CX answer with `match_type` (e.g. `NO_MATCH`) and, when `end`, an `endInteraction`.
pub fn cx_turn(match_type: &str, end: bool) -> Value {
    let mut messages = vec![json!({"text": {"text": ["Goodbye"]}})];
    if end {
        messages.push(json!({"endInteraction": {}}));
    }
    json!({
        "responseId": "r",
        "queryResult": {
            "text": "bye",
            "languageCode": "en",
            "responseMessages": messages,
            "currentPage": {"name": "projects/p/locations/global/agents/a/flows/f/pages/END_SESSION", "displayName": "End Session"},
            "match": {"matchType": match_type, "confidence": 0.3}
        }
    })
}

/// An ES `DetectIntentResponse` in the shape of the v2 REST reference: default-platform text,
/// quick replies and a card, a Facebook-only message, an intent with parameters.
pub fn es_answer() -> Value {
    json!({
        "responseId": "0e1f2a3b-0000-4000-8000-000000000003",
        "queryResult": {
            "queryText": "what do you have",
            "languageCode": "en",
            "parameters": {"category": "shoes"},
            "allRequiredParamsPresent": true,
            "fulfillmentText": "We have shoes.",
            "fulfillmentMessages": [
                {"text": {"text": ["We have shoes."]}},
                {"quickReplies": {"title": "Which colour?", "quickReplies": ["Red", "Blue"]}},
                {"card": {"title": "Runner", "subtitle": "Light", "imageUri": "https://example.com/runner.png",
                          "buttons": [{"text": "Buy", "postback": "buy runner"}]}},
                {"text": {"text": ["Facebook only"]}, "platform": "FACEBOOK"}
            ],
            "intent": {"name": "projects/p/agent/intents/i2", "displayName": "catalog.browse"},
            "intentDetectionConfidence": 0.75
        }
    })
}

/// An ES answer whose intent has these flags.
pub fn es_turn(display_name: &str, is_fallback: bool, end_interaction: bool) -> Value {
    json!({
        "responseId": "r",
        "queryResult": {
            "queryText": "x",
            "fulfillmentText": "Sorry?",
            "intent": {"name": "projects/p/agent/intents/i", "displayName": display_name,
                       "isFallback": is_fallback, "endInteraction": end_interaction},
            "intentDetectionConfidence": 1
        }
    })
}
