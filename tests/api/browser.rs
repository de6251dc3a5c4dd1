//! In a real browser (Debian's headless Chromium through ChromeDriver): logging in, the
//! overview's funnel, a callback moving the numbers on the open page without a reload — sent
//! to this instance and to a second one on the same database — and hostile text shown as text.
//! Screenshots of the main pages are saved under `target/screenshots/`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{ADMIN_PASSWORD, TestApp, params};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A ChromeDriver process for one test, killed when dropped together with every browser it
/// started: ChromeDriver runs in a process group of its own, and the whole group is killed.
/// Killing ChromeDriver alone leaves a Chromium behind whenever a test ends without closing
/// its session (a failing assertion, or a forgotten `close`), and a browser left running takes
/// CPU from later tests and benchmarks. (Being in a group of its own, ChromeDriver does not
/// get a terminal's Ctrl-C; the test process's end does not kill it either way.)
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Where ChromeDriver listens.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn driver() -> Driver {
    assert!(
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
        "Chromium and ChromeDriver are needed (apt-get install chromium chromium-driver; scripts/test installs them)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { child, url }
}

pub(crate) async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A Chromium session with `extra` command-line flags besides the usual ones.
pub(crate) async fn browser_with(driver: &Driver, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ];
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": CHROMIUM, "args": args}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Fills in and submits the login form on the page `c` shows, as the first admin, and waits
/// (up to 30 s) until the browser has left the login page: a navigation started before the
/// login's answer arrives would abort it, and the session cookie with it.
pub(crate) async fn log_in_as_admin(c: &Client) {
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let url = c.current_url().await.expect("the browser's URL");
        if url.path() != "/login" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still on the login page 30 s after submitting it: {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");
    std::fs::create_dir_all(dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
}

/// The text of the first element matching `css`, waiting up to 5 s for it to appear (a live
/// update may be replacing the region at that moment).
pub(crate) async fn text_of(c: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        let found = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await,
            Err(e) => Err(e),
        };
        match found {
            Ok(t) => return t,
            Err(e) if started.elapsed() > Duration::from_secs(5) => {
                panic!("{css} not found: {e}")
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the element's text is `want`; returns how long it took.
pub(crate) async fn wait_for_text(c: &Client, css: &str, want: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await
            && el.text().await.ok().as_deref() == Some(want)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{css} did not become {want:?} within {limit:?} (it is {:?})",
            text_of(c, css).await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_the_overview_follows_callbacks_live_from_any_instance(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let a = TestApp::spawn(opts.clone()).await;
    let b = TestApp::spawn(opts).await;
    let driver = driver().await;
    let c = browser(&driver).await;

    c.goto(&format!("{}/", a.address)).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    screenshot(&c, "login").await;
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "0", Duration::from_secs(5)).await;
    assert!(
        text_of(&c, "#simulator-banner")
            .await
            .contains("Simulator mode")
    );
    // The live connection is up before anything is sent.
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(5)).await;

    // A marker that a reload would wipe out.
    c.execute("window.__notReloaded = true;", vec![])
        .await
        .unwrap();

    // A callback to this instance moves the numbers on the open page.
    assert_eq!(
        a.post_status("SM0000000000000000000000000000aaaa", "delivered")
            .await,
        204
    );
    let took = wait_for_text(&c, "[data-stage=delivered]", "1", Duration::from_secs(2)).await;
    eprintln!("callback → browser on the same instance: {took:?}");

    // So does a callback received by another instance on the same database.
    assert_eq!(
        b.post_status("SM0000000000000000000000000000bbbb", "delivered")
            .await,
        204
    );
    let took = wait_for_text(&c, "[data-stage=delivered]", "2", Duration::from_secs(2)).await;
    eprintln!("callback → browser through a second instance: {took:?}");
    let still = c
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        still,
        serde_json::json!(true),
        "the page was updated, not reloaded"
    );
    screenshot(&c, "overview").await;

    // Hostile text from a customer is shown as text and never runs.
    let inbound = params(&[
        ("MessageSid", "SM0000000000000000000000000000cccc"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000001"),
        ("To", "whatsapp:+14155238886"),
        ("ProfileName", "<script>alert(1)</script>"),
        ("Body", "<img src=x onerror=alert(2)>hello"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(a.post_signed("/wa", &inbound).await.status(), 200);
    c.goto(&format!("{}/conversations/+919900000001", a.address))
        .await
        .unwrap();
    let heading = text_of(&c, "h1").await;
    assert!(heading.contains("<script>alert(1)</script>"), "{heading}");
    assert!(
        text_of(&c, "#bubbles")
            .await
            .contains("<img src=x onerror=alert(2)>hello")
    );
    assert!(c.get_alert_text().await.is_err(), "no script ran");

    // A photo and a shared location: the photo comes through the media proxy (the page's
    // CSP allows only this site's images), the location as coordinates with a map link.
    let photo_url = format!(
        "https://api.twilio.com/2010-04-01/Accounts/{}/Messages/SM0000000000000000000000000000dddd/Media/ME00000000000000000000000000000001",
        a.twilio.account_sid()
    );
    let photo = params(&[
        ("MessageSid", "SM0000000000000000000000000000dddd"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000001"),
        ("To", "whatsapp:+14155238886"),
        ("Body", ""),
        ("NumMedia", "1"),
        ("MediaUrl0", &photo_url),
        ("MediaContentType0", "image/jpeg"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(a.post_signed("/wa", &photo).await.status(), 200);
    let place = params(&[
        ("MessageSid", "SM0000000000000000000000000000eeee"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000001"),
        ("To", "whatsapp:+14155238886"),
        ("Body", ""),
        ("NumMedia", "0"),
        ("Latitude", "12.9716"),
        ("Longitude", "77.5946"),
        ("Label", "MG Road"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(a.post_signed("/wa", &place).await.status(), 200);
    c.goto(&format!("{}/conversations/+919900000001", a.address))
        .await
        .unwrap();
    let width = {
        let mut width = serde_json::Value::Null;
        for _ in 0..50 {
            width = c
                .execute(
                    "const i = document.querySelector('img.bubble-image'); return i && i.complete ? i.naturalWidth : null;",
                    vec![],
                )
                .await
                .unwrap();
            if !width.is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        width
    };
    assert_eq!(
        width,
        serde_json::json!(96),
        "the photo loaded through /media"
    );
    let location = text_of(&c, ".location").await;
    assert!(
        location.contains("12.9716, 77.5946") && location.contains("MG Road"),
        "{location}"
    );
    screenshot(&c, "conversation").await;

    for (path, name) in [
        ("/messages".to_owned(), "messages"),
        (
            "/messages/SM0000000000000000000000000000aaaa".to_owned(),
            "message",
        ),
        ("/admin".to_owned(), "admin"),
        ("/costs".to_owned(), "costs"),
        ("/alerts".to_owned(), "alerts"),
        ("/admin/alerts".to_owned(), "alert-settings"),
        ("/admin/prices".to_owned(), "prices"),
    ] {
        c.goto(&format!("{}{path}", a.address)).await.unwrap();
        c.find(Locator::Css("main h1")).await.unwrap();
        screenshot(&c, name).await;
    }
    let dark = c
        .execute(
            "document.documentElement.setAttribute('data-theme','dark'); return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        dark,
        serde_json::json!("rgb(13, 17, 23)"),
        "the dark theme applies"
    );
    c.goto(&format!("{}/", a.address)).await.unwrap();
    c.execute(
        "document.documentElement.setAttribute('data-theme','dark');",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "overview-dark").await;

    c.close().await.unwrap();
    drop(driver);
    a.stop().await;
    b.stop().await;
}
