//! In a real browser (headless Chromium), the layout from a phone to a wall screen, on a
//! console with data in every table: every page of the navigation fits a 390 px phone in
//! light and dark without sideways scrolling (tables scroll inside their own container, no
//! card spills); at 1280 px the header is one line; at 1440×900 the message log shows 15
//! rows above the fold and the overview its funnel, failures and traffic chart; an unknown
//! URL is a styled 404 with the navigation; the wall screen has no navigation, follows the
//! live stream and scales its figures up on a 4K screen. A screenshot of every page
//! (desktop, phone, dark) is saved under `target/screenshots/layout-*.png`.

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::balance::Level;
use wadash::domain::Role;

use crate::browser::{Driver, driver, log_in_as_admin, screenshot};
use crate::helpers::{Browser, TestApp, call, params};

/// Chromium without its back/forward cache: a page left there would keep its `/events`
/// stream open, and after five pages the browser's six connections to the host would all be
/// taken (what the tabs work of issue 19 fixes in the script); this test is about layout.
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--disable-features=BackForwardCache",
                     "--hide-scrollbars", "--window-size=1440,900"],
        }),
    );
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver.url())
        .await
        .expect("a Chromium session")
}

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Runs `script` until it returns `true`, failing after `limit`.
async fn until(c: &Client, what: &str, script: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if eval(c, script).await == json!(true) {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sizes the window so that the page's viewport is `width`×`height` CSS pixels.
async fn viewport(c: &Client, width: u32, height: u32) {
    let want = json!([width, height]);
    let (mut ww, mut wh) = (width, height);
    for _ in 0..20 {
        c.set_window_size(ww, wh).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let inner = eval(c, "return [window.innerWidth, window.innerHeight];").await;
        if inner == want {
            return;
        }
        // The window's frame takes some of it: grow the window by the difference.
        let (cw, ch) = c.get_window_size().await.unwrap();
        let (w, h) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
        ww = (cw as i64 + i64::from(width) - w) as u32;
        wh = (ch as i64 + i64::from(height) - h) as u32;
    }
    panic!("the viewport did not become {width}×{height}");
}

/// Opens `path` and waits for its main content and for the script to have run.
async fn open(c: &Client, base: &str, path: &str) {
    c.goto(&format!("{base}{path}")).await.unwrap();
    until(
        c,
        &format!("{path} loads"),
        "return document.readyState === 'complete' && !!document.querySelector('main h1');",
        Duration::from_secs(10),
    )
    .await;
}

/// A file name for a page's screenshot.
fn shot_name(path: &str) -> String {
    let p = path
        .trim_matches('/')
        .replace(['/', '?', '=', '&', '+'], "-");
    if p.is_empty() { "overview".into() } else { p }
}

/// What spills on the page: the document wider than the screen, or a card whose content
/// is wider than the card.
const SPILLS: &str = "const out = []; \
    const w = document.documentElement.scrollWidth; \
    if (w > window.innerWidth) { \
      out.push('document ' + w); \
      document.querySelectorAll('body *').forEach(function (e) { \
        const r = e.getBoundingClientRect(); \
        if (r.right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.table-wrap')) && out.length < 6) { \
          out.push(e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(r.right)); } }); } \
    document.querySelectorAll('.panel, main, header, .alert-banner, .banner').forEach(function (e) { \
      if (e.scrollWidth > e.clientWidth + 1) { \
        out.push((e.id || e.className || e.tagName) + ' ' + e.scrollWidth + '>' + e.clientWidth); } }); \
    return out;";

/// A console with something in every table: a few hundred messages (some failed), contacts,
/// a broadcast, a reminder and a firing alert.
async fn seed(app: &TestApp) -> i64 {
    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, body, status, status_rank,
                                 error_code, sent_at, delivered_at, read_at, failed_at, created_at)
           SELECT 'SM' || md5(g::text),
                  CASE WHEN g % 7 = 0 THEN 'inbound' ELSE 'outbound' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+9199000000' || lpad((g % 50)::text, 2, '0')
                       ELSE 'whatsapp:+14155238886' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+14155238886'
                       ELSE 'whatsapp:+9199000000' || lpad((g % 50)::text, 2, '0') END,
                  'Your order ' || g || ' has been dispatched and will reach you by Friday; reply STOP to unsubscribe',
                  s.status, s.rank, s.code,
                  CASE WHEN s.rank >= 40 AND s.rank <> 52 THEN c + interval '1 second' END,
                  CASE WHEN s.rank >= 60 AND s.rank <> 65 THEN c + (g % 50) * interval '1 second' END,
                  CASE WHEN s.rank = 70 THEN c + (g % 900) * interval '1 second' END,
                  CASE WHEN s.rank IN (51, 52) THEN c + interval '5 seconds' END,
                  c
           FROM generate_series(1, 400) g,
                LATERAL (SELECT now() - (g * interval '150 seconds') AS c) t,
                LATERAL (SELECT * FROM (VALUES
                   (g % 7 = 0, 'received', 65::smallint, NULL::int),
                   (g % 7 <> 0 AND g % 10 = 1, 'failed', 52::smallint, 63016),
                   (g % 7 <> 0 AND g % 10 = 2, 'undelivered', 51::smallint, 30003),
                   (g % 7 <> 0 AND g % 10 = 3, 'sent', 40::smallint, NULL),
                   (g % 7 <> 0 AND g % 10 IN (4, 5, 6), 'delivered', 60::smallint, NULL),
                   (g % 7 <> 0 AND g % 10 IN (0, 7, 8, 9), 'read', 70::smallint, NULL)
                 ) v(ok, status, rank, code) WHERE ok) s"#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // Contacts who wrote in (their window is open), one with a long name.
    for (i, (number, name)) in [
        ("+919900000101", "Asha"),
        ("+919900000102", "Bharat Subramaniam-Venkataraghavan"),
        ("+919900000103", "Chitra"),
    ]
    .iter()
    .enumerate()
    {
        let sid = format!("SM{:032}", 9000 + i);
        let msg = params(&[
            ("MessageSid", &sid),
            ("SmsStatus", "received"),
            ("From", &format!("whatsapp:{number}")),
            ("To", "whatsapp:+14155238886"),
            ("ProfileName", name),
            ("Body", "hello, is my order subscribed for updates?"),
            ("NumMedia", "0"),
            ("AccountSid", "AC00000000000000000000000000000000"),
        ]);
        assert_eq!(app.post_signed("/wa", &msg).await.status(), 200);
    }
    let op = app.api_token(Role::Operator).await;
    let (status, b) = call(
        app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"name": "Festival offer for subscribed customers",
                    "body": "Our festival offer: 20 % off everything until Sunday",
                    "audience": {"numbers": ["+919900000101", "+919900000102", "+919900000103"]}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let (status, r) = call(
        app,
        "POST",
        "/reminders",
        &op,
        Some(
            json!({"to": "+919900000101", "body": "Your table is booked for 8 pm",
                    "at": "2030-01-01T09:00", "every": "daily", "timezone": "Asia/Kolkata"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    wadash::alerts::on_credit_level(
        &app.pool,
        &Default::default(),
        Level::Ok,
        Level::Low,
        "4.20 USD",
    )
    .await
    .unwrap();
    b["id"].as_i64().unwrap()
}

#[sqlx::test(migrations = false)]
async fn every_page_fits_a_phone_a_desktop_and_a_wall(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let broadcast = seed(&app).await;
    let content = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let base = app.address.clone();
    let driver = driver().await;
    let c = browser(&driver).await;

    c.goto(&format!("{base}/login")).await.unwrap();
    log_in_as_admin(&c).await;
    until(
        &c,
        "the overview after logging in",
        "return !!document.getElementById('funnel');",
        Duration::from_secs(10),
    )
    .await;
    until(
        &c,
        "the firing alert in the banner",
        "return !document.getElementById('alert-banner').hidden;",
        Duration::from_secs(10),
    )
    .await;

    // Every page of the navigation, and a detail page of each kind.
    let nav = eval(
        &c,
        "return Array.from(document.querySelectorAll('header nav a')).map(a => a.getAttribute('href'));",
    )
    .await;
    let mut pages: Vec<String> = nav
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pages.len(), 15, "an admin's navigation: {pages:?}");
    let sid: String =
        sqlx::query_scalar("SELECT sid FROM messages WHERE status = 'failed' LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    pages.extend([
        format!("/messages/{sid}"),
        "/conversations/+919900000102".to_owned(),
        "/contacts/+919900000102".to_owned(),
        format!("/broadcasts/{broadcast}"),
        "/broadcasts/new".to_owned(),
        "/account".to_owned(),
        format!("/templates/{}", wadash::twilio::simulator::SAMPLE_SIDS[1]),
        "/templates/new".to_owned(),
        format!(
            "/admin/senders/{}",
            crate::sender_health::seed_offline_sender(&app.pool).await
        ),
    ]);

    // A phone, light then dark: nothing wider than the screen.
    viewport(&c, 390, 844).await;
    for theme in ["light", "dark"] {
        for (i, path) in pages.iter().enumerate() {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = if i == 0 {
                format!("{path}{sep}theme={theme}")
            } else {
                path.clone()
            };
            open(&c, &base, &url).await;
            let applied = eval(
                &c,
                "return document.documentElement.getAttribute('data-theme');",
            )
            .await;
            assert_eq!(applied, json!(theme), "{path}: the theme");
            let spills = eval(&c, SPILLS).await;
            assert_eq!(spills, json!([]), "{path} at 390 px ({theme}) spills");
            assert!(
                eval(&c, "const m = document.querySelector('details.menu'); return !!m && m.getBoundingClientRect().height > 0 && document.querySelector('details.menu > summary').checkVisibility();").await == json!(true),
                "{path}: a menu button on a phone"
            );
            let name = if theme == "light" { "phone" } else { "dark" };
            screenshot(&c, &format!("layout-{name}-{}", shot_name(path))).await;
        }
    }
    // The menu opens to the whole navigation (no script needed: <details>).
    open(&c, &base, "/messages").await;
    c.find(fantoccini::Locator::Css("details.menu > summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        eval(&c, "return Array.from(document.querySelectorAll('header nav a')).filter(a => a.checkVisibility() && a.getBoundingClientRect().right <= window.innerWidth).length;").await,
        json!(15),
        "the open menu shows every entry on the screen"
    );
    assert_eq!(eval(&c, SPILLS).await, json!([]));
    screenshot(&c, "layout-phone-menu").await;

    // A desktop: the header is one line at 1280 px, the navigation in its groups.
    open(&c, &base, "/?theme=light").await;
    viewport(&c, 1280, 800).await;
    let header = eval(
        &c,
        "const h = document.querySelector('header.top').getBoundingClientRect(); \
         const tops = Array.from(document.querySelectorAll('header.top nav a, header.top .who > *')) \
           .filter(e => e.checkVisibility()).map(e => e.getBoundingClientRect().top); \
         return {height: h.height, spread: Math.max(...tops) - Math.min(...tops), \
           groups: Array.from(document.querySelectorAll('header nav .nav-group')).map(g => g.getAttribute('aria-label')), \
           menuButton: document.querySelector('details.menu > summary').checkVisibility()};",
    )
    .await;
    assert!(
        header["height"].as_f64().unwrap() < 60.0 && header["spread"].as_f64().unwrap() < 10.0,
        "one line at 1280 px: {header}"
    );
    assert_eq!(
        header["groups"],
        json!(["Monitor", "Engage", "Money", "Setup"])
    );
    assert_eq!(
        header["menuButton"],
        json!(false),
        "no menu button on a desktop"
    );
    assert_eq!(
        eval(
            &c,
            "return document.querySelector('header nav a[aria-current=page]').getAttribute('href');"
        )
        .await,
        json!("/")
    );

    // 1440×900: the message log shows a screenful, the overview its main figures.
    viewport(&c, 1440, 900).await;
    for path in &pages {
        open(&c, &base, path).await;
        assert_eq!(
            eval(&c, SPILLS).await,
            json!([]),
            "{path} at 1440 px spills"
        );
        screenshot(&c, &format!("layout-desktop-{}", shot_name(path))).await;
    }
    open(&c, &base, "/messages").await;
    let rows = eval(
        &c,
        "return Array.from(document.querySelectorAll('#message-rows tr')) \
           .filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length;",
    )
    .await;
    assert!(rows.as_u64().unwrap() >= 15, "{rows} rows above the fold");
    assert_eq!(
        eval(&c, "return document.querySelector('form.filters').checkVisibility() && !document.querySelector('details.filter-box > summary').checkVisibility();").await,
        json!(true),
        "the filters are open on a desktop"
    );
    open(&c, &base, "/").await;
    let fold = eval(
        &c,
        "const h = window.innerHeight; \
         const r = s => document.querySelector(s).getBoundingClientRect(); \
         return {funnel: r('#funnel').bottom <= h, \
                 traffic: r('[aria-labelledby=traffic-h] svg').bottom <= h, \
                 failures: r('#failures-h').bottom <= h && \
                   (!document.querySelector('[aria-labelledby=failures-h] tbody tr') || \
                    r('[aria-labelledby=failures-h] tbody tr').top < h)};",
    )
    .await;
    assert_eq!(
        fold,
        json!({"funnel": true, "traffic": true, "failures": true}),
        "the overview above the fold"
    );

    // The alert banner is one line that opens to the list.
    let banner = eval(
        &c,
        "const b = document.getElementById('alert-banner'); \
         const s = b.querySelector('summary'); \
         return {height: b.getBoundingClientRect().height, text: s.textContent.replace(/\\s+/g, ' ').trim(), \
                 listShown: b.querySelector('li').checkVisibility()};",
    )
    .await;
    assert!(banner["height"].as_f64().unwrap() < 40.0, "{banner}");
    assert!(
        banner["text"].as_str().unwrap().contains("1 open alert")
            && banner["text"].as_str().unwrap().contains("Credit low"),
        "{banner}"
    );
    assert_eq!(banner["listShown"], json!(false));
    c.find(fantoccini::Locator::Css("#alert-banner summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        eval(
            &c,
            "return document.querySelector('#alert-banner li').checkVisibility();"
        )
        .await,
        json!(true),
        "the summary opens to the list"
    );

    // An unknown URL: a styled 404 with the navigation (and its status).
    open(&c, &base, "/no/such/page").await;
    assert_eq!(
        eval(&c, "return [document.querySelector('main h1').textContent, !!document.querySelector('header nav a[href=\"/messages\"]')];").await,
        json!(["Not found", true])
    );
    screenshot(&c, "layout-desktop-404").await;
    let mut admin = app.admin_browser().await;
    let (status, _, page) = admin.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("<nav aria-label=\"Main\">")
            && page.contains("There is no page at /no/such/page.")
    );
    let (status, _, page) = admin.get("/logout").await;
    assert_eq!(status, 405, "{page}");
    assert!(page.contains("Not allowed here") && page.contains("<nav aria-label=\"Main\">"));
    // Someone not logged in: the page, a way to log in, no navigation.
    let mut stranger = Browser::new(&base);
    let (status, _, page) = stranger.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(page.contains("href=\"/login\"") && !page.contains("<nav"));
    // The API keeps its JSON errors.
    for path in ["/api/v1/no-such-thing", "/api/no-such-thing"] {
        let resp = app
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }

    // The wall: no navigation, the figures above the fold, following the live stream.
    viewport(&c, 1920, 1080).await;
    open(&c, &base, "/wall?theme=dark").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("wall=1")
    );
    let wall = eval(
        &c,
        "const h = window.innerHeight; \
         const r = s => document.querySelector(s).getBoundingClientRect(); \
         return {nav: !!document.querySelector('header.top, nav'), \
                 live: !!document.querySelector('#live-overview[data-live-src]'), \
                 funnel: r('#funnel').bottom <= h, traffic: r('[aria-labelledby=traffic-h] svg').bottom <= h, \
                 failures: r('#failures-h').bottom <= h, \
                 font: parseFloat(getComputedStyle(document.documentElement).fontSize)};",
    )
    .await;
    assert_eq!(wall["nav"], json!(false), "no chrome on the wall: {wall}");
    assert_eq!(wall["live"], json!(true));
    assert_eq!(
        (&wall["funnel"], &wall["traffic"], &wall["failures"]),
        (&json!(true), &json!(true), &json!(true)),
        "{wall}"
    );
    until(
        &c,
        "the wall is live",
        "return document.getElementById('live-status').textContent === '● live';",
        Duration::from_secs(10),
    )
    .await;
    let before = eval(
        &c,
        "return document.querySelector('[data-stage=delivered]').textContent;",
    )
    .await;
    assert_eq!(
        app.post_status("SM0000000000000000000000000000f00d", "delivered")
            .await,
        204
    );
    until(
        &c,
        "the wall's funnel follows a callback",
        &format!(
            "return document.querySelector('[data-stage=delivered]').textContent !== {before};"
        ),
        Duration::from_secs(10),
    )
    .await;
    screenshot(&c, "layout-wall-1080p").await;
    // (The headless screen is 3840×2160; the window keeps some of it.)
    viewport(&c, 3840, 2000).await;
    let font = eval(
        &c,
        "return parseFloat(getComputedStyle(document.documentElement).fontSize);",
    )
    .await;
    assert!(
        font.as_f64().unwrap() >= 36.0 && wall["font"].as_f64().unwrap() >= 18.0,
        "figures scale with the screen: {font} at 4K, {} at 1080p",
        wall["font"]
    );
    assert_eq!(eval(&c, SPILLS).await, json!([]), "the wall at 4K");
    screenshot(&c, "layout-wall-4k").await;
    // Back to the system's theme for whoever uses this profile next.
    open(&c, &base, "/?theme=auto").await;

    c.close().await.unwrap();
    app.stop().await;
}
