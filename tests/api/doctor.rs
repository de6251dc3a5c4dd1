//! `wadash doctor` (issue 23, part 3), run as the binary against a wadash behind a TLS proxy
//! made here (a certificate from a CA generated in the test, trusted through SSL_CERT_FILE,
//! the proxy adding X-Forwarded-Proto: https): every line ok when all is well; the proxy
//! dropping X-Forwarded-Proto, a wrong public URL and a stopped database each fail their line
//! with a non-zero exit and no secret printed; `--json` says what the text says. Also: the
//! probe on `/sts` stores nothing and a rejected probe learns only what its sender knows; the
//! generated admin password is flagged until changed; `wadash serve` warns at start about a
//! plain-http public URL outside loopback.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{AUTH_TOKEN, TestApp, database_url, free_port};

const AC: &str = "AC00000000000000000000000000000000";

/// What the test proxy does to the requests it forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proxying {
    /// As a correctly configured proxy: adds `X-Forwarded-Proto: https`.
    Faithful,
    /// Forgets `X-Forwarded-Proto`.
    DropsProto,
    /// Passes `X-Forwarded-Proto` but not `X-Twilio-Signature` (a header allow-list).
    StripsSignature,
    /// Adds a form field to the body (a WAF that normalises forms).
    RewritesBody,
}

/// A TLS-terminating HTTP/1.1 proxy on loopback in front of `upstream` (one request per
/// connection), with a certificate for `localhost` signed by a CA of its own.
struct TlsProxy {
    port: u16,
    ca_file: tempfile_path::TempPath,
    task: tokio::task::JoinHandle<()>,
}

/// A file removed when dropped (no tempfile crate needed for one file).
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl TlsProxy {
    /// Binds now (so the public URL is known before wadash starts); forwards once `start`ed.
    async fn bind() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn start(listener: TcpListener, upstream: String, mode: Proxying) -> Self {
        let port = listener.local_addr().unwrap().port();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wadash doctor test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let ca_path = std::env::temp_dir().join(format!(
            "wadash-doctor-ca-{}-{port}.pem",
            std::process::id()
        ));
        std::fs::File::create(&ca_path)
            .unwrap()
            .write_all(ca.pem().as_bytes())
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = forward(tls, &upstream, mode).await;
                    }
                });
            }
        });
        Self {
            port,
            ca_file: tempfile_path::TempPath(ca_path),
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request from `client`, passes it to `upstream` (`host:port`) as the proxy
/// `mode` does, and copies the answer back.
async fn forward(
    mut client: tokio_rustls::server::TlsStream<TcpStream>,
    upstream: &str,
    mode: Proxying,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("x-forwarded-proto")
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if mode != Proxying::DropsProto {
        headers.push(("X-Forwarded-Proto".into(), "https".into()));
    }
    if mode == Proxying::StripsSignature {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("x-twilio-signature"));
    }
    if mode == Proxying::RewritesBody && !body.is_empty() {
        body.extend_from_slice(b"&Normalized=1");
        for (k, v) in headers.iter_mut() {
            if k.eq_ignore_ascii_case("content-length") {
                *v = body.len().to_string();
            }
        }
    }
    headers.push(("Connection".into(), "close".into()));
    let mut out = format!("{request_line}\r\n");
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(out.as_bytes()).await?;
    up.write_all(&body).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    client.write_all(&answer).await?;
    client.shutdown().await?;
    Ok(())
}

/// A Twilio double: the balance, the WhatsApp senders (webhooks at `public`), and a `Date`
/// on every answer (wiremock's server sets it).
async fn twilio(public: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/2010-04-01/Accounts/{AC}/Balance.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"account_sid": AC, "balance": "12.34", "currency": "USD"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .and(query_param("Channel", "whatsapp"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "senders": [{
                "sid": "XE0000000000000000000000000000000a",
                "status": "ONLINE",
                "sender_id": "whatsapp:+15005550006",
                "webhook": {
                    "callback_url": format!("{public}/wa"),
                    "callback_method": "POST",
                    "status_callback_url": format!("{public}/sts"),
                    "status_callback_method": "POST"
                }
            }],
            "meta": {"next_page_url": null}
        })))
        .mount(&server)
        .await;
    server
}

