//! One live stream per browser, in headless Chromium: ten tabs on the overview hold one
//! `/events` stream between them (counted by `wadash_live_streams`) and all follow a callback;
//! an eleventh tab navigates freely meanwhile; when the tab holding the stream closes another
//! takes over and every tab sees every event once, in order; a page left for the back/forward
//! cache holds no stream and is live again when it comes back.

use std::time::{Duration, Instant};

use fantoccini::Client;
use fantoccini::wd::WindowHandle;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::browser::{browser, driver, log_in_as_admin, text_of, wait_for_text};
use crate::helpers::TestApp;
use crate::live::{live_streams, wait_for_streams};

const LIVE: &str = "return window.wadash.live();";

fn sid(n: u32) -> String {
    format!("SM{:032x}", 0x7ab5_0000 + n)
}

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Opens `n` windows on the overview, the first logging in; returns their handles.
async fn open_tabs(
    c: &Client,
    app: &TestApp,
    n: usize,
    most_streams: &mut u64,
) -> Vec<WindowHandle> {
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(c).await;
    wait_for_text(c, "[data-stage=delivered]", "0", Duration::from_secs(10)).await;
    let mut tabs = vec![c.window().await.unwrap()];
    for _ in 1..n {
        let w = c.new_window(false).await.unwrap().handle;
        c.switch_to_window(w.clone()).await.unwrap();
        c.goto(&format!("{}/", app.address)).await.unwrap();
        wait_for_text(c, "[data-stage=delivered]", "0", Duration::from_secs(10)).await;
        tabs.push(w);
        *most_streams = (*most_streams).max(live_streams(app).await);
    }
    tabs
}

/// Waits until every tab's live status says it is live.
async fn all_live(c: &Client, tabs: &[WindowHandle]) {
    for w in tabs {
        c.switch_to_window(w.clone()).await.unwrap();
        wait_for_text(c, "#live-status", "● live", Duration::from_secs(10)).await;
    }
}

/// Waits until the overview's delivered count is `want` in every tab.
async fn all_show_delivered(c: &Client, tabs: &[WindowHandle], want: &str) {
    for w in tabs {
        c.switch_to_window(w.clone()).await.unwrap();
        wait_for_text(c, "[data-stage=delivered]", want, Duration::from_secs(10)).await;
    }
}

/// Each tab's `window.wadash.live()`.
async fn states(c: &Client, tabs: &[WindowHandle]) -> Vec<Value> {
    let mut out = Vec::new();
    for w in tabs {
        c.switch_to_window(w.clone()).await.unwrap();
        out.push(eval(c, LIVE).await);
    }
    out
}

