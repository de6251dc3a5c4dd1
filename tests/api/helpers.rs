//! Spawning the application on a random port against the test's own database, signing
//! webhooks like Twilio, and a TCP proxy that can cut the database connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use wadash::config::Settings;
use wadash::domain::Role;
use wadash::startup::Application;
use wadash::twilio::signature;

pub const AUTH_TOKEN: &str = "test-primary-auth-token";
/// The first admin's password in every test instance.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestApp {
    pub address: String,
    /// A pool on the test database that bypasses any proxy (for assertions).
    pub pool: PgPool,
    pub client: reqwest::Client,
    /// The application's Twilio client (the simulator's in simulator mode). Not the whole
    /// state: holding it would keep the ingest pipeline alive and `stop` would wait forever.
    pub twilio: wadash::twilio::client::TwilioClient,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn database_url(opts: &PgConnectOptions, port: Option<u16>) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        port.unwrap_or(opts.get_port()),
        opts.get_database().expect("test database name")
    )
}

pub fn fixture(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/../shared/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_urlencoded::from_str(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

/// A free TCP port on loopback (bound and released: free a moment later, as tests need).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An inbound WhatsApp message's webhook fields from `from` to the sandbox, for `account`,
/// with `extra` fields.
pub fn inbound(
    account: &str,
    sid: &str,
    from: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut p = params(&[
        ("MessageSid", sid),
        ("SmsStatus", "received"),
        ("From", &format!("whatsapp:{from}")),
        ("To", "whatsapp:+14155238886"),
        ("AccountSid", account),
    ]);
    p.extend(params(extra));
    p
}

pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl TestApp {
    pub async fn spawn(opts: PgConnectOptions) -> Self {
        Self::spawn_with(opts, |_| {}).await
    }

    /// Spawns with extra settings (file keys, e.g. `twilio_auth_token_secondary`).
    pub async fn spawn_with(
        opts: PgConnectOptions,
        tweak: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut values = BTreeMap::new();
        values.insert("database_url".to_owned(), database_url(&opts, None));
        values.insert("bind".to_owned(), "127.0.0.1:0".to_owned());
        values.insert("workers".to_owned(), "1".to_owned());
        values.insert("twilio_auth_token".to_owned(), AUTH_TOKEN.to_owned());
        values.insert("db_acquire_timeout_ms".to_owned(), "500".to_owned());
        values.insert("shutdown_timeout_secs".to_owned(), "1".to_owned());
        // Deterministic by default: tests that want lost callbacks ask for them.
        values.insert("sim_lost_share".to_owned(), "0".to_owned());
        // Nor do simulated recipients tap buttons (inbound messages, costs) unless asked.
        values.insert("sim_button_tap_share".to_owned(), "0".to_owned());
        // No balance polls unless a test asks for them (they would be requests to the Twilio
        // doubles that other tests count).
        values.insert("balance_poll_secs".to_owned(), "0".to_owned());
        values.insert("alert_evaluate_secs".to_owned(), "0".to_owned());
        values.insert("price_fetch_secs".to_owned(), "0".to_owned());
        values.insert("template_sync_secs".to_owned(), "0".to_owned());
        values.insert("sender_sync_secs".to_owned(), "0".to_owned());
        values.insert("admin_password".to_owned(), ADMIN_PASSWORD.to_owned());
        // The tests' alert receivers are wiremock servers on loopback, which wadash refuses
        // as a destination unless allowed (tests/api/security.rs checks it without this).
        values.insert("outbound_allow_hosts".to_owned(), "127.0.0.1".to_owned());
        tweak(&mut values);
        let settings = Settings::from_values(&values).expect("test settings");
        let app = Application::build(settings)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.server_handle();
        let twilio = app.state().twilio.clone();
        let task = tokio::spawn(app.run_until_stopped());
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .unwrap();
        // The configured sender is Twilio's sandbox, which allows one message every three
        // seconds, and every send waits for its sender's slot. Tests that are not about
        // pacing send faster; those that are set their senders' rates themselves.
        sqlx::query("UPDATE senders SET mps = 1000 WHERE label = 'configured'")
            .execute(&pool)
            .await
            .unwrap();
        Self {
            address,
            pool,
            client: reqwest::Client::new(),
            twilio,
            handle,
            task,
        }
    }

    /// Stops the server and closes every pool so the test database can be dropped.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        self.pool.close().await;
    }

    pub fn sign(&self, path: &str, params: &[(String, String)]) -> String {
        signature::compute(
            AUTH_TOKEN.as_bytes(),
            &format!("{}{path}", self.address),
            params,
        )
    }

    /// POSTs a form signed with the primary token.
    pub async fn post_signed(&self, path: &str, params: &[(String, String)]) -> reqwest::Response {
        let sig = self.sign(path, params);
        self.post_form(path, params, Some(&sig)).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.address))
            .form(params);
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.expect("request sent")
    }

    pub async fn api_token(&self, role: Role) -> String {
        wadash::storage::tokens::create(&self.pool, "test", role)
            .await
            .unwrap()
            .1
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The instance's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts a signed status callback and returns the HTTP status.
    pub async fn post_status(&self, sid: &str, status: &str) -> u16 {
        self.post_signed("/sts", &status_callback(sid, status))
            .await
            .status()
            .as_u16()
    }

    /// The message's current status as stored (`None` if it has none yet).
    pub async fn current_status(&self, sid: &str) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM messages WHERE sid = $1")
            .bind(sid)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// A status callback like Twilio's for `sid` reaching `status`.
pub fn status_callback(sid: &str, status: &str) -> Vec<(String, String)> {
    params(&[
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", "whatsapp:+919900000000"),
        ("From", "whatsapp:+14155238886"),
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ChannelPrefix", "whatsapp"),
        ("ApiVersion", "2010-04-01"),
    ])
}

/// A TCP proxy in front of PostgreSQL whose link can be cut and restored, to show what the
/// service does while its database is unreachable.
pub struct DbProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    kill: Arc<Notify>,
}

