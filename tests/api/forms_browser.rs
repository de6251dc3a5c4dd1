//! Safe forms in a real browser (headless Chromium): the live character counter under a
//! limited field, the two-step confirmation of a destructive action (the real button hidden
//! until the first click, then focused) and its undo, and template variables added as rows.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::browser::{browser, driver, log_in_as_admin, screenshot, wait_for_text};
use crate::helpers::{TestApp, call};

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

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

#[sqlx::test(migrations = false)]
async fn in_a_browser_limited_fields_count_and_destructive_actions_confirm_then_undo(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Admin).await;
    let (status, rule) = call(
        &app,
        "POST",
        "/rules",
        &token,
        Some(
            json!({"name": "hours", "kind": "keyword", "pattern": "hours", "reply_body": "9 to 5"}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let rule = rule["id"].as_i64().unwrap();
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "0", Duration::from_secs(5)).await;

    // The counter under the text follows typing, counting an emoji as Twilio does (2).
    c.goto(&format!("{}/send", app.address)).await.unwrap();
    wait_for_text(&c, "#body-count", "0 / 1600", Duration::from_secs(5)).await;
    let body = c.find(Locator::Id("body")).await.unwrap();
    body.send_keys("Hello").await.unwrap();
    wait_for_text(&c, "#body-count", "5 / 1600", Duration::from_secs(5)).await;
    eval(
        &c,
        "const b = document.getElementById('body'); b.value = 'x'.repeat(1598) + '🎉'; \
         b.dispatchEvent(new Event('input'));",
    )
    .await;
    wait_for_text(&c, "#body-count", "1600 / 1600", Duration::from_secs(5)).await;
    assert_eq!(
        eval(
            &c,
            "return document.getElementById('body-count').className;"
        )
        .await,
        json!("counter near")
    );
    // At the limit, the browser takes no more.
    body.send_keys("more").await.unwrap();
    assert_eq!(
        eval(&c, "return document.getElementById('body').value.length;").await,
        json!(1600)
    );
    assert_eq!(
        eval(
            &c,
            "return document.getElementById('body').getAttribute('aria-describedby');"
        )
        .await,
        json!("body-count")
    );
    // Template variables: the add button (shown by the script) adds a numbered row.
    eval(&c, "document.querySelector('form details').open = true;").await;
    assert_eq!(
        eval(&c, "return document.querySelectorAll('.var-row').length;").await,
        json!(3)
    );
    c.find(Locator::Css("[data-add-var]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "a fourth row, focused",
        "const r = document.querySelectorAll('.var-row'); return r.length === 4 \
           && document.activeElement === document.getElementById('var-name-3') \
           && document.getElementById('var-value-3').name === 'var_value_3' \
           && document.getElementById('var-name-3').placeholder === '4';",
        Duration::from_secs(5),
    )
    .await;
    screenshot(&c, "forms-send").await;

    // Deleting a rule: the real button is hidden until the first click, then focused.
    c.goto(&format!("{}/admin/rules", app.address))
        .await
        .unwrap();
    let confirm = c
        .find(Locator::Id(&format!("confirm-delete-{rule}")))
        .await
        .unwrap();
    assert!(
        !confirm.is_displayed().await.unwrap(),
        "hidden before asking"
    );
    c.find(Locator::Css("details.confirm > summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the confirm button shown and focused",
        &format!(
            "const b = document.getElementById('confirm-delete-{rule}'); \
             return b.offsetParent !== null && document.activeElement === b;"
        ),
        Duration::from_secs(5),
    )
    .await;
    screenshot(&c, "forms-confirm").await;
    // Escape closes it without deleting anything.
    eval(
        &c,
        "document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));",
    )
    .await;
    until(
        &c,
        "closed again",
        "return !document.querySelector('details.confirm').open;",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM reply_rules").await, 1);
    c.find(Locator::Css("details.confirm > summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    confirm.click().await.unwrap();
    wait_for_text(
        &c,
        "#undo-delete",
        "Undo: put “hours” back",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM reply_rules").await, 0);
    c.find(Locator::Id("undo-delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &c,
        "#rules-notice p",
        "Rule restored where it was.",
        Duration::from_secs(5),
    )
    .await;
    let (body,): (Option<String>,) =
        sqlx::query_as("SELECT reply_body FROM reply_rules WHERE name = 'hours'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(body.as_deref(), Some("9 to 5"));
    c.close().await.unwrap();
    app.stop().await;
}