/// A live-mode wadash whose Twilio is `twilio` and whose public URL is `public`.
async fn live_app(opts: PgConnectOptions, twilio: &MockServer, public: &str) -> TestApp {
    let (uri, public) = (twilio.uri(), public.to_owned());
    TestApp::spawn_with(opts, move |v| {
        v.insert("twilio_account_sid".into(), AC.into());
        v.insert("twilio_api_base".into(), uri.clone());
        v.insert("twilio_messaging_base".into(), uri);
        v.insert("public_url".into(), public);
    })
    .await
}

/// The result of one `wadash doctor` run.
struct Doctor {
    success: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Doctor {
    /// `name` → (status, whole line), from the text output.
    fn lines(&self) -> BTreeMap<String, (String, String)> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("doctor:"))
            .map(|l| {
                let mut parts = l.split_whitespace();
                let status = parts.next().unwrap().to_owned();
                let name = parts.next().unwrap().to_owned();
                (name, (status, l.to_owned()))
            })
            .collect()
    }

    fn line(&self, name: &str) -> (String, String) {
        self.lines()
            .remove(name)
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", self.stdout))
    }
}

/// Runs `wadash doctor` with exactly `env` (plus a clean base), off the test's runtime.
async fn doctor(args: &[&str], env: &[(&str, String)]) -> Doctor {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wadash"));
    cmd.arg("doctor").args(args).env("RUST_LOG", "warn");
    for var in [
        "WADASH_CONFIG",
        "WADASH_PUBLIC_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_BASE",
        "TWILIO_MESSAGING_BASE",
        "TWILIO_CONTENT_BASE",
        "SSL_CERT_FILE",
        "WADASH_SECRET_KEY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run wadash doctor"))
        .await
        .unwrap();
    Doctor {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The environment `wadash serve` of `live_app` has, as an operator's env file would hold it.
fn env_of(
    opts: &PgConnectOptions,
    twilio: &MockServer,
    public: &str,
    ca: &std::path::Path,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url(opts, None)),
        ("WADASH_PUBLIC_URL", public.to_owned()),
        ("TWILIO_ACCOUNT_SID", AC.to_owned()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("TWILIO_API_BASE", twilio.uri()),
        ("TWILIO_MESSAGING_BASE", twilio.uri()),
        ("SSL_CERT_FILE", ca.display().to_string()),
    ]
}

const ALL: [&str; 10] = [
    "database",
    "migrations",
    "database-tls",
    "public-url",
    "webhook-self-test",
    "twilio-credentials",
    "sender-webhooks",
    "clock",
    "secret-key",
    "admin-password",
];

