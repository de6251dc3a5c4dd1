//! The balance page and the overview's balance tile: the figures from the readings, the
//! chart, the live fragment, the page without readings and the login it needs.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, TestApp};

async fn reading(app: &TestApp, hours_ago: i32, balance: &str) {
    sqlx::query(
        "INSERT INTO balance_readings (read_at, balance, currency) \
         VALUES (now() - make_interval(hours => $1), $2::numeric, 'USD')",
    )
    .bind(hours_ago)
    .bind(balance)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn the_page_shows_balance_burn_runway_and_chart(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    // From 30.00 ten hours ago: 5.00 spent, a top-up of 10.00 (not spending), 15.00 spent.
    // 20.00 over 10 h is 2.00 an hour, and the 20.00 left lasts 10 h.
    reading(&app, 10, "30.00").await;
    reading(&app, 5, "25.00").await;
    reading(&app, 4, "35.00").await;
    reading(&app, 0, "20.00").await;
    let mut b = app.browser_as("watcher", Role::Viewer).await;

    let (status, _, page) = b.get("/balance").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"href="/balance" aria-current="page">Balance</a>"#));
    // Money: the currency's two decimals on screen, the exact value on hover.
    assert!(
        page.contains(
            r#"id="balance-now"><span class="money" title="20.00 USD">USD 20.00</span><"#
        ),
        "{page}"
    );
    assert!(
        page.contains(
            r#"id="balance-burn"><span class="money" title="2.00 USD / h">USD 2.00 / h</span><"#
        ),
        "{page}"
    );
    assert!(
        page.contains(r#"id="balance-readings">(4 readings)<"#),
        "{page}"
    );
    assert!(page.contains("from the drops between balance readings"));
    assert!(
        page.contains("At the last 24 h's pace, credit lasts <strong>10 h 0 min</strong>"),
        "{page}"
    );
    assert!(page.contains("<svg") && page.contains(r#"class="balance-line""#));
    assert_eq!(page.matches(r#"class="balance-point""#).count(), 4);
    assert!(page.contains("data-live-stats") && page.contains("/balance?fragment=live"));

    // The live fragment: the figures and the chart, without the page around them.
    let (status, _, live) = b.get("/balance?fragment=live").await;
    assert_eq!(status, 200);
    assert!(
        live.trim_start().starts_with(r#"<div id="live-balance""#),
        "{live}"
    );
    assert!(live.contains("USD 20.00") && live.contains("<svg"));
    assert!(!live.contains("<html") && !live.contains("<nav"));

    // The overview's tile, inside its live region, links here.
    let (_, _, overview) = b.get("/").await;
    let tile = overview.find(r#"id="balance-tile""#).expect("tile");
    assert!(overview.find("data-live-stats").unwrap() < tile);
    assert!(overview[tile..].contains(r#"href="/balance""#));
    assert!(overview[tile..].contains(">USD 20.00</span>"));
    assert!(overview[tile..].contains("lasts 10 h 0 min"));
    let (_, _, live) = b.get("/?fragment=live").await;
    assert!(live.contains(r#"id="balance-tile""#));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn without_readings_the_page_says_so_and_the_tile_is_hidden(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut b = app.admin_browser().await;
    let (status, _, page) = b.get("/balance").await;
    assert_eq!(status, 200);
    assert!(page.contains("No reading yet"), "{page}");
    assert!(page.contains("Twilio reports no balance for a subaccount"));
    assert!(!page.contains(r#"id="balance-now""#));
    assert!(page.contains("<svg") && page.contains("(0 readings)"));
    let (_, _, live) = b.get("/balance?fragment=live").await;
    assert!(live.contains("No reading yet"));
    let (_, _, overview) = b.get("/").await;
    assert!(!overview.contains(r#"id="balance-tile""#));
    assert!(
        overview.contains(r#"<a href="/balance" >Balance</a>"#),
        "in the nav"
    );

    // A single reading: the balance, no burn from readings, no runway.
    reading(&app, 1, "5.5").await;
    let (_, _, page) = b.get("/balance").await;
    assert!(
        page.contains(r#"id="balance-now"><span class="money" title="5.50 USD">USD 5.50<"#),
        "{page}"
    );
    assert!(
        page.contains(r#"id="balance-readings">(1 reading)<"#),
        "one reading, singular: {page}"
    );
    assert!(page.contains("nothing spent in the last 24 hours"));
    assert!(page.contains("no end in sight"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_page_needs_a_login(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut anonymous = Browser::new(&app.address);
    for path in ["/balance", "/balance?fragment=live"] {
        let (status, location, _) = anonymous.get(path).await;
        assert_eq!(status, 303, "{path}");
        assert!(location.unwrap().starts_with("/login"), "{path}");
    }
    app.stop().await;
}
