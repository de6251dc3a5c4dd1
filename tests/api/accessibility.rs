//! Accessibility checks in a real browser: axe-core (npm, pinned in tools/axe) is injected
//! into a page and its serious and critical violations are returned in words, so a test can
//! walk every page and fail with what is wrong and where.

use fantoccini::Client;

const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tools/axe/node_modules/axe-core/axe.min.js"
);

/// axe-core's source, read once per test run.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        std::fs::read_to_string(AXE).unwrap_or_else(|e| {
            panic!("{AXE}: {e} (scripts/test installs axe-core: cd tools/axe && npm ci)")
        })
    })
}

/// The serious and critical violations axe-core finds on the page `c` shows, one line each:
/// rule, impact, what it asks for, and up to three offending elements.
pub(crate) async fn serious_violations(c: &Client) -> Vec<String> {
    c.execute(axe_source(), vec![])
        .await
        .expect("axe-core loads");
    let found = c
        .execute_async(
            r#"
            var done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] }).then(function (r) {
              done(r.violations
                .filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
                .map(function (v) {
                  return v.id + " (" + v.impact + "): " + v.help + " — " +
                    v.nodes.slice(0, 3).map(function (n) {
                      return n.target.join(" ") + (n.failureSummary ? " [" + n.failureSummary.replace(/\s+/g, " ") + "]" : "");
                    }).join("; ");
                }));
            }, function (e) { done(["axe-core failed: " + e]); });
            "#,
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of strings")
}

/// Every page of a dashboard with data in it, as an admin, in the light and the dark theme:
/// no serious or critical violation. The login page and an unknown URL are checked too.
#[sqlx::test(migrations = false)]
async fn no_page_has_a_serious_or_critical_accessibility_violation(
    _: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    use crate::browser::{browser, driver, log_in_as_admin};
    use crate::helpers::{TestApp, params};
    use serde_json::json;
    use wadash::domain::Role;

    let app = TestApp::spawn(opts).await;
    // The demo bot answers every text, so the conversation shows its turn and the queue has
    // a conversation waiting for a human.
    let admin = app.api_token(Role::Admin).await;
    let (_, bot) = crate::helpers::call(
        &app,
        "POST",
        "/bots",
        &admin,
        Some(json!({"name": "Demo", "kind": "demo", "config": {}})),
    )
    .await;
    let (status, _) = crate::helpers::call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "Everything", "kind": "any", "bot": bot["id"]})),
    )
    .await;
    assert_eq!(status, 201);
    // Something on every page: outbound messages in several states, a conversation, a
    // contact, a broadcast and a reminder.
    for (i, status) in ["delivered", "read", "failed", "sent"].iter().enumerate() {
        app.post_status(&format!("SM00000000000000000000000000000a{i:02}"), status)
            .await;
    }
    let inbound = params(&[
        ("MessageSid", "SM0000000000000000000000000000cccc"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000001"),
        ("To", "whatsapp:+14155238886"),
        ("ProfileName", "Asha"),
        ("Body", "Is my order on its way?"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &inbound).await.status(), 200);
    let agent = params(&[
        ("MessageSid", "SM0000000000000000000000000000cccd"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000003"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "agent"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &agent).await.status(), 200);
    let op = app.api_token(Role::Operator).await;
    let post = |path: &str, body: serde_json::Value| {
        app.client
            .post(format!("{}/api/v1{path}", app.address))
            .bearer_auth(&op)
            .json(&body)
            .send()
    };
    let b: serde_json::Value = post(
        "/broadcasts",
        json!({"body": "Spring sale", "audience": {"numbers": ["+919900000001", "+919900000002"]}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let r: serde_json::Value = post(
        "/reminders",
        json!({"to": "+919900000001", "body": "Your table is booked", "at": "2030-01-01T09:00:00Z"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    // The simulator's sample templates, for the catalogue and a template's page.
    let content = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();

    let offline_sender = crate::sender_health::seed_offline_sender(&app.pool).await;
    let pages = [
        "/".to_owned(),
        "/messages".into(),
        "/messages/SM0000000000000000000000000000cccc".into(),
        "/conversations/+919900000001".into(),
        "/contacts".into(),
        "/contacts/+919900000001".into(),
        "/contacts/import".into(),
        "/broadcasts".into(),
        "/broadcasts/new".into(),
        format!("/broadcasts/{}", b["id"]),
        "/reminders".into(),
        format!("/reminders/{}", r["id"]),
        "/send".into(),
        "/balance".into(),
        "/costs".into(),
        "/alerts".into(),
        "/account".into(),
        "/admin".into(),
        "/admin/senders".into(),
        "/admin/messaging-services".into(),
        format!("/admin/senders/{offline_sender}"),
        format!("/admin/senders/{offline_sender}/deauthorize"),
        format!("/admin/senders/{offline_sender}/replace"),
        "/admin/prices".into(),
        "/admin/rules".into(),
        "/admin/bots".into(),
        "/handoffs".into(),
        "/conversations/+919900000003".into(),
        "/admin/alerts".into(),
        "/templates".into(),
        format!("/templates/{}", wadash::twilio::simulator::SAMPLE_SIDS[1]),
        "/templates/new".into(),
        "/no/such/page".into(),
    ];
    let driver = driver().await;
    let c = browser(&driver).await;
    let mut found = Vec::new();
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    for v in serious_violations(&c).await {
        found.push(format!("/login: {v}"));
    }
    log_in_as_admin(&c).await;
    for theme in ["light", "dark"] {
        for page in &pages {
            let sep = if page.contains('?') { '&' } else { '?' };
            c.goto(&format!("{}{page}{sep}theme={theme}", app.address))
                .await
                .unwrap();
            for v in serious_violations(&c).await {
                found.push(format!("{page} ({theme}): {v}"));
            }
        }
    }
    c.goto(&format!("{}/?theme=auto", app.address))
        .await
        .unwrap();
    c.close().await.unwrap();
    app.stop().await;
    assert!(
        found.is_empty(),
        "{} violations:\n{}",
        found.len(),
        found.join("\n")
    );
}