#[sqlx::test(migrations = false)]
async fn a_healthy_deployment_behind_a_tls_proxy_is_all_ok_in_text_and_json(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (listener, port) = TlsProxy::bind().await;
    let public = format!("https://localhost:{port}");
    let twilio = twilio(&public).await;
    let app = live_app(opts.clone(), &twilio, &public).await;
    let proxy = TlsProxy::start(
        listener,
        app.address.trim_start_matches("http://").to_owned(),
        Proxying::Faithful,
    );
    assert_eq!(proxy.url(), public);
    let env = env_of(&opts, &twilio, &public, &proxy.ca_file.0);

    let text = doctor(&[], &env).await;
    println!("{}", text.stdout);
    assert!(text.success, "{}\n{}", text.stdout, text.stderr);
    let lines = text.lines();
    assert_eq!(
        lines
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ALL.into_iter().collect(),
        "{}",
        text.stdout
    );
    for name in ALL {
        let (status, line) = &lines[name];
        assert_eq!(status, "ok", "{line}");
    }
    assert!(
        text.line("webhook-self-test")
            .1
            .contains(&format!("{public}/sts"))
    );
    assert!(text.line("twilio-credentials").1.contains("12.34 USD"));
    assert!(text.line("sender-webhooks").1.contains("1 sender(s) call"));
    assert!(
        text.stdout.ends_with("doctor: 10 ok, 0 warn, 0 fail\n"),
        "{}",
        text.stdout
    );
    // The probe went through the proxy to wadash and was not stored.
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);

    let json = doctor(&["--json"], &env).await;
    assert!(json.success, "{}", json.stderr);
    let doc: Value = serde_json::from_str(&json.stdout).expect("--json prints JSON");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["counts"], json!({"ok": 10, "warn": 0, "fail": 0}));
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), ALL.len());
    for (check, name) in checks.iter().zip(ALL) {
        assert_eq!(check["name"], name, "same order as the text");
        assert_eq!(check["status"], lines[name].0.as_str());
        assert!(check["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(check.get("fix").is_none(), "no fix for an ok line: {check}");
    }
    for out in [&text.stdout, &text.stderr, &json.stdout, &json.stderr] {
        assert!(!out.contains(AUTH_TOKEN), "the auth token is never printed");
    }
    drop(proxy);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_proxy_that_drops_x_forwarded_proto_fails_the_self_test_by_name(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (listener, port) = TlsProxy::bind().await;
    let public = format!("https://localhost:{port}");
    let twilio = twilio(&public).await;
    let app = live_app(opts.clone(), &twilio, &public).await;
    let proxy = TlsProxy::start(
        listener,
        app.address.trim_start_matches("http://").to_owned(),
        Proxying::DropsProto,
    );
    let env = env_of(&opts, &twilio, &public, &proxy.ca_file.0);
    let run = doctor(&[], &env).await;
    assert!(!run.success, "{}", run.stdout);
    let (status, line) = run.line("webhook-self-test");
    assert_eq!(status, "fail", "{line}");
    assert!(line.contains("drops X-Forwarded-Proto"), "{line}");
    assert!(
        line.contains(&format!(
            "wadash saw the request as http://localhost:{port}/sts"
        )),
        "{line}"
    );
    assert!(
        line.contains("proxy_set_header X-Forwarded-Proto"),
        "{line}"
    );
    // Everything else is as healthy as before.
    for name in ALL.into_iter().filter(|n| *n != "webhook-self-test") {
        assert_eq!(run.line(name).0, "ok", "{}", run.line(name).1);
    }
    let json = doctor(&["--json"], &env).await;
    assert!(!json.success);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["checks"][4]["name"], "webhook-self-test");
    assert_eq!(doc["checks"][4]["status"], "fail");
    assert!(
        doc["checks"][4]["fix"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-Proto")
    );
    drop(proxy);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_proxy_that_strips_the_signature_or_rewrites_the_body_fails_the_self_test_naming_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    for (mode, says, fix) in [
        (
            Proxying::StripsSignature,
            "X-Twilio-Signature did not reach wadash",
            "pass every request header",
        ),
        (
            Proxying::RewritesBody,
            "changed the body",
            "pass the body through unchanged",
        ),
    ] {
        let (listener, port) = TlsProxy::bind().await;
        let public = format!("https://localhost:{port}");
        let twilio = twilio(&public).await;
        let app = live_app(opts.clone(), &twilio, &public).await;
        let proxy = TlsProxy::start(
            listener,
            app.address.trim_start_matches("http://").to_owned(),
            mode,
        );
        let run = doctor(&[], &env_of(&opts, &twilio, &public, &proxy.ca_file.0)).await;
        assert!(!run.success, "{mode:?}: {}", run.stdout);
        let (status, line) = run.line("webhook-self-test");
        assert_eq!(status, "fail", "{mode:?}: {line}");
        assert!(line.contains(says), "{mode:?}: {line}");
        assert!(line.contains(fix), "{mode:?}: {line}");
        assert!(!run.stdout.contains(AUTH_TOKEN), "no secret printed");
        drop(proxy);
        app.stop().await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_wrong_public_url_fails_the_self_test(_: PgPoolOptions, opts: PgConnectOptions) {
    let (listener, port) = TlsProxy::bind().await;
    let public = format!("https://localhost:{port}");
    let twilio = twilio(&public).await;
    let app = live_app(opts.clone(), &twilio, &public).await;
    let proxy = TlsProxy::start(
        listener,
        app.address.trim_start_matches("http://").to_owned(),
        Proxying::Faithful,
    );
    let ca = proxy.ca_file.0.clone();

    // A port nobody listens on.
    let nobody = format!("https://localhost:{}", free_port());
    let run = doctor(&[], &env_of(&opts, &twilio, &nobody, &ca)).await;
    assert!(!run.success);
    let (status, line) = run.line("webhook-self-test");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains(&format!("cannot reach {nobody}/sts")),
        "{line}"
    );
    // The senders point at the real URL, not this one.
    assert_eq!(run.line("sender-webhooks").0, "fail");

    // A path prefix the proxy does not strip: wadash has no /wadash/sts.
    let prefixed = format!("{public}/wadash");
    let run = doctor(&[], &env_of(&opts, &twilio, &prefixed, &ca)).await;
    assert!(!run.success);
    let (status, line) = run.line("webhook-self-test");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains("answers 404") && line.contains("strip"),
        "{line}"
    );

    // Plain http outside loopback fails the public URL. An address that is not loopback yet
    // never leaves this machine (0.0.0.0 connects locally, here to a closed port), so nothing
    // is resolved or sent off it.
    let unspecified = format!("http://0.0.0.0:{}", free_port());
    let run = doctor(&[], &env_of(&opts, &twilio, &unspecified, &ca)).await;
    assert!(!run.success);
    let (status, line) = run.line("public-url");
    assert_eq!(status, "fail", "{line}");
    assert!(line.contains("plain http outside this machine"), "{line}");
    drop(proxy);
    app.stop().await;
}

#[tokio::test]
async fn a_stopped_database_fails_fast_and_no_secret_is_printed() {
    const DB_PASSWORD: &str = "Db-Pa55word-never-shown";
    const TOKEN: &str = "auth-token-never-shown-0123456789";
    let closed = free_port();
    let base = format!("http://127.0.0.1:{}", free_port());
    let env = |db_port: u16| {
        vec![
            (
                "DATABASE_URL",
                format!("postgres://wadash:{DB_PASSWORD}@127.0.0.1:{db_port}/wadash"),
            ),
            (
                "WADASH_PUBLIC_URL",
                format!("https://localhost:{}", free_port()),
            ),
            ("TWILIO_ACCOUNT_SID", AC.to_owned()),
            ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
            ("TWILIO_API_BASE", base.clone()),
            ("TWILIO_MESSAGING_BASE", base.clone()),
        ]
    };
    let run = doctor(&[], &env(closed)).await;
    assert!(!run.success, "{}", run.stdout);
    let (status, line) = run.line("database");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains(&format!("cannot connect to 127.0.0.1:{closed}")),
        "{line}"
    );
    assert!(line.contains("postgres://wadash:***@127.0.0.1"), "{line}");
    assert_eq!(run.line("migrations").0, "fail");
    assert!(run.took < Duration::from_secs(60), "took {:?}", run.took);
    let json = doctor(&["--json"], &env(closed)).await;
    assert!(!json.success);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["checks"][0]["status"], "fail");

    // A database host that accepts the connection and never answers: bounded by the connect
    // timeout (5 s), not by the operating system's.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let hung = doctor(&[], &env(silent_port)).await;
    holder.abort();
    assert!(!hung.success);
    let (status, line) = hung.line("database");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains("no answer from") && line.contains("within 5 s"),
        "{line}"
    );
    assert!(hung.took < Duration::from_secs(90), "took {:?}", hung.took);

    for out in [&run, &json, &hung] {
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(DB_PASSWORD),
                "database password printed:\n{text}"
            );
            assert!(!text.contains(TOKEN), "auth token printed:\n{text}");
        }
    }
}

