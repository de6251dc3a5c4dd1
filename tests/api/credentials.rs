//! Credentials that change while wadash runs: a rewritten credentials file, SIGHUP, and
//! `PUT /api/v1/settings/twilio` shared by every instance on the database.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wadash::twilio::signature;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{AUTH_TOKEN, TestApp, database_url, status_callback};

const AC: &str = "AC0123456789abcdef0123456789abcdef";

struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        let n: u64 = rand::random();
        Self(std::env::temp_dir().join(format!("wadash-credentials-{n:016x}.toml")))
    }

    /// Replaces the file atomically, as secret managers do.
    fn write(&self, text: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// POSTs a status callback to `address` signed with `token`; returns the HTTP status.
async fn status_signed_with(address: &str, token: &str, sid: &str) -> u16 {
    let params = status_callback(sid, "sent");
    let sig = signature::compute(token.as_bytes(), &format!("{address}/sts"), &params);
    reqwest::Client::new()
        .post(format!("{address}/sts"))
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn settings(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.get_json("/api/v1/settings/twilio", token).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the instance has applied `generation` credential changes.
async fn wait_for_generation(app: &TestApp, admin: &str, generation: u64) -> Value {
    for _ in 0..100 {
        let s = settings(app, admin).await;
        if s["generation"].as_u64() == Some(generation) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "credentials never reached generation {generation}: {}",
        settings(app, admin).await
    );
}

async fn send(app: &TestApp, operator: &str) {
    let resp = app
        .client
        .post(format!("{}/api/v1/messages", app.address))
        .bearer_auth(operator)
        .json(&json!({"to": "+919900000000", "body": "rotation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{AC}:{token}"))
    )
}

/// The Authorization header of the last request Twilio received.
async fn last_auth(twilio: &MockServer) -> String {
    let reqs = twilio.received_requests().await.unwrap();
    reqs.last().unwrap().headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrations = false)]
async fn a_rewritten_credentials_file_switches_rest_calls_and_webhooks_without_restart(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Messages\.json$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM0123456789abcdef0123456789abcdef", "status": "queued",
            "to": "whatsapp:+919900000000", "from": "whatsapp:+14155238886"})))
        .mount(&twilio)
        .await;
    let file = TempFile::new();
    file.write(&format!(
        "account_sid = \"{AC}\"\nauth_token = \"token-one\"\n"
    ));
    let path = file.0.display().to_string();
    let api_base = twilio.uri();
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert("twilio_credentials_file".into(), path);
        v.insert("twilio_api_base".into(), api_base);
        v.insert("credentials_poll_ms".into(), "50".into());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;
    let sid = "SM00000000000000000000000000000001";

    // The file outranks the environment's TWILIO_AUTH_TOKEN.
    let s = settings(&app, &admin).await;
    assert_eq!(s["mode"], "live");
    assert_eq!(s["auth_token_source"], "file");
    assert_eq!(s["account_sid_source"], "file");
    send(&app, &operator).await;
    assert_eq!(last_auth(&twilio).await, basic("token-one"));
    assert_eq!(
        status_signed_with(&app.address, "token-one", sid).await,
        204
    );
    assert_eq!(status_signed_with(&app.address, AUTH_TOKEN, sid).await, 403);

    // Step 1 of a rotation: the new token is primary, the old one secondary.
    file.write(&format!(
        "account_sid = \"{AC}\"\nauth_token = \"token-two\"\nauth_token_secondary = \"token-one\"\n"
    ));
    let s = wait_for_generation(&app, &admin, 1).await;
    assert_eq!(s["secondary_auth_token"], true);
    send(&app, &operator).await;
    assert_eq!(last_auth(&twilio).await, basic("token-two"));
    assert_eq!(
        status_signed_with(&app.address, "token-two", sid).await,
        204
    );
    assert_eq!(
        status_signed_with(&app.address, "token-one", sid).await,
        204
    );

    // Step 2: the old token is gone, and refused from now on.
    file.write(&format!(
        "account_sid = \"{AC}\"\nauth_token = \"token-two\"\n"
    ));
    wait_for_generation(&app, &admin, 2).await;
    assert_eq!(
        status_signed_with(&app.address, "token-one", sid).await,
        403
    );
    assert_eq!(
        status_signed_with(&app.address, "token-two", sid).await,
        204
    );

    // A broken file changes nothing and says why, without quoting a secret.
    file.write("auth_token = \"token-three\"\nauth_tokn = \"token-three\"\n");
    let mut s = settings(&app, &admin).await;
    for _ in 0..100 {
        if !s["last_error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        s = settings(&app, &admin).await;
    }
    let err = s["last_error"].as_str().unwrap();
    assert!(err.contains("auth_tokn"), "{err}");
    assert!(!s.to_string().contains("token-"), "{s}");
    assert_eq!(s["generation"], 2);
    assert_eq!(
        status_signed_with(&app.address, "token-two", sid).await,
        204
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wadash_credential_reloads_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wadash_credential_reload_errors_total 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn credentials_set_through_the_api_are_sealed_and_reach_every_instance(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let spawn = |opts: PgConnectOptions, key: String| {
        TestApp::spawn_with(opts, move |v| {
            v.insert("twilio_account_sid".into(), AC.into());
            v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
            v.insert("secret_key".into(), key);
            v.insert("credentials_poll_ms".into(), "50".into());
        })
    };
    let a = spawn(opts.clone(), key.clone()).await;
    let b = spawn(opts, key).await;
    let admin = a.api_token(Role::Admin).await;
    let operator = a.api_token(Role::Operator).await;
    let sid = "SM00000000000000000000000000000002";
    let put = |token: String, body: Value| {
        a.client
            .put(format!("{}/api/v1/settings/twilio", a.address))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let resp = put(operator.clone(), json!({"auth_token": "api-token"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "only admins change credentials");
    for bad in [
        json!({"auth_token": "api-token", "account_sid": "AC123"}),
        json!({"auth_token_secondary": "x"}),
        json!({"api_key": "SK1"}),
        json!({"auth_token": "api token"}),
        json!({"auth_tokn": "api-token"}),
        json!({}),
    ] {
        let resp = put(admin.clone(), bad.clone()).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("api-token") && !text.contains("api token"),
            "{text}"
        );
    }
    let resp = put(
        admin.clone(),
        json!({"auth_token": "api-token", "auth_token_secondary": AUTH_TOKEN, "account_sid": "AC99999999999999999999999999999999"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 409, "another account needs a restart");

    let resp = put(
        admin.clone(),
        json!({"auth_token": "api-token", "auth_token_secondary": AUTH_TOKEN}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let s: Value = resp.json().await.unwrap();
    assert_eq!(s["auth_token_source"], "api");
    assert_eq!(s["generation"], 1);
    assert!(!s.to_string().contains("api-token"));

    let stored: String =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = 'twilio_credentials'")
            .fetch_one(&a.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("v1.") && !stored.contains("api-token"));

    // Instance B sees the change through the database.
    wait_for_generation(&b, &admin, 1).await;
    for app in [&a, &b] {
        assert_eq!(
            status_signed_with(&app.address, "api-token", sid).await,
            204
        );
        assert_eq!(status_signed_with(&app.address, AUTH_TOKEN, sid).await, 204);
        assert_eq!(status_signed_with(&app.address, "other", sid).await, 403);
    }

    // Removing the override brings back the environment's token everywhere.
    let resp = a
        .client
        .delete(format!("{}/api/v1/settings/twilio", a.address))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait_for_generation(&b, &admin, 2).await;
    for app in [&a, &b] {
        assert_eq!(
            status_signed_with(&app.address, "api-token", sid).await,
            403
        );
        assert_eq!(status_signed_with(&app.address, AUTH_TOKEN, sid).await, 204);
    }
    a.stop().await;
    b.stop().await;
}

#[sqlx::test(migrations = false)]
async fn without_a_secret_key_credentials_are_not_stored(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("twilio_account_sid".into(), AC.into());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let resp = app
        .client
        .put(format!("{}/api/v1/settings/twilio", app.address))
        .bearer_auth(&admin)
        .json(&json!({"auth_token": "api-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "secret_key_missing");
    assert_eq!(
        app.count("SELECT count(*) FROM instance_settings WHERE key = 'twilio_credentials'")
            .await,
        0
    );
    let viewer = app.api_token(Role::Viewer).await;
    let (status, _) = app.get_json("/api/v1/settings/twilio", &viewer).await;
    assert_eq!(status, 403);
    app.stop().await;
}

/// The real binary: with polling off, a rewritten file takes effect on SIGHUP.
#[sqlx::test(migrations = false)]
async fn sighup_rereads_the_credentials_file(_: PgPoolOptions, opts: PgConnectOptions) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let file = TempFile::new();
    file.write(&format!(
        "account_sid = \"{AC}\"\nauth_token = \"hup-one\"\n"
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("serve")
        .env("DATABASE_URL", database_url(&opts, None))
        .env_remove("WADASH_CONFIG")
        .env("WADASH_BIND", format!("127.0.0.1:{port}"))
        .env("WADASH_PUBLIC_URL", &address)
        .env("WADASH_TWILIO_CREDENTIALS_FILE", &file.0)
        .env("WADASH_CREDENTIALS_POLL_MS", "0")
        .env("TWILIO_API_BASE", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sid = "SM00000000000000000000000000000003";
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http
            .get(format!("{address}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "wadash serve did not start");
    assert_eq!(status_signed_with(&address, "hup-one", sid).await, 204);

    file.write(&format!(
        "account_sid = \"{AC}\"\nauth_token = \"hup-two\"\n"
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status_signed_with(&address, "hup-two", sid).await,
        403,
        "with polling off, nothing changes before SIGHUP"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut status = 0;
    for _ in 0..100 {
        status = status_signed_with(&address, "hup-two", sid).await;
        if status == 204 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 204, "SIGHUP reloads the file");
    assert_eq!(status_signed_with(&address, "hup-one", sid).await, 403);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "still alive after SIGHUP, stops on SIGTERM"
    );
}
