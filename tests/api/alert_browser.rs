//! In a real browser (headless Chromium): the banner of open alerts appears on a page that
//! is already open when an alert fires, turns quiet when it is acknowledged, and goes when it
//! resolves, without a reload; message changes leave the banner alone and alert changes
//! leave the message regions alone.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::balance::Level;
use wadash::domain::Role;

use crate::browser::{browser, driver, log_in_as_admin, screenshot, wait_for_text};
use crate::helpers::TestApp;

/// Runs `script` until it returns `true`, failing after `limit`.
async fn until(c: &Client, what: &str, script: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if c.execute(script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Records the URLs the page fetches from now on (live.js fetches a region in the same tick
/// as the event that concerns it, so what was not fetched by the time another region was
/// refreshed was not going to be).
const RECORD_FETCHES: &str = "window.__fetched = []; const f = window.fetch; \
    window.fetch = function (u) { window.__fetched.push(String(u)); return f.apply(this, arguments); };";

async fn credit(app: &TestApp, before: Level, after: Level) {
    wadash::alerts::on_credit_level(&app.pool, &Default::default(), before, after, "4.20 USD")
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_the_alert_banner_follows_alerts_live_on_an_open_page(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "0", Duration::from_secs(5)).await;
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(5)).await;
    assert_eq!(
        eval(&c, "return document.getElementById('alert-banner').hidden;").await,
        json!(true),
        "no open alert: the banner is there, hidden"
    );
    eval(
        &c,
        &format!("window.__notReloaded = true; {RECORD_FETCHES}"),
    )
    .await;

    // An alert fires while the overview is open: the banner appears, the funnel is not
    // re-fetched.
    credit(&app, Level::Ok, Level::Low).await;
    until(
        &c,
        "the banner shows the firing alert",
        "const l = document.querySelector('#alert-banner li[data-alert-state=firing]'); \
         return !!l && !document.getElementById('alert-banner').hidden \
           && l.textContent.includes('Twilio credit is low: 4.20 USD left');",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        c.find(Locator::Css("#alert-banner"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    screenshot(&c, "alert-banner-firing").await;
    assert_eq!(
        eval(
            &c,
            "return window.__fetched.filter(u => !u.startsWith('/alerts/banner'));"
        )
        .await,
        json!([]),
        "an alert event refreshes only the alert regions"
    );

    // A message changes: the funnel moves, the banner is not re-fetched.
    eval(&c, "window.__fetched = [];").await;
    assert_eq!(
        app.post_status("SM0000000000000000000000000000a1e1", "delivered")
            .await,
        204
    );
    wait_for_text(&c, "[data-stage=delivered]", "1", Duration::from_secs(5)).await;
    let fetched = eval(&c, "return window.__fetched;").await;
    assert!(
        !fetched.to_string().contains("/alerts/banner"),
        "a message change leaves the banner alone: {fetched}"
    );

    // Acknowledged through the API: the line turns quiet, and the summary the reader opened
    // stays open across the refresh.
    eval(
        &c,
        "document.querySelector('#alert-banner details').open = true;",
    )
    .await;
    let op = app.api_token(Role::Operator).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM alerts WHERE kind = 'credit_low'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _) = crate::helpers::call(
        &app,
        "POST",
        &format!("/alerts/{id}/acknowledge"),
        &op,
        None,
    )
    .await;
    assert_eq!(status, 200);
    until(
        &c,
        "the banner shows the alert acknowledged",
        "return !!document.querySelector('#alert-banner li[data-alert-state=acknowledged]');",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        eval(
            &c,
            "return document.querySelector('#alert-banner details').open;"
        )
        .await,
        json!(true),
        "an opened alert summary stays open when the banner is refreshed"
    );
    assert_eq!(
        eval(&c, "return window.__notReloaded === true;").await,
        json!(true),
        "updated, not reloaded"
    );

    // Any other page carries the banner; it goes when the alert resolves.
    c.goto(&format!("{}/messages", app.address)).await.unwrap();
    until(
        &c,
        "the banner on /messages",
        "return !!document.querySelector('#alert-banner li[data-alert-state=acknowledged]');",
        Duration::from_secs(5),
    )
    .await;
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(5)).await;
    eval(&c, "window.__notReloaded = true;").await;
    credit(&app, Level::Low, Level::Ok).await;
    until(
        &c,
        "the banner goes when the alert resolves",
        "const b = document.getElementById('alert-banner'); \
         return b.hidden && !b.querySelector('li');",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        eval(&c, "return window.__notReloaded === true;").await,
        json!(true)
    );

    c.goto(&format!("{}/alerts", app.address)).await.unwrap();
    c.find(Locator::Css("main h1")).await.unwrap();
    screenshot(&c, "alerts").await;
    c.goto(&format!("{}/admin/alerts", app.address))
        .await
        .unwrap();
    c.find(Locator::Css("main h1")).await.unwrap();
    screenshot(&c, "alert-settings").await;
    c.close().await.unwrap();
    drop(driver);
    app.stop().await;
}