#[sqlx::test(migrations = false)]
async fn the_probe_is_answered_without_storing_and_a_bad_one_learns_nothing_new(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let form = crate::helpers::params(&[("AccountSid", AC), ("To", "whatsapp:+14155238886")]);
    let path = "/sts?wadash_doctor_probe=abc123";
    let ok = app.post_signed(path, &form).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["probe"]["nonce"], "abc123");
    assert_eq!(body["probe"]["signature"], "valid");
    assert_eq!(
        body["probe"]["checked_url"],
        format!("{}{path}", app.address)
    );
    assert!(body["probe"]["host"].is_string());

    let bad = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .header("X-Forwarded-Proto", "https")
        .body("AccountSid=AC1")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_signature");
    assert_eq!(body["probe"]["signature"], "invalid");
    assert!(
        body["probe"].get("host").is_none() && body["probe"].get("forwarded_proto").is_none(),
        "a rejected probe is not told the headers that reached wadash: {body}"
    );
    let missing = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("AccountSid=AC1")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["probe"]["signature"], "missing");

    // On /wa the marker means nothing: an ordinary webhook, refused without a signature.
    let wa = app
        .client
        .post(format!("{}/wa?wadash_doctor_probe=abc123", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("AccountSid=AC1")
        .send()
        .await
        .unwrap();
    assert_eq!(wa.status(), 403);
    assert!(wa.json::<Value>().await.unwrap().get("probe").is_none());

    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 0);
    // Ordinary callbacks are untouched.
    assert_eq!(
        app.post_status("SM00000000000000000000000000000001", "sent")
            .await,
        204
    );
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_generated_admin_password_fails_until_it_is_changed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts.clone(), |v| {
        v.remove("admin_password");
    })
    .await;
    let env = vec![("DATABASE_URL", database_url(&opts, None))];
    let run = doctor(&[], &env).await;
    let (status, line) = run.line("admin-password");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains("admin still log(s) in with the password wadash generated"),
        "{line}"
    );

    let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    wadash::storage::users::set_password(
        &app.pool,
        id,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    )
    .await
    .unwrap();
    let run = doctor(&[], &env).await;
    assert_eq!(run.line("admin-password").0, "ok", "{}", run.stdout);
    // Simulator mode without a public URL: said so, and failed.
    assert_eq!(run.line("public-url").0, "fail");
    assert!(run.line("twilio-credentials").1.contains("simulator mode"));
    assert!(!run.success);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn serve_warns_at_start_about_a_plain_http_public_url_off_loopback(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("serve")
        .env("DATABASE_URL", database_url(&opts, None))
        .env_remove("WADASH_CONFIG")
        .env("WADASH_BIND", format!("127.0.0.1:{port}"))
        // An IP literal: nothing is resolved, and nothing is sent there before the kill.
        .env("WADASH_PUBLIC_URL", "http://192.0.2.10:8080")
        .env("WADASH_ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD)
        .env("WADASH_BALANCE_POLL_SECS", "0")
        .env("WADASH_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let found = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("WADASH_PUBLIC_URL is plain http on 192.0.2.10"))
    });
    let found = tokio::time::timeout(Duration::from_secs(60), found).await;
    let _ = child.kill();
    let _ = child.wait();
    let line = found
        .expect("a warning within 60 s")
        .unwrap()
        .expect("the warning");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
}

