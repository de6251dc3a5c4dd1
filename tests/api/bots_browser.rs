//! In a real browser (headless Chromium), in simulator mode with the demo bot: a contact
//! writing the hand-off keyword appears in the overview's "waiting for a human" queue live,
//! without a reload, and the operator gives the conversation back to the bot with one click.

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::browser::{browser, driver, log_in_as_admin, screenshot, wait_for_text};
use crate::helpers::{TestApp, call, params};

const CONTACT: &str = "+919900000301";

async fn until(c: &Client, what: &str, script: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if c.execute(script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        if started.elapsed() > limit {
            screenshot(c, "bots_browser").await;
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_a_handed_off_conversation_joins_the_queue_live_and_is_given_back_in_one_click(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, bot) = call(
        &app,
        "POST",
        "/bots",
        &admin,
        Some(json!({"name": "Demo", "kind": "demo", "config": {}})),
    )
    .await;
    assert_eq!(status, 201, "{bot}");
    let (status, _) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "Everything", "kind": "any", "bot": bot["id"]})),
    )
    .await;
    assert_eq!(status, 201);

    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "#handoff-count", "0", Duration::from_secs(5)).await;
    wait_for_text(&c, "#live-status", "● live", Duration::from_secs(5)).await;
    eval(&c, "window.__notReloaded = true;").await;

    // The contact asks for a person.
    let sid = "SM000000000000000000000000000b0301";
    let resp = app
        .post_signed(
            "/wa",
            &params(&[
                ("MessageSid", sid),
                ("AccountSid", "AC00000000000000000000000000000000"),
                ("From", &format!("whatsapp:{CONTACT}")),
                ("To", "whatsapp:+14155238886"),
                ("Body", "agent"),
                ("NumMedia", "0"),
                ("SmsStatus", "received"),
            ]),
        )
        .await;
    assert_eq!(resp.status(), 200);
    until(
        &c,
        "the conversation appears in the queue",
        &format!(
            "return !!document.querySelector('#handoff-queue tr[data-handoff=\"{CONTACT}\"]') \
               && document.getElementById('handoff-count').textContent.trim() === '1';"
        ),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        eval(&c, "return window.__notReloaded === true;").await,
        json!(true),
        "updated live, not by a reload"
    );
    // Live regions are replaced as the simulator reports on the hand-off notice: each element
    // is read or clicked in one script, never held across a replacement.
    let row = eval(
        &c,
        &format!("return document.querySelector('tr[data-handoff=\"{CONTACT}\"]').textContent;"),
    )
    .await;
    assert!(
        row.as_str().unwrap().contains("asked for a person"),
        "{row}"
    );

    // The operator opens the conversation: it waits for a human; one click gives it back.
    eval(
        &c,
        &format!(
            "document.querySelector('#handoff-queue a[href=\"/conversations/{CONTACT}\"]').click(); \
             return true;"
        ),
    )
    .await;
    until(
        &c,
        "the conversation page shows the wait",
        "const s = document.getElementById('bot-state'); \
         return !!s && s.textContent.includes('waiting for a human') \
           && !!document.getElementById('give-back');",
        Duration::from_secs(10),
    )
    .await;
    eval(
        &c,
        "document.getElementById('give-back').click(); return true;",
    )
    .await;
    until(
        &c,
        "the conversation is back with the bot",
        "const s = document.getElementById('bot-state'); \
         return !!s && !s.textContent.includes('waiting for a human') \
           && !!document.getElementById('hand-off');",
        Duration::from_secs(10),
    )
    .await;
    let operator = app.api_token(Role::Operator).await;
    let (status, queue) = app.get_json("/api/v1/handoffs", &operator).await;
    assert_eq!(
        (status, queue["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    c.close().await.unwrap();
    app.stop().await;
}
