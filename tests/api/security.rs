//! Attacks from outside, each a black-box test over HTTP: the media proxy as a way into
//! Twilio's API, parallel login guesses, open redirects after login, login bursts that eat
//! memory, webhook bodies that stall, a database that hangs, and alert hooks aimed inside the
//! network.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ADMIN_PASSWORD, Browser, ServeProcess, TestApp, call, input_value};
use crate::private_pg::PrivatePostgres;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const MM: &str = "MM00000000000000000000000000000a01";
const ME: &str = "ME00000000000000000000000000000001";

fn inbound(sid: &str, from: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    crate::helpers::inbound(AC, sid, from, extra)
}

/// Every crafted media URL a message could carry, for account `ac` and message `mm`.
fn crafted_media(ac: &str, mm: &str) -> Vec<String> {
    let base = format!("https://api.twilio.com/2010-04-01/Accounts/{ac}");
    vec![
        format!("{base}/Balance.json?/Media/"),
        format!("{base}/Messages.json?x=/Media/x"),
        format!("{base}/Messages/{mm}/Media/{ME}?x=1"),
        format!("{base}/Messages/{mm}/Media/../../../../Accounts.json"),
        format!("{base}/Messages/{mm}/Media/%2e%2e/%2e%2e/%2e%2e/Balance.json"),
        format!("{base}/Messages/{mm}/Media/{ME}.json"),
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/AC{}/Messages/{mm}/Media/{ME}",
            "f".repeat(32)
        ),
        format!("{base}/Messages/MM{}/Media/{ME}", "e".repeat(32)),
        format!("https://evil.example/2010-04-01/Accounts/{ac}/Messages/{mm}/Media/{ME}"),
        format!("http://api.twilio.com/2010-04-01/Accounts/{ac}/Messages/{mm}/Media/{ME}"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ]
}

/// In simulator mode: an operator cannot make the proxy fetch the account's balance or
/// message list through an outbound message's `media_url`, nor can a received message's
/// crafted URL; a real received image is still shown to a logged-in viewer.
#[sqlx::test(migrations = false)]
async fn the_media_proxy_serves_received_media_and_nothing_else(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let ac = app.twilio.account_sid().to_owned();
    let operator = app.api_token(Role::Operator).await;
    let balance = format!("https://api.twilio.com/2010-04-01/Accounts/{ac}/Balance.json?/Media/");
    let (status, sent) = call(
        &app,
        "POST",
        "/messages",
        &operator,
        Some(json!({"to": "+919900000901", "body": "x", "media_url": balance, "force": true})),
    )
    .await;
    let sent_sid = if status == 201 {
        sent["sid"].as_str().unwrap().to_owned()
    } else {
        // Refusing the URL outright is as good; the proxy is checked with the inbound ones.
        assert_eq!(status, 400, "{sent}");
        String::new()
    };
    // Even Twilio-shaped media of an outbound message is not fetched with the credentials.
    let sm = "SM00000000000000000000000000000a02";
    sqlx::query(
        "INSERT INTO messages (sid, direction, media, created_at, updated_at) \
         VALUES ($1, 'outbound', $2, now(), now())",
    )
    .bind(sm)
    .bind(json!([{"url": format!("https://api.twilio.com/2010-04-01/Accounts/{ac}/Messages/{sm}/Media/{ME}"), "content_type": "image/png"}]))
    .execute(&app.pool)
    .await
    .unwrap();

    let crafted = crafted_media(&ac, MM);
    let mut fields = vec![("NumMedia".to_owned(), (crafted.len() + 1).to_string())];
    let real = format!("https://api.twilio.com/2010-04-01/Accounts/{ac}/Messages/{MM}/Media/{ME}");
    for (i, url) in std::iter::once(&real).chain(&crafted).enumerate() {
        fields.push((format!("MediaUrl{i}"), url.clone()));
        fields.push((format!("MediaContentType{i}"), "image/png".into()));
    }
    let mut p = inbound(MM, "+919900000901", &[]);
    p.extend(fields);
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);

    let mut viewer = app.browser_as("viewer", Role::Viewer).await;
    let resp = viewer.get_response(&format!("/media/{MM}/0")).await;
    assert_eq!(resp.status(), 200, "the received image is served");
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.unwrap().starts_with(b"\x89PNG"));
    for (i, url) in crafted.iter().enumerate() {
        let (status, _, body) = viewer.get(&format!("/media/{MM}/{}", i + 1)).await;
        assert_eq!(status, 404, "{url} must not be fetched: {body}");
        // (The page's navigation links /balance: what must not show is Balance.json's body.)
        assert!(!body.contains("\"balance\""), "{url}: {body}");
    }
    if !sent_sid.is_empty() {
        let (status, _, body) = viewer.get(&format!("/media/{sent_sid}/0")).await;
        assert_eq!(status, 404, "an outbound message's media_url: {body}");
    }
    let (status, _, _) = viewer.get(&format!("/media/{sm}/0")).await;
    assert_eq!(status, 404, "an outbound message's Twilio-shaped media");

    // The pages link only the real media through the proxy.
    let (_, _, page) = viewer.get("/conversations/+919900000901").await;
    assert!(page.contains(&format!("src=\"/media/{MM}/0\"")), "{page}");
    for i in 1..=crafted.len() {
        assert!(!page.contains(&format!("/media/{MM}/{i}\"")), "{page}");
    }
    app.stop().await;
}