#[sqlx::test(migrations = false)]
async fn migrations_and_sealed_secrets_are_judged(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts.clone()).await;
    let env = vec![("DATABASE_URL", database_url(&opts, None))];
    let run = doctor(&[], &env).await;
    assert_eq!(run.line("migrations").0, "ok", "{}", run.stdout);
    assert_eq!(run.line("secret-key").0, "ok", "{}", run.stdout);

    // This binary is newer than the database: pending, a warning (serve applies them).
    let latest: i64 = sqlx::query_scalar("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations) RETURNING version")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let run = doctor(&[], &env).await;
    let (status, line) = run.line("migrations");
    assert_eq!(status, "warn", "{line}");
    assert!(
        line.contains(&format!("not applied yet ({latest})")),
        "{line}"
    );
    // A newer wadash migrated it with an expand migration: this version runs on it.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer wadash', true, '\\x00', 0)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let run = doctor(&[], &env).await;
    let (status, line) = run.line("migrations");
    assert_eq!(status, "warn", "{line}");
    assert!(
        line.contains("this wadash does not know (29991231000000 (from a newer wadash))"),
        "{line}"
    );
    assert!(line.contains("keeps running"), "{line}");
    // …and with a contract migration it removed what this version uses: a failure.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000001, 'contract drop messages body', true, '\\x00', 0)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let run = doctor(&[], &env).await;
    let (status, line) = run.line("migrations");
    assert_eq!(status, "fail", "{line}");
    assert!(
        line.contains("contract migration(s) this wadash does not know (29991231000001 (contract drop messages body))"),
        "{line}"
    );
    assert!(!run.success, "a failing line makes doctor exit non-zero");

    // Credentials stored sealed: without the key, and with another key.
    wadash::storage::instance_settings::put(
        &app.pool,
        "twilio_credentials",
        "v1.c2VhbGVk.bm90IHJlYWxseQ",
    )
    .await
    .unwrap();
    let run = doctor(&[], &env).await;
    let (status, line) = run.line("secret-key");
    assert_eq!(status, "fail", "{line}");
    assert!(line.contains("WADASH_SECRET_KEY is not set"), "{line}");
    let mut with_key = env.clone();
    with_key.push((
        "WADASH_SECRET_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
    ));
    let run = doctor(&[], &with_key).await;
    let (status, line) = run.line("secret-key");
    assert_eq!(status, "fail", "{line}");
    assert!(line.contains("cannot be opened with it"), "{line}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn behind_the_shipped_nginx_configuration_every_line_is_ok_until_it_loses_the_scheme(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::proxy::{Nginx, Scratch, certificates, site};
    let dir = Scratch::new("doctor-nginx");
    certificates(&dir);
    let (http, https) = (free_port(), free_port());
    let public = format!("https://localhost:{https}");
    let serve = crate::helpers::ServeProcess::start(&opts, &[("WADASH_PUBLIC_URL", &public)]).await;
    let port: u16 = serve.base.rsplit(':').next().unwrap().parse().unwrap();
    let shipped = site(&[port], http, https, &dir);
    let nginx = Nginx::start(&dir, &shipped, https).await;
    let env = vec![
        ("DATABASE_URL", database_url(&opts, None)),
        ("WADASH_PUBLIC_URL", public.clone()),
        ("SSL_CERT_FILE", dir.path("ca.pem")),
    ];
    let run = doctor(&[], &env).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for name in ALL {
        let (status, line) = run.line(name);
        assert_eq!(status, "ok", "{line}");
    }
    assert!(run.line("twilio-credentials").1.contains("simulator mode"));

    // The same configuration without its X-Forwarded-Proto line.
    let line = "    proxy_set_header X-Forwarded-Proto $scheme;\n";
    assert!(
        shipped.contains(line),
        "deploy/nginx/wadash.conf sets X-Forwarded-Proto"
    );
    nginx.reload(&dir, &shipped.replace(line, ""));
    let started = Instant::now();
    let failed = loop {
        // A reload lets old workers finish first: wait until the new configuration answers.
        let run = doctor(&[], &env).await;
        if run.line("webhook-self-test").0 == "fail" {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            run.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!failed.success);
    assert!(
        failed
            .line("webhook-self-test")
            .1
            .contains("drops X-Forwarded-Proto")
    );
}
