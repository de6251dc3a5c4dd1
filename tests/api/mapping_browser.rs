//! The broadcast form's variable mapping in a real browser (headless Chromium): the sample
//! quick-reply template picked, a CSV with its own column names uploaded, two columns mapped to
//! the template's placeholders, and the first recipients' messages previewed.

use std::time::Duration;

use fantoccini::Locator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::browser::{browser, driver, log_in_as_admin, screenshot, text_of, wait_for_text};
use crate::helpers::TestApp;

/// The simulator's sample quick-reply, `appointment_reminder`: "Reminder: your appointment
/// with {{1}} is on {{2}}. Will you come?".
const APPOINTMENT: &str = "HX00000000000000000000000000005a02";

/// Runs `script` until it returns `true` (a page being replaced answers nothing meanwhile).
async fn until(c: &fantoccini::Client, what: &str, script: &str) {
    let started = std::time::Instant::now();
    loop {
        if let Ok(v) = c.execute(script, vec![]).await
            && v == serde_json::json!(true)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_csv_columns_are_mapped_to_the_template_and_each_recipient_previewed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    // The simulator's catalogue read into wadash's ("Sync now").
    let mut admin = app.admin_browser().await;
    let token = admin.csrf().await;
    let (status, _, _) = admin.post("/templates/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    let placeholders: serde_json::Value =
        sqlx::query_scalar("SELECT types FROM templates WHERE sid = $1")
            .bind(APPOINTMENT)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let body = placeholders.to_string();
    assert!(
        body.contains("{{1}}") && body.contains("{{2}}") && !body.contains("{{3}}"),
        "the sample's placeholders are {{1}} and {{2}}: {body}"
    );

    let dir = std::env::temp_dir().join(format!("wadash-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("patients.csv");
    std::fs::write(
        &csv,
        "phone,name,when\n+919900000061,Dr Rao,Monday 10:00\n+919900000062,Dr <i>Iyer</i>,Tuesday 11:30\n",
    )
    .unwrap();

    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "0", Duration::from_secs(5)).await;
    c.goto(&format!("{}/broadcasts/new", app.address))
        .await
        .unwrap();
    // The picker offers the template with its status; the SID is what it fills in.
    let offered = c
        .find(Locator::Css(&format!(
            "#template-choices option[value={APPOINTMENT}]"
        )))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        offered.contains("appointment_reminder") && offered.contains("approved"),
        "{offered}"
    );
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("Appointments")
        .await
        .unwrap();
    c.find(Locator::Id("content_sid"))
        .await
        .unwrap()
        .send_keys(APPOINTMENT)
        .await
        .unwrap();
    c.find(Locator::Id("numbers-file"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css(
        "form[action='/broadcasts/preview'] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();

    // Neither column is named after a placeholder: the preview asks for the mapping.
    let problems = text_of(&c, "#mapping-problems").await;
    assert!(problems.contains("{{1}} is not mapped"), "{problems}");
    // Choosing a column refreshes the preview at once (forms.js; without it, "Update the
    // preview" does, as the HTTP tests check).
    c.find(Locator::Id("map_1"))
        .await
        .unwrap()
        .select_by_value("column:name")
        .await
        .unwrap();
    until(
        &c,
        "the preview refreshed with {{1}} mapped",
        "return document.readyState === 'complete' && !!document.getElementById('map_1') \
         && document.getElementById('map_1').value === 'column:name' \
         && document.getElementById('mapping-problems') !== null \
         && document.getElementById('mapping-problems').textContent.indexOf('{{1}}') < 0;",
    )
    .await;
    c.find(Locator::Id("map_2"))
        .await
        .unwrap()
        .select_by_value("column:when")
        .await
        .unwrap();
    until(
        &c,
        "the preview refreshed with both mapped",
        "return document.readyState === 'complete' && document.getElementById('confirm') !== null;",
    )
    .await;
    let rows = text_of(&c, "#preview-samples").await;
    assert!(
        rows.contains("Reminder: your appointment with Dr Rao is on Monday 10:00. Will you come?"),
        "{rows}"
    );
    assert!(
        rows.contains("with Dr <i>Iyer</i> is on Tuesday 11:30"),
        "shown as text, not markup: {rows}"
    );
    assert!(!rows.contains("missing"), "{rows}");
    assert!(
        c.find(Locator::Id("confirm")).await.is_ok(),
        "it can be confirmed now"
    );
    assert_eq!(text_of(&c, "#preview-template-status").await, "approved");
    screenshot(&c, "broadcast-mapping").await;
    // The mapping's selects and the per-recipient table pass axe-core's serious checks.
    let violations = crate::accessibility::serious_violations(&c).await;
    assert!(violations.is_empty(), "{violations:#?}");

    // Confirmed: each recipient queued with its own values.
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the broadcast's page",
        "return /\\/broadcasts\\/[0-9]+$/.test(location.pathname);",
    )
    .await;
    let stored: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT number, variables FROM broadcast_recipients ORDER BY number")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![
            (
                "+919900000061".to_owned(),
                serde_json::json!({"1": "Dr Rao", "2": "Monday 10:00"})
            ),
            (
                "+919900000062".to_owned(),
                serde_json::json!({"1": "Dr <i>Iyer</i>", "2": "Tuesday 11:30"})
            ),
        ]
    );
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}
