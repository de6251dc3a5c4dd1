//! The template pages over HTTP: the catalogue with WhatsApp's status and category, its URL
//! filters, one template's preview with the samples filled in and its history, hostile text
//! from Twilio escaped, a 404 for an unknown SID, and "Sync now" for admins only, with its
//! form token.

use std::time::Duration;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wadash::twilio::simulator::SAMPLE_SIDS;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Browser, TestApp};

async fn synced_app(opts: PgConnectOptions) -> TestApp {
    synced_app_with(opts, |_| {}).await
}

/// [`synced_app`] with extra settings.
async fn synced_app_with(
    opts: PgConnectOptions,
    tweak: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> TestApp {
    let app = TestApp::spawn_with(opts, tweak).await;
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

/// The create form's fields for one template of each type (as the form posts them).
fn form_of(kind: &str, name: &str) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = vec![
        ("name", name.to_owned()),
        ("language", "en".into()),
        ("type", kind.to_owned()),
        ("samples_rows", "3".into()),
        ("sample_0", "Ada".into()),
        ("sample_1", String::new()),
        ("sample_2", String::new()),
    ];
    let body = ("body", "Hello {{1}}, your order is ready.".to_owned());
    match kind {
        "twilio/text" => f.push(body),
        "twilio/media" => {
            f.push(body);
            f.push(("media", "https://example.com/receipt.jpg".into()));
        }
        "twilio/quick-reply" => {
            f.push(body);
            f.extend([
                ("reply_title_0", "Pick it up".to_owned()),
                ("reply_id_0", "pickup".into()),
                ("reply_title_1", String::new()),
                ("reply_title_2", "Deliver it".into()),
            ]);
        }
        "twilio/call-to-action" => {
            f.push(body);
            f.extend([
                ("cta_title_0", "Track".to_owned()),
                ("cta_kind_0", "URL".into()),
                ("cta_target_0", "https://example.com/track".into()),
                ("cta_title_1", "Call us".into()),
                ("cta_kind_1", "PHONE_NUMBER".into()),
                ("cta_target_1", "+15005550006".into()),
            ]);
        }
        "twilio/list-picker" => {
            f.push(body);
            f.extend([
                ("button", "Choose".to_owned()),
                ("item_item_0", "Morning".into()),
                ("item_id_0", "am".into()),
                ("item_description_0", "9 to 12".into()),
                ("item_item_1", "Evening".into()),
                ("item_id_1", "pm".into()),
            ]);
        }
        _ => f.extend([
            ("title", "Hello {{1}}".to_owned()),
            ("subtitle", "Your order".into()),
            ("media", "https://example.com/card.jpg".into()),
            ("reply_title_0", "Thanks".into()),
        ]),
    }
    f
}

fn pairs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Posts the create form; returns the new template's SID (after the redirect to its page).
async fn create_through_form(admin: &mut Browser, fields: &[(&'static str, String)]) -> String {
    let token = admin.csrf().await;
    let mut all = pairs(fields);
    all.push(("csrf", &token));
    let (status, location, page) = admin.post("/templates/new", &all).await;
    assert_eq!(status, 303, "{page}");
    let location = location.unwrap();
    let sid = location
        .strip_prefix("/templates/")
        .and_then(|l| l.strip_suffix("?done=created"))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    assert!(sid.starts_with("HX") && sid.len() == 34, "{sid}");
    sid
}

#[sqlx::test(migrations = false)]
async fn an_admin_creates_each_type_through_the_form_and_others_may_not(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;

    let (status, _, list) = admin.get("/templates").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("href=\"/templates/new\""),
        "the link for admins"
    );
    let (status, _, blank) = admin.get("/templates/new").await;
    assert_eq!(status, 200);
    for kind in wadash::templates::definition::TYPES {
        assert!(
            blank.contains(&format!("<option value=\"{kind}\"")),
            "{kind}"
        );
    }
    assert!(blank.contains("name=\"csrf\""));
    assert!(blank.contains("/static/template_form.js?v="));

    // Each type, through the form; each lands in the catalogue, unsubmitted, as defined.
    let expect: [(&str, &str); 6] = [
        ("twilio/text", "Hello Ada, your order is ready."),
        ("twilio/media", "https://example.com/receipt.jpg"),
        ("twilio/quick-reply", "Deliver it"),
        ("twilio/call-to-action", "phone +15005550006"),
        ("twilio/list-picker", "9 to 12"),
        ("twilio/card", "https://example.com/card.jpg"),
    ];
    for (i, (kind, shown)) in expect.iter().enumerate() {
        let sid = create_through_form(&mut admin, &form_of(kind, &format!("Form {i}"))).await;
        let (types, status): (serde_json::Value, String) =
            sqlx::query_as("SELECT types, status FROM templates WHERE sid = $1")
                .bind(&sid)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(status, "unsubmitted", "{kind}");
        assert!(types.get(*kind).is_some(), "{kind}: {types}");
        let (status, _, page) = admin.get(&format!("/templates/{sid}?done=created")).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("id=\"template-notice\""),
            "{kind}: the notice"
        );
        assert!(
            text(&page).contains(shown),
            "{kind}: {shown} in the preview"
        );
        assert!(
            page.contains("id=\"submit-form\""),
            "{kind}: submit offered"
        );
    }
    let quick: serde_json::Value = sqlx::query_scalar(
        "SELECT types->'twilio/quick-reply'->'actions' FROM templates WHERE name = 'Form 2'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        quick,
        json!([{"title": "Pick it up", "id": "pickup"}, {"title": "Deliver it", "id": "Deliver it"}]),
        "the empty row between is skipped"
    );

    // "Add another button" without JavaScript: the form again with one more row, as typed.
    let token = admin.csrf().await;
    let mut more = form_of("twilio/quick-reply", "More rows");
    more.push(("replies_rows", "3".into()));
    more.push(("more", "add-replies".into()));
    let mut all = pairs(&more);
    all.push(("csrf", &token));
    let (status, _, again) = admin.post("/templates/new", &all).await;
    assert_eq!(status, 200);
    assert!(again.contains("name=\"reply_title_3\""), "a fourth row");
    assert!(again.contains("value=\"Pick it up\""), "kept");
    assert!(
        text(&again).contains("Pick it up"),
        "the preview of the form as typed"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM templates WHERE name = 'More rows'")
            .await,
        0,
        "nothing created"
    );

    // The live preview's fragment: the page's own preview of the form as typed.
    let (status, _, fragment) = admin.post("/templates/preview", &all).await;
    assert_eq!(status, 200);
    assert!(fragment.contains("<li class=\"chip\""), "{fragment}");
    assert!(fragment.contains("Pick it up") && fragment.contains("<mark>Ada</mark>"));
    assert!(!fragment.contains("<html"), "a fragment");
    assert!(fragment.contains("Ready to create."));
    let (status, _, _) = admin
        .post("/templates/preview", &[("csrf", "forged"), ("body", "x")])
        .await;
    assert_eq!(status, 403, "the form token");

    // A name Twilio already has in that language: next to the name, with the way to it.
    let token = admin.csrf().await;
    let again = form_of("twilio/text", "Form 0");
    let mut all_again = pairs(&again);
    all_again.push(("csrf", &token));
    let (status, _, page) = admin.post("/templates/new", &all_again).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("id=\"t-name-error\""), "{page}");
    let first: String = sqlx::query_scalar("SELECT sid FROM templates WHERE name = 'Form 0'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(page.contains(&format!("href=\"/templates/{first}\" id=\"t-name-taken\"")));
    assert!(page.contains("value=\"Form 0\""), "kept");
    assert_eq!(
        app.count("SELECT count(*) FROM templates WHERE name = 'Form 0'")
            .await,
        1
    );

    // Operators and viewers: no link, the 403 page, nothing created.
    let before = app.count("SELECT count(*) FROM templates").await;
    for (who, role) in [("olga", Role::Operator), ("vera", Role::Viewer)] {
        let mut b = app.browser_as(who, role).await;
        let (_, _, list) = b.get("/templates").await;
        assert!(!list.contains("href=\"/templates/new\""), "{who}");
        let (status, _, page) = b.get("/templates/new").await;
        assert_eq!(status, 403, "{who}");
        assert!(page.contains("Not allowed"), "{who}: the 403 page");
        let token = b.csrf().await;
        let sneaky = form_of("twilio/text", "sneaky");
        let mut all = pairs(&sneaky);
        all.push(("csrf", &token));
        let (status, _, _) = b.post("/templates/new", &all).await;
        assert_eq!(status, 403, "{who}");
        let (status, _, _) = b.post("/templates/preview", &all).await;
        assert_eq!(status, 403, "{who}");
    }
    assert_eq!(app.count("SELECT count(*) FROM templates").await, before);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_refused_definition_is_shown_next_to_its_field_with_everything_kept(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let token = admin.csrf().await;
    let post = |fields: Vec<(&'static str, String)>| {
        let mut all: Vec<(&'static str, String)> = fields;
        all.push(("csrf", token.clone()));
        all
    };

    // A button title over 25 characters, in the third row: the error is in that row.
    let mut long = form_of("twilio/quick-reply", "Too long");
    long.retain(|(k, _)| *k != "reply_title_2");
    long.push(("reply_title_2", "This title is far too long".into()));
    let all = post(long);
    let (status, _, page) = admin.post("/templates/new", &pairs(&all)).await;
    assert_eq!(status, 422, "{page}");
    let row = &page[page.find("id=\"reply-title-2\"").expect("the row")..];
    assert!(
        row[..row.find("</label>").unwrap()].contains("id=\"reply-title-2-error\""),
        "the error next to the field"
    );
    assert!(
        row.contains("aria-invalid") || page.contains("aria-describedby=\"reply-title-2-error\"")
    );
    assert!(
        page.contains("href=\"#reply-title-2\""),
        "the summary links to it"
    );
    assert!(
        page.contains("value=\"This title is far too long\""),
        "kept"
    );
    assert!(
        page.contains("value=\"Pick it up\"")
            && page.contains(">Hello {{1}}, your order is ready.</textarea>")
    );
    assert!(page.contains("<option value=\"twilio/quick-reply\" selected>"));

    // A placeholder without its sample: next to the sample's row.
    let mut gap = form_of("twilio/text", "No sample");
    gap.retain(|(k, _)| *k != "body");
    gap.push(("body", "Hi {{1}}, see you {{2}}".into()));
    let all = post(gap);
    let (status, _, page) = admin.post("/templates/new", &pairs(&all)).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"sample-1-error\""), "{page}");
    assert!(page.contains("value=\"Ada\""));

    // A bad language, and a media template without its URL.
    let mut lang = form_of("twilio/text", "Bad language");
    lang.retain(|(k, _)| *k != "language");
    lang.push(("language", "English".into()));
    let (status, _, page) = admin.post("/templates/new", &pairs(&post(lang))).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"t-language-error\"") && page.contains("value=\"English\""));
    let mut media = form_of("twilio/media", "No media");
    media.retain(|(k, _)| *k != "media");
    let (status, _, page) = admin.post("/templates/new", &pairs(&post(media))).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"t-media-error\""), "{page}");

    assert_eq!(
        app.count("SELECT count(*) FROM templates WHERE name IN ('Too long', 'No sample', 'Bad language', 'No media')")
            .await,
        0,
        "nothing reached Twilio"
    );
    app.stop().await;
}