/// Against a Twilio double in live mode: crafted URLs never reach it, the credentials go to
/// it alone, and a redirect off Twilio's media hosts is refused (the other host sees nothing).
#[sqlx::test(migrations = false)]
async fn media_downloads_send_credentials_only_to_twilio_and_follow_no_foreign_redirect(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let twilio = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("stolen"))
        .mount(&elsewhere)
        .await;
    let media_path = |me: &str| format!("/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{me}");
    let me_foreign = "ME00000000000000000000000000000002";
    let me_cdn = "ME00000000000000000000000000000003";
    Mock::given(method("GET"))
        .and(path(media_path(me_foreign)))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/steal", elsewhere.uri()).as_str()),
        )
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(media_path(me_cdn)))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/cdn/photo"))
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path("/cdn/photo"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "image/png")
                .set_body_bytes(b"\x89PNG photo".to_vec()),
        )
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert("twilio_account_sid".into(), AC.into());
        v.insert("twilio_api_base".into(), uri);
    })
    .await;
    let mut urls: Vec<String> = [me_foreign, me_cdn]
        .iter()
        .map(|me| format!("https://api.twilio.com{}", media_path(me)))
        .collect();
    urls.extend(crafted_media(AC, MM));
    let mut p = inbound(MM, "+919900000903", &[]);
    p.push(("NumMedia".into(), urls.len().to_string()));
    for (i, u) in urls.iter().enumerate() {
        p.push((format!("MediaUrl{i}"), u.clone()));
        p.push((format!("MediaContentType{i}"), "image/png".into()));
    }
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);

    let mut viewer = app.browser_as("viewer", Role::Viewer).await;
    let (status, _, body) = viewer.get(&format!("/media/{MM}/0")).await;
    assert_eq!(status, 502, "a redirect to another host is refused: {body}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the other host was never asked"
    );
    let resp = viewer.get_response(&format!("/media/{MM}/1")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(&resp.bytes().await.unwrap()[..], b"\x89PNG photo");
    for (i, url) in urls.iter().enumerate().skip(2) {
        let (status, _, _) = viewer.get(&format!("/media/{MM}/{i}")).await;
        assert_eq!(status, 404, "{url}");
    }
    let seen = twilio.received_requests().await.unwrap();
    let paths: Vec<&str> = seen.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        paths,
        [
            media_path(me_foreign).as_str(),
            &media_path(me_cdn),
            "/cdn/photo"
        ],
        "only the two real media (and the CDN copy) were requested"
    );
    assert!(
        seen[0]
            .headers
            .get("authorization")
            .is_some_and(|a| a.to_str().unwrap().starts_with("Basic ")),
        "Twilio gets the credentials"
    );
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
    app.stop().await;
}