/// Waits until exactly one tab leads; returns its index.
async fn the_leader(c: &Client, tabs: &[WindowHandle]) -> usize {
    let started = Instant::now();
    loop {
        let s = states(c, tabs).await;
        let leaders: Vec<usize> = (0..s.len()).filter(|i| s[*i]["leader"] == true).collect();
        assert!(leaders.len() <= 1, "two leaders: {s:?}");
        if leaders.len() == 1 {
            assert!(s.iter().all(|t| t["mode"] == "shared"), "{s:?}");
            return leaders[0];
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no leader: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn ten_tabs_share_one_stream_and_an_eleventh_navigates_without_stalling(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let driver = driver().await;
    let c = browser(&driver).await;
    let mut most = 0;
    let tabs = open_tabs(&c, &app, 10, &mut most).await;
    all_live(&c, &tabs).await;
    assert!(most <= 1, "{most} streams while the tabs opened");
    wait_for_streams(&app, 1, Duration::from_secs(10)).await;
    the_leader(&c, &tabs).await;
    let opened: u64 = states(&c, &tabs)
        .await
        .iter()
        .map(|s| s["streams"].as_u64().unwrap())
        .sum();
    assert_eq!(opened, 1, "one tab opened the one stream");

    // A callback reaches all ten.
    assert_eq!(app.post_status(&sid(1), "delivered").await, 204);
    all_show_delivered(&c, &tabs, "1").await;

    // An eleventh tab navigates: each page completes in under 2 s (with a stream per tab, the
    // browser's six connections per host were taken and pages hung for 15–30 s).
    let eleventh = c.new_window(false).await.unwrap().handle;
    c.switch_to_window(eleventh).await.unwrap();
    let pages = [
        "/",
        "/messages",
        "/alerts",
        "/costs",
        "/balance",
        "/contacts",
    ];
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let url = format!("{}{}", app.address, pages[i % pages.len()]);
        let started = Instant::now();
        c.goto(&url).await.unwrap();
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(2),
            "navigation {i} to {url} took {took:?}"
        );
    }
    eprintln!("slowest of 30 navigations beside ten tabs: {slowest:?}");
    assert!(live_streams(&app).await <= 1);

    // And the ten still follow callbacks.
    assert_eq!(app.post_status(&sid(2), "delivered").await, 204);
    all_show_delivered(&c, &tabs, "2").await;
    wait_for_streams(&app, 1, Duration::from_secs(10)).await;

    c.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

/// The log's positions, in order, and those of the rows mentioning each of `sids`.
async fn log(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT xid::text || '.' || id, payload::text FROM live_log ORDER BY xid, id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Every tab saw a run of the log without gaps or repeats, through every row about `sids`.
fn saw_every_event_once(states: &[Value], log: &[(String, String)], sids: &[String]) {
    let positions: Vec<&str> = log.iter().map(|(p, _)| p.as_str()).collect();
    for s in states {
        let ids: Vec<&str> = s["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!ids.is_empty(), "{s:?}");
        let from = positions
            .iter()
            .position(|p| *p == ids[0])
            .unwrap_or_else(|| panic!("{} is not in the log {positions:?}", ids[0]));
        assert_eq!(
            ids,
            positions[from..from + ids.len().min(positions.len() - from)],
            "a gap or a repeat"
        );
        for sid in sids {
            let (at, _) = log
                .iter()
                .find(|(_, payload)| payload.contains(sid.as_str()))
                .unwrap_or_else(|| panic!("no row for {sid}"));
            assert!(ids.contains(&at.as_str()), "{sid} ({at}) missed: {ids:?}");
        }
    }
}

#[sqlx::test(migrations = false)]
async fn another_tab_takes_the_stream_over_without_loss_and_a_cached_page_holds_none(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let driver = driver().await;
    let c = browser(&driver).await;
    let mut most = 0;
    let mut tabs = open_tabs(&c, &app, 4, &mut most).await;
    all_live(&c, &tabs).await;
    wait_for_streams(&app, 1, Duration::from_secs(10)).await;
    assert_eq!(app.post_status(&sid(1), "delivered").await, 204);
    all_show_delivered(&c, &tabs, "1").await;

    // The leader closes while callbacks arrive, and more come after.
    let leader = the_leader(&c, &tabs).await;
    let gone = tabs.remove(leader);
    c.switch_to_window(gone).await.unwrap();
    let two = sid(2);
    let (closed, first) = tokio::join!(c.close_window(), app.post_status(&two, "delivered"));
    closed.unwrap();
    assert_eq!(first, 204);
    for n in 3..=6 {
        assert_eq!(app.post_status(&sid(n), "delivered").await, 204);
    }
    all_show_delivered(&c, &tabs, "6").await;
    let next = the_leader(&c, &tabs).await;
    wait_for_streams(&app, 1, Duration::from_secs(20)).await;
    let sids: Vec<String> = (1..=6).map(sid).collect();
    // Every tab has applied everything the log has (a roll-up's `stats` row may come late).
    let started = Instant::now();
    loop {
        let s = states(&c, &tabs).await;
        let log = log(&app).await;
        let end = &log.last().unwrap().0;
        if s.iter().all(|t| t["lastId"].as_str() == Some(end.as_str())) {
            saw_every_event_once(&s, &log, &sids);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not every tab reached {end}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The leader goes to another page and comes back: another tab takes over meanwhile and
    // the stream count does not grow.
    let w = tabs[next].clone();
    c.switch_to_window(w).await.unwrap();
    eval(&c, "window.__before = true; return null;").await;
    c.goto(&format!("{}/messages", app.address)).await.unwrap();
    the_leader(&c, &tabs).await;
    wait_for_streams(&app, 1, Duration::from_secs(20)).await;
    c.switch_to_window(tabs[next].clone()).await.unwrap();
    c.back().await.unwrap();
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(10)).await;
    // The pages are `Cache-Control: no-store`, which keeps Chromium from caching them (so the
    // overview is loaded again); the cache is exercised below with the events it sends.
    let cached = eval(&c, "return window.__before === true;").await;
    eprintln!("the overview came back from the back/forward cache: {cached}");
    wait_for_streams(&app, 1, Duration::from_secs(20)).await;
    assert_eq!(app.post_status(&sid(7), "delivered").await, 204);
    all_show_delivered(&c, &tabs, "7").await;

    // Into the back/forward cache and out again, as the browser signals it (`pagehide` and
    // `pageshow` with `persisted`), from the tab that leads now.
    let leader = the_leader(&c, &tabs).await;
    c.switch_to_window(tabs[leader].clone()).await.unwrap();
    let hidden = eval(
        &c,
        "window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })); \
         return window.wadash.live();",
    )
    .await;
    assert_eq!(hidden["joined"], false, "{hidden:?}");
    assert_eq!(hidden["leader"], false, "{hidden:?}");
    let others: Vec<WindowHandle> = (0..tabs.len())
        .filter(|i| *i != leader)
        .map(|i| tabs[i].clone())
        .collect();
    the_leader(&c, &others).await;
    wait_for_streams(&app, 1, Duration::from_secs(20)).await;
    // A change while it is away reaches the others, not the cached page.
    assert_eq!(app.post_status(&sid(8), "delivered").await, 204);
    all_show_delivered(&c, &others, "8").await;
    c.switch_to_window(tabs[leader].clone()).await.unwrap();
    assert_eq!(text_of(&c, "[data-stage=delivered]").await, "7");
    // Back: it joins again, catches up, and follows the next change like every tab.
    let back = eval(
        &c,
        "window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })); \
         return window.wadash.live();",
    )
    .await;
    assert_eq!(back["joined"], true, "{back:?}");
    wait_for_text(&c, "[data-stage=delivered]", "8", Duration::from_secs(10)).await;
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(10)).await;
    assert_eq!(app.post_status(&sid(9), "delivered").await, 204);
    all_show_delivered(&c, &tabs, "9").await;
    the_leader(&c, &tabs).await;
    wait_for_streams(&app, 1, Duration::from_secs(20)).await;
    let opened: u64 = states(&c, &tabs)
        .await
        .iter()
        .map(|s| s["streams"].as_u64().unwrap())
        .sum();
    eprintln!("streams opened by the three tabs over the test: {opened}");

    c.close().await.unwrap();
    drop(driver);
    app.stop().await;
}