/// The template's status as its page shows it.
fn status_on(page: &str) -> String {
    let at = page.find("id=\"template-status\">").expect("status") + 21;
    page[at..at + page[at..].find('<').unwrap()].to_owned()
}

#[sqlx::test(migrations = false)]
async fn a_created_template_is_submitted_reviewed_and_deleted_from_its_page(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("template_sync_secs".into(), "1".into());
        v.insert("sim_template_review_ms".into(), "300".into());
        v.insert("sim_template_reject_share".into(), "0".into());
    })
    .await;
    let mut admin = app.admin_browser().await;
    let sid =
        create_through_form(&mut admin, &form_of("twilio/quick-reply", "Pickup choice")).await;
    let page_of = format!("/templates/{sid}");
    let (_, _, page) = admin.get(&page_of).await;
    assert_eq!(status_on(&page), "unsubmitted");
    assert!(
        page.contains("id=\"submit-name\" name=\"name\" value=\"pickup_choice\""),
        "a WhatsApp name suggested"
    );

    // An operator may look but not submit or delete.
    let mut olga = app.browser_as("olga", Role::Operator).await;
    let (_, _, seen) = olga.get(&page_of).await;
    assert!(!seen.contains("id=\"submit-form\"") && !seen.contains("id=\"template-delete\""));
    let token = olga.csrf().await;
    let (status, _, _) = olga
        .post(
            &format!("{page_of}/submit"),
            &[("csrf", &token), ("name", "x"), ("category", "utility")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = olga
        .post(&format!("{page_of}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(status, 403);

    // A name WhatsApp refuses: the error next to it, what was typed kept, nothing sent.
    let token = admin.csrf().await;
    let (status, _, page) = admin
        .post(
            &format!("{page_of}/submit"),
            &[
                ("csrf", &token),
                ("name", "Pickup Choice"),
                ("category", "utility"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"submit-name-error\""), "{page}");
    assert!(page.contains("value=\"Pickup Choice\""));
    assert!(page.contains("<option value=\"utility\" selected>"));
    assert_eq!(status_on(&page), "unsubmitted");

    let (status, location, _) = admin
        .post(
            &format!("{page_of}/submit"),
            &[
                ("csrf", &token),
                ("name", "pickup_choice"),
                ("category", "utility"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{page_of}?done=submitted").as_str())
    );
    let (_, _, page) = admin.get(&format!("{page_of}?done=submitted")).await;
    assert!(page.contains("Submitted to WhatsApp"));
    let first = status_on(&page);
    assert!(
        ["received", "pending", "approved"].contains(&first.as_str()),
        "{first}"
    );
    assert!(
        !page.contains("id=\"submit-form\""),
        "not while under review"
    );

    // The simulator's review decides; the sync (every second here) brings it to the page.
    let started = std::time::Instant::now();
    loop {
        let (_, _, page) = admin.get(&page_of).await;
        let now = status_on(&page);
        if now == "approved" {
            assert!(page.contains("id=\"template-category\">utility"), "{page}");
            break;
        }
        assert!(["received", "pending"].contains(&now.as_str()), "{now}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not approved: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Delete: behind the two-step confirmation; then gone from the catalogue.
    let (_, _, page) = admin.get(&page_of).await;
    let confirm = &page[page
        .find("<details class=\"confirm\" id=\"template-delete\">")
        .expect("confirm")..];
    assert!(confirm.contains("id=\"confirm-delete-template\""));
    let (status, location, _) = admin
        .post(&format!("{page_of}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/templates?done=deleted"));
    let (_, _, list) = admin.get("/templates?done=deleted").await;
    assert!(list.contains("Template deleted at Twilio"));
    assert!(!rows(&list).contains(&sid), "gone from the catalogue");
    let (_, _, gone) = admin.get(&page_of).await;
    assert!(gone.contains("id=\"template-deleted\"") && !gone.contains("id=\"template-delete\""));
    let content = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let (_, _, list) = admin.get("/templates").await;
    assert!(!rows(&list).contains(&sid), "and Twilio has it no more");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn twilios_refusal_of_a_new_template_is_shown_with_nothing_lost(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    // No template of that name yet (asked before creating).
    Mock::given(method("GET"))
        .and(path("/v2/ContentAndApprovals"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"contents": [], "meta": {"next_page_url": null}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/Content"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 20001, "message": "Friendly name already in use", "status": 400}),
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
    let duplicate = form_of("twilio/text", "Duplicate");
    let mut all = pairs(&duplicate);
    all.push(("csrf", &token));
    let (status, _, page) = admin.post("/templates/new", &all).await;
    assert_eq!(status, 502);
    let shown = &page[page.find("id=\"template-twilio-error\"").expect("notice")..];
    assert!(shown.contains("Friendly name already in use"), "{shown}");
    assert!(page.contains("value=\"Duplicate\"") && page.contains("value=\"Ada\""));
    assert_eq!(app.count("SELECT count(*) FROM templates").await, 0);

    // A template wadash has: Twilio refusing its submission or its deletion changes nothing.
    let sid = "HX000000000000000000000000000000a1";
    let record = wadash::domain::template::TemplateRecord {
        sid: sid.into(),
        name: "kept".into(),
        language: "en".into(),
        types: json!({"twilio/text": {"body": "hi"}}),
        variables: Default::default(),
        status: "unsubmitted".into(),
        category: None,
        rejection_reason: None,
        whatsapp_name: None,
        updated_at: None,
    };
    wadash::storage::templates::insert_one(&app.pool, &record)
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path(format!("/v1/Content/{sid}/ApprovalRequests/whatsapp")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 20001, "message": "Content is not eligible", "status": 400}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/Content/{sid}")))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"code": 20001, "message": "Content is in use", "status": 400}),
            ),
        )
        .mount(&server)
        .await;
    let (status, _, page) = admin
        .post(
            &format!("/templates/{sid}/submit"),
            &[
                ("csrf", &token),
                ("name", "kept_name"),
                ("category", "marketing"),
            ],
        )
        .await;
    assert_eq!(status, 502);
    let shown = &page[page.find("id=\"template-error\"").expect("notice")..];
    assert!(shown.contains("Content is not eligible"), "{shown}");
    assert!(
        page.contains("value=\"kept_name\"")
            && page.contains("<option value=\"marketing\" selected>")
    );
    assert_eq!(status_on(&page), "unsubmitted");
    let (status, _, page) = admin
        .post(&format!("/templates/{sid}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(status, 502);
    assert!(page.contains("Content is in use"), "{page}");
    let deleted: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM templates WHERE sid = $1")
            .bind(sid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(deleted, None, "still there");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn last_use_is_noted_when_a_template_is_sent_at_most_once_a_minute(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // No simulated delivery failures: the broadcast below must end with none, and a failure
    // callback may arrive before it completes (seen in CI: 1 of 20 at the default 5 %).
    let app = synced_app_with(opts, |v| {
        v.insert("sim_failure_share".into(), "0".into());
    })
    .await;
    let op = app.api_token(Role::Operator).await;
    let last_use = || async {
        let at: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_used_at FROM templates WHERE sid = $1")
                .bind(SAMPLE_SIDS[0])
                .fetch_one(&app.pool)
                .await
                .unwrap();
        at
    };
    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let (_, _, page) = viewer.get(&format!("/templates/{}", SAMPLE_SIDS[0])).await;
    assert!(text(&page).contains("never sent by wadash"));
    assert_eq!(last_use().await, None);
    let (_, listed) = app.get_json("/api/v1/templates", &op).await;
    assert_eq!(listed["items"][0]["last_used_at"], serde_json::Value::Null);

    let send = |to: &'static str| {
        app.client
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth(&op)
            .json(&json!({"to": to, "content_sid": SAMPLE_SIDS[0],
                "content_variables": {"1": "Ada", "2": "A-1", "3": "today"}}))
            .send()
    };
    let resp = send("+919900008001").await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
    let first = last_use().await.expect("noted");
    assert!((chrono::Utc::now() - first).num_seconds().abs() < 60);

    // Within the minute another send writes nothing.
    assert_eq!(send("+919900008002").await.unwrap().status().as_u16(), 201);
    assert_eq!(last_use().await, Some(first), "throttled");
    // Older than a minute, the next send writes it again.
    sqlx::query("UPDATE templates SET last_used_at = now() - interval '2 minutes' WHERE sid = $1")
        .bind(SAMPLE_SIDS[0])
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(send("+919900008003").await.unwrap().status().as_u16(), 201);
    let again = last_use().await.unwrap();
    assert!(again >= first, "{again} after {first}");

    // A broadcast's messages (the runner records them through the same path) note it too.
    let numbers: Vec<String> = (0..20).map(|i| format!("+9199000081{i:02}")).collect();
    let (status, b) = crate::helpers::call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"name": "reminders", "content_sid": SAMPLE_SIDS[1],
            "content_variables": {"1": "Dr Rao", "2": "Monday"}, "audience": {"numbers": numbers}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let started = std::time::Instant::now();
    loop {
        let (_, now) =
            crate::helpers::call(&app, "GET", &format!("/broadcasts/{}", b["id"]), &op, None).await;
        if now["status"] == "completed" {
            assert_eq!(now["counts"]["failed"], json!(0), "{now}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let broadcast_use: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM templates WHERE sid = $1")
            .bind(SAMPLE_SIDS[1])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(broadcast_use.is_some(), "noted by the broadcast");

    let (_, _, list) = viewer.get("/templates").await;
    let row = &list[list
        .find(&format!("<tr data-sid=\"{}\"", SAMPLE_SIDS[0]))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("class=\"last-use\"><time"), "{row}");
    assert!(row.contains("3 sends in 30 days"), "{row}");
    let other = &list[list
        .find(&format!("<tr data-sid=\"{}\"", SAMPLE_SIDS[2]))
        .unwrap()..];
    assert!(other[..other.find("</tr>").unwrap()].contains(">never<"));
    let broadcast_row = &list[list
        .find(&format!("<tr data-sid=\"{}\"", SAMPLE_SIDS[1]))
        .unwrap()..];
    assert!(
        broadcast_row[..broadcast_row.find("</tr>").unwrap()].contains("20 sends in 30 days"),
        "every recipient counted"
    );
    // A send older than 30 days no longer counts.
    sqlx::query(
        "UPDATE message_costs SET created_at = now() - interval '31 days'
          WHERE sid = (SELECT sid FROM message_costs WHERE content_sid = $1 LIMIT 1)",
    )
    .bind(SAMPLE_SIDS[0])
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, _, page) = viewer.get(&format!("/templates/{}", SAMPLE_SIDS[0])).await;
    assert!(page.contains("id=\"template-last-use\"><time"), "{page}");
    assert!(
        page.contains("<span id=\"template-recent\">2 sends in 30 days</span>"),
        "{page}"
    );
    let (_, one) = app
        .get_json(&format!("/api/v1/templates/{}", SAMPLE_SIDS[0]), &op)
        .await;
    assert!(one["last_used_at"].is_string(), "{one}");
    app.stop().await;
}

/// Runs `script` in the page until it returns `true`, failing after `limit`.
async fn until_true(c: &fantoccini::Client, what: &str, script: &str, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        if c.execute(script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_a_quick_reply_is_created_with_a_live_preview_approved_and_mapped_in_a_broadcast(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::browser::{browser, driver, log_in_as_admin, screenshot, wait_for_text};
    use fantoccini::Locator;

    let app = TestApp::spawn_with(opts, |v| {
        v.insert("template_sync_secs".into(), "1".into());
        v.insert("sim_template_review_ms".into(), "300".into());
        v.insert("sim_template_reject_share".into(), "0".into());
    })
    .await;
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    wait_for_text(&c, "[data-stage=delivered]", "0", Duration::from_secs(10)).await;

    c.goto(&format!("{}/templates", app.address)).await.unwrap();
    c.find(Locator::Id("new-template"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_true(
        &c,
        "the form, its script showing only the text's parts",
        "return location.pathname === '/templates/new' && !!document.getElementById('t-replies') \
           && document.getElementById('t-replies').hidden && !document.getElementById('t-body').closest('label').hidden;",
        Duration::from_secs(10),
    )
    .await;
    c.execute(
        "const s = document.getElementById('t-type'); s.value = 'twilio/quick-reply'; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![],
    )
    .await
    .unwrap();
    until_true(
        &c,
        "the quick reply's buttons shown, the others hidden",
        "return !document.getElementById('t-replies').hidden && document.getElementById('t-ctas').hidden \
           && document.getElementById('t-items').hidden \
           && document.getElementById('t-media').offsetParent === null \
           && document.getElementById('reply-title-0').offsetParent !== null;",
        Duration::from_secs(5),
    )
    .await;
    for (id, typed) in [
        ("t-name", "Delivery choice"),
        ("t-body", "Hi {{1}}, how should we bring your order?"),
        ("sample-0", "Ada"),
        ("reply-title-0", "Bring it"),
        ("reply-title-1", "I'll collect"),
    ] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(typed)
            .await
            .unwrap();
    }
    until_true(
        &c,
        "the live preview with the buttons and the sample",
        "const p = document.getElementById('template-preview'); \
         const chips = [...p.querySelectorAll('li.chip')].map(li => li.firstChild.textContent.trim()); \
         return chips.join('|') === \"Bring it|I'll collect\" && p.querySelector('mark') !== null \
           && p.querySelector('mark').textContent === 'Ada';",
        Duration::from_secs(10),
    )
    .await;
    // "Add another button" adds a row in place (no page load), and the preview follows it.
    c.execute("window.samePage = true;", vec![]).await.unwrap();
    c.find(Locator::Css("button[value=add-replies]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_true(
        &c,
        "a fourth row, focused, on the same page",
        "return window.samePage === true && document.activeElement === document.getElementById('reply-title-3') \
           && document.getElementById('reply-title-3').name === 'reply_title_3' \
           && document.querySelector('input[name=replies_rows]').value === '4';",
        Duration::from_secs(5),
    )
    .await;
    c.find(Locator::Id("reply-title-3"))
        .await
        .unwrap()
        .send_keys("Later")
        .await
        .unwrap();
    until_true(
        &c,
        "the preview with the fourth button",
        "return [...document.querySelectorAll('#template-preview li.chip')].length === 3 \
           && document.getElementById('template-preview').textContent.includes('Later') \
           && document.getElementById('preview-problem').textContent === 'Ready to create.';",
        Duration::from_secs(10),
    )
    .await;
    screenshot(&c, "template-new").await;

    c.find(Locator::Id("template-create"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &c,
        "#submit-form h3",
        "Submit to WhatsApp",
        Duration::from_secs(10),
    )
    .await;
    let url = c.current_url().await.unwrap();
    let sid = url.path().trim_start_matches("/templates/").to_owned();
    let actions: serde_json::Value = sqlx::query_scalar(
        "SELECT types->'twilio/quick-reply'->'actions' FROM templates WHERE sid = $1",
    )
    .bind(&sid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(actions.as_array().map(Vec::len), Some(3), "{actions}");
    assert_eq!(
        c.find(Locator::Id("submit-name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("delivery_choice")
    );
    c.execute(
        "document.getElementById('submit-category').value = 'utility';",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("submit-to-whatsapp"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_true(
        &c,
        "submitted",
        "const n = document.getElementById('template-notice'); \
         return n !== null && n.textContent.includes('Submitted to WhatsApp');",
        Duration::from_secs(10),
    )
    .await;
    // The simulator approves after its review; the sync brings it; a reload shows it.
    let started = std::time::Instant::now();
    loop {
        let status = c
            .find(Locator::Id("template-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if status == "approved" {
            break;
        }
        assert!(
            ["received", "pending"].contains(&status.as_str()),
            "{status}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not approved: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.refresh().await.unwrap();
    }
    screenshot(&c, "template-approved").await;

    // Then used: picked in the broadcast form, a CSV column mapped to {{1}}, previewed per
    // recipient with the template's buttons' text left as WhatsApp shows it.
    let dir = std::env::temp_dir().join(format!("wadash-new-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("customers.csv");
    std::fs::write(
        &csv,
        "phone,first_name\n+919900000071,Grace\n+919900000072,Alan\n",
    )
    .unwrap();
    c.goto(&format!("{}/broadcasts/new", app.address))
        .await
        .unwrap();
    until_true(
        &c,
        "the new template offered in the picker as approved",
        &format!(
            "const o = document.querySelector('#template-choices option[value={sid}]'); \
             return o !== null && o.textContent.includes('approved');"
        ),
        Duration::from_secs(10),
    )
    .await;
    c.find(Locator::Id("content_sid"))
        .await
        .unwrap()
        .send_keys(&sid)
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
    until_true(
        &c,
        "the preview asking for {{1}}'s column",
        "return document.getElementById('map_1') !== null;",
        Duration::from_secs(10),
    )
    .await;
    c.find(Locator::Id("map_1"))
        .await
        .unwrap()
        .select_by_value("column:first_name")
        .await
        .unwrap();
    until_true(
        &c,
        "each recipient's message previewed",
        "const s = document.getElementById('preview-samples'); \
         return document.readyState === 'complete' && document.getElementById('confirm') !== null \
           && s !== null && s.textContent.includes('Hi Grace, how should we bring your order?') \
           && s.textContent.includes('Hi Alan, how should we bring your order?');",
        Duration::from_secs(15),
    )
    .await;
    let buttons = c
        .find(Locator::Id("preview-buttons"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        buttons.contains("Bring it")
            && buttons.contains("I'll collect")
            && buttons.contains("Later"),
        "{buttons}"
    );
    screenshot(&c, "template-new-in-broadcast").await;
    let _ = std::fs::remove_dir_all(&dir);
    c.close().await.unwrap();
    app.stop().await;
}