/// A media URL that is not a web link (`javascript:`) is shown as text, never as a link.
#[sqlx::test(migrations = false)]
async fn a_javascript_media_url_is_never_a_link(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let p = inbound(
        "SM00000000000000000000000000000a04",
        "+919900000904",
        &[
            ("NumMedia", "2"),
            ("MediaUrl0", "javascript:alert(document.cookie)"),
            ("MediaContentType0", "image/png"),
            ("MediaUrl1", "JaVaScRiPt:alert(1)"),
            ("MediaContentType1", "application/pdf"),
        ],
    );
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);
    let mut b = app.admin_browser().await;
    for page in [
        "/conversations/+919900000904",
        "/messages/SM00000000000000000000000000000a04",
    ] {
        let (status, _, html) = b.get(page).await;
        assert_eq!(status, 200);
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("href=\"javascript:"), "{page}: {html}");
        assert!(!lower.contains("src=\"javascript:"), "{page}: {html}");
        assert!(html.contains("not a web link"), "{page}: {html}");
    }
    app.stop().await;
}

/// A login form's token and the browser holding its cookie.
async fn login_form(app: &TestApp) -> (Browser, String) {
    let mut b = Browser::new(&app.address);
    let (_, _, page) = b.get("/login").await;
    let token = input_value(&page, "token").unwrap();
    (b, token)
}

/// 50 guesses at once on one account, and 60 at once on 60 accounts from one client: no more
/// passwords are checked than the limits (5 per account, 20 per client).
#[sqlx::test(migrations = false)]
async fn parallel_login_guesses_never_check_more_passwords_than_the_limit(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut forms = Vec::new();
    for _ in 0..50 {
        forms.push(login_form(&app).await);
    }
    let guesses = forms
        .into_iter()
        .enumerate()
        .map(|(i, (mut b, token))| async move {
            let password = format!("wrong guess {i}");
            b.post(
                "/login",
                &[
                    ("username", "admin"),
                    ("password", &password),
                    ("token", &token),
                ],
            )
            .await
            .0
        });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // The right password now comes too late.
    assert_eq!(
        Browser::new(&app.address)
            .login("admin", ADMIN_PASSWORD)
            .await,
        429
    );

    // Another client address's limit, across accounts (the account limit is not the one hit).
    sqlx::query("DELETE FROM login_failures")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut forms = Vec::new();
    for _ in 0..60 {
        forms.push(login_form(&app).await);
    }
    let guesses = forms
        .into_iter()
        .enumerate()
        .map(|(i, (mut b, token))| async move {
            b.post(
                "/login",
                &[
                    ("username", &format!("user{i}")),
                    ("password", "wrong guess"),
                    ("token", &token),
                ],
            )
            .await
            .0
        });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 20, "{checked} passwords checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429 | 503)),
        "{statuses:?}"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM login_failures WHERE key LIKE 'ip:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        recorded <= 20,
        "{recorded} failures recorded for the client"
    );
    app.stop().await;
}