impl DbProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let kill = Arc::new(Notify::new());
        let (c, k) = (cut.clone(), kill.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let k = k.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = k.notified() => {}
                    }
                });
            }
        });
        Self { port, cut, kill }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.kill.notify_waiters();
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A browser-like client for the dashboard: keeps the session cookie, never follows
/// redirects (tests look at them), and knows the page's form token.
pub struct Browser {
    pub base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

/// The `value` of the first `<input name="{name}" value="…">` in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self::with_client(
            base,
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        )
    }

    /// With a client of the caller's (e.g. one trusting a test CA); it must not follow
    /// redirects.
    pub fn with_client(base: &str, client: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            client,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for h in resp.headers().get_all("set-cookie") {
            let h = h.to_str().unwrap();
            let (pair, attrs) = h.split_once(';').unwrap_or((h, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    /// GET; returns status, `Location` (if any) and body.
    pub async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn get_response(&mut self, path: &str) -> reqwest::Response {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&resp);
        resp
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    async fn finish(&mut self, resp: reqwest::Response) -> (u16, Option<String>, String) {
        self.keep_cookies(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, resp.text().await.unwrap())
    }

    /// Logs in through the form; returns the status of the form submission.
    pub async fn login(&mut self, username: &str, password: &str) -> u16 {
        let (_, _, page) = self.get("/login").await;
        let token = input_value(&page, "token").expect("login form token");
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("token", &token),
                ("next", "/"),
            ],
        )
        .await
        .0
    }

    /// The form token of the logged-in session (from any page's logout form).
    pub async fn csrf(&mut self) -> String {
        let (status, _, page) = self.get("/account").await;
        assert_eq!(status, 200, "not logged in");
        input_value(&page, "csrf").expect("csrf field")
    }
}

impl TestApp {
    /// A browser logged in as the first admin.
    pub async fn admin_browser(&self) -> Browser {
        let mut b = Browser::new(&self.address);
        assert_eq!(b.login("admin", ADMIN_PASSWORD).await, 303);
        b
    }

    /// Adds a user with `role` and returns a browser logged in as them.
    pub async fn browser_as(&self, username: &str, role: Role) -> Browser {
        let phc = wadash::accounts::password::hash("password-for-tests");
        wadash::storage::users::create(&self.pool, username, &phc, role)
            .await
            .unwrap()
            .expect("new user");
        let mut b = Browser::new(&self.address);
        assert_eq!(b.login(username, "password-for-tests").await, 303);
        b
    }
}

/// An API request with a bearer token: (status, JSON body or null).
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = format!("{}/api/v1{path}", app.address);
    let req = match method {
        "POST" => app.client.post(url),
        "PATCH" => app.client.patch(url),
        "PUT" => app.client.put(url),
        "DELETE" => app.client.delete(url),
        _ => app.client.get(url),
    };
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// What a simulator took: (to, when it received it), for every message, read from its own
/// message list (`wadash_received_at` has microseconds).
pub async fn simulator_log(
    base: &str,
    account: &str,
    token: &str,
) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    let mut url = format!("{base}/2010-04-01/Accounts/{account}/Messages.json?PageSize=1000");
    loop {
        let page: serde_json::Value = http
            .get(&url)
            .basic_auth(account, Some(token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in page["messages"].as_array().unwrap() {
            out.push((
                m["to"].as_str().unwrap().to_owned(),
                chrono::DateTime::parse_from_rfc3339(m["wadash_received_at"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            ));
        }
        match page["next_page_uri"].as_str() {
            Some(next) => url = format!("{base}{next}"),
            None => break,
        }
    }
    out
}

impl TestApp {
    /// What this instance's simulator took.
    pub async fn simulator_log(&self) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
        simulator_log(self.twilio.base(), self.twilio.account_sid(), AUTH_TOKEN).await
    }
}

/// Checks a signed alert delivery (`X-Wadash-Timestamp`, `X-Wadash-Signature: v1=<hex
/// HMAC-SHA256(secret, "<timestamp>.<body>")>`, a fresh timestamp) and returns its JSON.
pub fn verify_signed(req: &wiremock::Request, secret: &str) -> serde_json::Value {
    use hmac::{KeyInit, Mac};
    let ts = req.headers["x-wadash-timestamp"].to_str().unwrap();
    let sig = req.headers["x-wadash-signature"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&req.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sig,
        format!("v1={expected}"),
        "signed with the expected secret"
    );
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "a fresh timestamp");
    serde_json::from_slice(&req.body).unwrap()
}

/// A `wadash serve` process of its own (the binary as users run it), on a free port of
/// loopback against the test's database, with the first admin's test password; killed when
/// dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
    pub pid: u32,
}

impl ServeProcess {
    /// Starts it with `env` added and waits until `/readyz` answers.
    pub async fn start(opts: &PgConnectOptions, env: &[(&str, &str)]) -> Self {
        Self::launch(env!("CARGO_BIN_EXE_wadash"), opts, env, None, |_| {}).await
    }

    /// Like [`start`](Self::start) with another `wadash` binary (an earlier release), its
    /// standard error written to `log` when given.
    pub async fn start_binary(
        binary: &str,
        opts: &PgConnectOptions,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        Self::launch(binary, opts, env, log, |_| {}).await
    }

    /// Starts it without the cloud credentials this test process may see: every `AWS_*`,
    /// `GOOGLE_*`, `GCE_*` and `CLOUDSDK_*` variable removed and `HOME` set to `home` (no
    /// `~/.aws`, no gcloud file), then `env` added. The standard credential chains of the
    /// SDKs read the process environment; a process of its own gives each test its own,
    /// whether tests run as threads of one process (`cargo test`) or not.
    pub async fn start_without_cloud_credentials(
        opts: &PgConnectOptions,
        home: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(env!("CARGO_BIN_EXE_wadash"), opts, env, None, |cmd| {
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if ["AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_"]
                    .iter()
                    .any(|p| name.starts_with(p))
                {
                    cmd.env_remove(name.as_ref());
                }
            }
            cmd.env("HOME", home);
        })
        .await
    }

    async fn launch(
        binary: &str,
        opts: &PgConnectOptions,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
        prepare: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A port asked for in `env` (an instance restarted where the proxy expects it).
        let port = env
            .iter()
            .find(|(k, _)| *k == "WADASH_BIND")
            .and_then(|(_, v)| v.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(free_port);
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("serve")
            .env("DATABASE_URL", database_url(opts, None))
            .env_remove("WADASH_CONFIG")
            .env("WADASH_BIND", format!("127.0.0.1:{port}"))
            .env("WADASH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("WADASH_BALANCE_POLL_SECS", "0")
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(match log {
                Some(path) => std::fs::File::create(path).unwrap().into(),
                None => std::process::Stdio::null(),
            });
        prepare(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
        let mut serve = Self {
            pid: child.id(),
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = std::time::Instant::now();
        while reqwest::get(format!("{}/readyz", serve.base))
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            if let Some(status) = serve.child.try_wait().unwrap() {
                panic!("{binary} serve exited at start: {status}");
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "wadash serve did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        serve
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One field of a multipart form: name, file name (for a file input), bytes.
pub type Field<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// POSTs a `multipart/form-data` form as a browser does, with the browser's session cookie.
pub async fn post_multipart(
    b: &Browser,
    path: &str,
    fields: &[Field<'_>],
) -> (u16, Option<String>, String) {
    let boundary = "----WadashTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{path}", b.base))
        .header("Cookie", cookie)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, resp.text().await.unwrap())
}

/// A REST client for `account` whose base (and its Content and Messaging clients' bases)
/// tests point at a Twilio double: `attempts` tries in all, short backoff.
pub fn twilio_double(
    base: &str,
    account: &str,
    secret: &str,
    attempts: u32,
) -> wadash::twilio::client::TwilioClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    wadash::twilio::client::TwilioClient::new(
        base,
        account,
        wadash::twilio::client::RestCredentials {
            username: account.into(),
            secret: secrecy::SecretString::from(secret.to_owned()),
        },
        None,
        std::time::Duration::from_secs(10),
        wadash::twilio::client::RetryPolicy {
            max_attempts: attempts,
            base_delay: std::time::Duration::from_millis(5),
            max_delay: std::time::Duration::from_millis(10),
        },
    )
    .unwrap()
}
