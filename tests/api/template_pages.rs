//! The template pages over HTTP: the catalogue with WhatsApp's status and category, its URL
//! filters, one template's preview with the samples filled in and its history, hostile text
//! from Twilio escaped, a 404 for an unknown SID, and "Sync now" for admins only, with its
//! form token.

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wadash::twilio::simulator::SAMPLE_SIDS;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Browser, TestApp};

async fn synced_app(opts: PgConnectOptions) -> TestApp {
    let app = TestApp::spawn(opts).await;
    let content = app.twilio.content(app.twilio.base()).unwrap();
    let synced = wadash::templates::sync(&app.pool, &content).await.unwrap();
    assert_eq!(synced.templates, 3, "the simulator's samples");
    app
}

/// The SIDs of the catalogue's rows, in order.
fn rows(page: &str) -> Vec<String> {
    page.split("<tr data-sid=\"")
        .skip(1)
        .map(|r| r[..34].to_owned())
        .collect()
}

/// `html` without its tags (to read a text that has marked parts).
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[sqlx::test(migrations = false)]
async fn the_catalogue_shows_the_samples_filters_narrow_and_a_template_shows_its_preview_and_history(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = synced_app(opts).await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;

    let (status, _, page) = viewer.get("/templates").await;
    assert_eq!(status, 200);
    // By name: appointment_reminder, order_update, spring_sale.
    assert_eq!(
        rows(&page),
        [SAMPLE_SIDS[1], SAMPLE_SIDS[0], SAMPLE_SIDS[2]]
    );
    assert!(page.contains(">order_update</a>"), "{page}");
    assert!(page.contains(r#"<span class="status status-approved">approved</span>"#));
    assert!(page.contains("<td>utility</td>") && page.contains("<td>marketing</td>"));
    assert!(page.contains("twilio/quick-reply"));
    assert!(
        page.contains(">Templates</a>"),
        "Templates in the navigation"
    );
    assert!(page.contains("Last synced <time"), "the last sync's time");
    assert!(
        !page.contains("id=\"templates-stale\""),
        "a fresh sync is not stale"
    );
    assert!(
        !page.contains("id=\"templates-sync\""),
        "no Sync now for a viewer"
    );

    let (_, _, sale) = viewer.get("/templates?q=sale").await;
    assert_eq!(rows(&sale), [SAMPLE_SIDS[2]]);
    assert!(
        sale.contains(r#"value="sale""#),
        "the filter form keeps its value"
    );
    let (_, _, marketing) = viewer
        .get("/templates?category=marketing&status=approved")
        .await;
    assert_eq!(rows(&marketing), [SAMPLE_SIDS[2]]);
    sqlx::query("UPDATE templates SET status = 'paused' WHERE sid = $1")
        .bind(SAMPLE_SIDS[0])
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, _, approved) = viewer.get("/templates?status=approved").await;
    assert_eq!(rows(&approved), [SAMPLE_SIDS[1], SAMPLE_SIDS[2]]);
    let (_, _, paused) = viewer.get("/templates?status=paused").await;
    assert_eq!(rows(&paused), [SAMPLE_SIDS[0]]);
    assert!(paused.contains(r#"<span class="status status-rejected">paused</span>"#));
    let (_, _, none) = viewer.get("/templates?language=fr").await;
    assert!(rows(&none).is_empty() && none.contains("No template matches."));
    let (bad, _, _) = viewer.get("/templates?cursor=%3Cscript%3E").await;
    assert_eq!(bad, 400, "a cursor this list did not give");

    // The quick-reply sample: its body with the samples in, its buttons, its history.
    let (status, _, one) = viewer.get(&format!("/templates/{}", SAMPLE_SIDS[1])).await;
    assert_eq!(status, 200);
    let shown = text(&one);
    assert!(
        shown.contains("Reminder: your appointment with Dr Rao is on Monday 10:00. Will you come?"),
        "{shown}"
    );
    assert!(
        one.contains("<mark>Dr Rao</mark>"),
        "the samples are marked"
    );
    assert!(one.contains("Yes, I&#39;ll come"));
    assert!(one.contains(r#"<li class="chip""#), "buttons as chips");
    assert!(
        shown.contains("{{2}}") && shown.contains("Monday 10:00"),
        "the variables"
    );
    let history = &one[one.find("id=\"template-history\"").unwrap()..];
    assert!(
        text(history).contains("status–approved"),
        "the first status recorded: {}",
        text(history)
    );
    assert!(!one.contains("id=\"template-deleted\""));

    // Gone at Twilio: the page says so.
    sqlx::query("UPDATE templates SET deleted_at = now() WHERE sid = $1")
        .bind(SAMPLE_SIDS[2])
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, _, gone) = viewer.get(&format!("/templates/{}", SAMPLE_SIDS[2])).await;
    assert!(gone.contains("id=\"template-deleted\""), "{gone}");
    let (_, _, listed) = viewer.get("/templates").await;
    assert!(
        !rows(&listed).contains(&SAMPLE_SIDS[2].to_owned()),
        "not in the catalogue"
    );

    let (status, _, missing) = viewer
        .get("/templates/HX0000000000000000000000000000ffff")
        .await;
    assert_eq!(status, 404);
    assert!(missing.contains("There is no template"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn hostile_text_from_twilio_is_escaped_on_both_pages(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    let sid = "HX000000000000000000000000000000e1";
    let evil = json!({"sid": sid, "friendly_name": "<script>alert('name')</script>", "language": "en",
        "variables": {"1": "<img src=x onerror=alert(1)>"},
        "types": {"twilio/card": {"title": "<b>title</b>", "body": "<script>alert('body')</script> {{1}}",
            "media": ["javascript:alert(3)"],
            "actions": [{"type": "URL", "title": "<i>go</i>", "url": "https://x.test/\"><script>"}]}},
        "approval_requests": {"name": "x", "category": "MARKETING", "status": "<b>odd</b>",
            "rejection_reason": "<script>alert('reason')</script>"},
        "date_updated": "2026-12-01T10:00:00Z"});
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"contents": [evil], "meta": {"next_page_url": null}})),
        )
        .mount(&server)
        .await;
    let app = TestApp::spawn(opts).await;
    let content = app.twilio.content(&server.uri()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let mut admin = app.admin_browser().await;
    for page in ["/templates".to_owned(), format!("/templates/{sid}")] {
        let (status, _, html) = admin.get(&page).await;
        assert_eq!(status, 200, "{page}");
        for raw in [
            "<script>alert",
            "<img src=x",
            "<b>",
            "<i>go",
            "href=\"javascript:",
        ] {
            assert!(!html.contains(raw), "{page}: {raw} unescaped");
        }
        assert!(
            html.contains("&#60;script&#62;alert("),
            "{page}: shown, escaped: {html}"
        );
    }
    let (_, _, one) = admin.get(&format!("/templates/{sid}")).await;
    assert!(
        one.contains("javascript:alert(3)"),
        "a non-web media URL shown as text"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn only_an_admin_syncs_now_and_only_with_the_form_token(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let attempts = || async {
        let v: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_attempt_at FROM template_sync")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        v
    };

    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let (_, _, page) = viewer.get("/templates").await;
    assert!(page.contains("Never synced.") && page.contains("id=\"templates-stale\""));
    assert!(rows(&page).is_empty());
    let token = viewer.csrf().await;
    let (status, _, _) = viewer.post("/templates/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 403, "a viewer may not sync");

    let mut admin: Browser = app.admin_browser().await;
    let (_, _, page) = admin.get("/templates").await;
    assert!(
        page.contains("id=\"templates-sync\""),
        "Sync now for an admin"
    );
    let (status, _, _) = admin.post("/templates/sync", &[]).await;
    assert_ne!(status, 303, "no form token, no sync");
    assert!(status == 400 || status == 403, "{status}");
    let (status, _, _) = admin.post("/templates/sync", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    assert_eq!(attempts().await, None, "nothing synced yet");

    let token = admin.csrf().await;
    let (status, location, _) = admin.post("/templates/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/templates?done=synced"));
    assert!(attempts().await.is_some());
    let (_, _, page) = admin.get("/templates?done=synced").await;
    assert!(page.contains("The catalogue was synced from Twilio."));
    assert_eq!(rows(&page).len(), 3, "the samples");
    assert!(!page.contains("id=\"templates-stale\""));
    app.stop().await;
}

/// A failed sync (Twilio's Content API answering 503) is shown on the list with its error.
#[sqlx::test(migrations = false)]
async fn a_failing_sync_now_shows_the_stale_notice_with_the_error(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"code": 20500, "message": "Content service down", "status": 503}),
        ))
        .mount(&server)
        .await;
    let uri = server.uri();
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
        v.insert("twilio_content_base".into(), uri);
    })
    .await;
    let mut admin = app.admin_browser().await;
    let token = admin.csrf().await;
    let (status, location, _) = admin.post("/templates/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(location, "/templates?done=sync-failed");
    let (_, _, page) = admin.get(&location).await;
    assert!(page.contains("The sync failed"), "{page}");
    let stale = &page[page.find("id=\"templates-stale\"").expect("stale notice")..];
    assert!(stale.contains("The last sync failed"), "{stale}");
    assert!(stale.contains("id=\"templates-sync-error\""), "{stale}");
    app.stop().await;
}