/// `next` values that a browser would read as another host, or that are not valid in a
/// header, send the user to `/` after logging in — never elsewhere, never a 500.
#[sqlx::test(migrations = false)]
async fn next_after_login_stays_on_this_site(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    for next in [
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "/\x0b/evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "//evil.example/",
        "/\t/\t/evil.example",
        "https://evil.example/",
    ] {
        let (mut b, token) = login_form(&app).await;
        let (status, location, body) = b
            .post(
                "/login",
                &[
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                    ("token", &token),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(status, 303, "{next:?}: {body}");
        assert_eq!(location.as_deref(), Some("/"), "{next:?}");
        // The login form itself does not carry it either.
        let (status, _, page) = Browser::new(&app.address)
            .get(&format!(
                "/login?{}",
                serde_urlencoded::to_string([("next", next)]).unwrap()
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(input_value(&page, "next").as_deref(), Some("/"), "{next:?}");
    }
    let (mut b, token) = login_form(&app).await;
    let (_, location, _) = b
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("token", &token),
                ("next", "/messages?status=failed"),
            ],
        )
        .await;
    assert_eq!(location.as_deref(), Some("/messages?status=failed"));
    app.stop().await;
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// 200 logins at once, each from its own client address (so the throttle lets every one
/// through to the password check): the server's peak memory stays within one argon2 hash
/// (19 MiB) per core, twice over, plus 256 MiB — not 200 hashes' worth (~3.9 GB).
#[sqlx::test(migrations = false)]
async fn a_burst_of_logins_keeps_memory_bounded(_: PgPoolOptions, opts: PgConnectOptions) {
    let serve = ServeProcess::start(&opts, &[]).await;
    let (pid, base) = (serve.pid, serve.base.clone());
    // Warm up: one failed login (the dummy hash is computed on first use).
    let mut b = Browser::new(&base);
    assert_eq!(b.login("nobody", "not the password").await, 401);
    let baseline = status_kib(pid, "VmRSS:");

    let attempts = (0..200u32).map(|i| {
        let base = base.clone();
        async move {
            // 127.1.0.1 … 127.1.0.200: loopback answers every 127/8 address.
            let ip = std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
            let client = reqwest::Client::builder()
                .local_address(std::net::IpAddr::V4(ip))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let page = client.get(format!("{base}/login")).send().await.unwrap();
            let cookie = page
                .headers()
                .get("set-cookie")
                .unwrap()
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let html = page.text().await.unwrap();
            let token = input_value(&html, "token").unwrap();
            client
                .post(format!("{base}/login"))
                .header("Cookie", cookie)
                .form(&[
                    ("username", format!("burst{i}")),
                    ("password", "not the password".to_owned()),
                    ("token", token),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let peak = status_kib(pid, "VmHWM:");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 503)),
        "every attempt is refused or told to come back: {statuses:?}"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    eprintln!(
        "login burst: baseline {} MiB, peak {} MiB, {} answered 401, {} answered 503",
        baseline / 1024,
        peak / 1024,
        statuses.iter().filter(|s| **s == 401).count(),
        statuses.iter().filter(|s| **s == 503).count()
    );
    let bound_kib = baseline + cores * 2 * 19 * 1024 + 256 * 1024;
    assert!(
        peak <= bound_kib,
        "peak RSS {} MiB > bound {} MiB (baseline {} MiB, {cores} cores)",
        peak / 1024,
        bound_kib / 1024,
        baseline / 1024
    );
    drop(serve);
}

/// Raw HTTP over one TCP connection, for bodies that stall.
async fn stalled_request(
    address: &str,
    path: &str,
    declared: usize,
    sent: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {declared}\r\nX-Twilio-Signature: x\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream
}

/// A signed status callback from `local` (a loopback address of the test's choosing).
async fn callback_from(app: &TestApp, local: std::net::IpAddr, sid: &str) -> reqwest::Response {
    let p = crate::helpers::status_callback(sid, "sent");
    reqwest::Client::builder()
        .local_address(local)
        .build()
        .unwrap()
        .post(format!("{}/sts", app.address))
        .header("X-Twilio-Signature", app.sign("/sts", &p))
        .form(&p)
        .send()
        .await
        .unwrap()
}

/// Sends callbacks from `local` until one is refused as busy (every accepted one is a real,
/// stored callback), within `limit`; returns the refusal's message.
async fn until_busy(app: &TestApp, local: std::net::IpAddr, limit: Duration) -> String {
    let started = Instant::now();
    for i in 0u32.. {
        let resp = callback_from(app, local, &format!("SM{:032x}", 0xb000 + i)).await;
        if resp.status() == 503 {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "busy", "{body}");
            return body["error"]["message"].as_str().unwrap().to_owned();
        }
        assert_eq!(resp.status(), 204);
        assert!(
            started.elapsed() < limit,
            "no slot limit reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Reads until the server answers and closes; an abrupt close (reset) ends the read too.
async fn answer_and_close(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was not closed within {limit:?}: {}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// A body that stalls, or trickles, is answered 408 and its connection closed after the body
/// timeout; while bodies are pending, no more than `webhook_max_bodies` are held in all, nor
/// `webhook_max_bodies_per_peer` by one address.
#[sqlx::test(migrations = false)]
async fn stalled_webhook_bodies_are_closed_and_bounded(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("webhook_body_timeout_ms".into(), "4000".into());
        v.insert("webhook_max_bodies".into(), "3".into());
        v.insert("webhook_max_bodies_per_peer".into(), "2".into());
    })
    .await;
    let here: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let third: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    // Two stalled bodies from 127.0.0.1 take its share: its next webhook is refused at once,
    // while another address is still served and takes the last slot of all.
    let mut a = stalled_request(&app.address, "/sts", 60_000, b"MessageSid=SM").await;
    let mut b = stalled_request(&app.address, "/wa", 60_000, b"").await;
    let refused = until_busy(&app, here, Duration::from_secs(3)).await;
    assert!(refused.contains("from this address"), "{refused}");
    assert_eq!(
        callback_from(&app, other, "SM00000000000000000000000000000b01")
            .await
            .status(),
        204
    );
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut c = {
        use tokio::io::AsyncWriteExt;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(other, 0)).unwrap();
        let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
        let head = format!(
            "POST /sts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s
    };
    let refused = until_busy(&app, third, Duration::from_secs(3)).await;
    assert!(refused.contains("in all"), "{refused}");

    let generous = Duration::from_secs(20);
    for stream in [&mut a, &mut b, &mut c] {
        let said = answer_and_close(stream, generous).await;
        assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    }

    // A trickle (a byte every 200 ms) does not extend the timeout: it is for the whole body.
    let mut d = stalled_request(&app.address, "/sts", 10_000, b"M").await;
    let trickle_started = Instant::now();
    let mut said = Vec::new();
    loop {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 512];
        tokio::select! {
            n = d.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                let _ = d.write_all(b"x").await;
            }
        }
        assert!(
            trickle_started.elapsed() < generous,
            "a trickling body is held past the timeout"
        );
    }
    let said = String::from_utf8_lossy(&said);
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );

    // The slots are free again: a real callback is stored.
    let ok = callback_from(&app, here, "SM00000000000000000000000000000b02").await;
    assert_eq!(ok.status(), 204);
    app.stop().await;
}

/// With PostgreSQL frozen (SIGSTOP of a server the test started itself), webhooks are
/// answered 503 within the default deadline (5 s), well inside Twilio's 15 s, never 2xx; once
/// the server runs again, callbacks are stored again, and every callback that got a 2xx is
/// in the database.
#[sqlx::test(migrations = false)]
async fn a_frozen_database_gives_503_within_the_deadline_and_no_unstored_2xx(
    _: PgPoolOptions,
    _main: PgConnectOptions,
) {
    let pg = PrivatePostgres::start();
    let app = TestApp::spawn(pg.connect_options()).await;
    let sid = |i: u32| format!("SM{i:032x}");
    let mut acknowledged = Vec::new();
    for i in 0..4 {
        let resp = app
            .post_signed("/sts", &crate::helpers::status_callback(&sid(i), "sent"))
            .await;
        assert_eq!(resp.status(), 204);
        acknowledged.push(sid(i));
    }

    pg.freeze();
    let started = Instant::now();
    let posts = (100..120).map(|i| {
        let app = &app;
        async move {
            let t = Instant::now();
            let post = async {
                if i % 5 == 0 {
                    let p = inbound(
                        &sid(i),
                        "+919900000911",
                        &[("NumMedia", "0"), ("Body", "hi")],
                    );
                    app.post_signed("/wa", &p).await.status().as_u16()
                } else {
                    app.post_signed(
                        "/sts",
                        &crate::helpers::status_callback(&sid(i), "delivered"),
                    )
                    .await
                    .status()
                    .as_u16()
                }
            };
            // Past Twilio's own timeout the answer no longer matters: 0 marks "none".
            let status = tokio::time::timeout(Duration::from_secs(20), post)
                .await
                .unwrap_or(0);
            (i, status, t.elapsed())
        }
    });
    let answers = futures_util::future::join_all(posts).await;
    let frozen_for = started.elapsed();
    pg.thaw();
    let slowest = answers.iter().map(|a| a.2).max().unwrap_or_default();
    eprintln!(
        "frozen database: 20 webhooks answered in at most {slowest:?} (all within {frozen_for:?})"
    );
    for (i, status, took) in &answers {
        assert_eq!(
            *status, 503,
            "callback {i} answered {status} while the database was frozen"
        );
        assert!(
            *took < Duration::from_secs(14),
            "callback {i} waited {took:?}: past Twilio's 15 s timeout"
        );
    }
    assert!(frozen_for < Duration::from_secs(14), "{frozen_for:?}");

    // The database runs again: new callbacks are stored (retried as Twilio would).
    let recovered = Instant::now();
    loop {
        let resp = app
            .post_signed("/sts", &crate::helpers::status_callback(&sid(200), "sent"))
            .await;
        if resp.status() == 204 {
            acknowledged.push(sid(200));
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(60),
            "no recovery after the thaw"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in &acknowledged {
        assert!(
            app.current_status(s).await.is_some(),
            "{s} got a 2xx but is not stored"
        );
    }
    app.stop().await;
    drop(pg);
}

/// Alert and top-up hooks may not point at this machine, its private network or a cloud
/// metadata service, however the address is written; and a hook's redirect is not followed.
#[sqlx::test(migrations = false)]
async fn alert_hooks_refuse_private_destinations_and_follow_no_redirect(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts.clone(), |v| {
        v.insert("secret_key".into(), "5a".repeat(32));
        v.insert("outbound_allow_hosts".into(), String::new());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://localhost:8080/hook",
        "http://0x7f000001/hook",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
    ] {
        for field in ["webhook_url", "topup_url"] {
            let (status, body) = call(
                &app,
                "PUT",
                "/alert-channels",
                &admin,
                Some(json!({field: url, field.replace("url", "secret"): "a-long-enough-secret-value"})),
            )
            .await;
            assert_eq!(status, 400, "{field} {url}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("private"),
                "{body}"
            );
        }
    }
    app.stop().await;

    // The environment is checked the same way at start.
    let refused = wadash::config::Settings::from_values(
        &[
            ("alert_webhook_url", "http://169.254.169.254/x"),
            ("alert_webhook_secret", "a-long-enough-secret-value"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    );
    assert!(refused.unwrap_err().to_string().contains("private"));

    // An allowed host is used, but its redirect is not followed.
    let hook = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/inside", elsewhere.uri()).as_str()),
        )
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    let hook_url = format!("{}/hook", hook.uri());
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert("alert_webhook_url".into(), hook_url);
        v.insert(
            "alert_webhook_secret".into(),
            "a-long-enough-secret-value".into(),
        );
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let (status, body) = call(&app, "POST", "/alert-channels/test", &admin, None).await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let error = loop {
        let row: Option<(Option<String>, i32)> = sqlx::query_as(
            "SELECT last_error, attempts FROM alert_deliveries WHERE channel = 'webhook'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some((Some(e), n)) = row
            && n >= 1
        {
            break e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no delivery attempt"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(error.contains("307"), "{error}");
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
    app.stop().await;
}
