//! Behind a real reverse proxy (issue 23): Debian's nginx runs `deploy/nginx/wadash.conf` as
//! shipped — only its lines marked `CHANGE` rewritten (upstreams, host name, certificate) and
//! its ports moved to free loopback ones — terminating TLS with a test CA in front of two
//! `wadash serve` processes on one database. Callbacks signed by Twilio's official Python
//! library for the public `https://` URL are all accepted, stored once and spread over both
//! instances; Chromium, trusting the test certificate, logs in through the proxy and sees the
//! overview follow callbacks live whichever instance took them; the login works on both
//! instances; and a third instance added with a reload serves at once. Caddy with
//! `deploy/caddy/Caddyfile` (its own CA, `tls internal`) does the same for callbacks, and
//! passes the live event stream on at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::browser::{browser_with, driver, log_in_as_admin, wait_for_text};
use crate::helpers::{ADMIN_PASSWORD, Browser, ServeProcess, free_port};

const NGINX: &str = "/usr/sbin/nginx";
const SHIPPED: &str = include_str!("../../deploy/nginx/wadash.conf");

/// A scratch directory under `target/`, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("{name}-{}", std::process::id()))
            .join(crate::helpers::free_port().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1, made with openssl;
/// returns the base64 SHA-256 of the certificate's public key (what Chromium is told to trust).
pub(crate) fn certificates(dir: &Scratch) -> String {
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(&dir.0));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=wadash test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.path("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    let spki = run(Command::new("sh").arg("-c").arg(format!(
        "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
        dir.path("server.pem")
    )));
    spki.trim().to_owned()
}

/// The shipped configuration with its marked lines rewritten for this test.
pub(crate) fn site(upstreams: &[u16], http: u16, https: u16, dir: &Scratch) -> String {
    let mut conf = SHIPPED.to_owned();
    let mut replace = |from: &str, to: &str| {
        assert!(
            conf.contains(from),
            "deploy/nginx/wadash.conf no longer has {from:?}"
        );
        conf = conf.replace(from, to);
    };
    let servers: Vec<String> = upstreams
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;"))
        .collect();
    replace(
        "server 127.0.0.1:8080 max_fails=2 fail_timeout=5s;",
        &servers.join("\n    "),
    );
    replace("server_name wadash.example.com;", "server_name localhost;");
    replace(
        "/etc/letsencrypt/live/wadash.example.com/fullchain.pem",
        &dir.path("server.pem"),
    );
    replace(
        "/etc/letsencrypt/live/wadash.example.com/privkey.pem",
        &dir.path("server.key"),
    );
    replace(
        "    listen 80;\n",
        &format!("    listen 127.0.0.1:{http};\n"),
    );
    replace("    listen [::]:80;\n", "");
    replace(
        "    listen 443 ssl http2;\n",
        &format!("    listen 127.0.0.1:{https} ssl http2;\n"),
    );
    replace("    listen [::]:443 ssl http2;\n", "");
    conf
}

/// nginx in the foreground with its own prefix, pid file and logs; stopped when dropped.
pub(crate) struct Nginx {
    child: Child,
    conf: String,
    prefix: String,
}

impl Nginx {
    fn write(dir: &Scratch, site: &str) -> String {
        for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let p = dir.0.join(d);
            std::fs::create_dir_all(&p).unwrap();
            // Workers may run as another user (nobody) when the test runs as root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let main = format!(
            "worker_processes 1;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 512; }}\n\
             http {{\n  access_log {acc};\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             types {{ text/html html; }}\n{site}\n}}\n",
            pid = dir.path("nginx.pid"),
            err = dir.path("error.log"),
            acc = dir.path("access.log"),
            d = dir.0.display(),
        );
        let conf = dir.path("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        conf
    }

    pub(crate) async fn start(dir: &Scratch, site: &str, https: u16) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "nginx is needed (apt-get install nginx; scripts/test installs it)"
        );
        let conf = Self::write(dir, site);
        let prefix = dir.0.to_string_lossy().into_owned();
        run(Command::new(NGINX).args(["-t", "-q", "-p", &prefix, "-c", &conf]));
        let child = Command::new(NGINX)
            .args(["-p", &prefix, "-c", &conf, "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            conf,
            prefix,
        }
    }

    /// Rewrites the site and reloads nginx (as `systemctl reload nginx` does).
    pub(crate) fn reload(&self, dir: &Scratch, site: &str) {
        Self::write(dir, site);
        run(Command::new(NGINX).args(["-t", "-q", "-p", &self.prefix, "-c", &self.conf]));
        run(Command::new(NGINX).args(["-p", &self.prefix, "-c", &self.conf, "-s", "reload"]));
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new(NGINX)
            .args(["-p", &self.prefix, "-c", &self.conf, "-s", "stop"])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `sids` as `delivered` status callbacks to `url`, signed by Twilio's Python library;
/// the HTTP statuses it got, by code.
pub(crate) fn send_signed(
    url: &str,
    token: &str,
    ca: &str,
    account: &str,
    sids: &[String],
) -> serde_json::Value {
    send_signed_for(url, url, token, ca, account, sids)
}

/// Like [`send_signed`], with the signature computed for `sign_url` instead.
pub(crate) fn send_signed_for(
    url: &str,
    sign_url: &str,
    token: &str,
    ca: &str,
    account: &str,
    sids: &[String],
) -> serde_json::Value {
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/twiml-py/.venv/bin/python"
    );
    assert!(
        Path::new(python).exists(),
        "tools/twiml-py/.venv is needed (scripts/test creates it)"
    );
    let mut child = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/twiml-py/send_signed.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job = serde_json::json!({"url": url, "sign_url": sign_url, "token": token, "ca": ca,
        "account": account, "sids": sids, "status": "delivered"});
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "send_signed.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `/sts` requests an instance answered, from its `/metrics`.
pub(crate) async fn status_callbacks_taken(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("wadash_webhook_requests_total{route=\"/sts\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub(crate) fn sids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("SM{prefix}{i:0>28}")).collect()
}

#[sqlx::test(migrations = false)]
async fn behind_nginx_two_instances_take_signed_callbacks_once_each_and_share_logins_and_live_updates(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let dir = Scratch::new("proxy-test");
    let spki = certificates(&dir);
    let (http, https) = (free_port(), free_port());
    let public = format!("https://localhost:{https}");
    let env = [("WADASH_PUBLIC_URL", public.as_str())];
    // One after the other: the first creates and migrates the database.
    let a = ServeProcess::start(&opts, &env).await;
    let b = ServeProcess::start(&opts, &env).await;
    let port_of = |s: &ServeProcess| -> u16 { s.base.rsplit(':').next().unwrap().parse().unwrap() };
    let nginx = Nginx::start(
        &dir,
        &site(&[port_of(&a), port_of(&b)], http, https, &dir),
        https,
    )
    .await;

    let pool = PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    let token = wadash::twilio::webhook_keys::simulator_token(&pool)
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let account = "AC8e904faad99a05efe123e12515a0000";
    let ca = dir.path("ca.pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Plain http is sent to https.
    let moved = client
        .get(format!("http://127.0.0.1:{http}/login"))
        .header("Host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 301);
    assert_eq!(
        moved.headers()["location"].to_str().unwrap(),
        "https://localhost/login"
    );

    // 40 callbacks signed for the public URL: every one accepted, each message stored once,
    // and both instances took some.
    let first = sids("a", 40);
    let report = send_signed(&format!("{public}/sts"), &token, &ca, account, &first);
    assert_eq!(
        report["statuses"],
        serde_json::json!({"204": 40}),
        "{report}"
    );
    let (stored, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE sid LIKE 'SMa%' AND status = 'delivered'),
                (SELECT count(*) FROM message_events WHERE message_sid LIKE 'SMa%')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((stored, events), (40, 40));
    let (on_a, on_b) = (
        status_callbacks_taken(&a.base).await,
        status_callbacks_taken(&b.base).await,
    );
    assert_eq!(on_a + on_b, 40);
    assert!(
        on_a > 0 && on_b > 0,
        "round robin: {on_a} on A, {on_b} on B"
    );
    // A signature for another URL (a proxy that loses https, or strips a path prefix) is
    // refused, and nothing is stored. (With or without the port is the same URL to Twilio's
    // validators, and to wadash's.)
    for other in [
        format!("http://localhost:{https}/sts"),
        format!("https://localhost:{https}/wadash/sts"),
    ] {
        let refused = send_signed_for(
            &format!("{public}/sts"),
            &other,
            &token,
            &ca,
            account,
            &sids("x", 1),
        );
        assert_eq!(
            refused["statuses"],
            serde_json::json!({"403": 1}),
            "signed for {other}"
        );
    }
    let forged = client
        .post(format!("{public}/sts"))
        .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .form(&[("MessageSid", "SMx000"), ("MessageStatus", "delivered")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let refused_stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE sid LIKE 'SMx%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(refused_stored, 0);

    // A login through the proxy is good on both instances (sessions live in the database).
    let mut through = Browser::with_client(&public, client.clone());
    assert_eq!(through.login("admin", ADMIN_PASSWORD).await, 303);
    for direct in [&a, &b] {
        let mut one = Browser::new(&direct.base);
        one.cookies = through.cookies.clone();
        let (status, _, _) = one.get("/account").await;
        assert_eq!(status, 200, "the session works on {}", direct.base);
    }

    // Chromium, trusting the test certificate, sees live updates through the proxy for
    // callbacks whichever instance takes them.
    let driver = driver().await;
    let trust = format!("--ignore-certificate-errors-spki-list={spki}");
    let c = browser_with(&driver, &[trust.as_str()]).await;
    c.goto(&format!("{public}/")).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "40", Duration::from_secs(10)).await;
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(10)).await;
    for (i, sid) in sids("b", 4).into_iter().enumerate() {
        let report = send_signed(&format!("{public}/sts"), &token, &ca, account, &[sid]);
        assert_eq!(
            report["statuses"],
            serde_json::json!({"204": 1}),
            "{report}"
        );
        let want = (41 + i).to_string();
        wait_for_text(&c, "[data-stage=delivered]", &want, Duration::from_secs(10)).await;
    }
    let (on_a2, on_b2) = (
        status_callbacks_taken(&a.base).await,
        status_callbacks_taken(&b.base).await,
    );
    assert!(
        on_a2 > on_a && on_b2 > on_b,
        "the live callbacks went to both instances: A {on_a}→{on_a2}, B {on_b}→{on_b2}"
    );
    c.close().await.unwrap();

    // A third instance, added with a reload, takes its share at once.
    let third = ServeProcess::start(&opts, &env).await;
    nginx.reload(
        &dir,
        &site(
            &[port_of(&a), port_of(&b), port_of(&third)],
            http,
            https,
            &dir,
        ),
    );
    let started = Instant::now();
    let mut n = 0;
    while status_callbacks_taken(&third.base).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the third instance got nothing"
        );
        let batch = sids(&format!("c{n}"), 6);
        let report = send_signed(&format!("{public}/sts"), &token, &ca, account, &batch);
        assert_eq!(
            report["statuses"],
            serde_json::json!({"204": 6}),
            "{report}"
        );
        n += 1;
    }
    let (status, _, _) = {
        let mut one = Browser::new(&third.base);
        one.cookies = through.cookies.clone();
        one.get("/account").await
    };
    assert_eq!(
        status, 200,
        "the earlier login works on the new instance too"
    );
    drop(nginx);
    pool.close().await;
}

const CADDY: &str = "/usr/bin/caddy";
const SHIPPED_CADDY: &str = include_str!("../../deploy/caddy/Caddyfile");

/// The shipped Caddyfile with its marked lines rewritten for this test: loopback ports, the
/// host `localhost` with Caddy's own CA (`tls internal`), no admin endpoint, no attempt to
/// install that CA in the system's trust store.
fn caddyfile(upstreams: &[u16], http: u16, https: u16) -> String {
    let mut conf = SHIPPED_CADDY.to_owned();
    let mut replace = |from: &str, to: &str| {
        assert!(
            conf.contains(from),
            "deploy/caddy/Caddyfile no longer has {from:?}"
        );
        conf = conf.replace(from, to);
    };
    replace(
        "\temail ops@example.com\n",
        &format!(
            "\temail ops@example.com\n\tadmin off\n\tskip_install_trust\n\thttp_port {http}\n\thttps_port {https}\n"
        ),
    );
    replace("wadash.example.com {\n", "localhost {\n\ttls internal\n");
    let upstreams: Vec<String> = upstreams.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    replace(
        "reverse_proxy 127.0.0.1:8080 {",
        &format!("reverse_proxy {} {{", upstreams.join(" ")),
    );
    conf
}

/// Caddy in the foreground with its data (and its internal CA) under `dir`; stopped when
/// dropped.
struct Caddy(Child);

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test(migrations = false)]
async fn behind_caddy_with_its_own_ca_two_instances_take_signed_callbacks_and_stream_live_events(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    assert!(
        Path::new(CADDY).exists(),
        "caddy is needed (apt-get install caddy; scripts/test installs it)"
    );
    let dir = Scratch::new("caddy-test");
    let (http, https) = (free_port(), free_port());
    let public = format!("https://localhost:{https}");
    let env = [("WADASH_PUBLIC_URL", public.as_str())];
    let a = ServeProcess::start(&opts, &env).await;
    let b = ServeProcess::start(&opts, &env).await;
    let port_of = |s: &ServeProcess| -> u16 { s.base.rsplit(':').next().unwrap().parse().unwrap() };
    let conf = dir.path("Caddyfile");
    std::fs::write(&conf, caddyfile(&[port_of(&a), port_of(&b)], http, https)).unwrap();
    run(Command::new(CADDY)
        .args(["validate", "--adapter", "caddyfile", "--config", &conf])
        .env("XDG_DATA_HOME", dir.path("data"))
        .env("XDG_CONFIG_HOME", dir.path("config")));
    let caddy = Caddy(
        Command::new(CADDY)
            .args(["run", "--adapter", "caddyfile", "--config", &conf])
            .env("XDG_DATA_HOME", dir.path("data"))
            .env("XDG_CONFIG_HOME", dir.path("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Caddy makes its CA and the site's certificate at start.
    let ca = dir.path("data/caddy/pki/authorities/local/root.crt");
    let started = Instant::now();
    let client = loop {
        if let Ok(pem) = std::fs::read(&ca) {
            let client = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            if client
                .get(format!("{public}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break client;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "caddy did not serve https"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let pool = PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    let token = wadash::twilio::webhook_keys::simulator_token(&pool)
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let account = "AC8e904faad99a05efe123e12515a0000";

    let report = send_signed(
        &format!("{public}/sts"),
        &token,
        &ca,
        account,
        &sids("d", 20),
    );
    assert_eq!(
        report["statuses"],
        serde_json::json!({"204": 20}),
        "{report}"
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE sid LIKE 'SMd%' AND status = 'delivered'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 20);
    let (on_a, on_b) = (
        status_callbacks_taken(&a.base).await,
        status_callbacks_taken(&b.base).await,
    );
    assert!(
        on_a > 0 && on_b > 0 && on_a + on_b == 20,
        "A {on_a}, B {on_b}"
    );

    // Logged in through Caddy, the live stream passes each event on at once.
    let mut through = Browser::with_client(&public, client.clone());
    assert_eq!(through.login("admin", ADMIN_PASSWORD).await, 303);
    let cookie: Vec<String> = through
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut stream = client
        .get(format!("{public}/events"))
        .header("Cookie", cookie.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut seen = String::new();
    let hello = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("event: hello") {
            seen.push_str(&String::from_utf8_lossy(
                &stream.chunk().await.unwrap().unwrap(),
            ));
        }
    })
    .await;
    assert!(hello.is_ok(), "no hello through caddy: {seen:?}");
    let live = sids("e", 1);
    let report = send_signed(&format!("{public}/sts"), &token, &ca, account, &live);
    assert_eq!(
        report["statuses"],
        serde_json::json!({"204": 1}),
        "{report}"
    );
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(&live[0]) {
            seen.push_str(&String::from_utf8_lossy(
                &stream.chunk().await.unwrap().unwrap(),
            ));
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the callback's event did not come through caddy: {seen:?}"
    );
    drop(stream);
    drop(caddy);
    pool.close().await;
}
