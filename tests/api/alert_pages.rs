//! The alerts in the dashboard: the banner on every page, `/alerts` with acknowledgement by
//! operators, `/admin/alerts` for rules and channels (admins only, errors beside their
//! fields, nothing saved on error), channels saved there reaching the running jobs of every
//! instance and a local receiver (signatures checked), secrets that never come back, and
//! `/api/v1/alert-channels`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Browser, TestApp, call, verify_signed as verify};

const ENV_SECRET: &str = "environment-webhook-secret";
const UI_SECRET: &str = "secret-typed-in-the-dashboard";
const OPS: &str = "+919900009999";

/// A `WADASH_SECRET_KEY` for tests (32 bytes, hex).
fn secret_key() -> String {
    "5a".repeat(32)
}

async fn fire(app: &TestApp, kind: &str, severity: &str, message: &str, channels: &[&str]) -> i64 {
    let names: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
    let mut tx = app.pool.begin().await.unwrap();
    let a = wadash::storage::alerts::fire(&mut tx, kind, "", severity, message, &names)
        .await
        .unwrap()
        .expect("a new alert");
    tx.commit().await.unwrap();
    a.id
}

async fn resolve(app: &TestApp, kind: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    wadash::storage::alerts::resolve(&mut tx, kind, "", &[])
        .await
        .unwrap()
        .expect("an open alert");
    tx.commit().await.unwrap();
}

/// Polls `check` every 50 ms until it holds, failing after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests `receiver` got, once it has at least `n`.
async fn received(receiver: &MockServer, n: usize) -> Vec<wiremock::Request> {
    let started = Instant::now();
    loop {
        let reqs = receiver.received_requests().await.unwrap();
        if reqs.len() >= n {
            return reqs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the receiver got {} requests, not {n}",
            reqs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The banner's opening tag.
fn banner_tag(html: &str) -> &str {
    let at = html.find("id=\"alert-banner\"").expect("a banner");
    let end = at + html[at..].find('>').unwrap();
    &html[at..=end]
}

async fn stored_channels(app: &TestApp) -> Option<String> {
    wadash::storage::instance_settings::get(&app.pool, wadash::alerts::channels::KEY)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn every_page_shows_open_alerts_and_operators_acknowledge_them(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    let (_, _, quiet) = viewer.get("/messages").await;
    assert!(
        banner_tag(&quiet).ends_with(" hidden>"),
        "every page has the (empty, hidden) banner that live updates fill"
    );

    let message = "Twilio credit is critically low: 1.20 USD left";
    let id = fire(&app, "credit_critical", "critical", message, &["webhook"]).await;

    // The banner alone is read fresh; every page shows it from the snapshot soon after.
    let (status, _, banner) = viewer.get("/alerts/banner").await;
    assert_eq!(status, 200);
    assert!(banner.contains(message), "{banner}");
    assert!(banner.contains(&format!(
        "data-alert-id=\"{id}\" data-alert-state=\"firing\""
    )));
    assert!(!banner_tag(&banner).ends_with(" hidden>"));
    eventually("the banner on /messages", Duration::from_secs(5), || {
        let mut b = Browser::new(&app.address);
        b.cookies = viewer.cookies.clone();
        async move { b.get("/messages").await.2.contains(message) }
    })
    .await;

    // The alerts page: viewers see it, with its deliveries, but cannot acknowledge.
    let (status, _, page) = viewer.get("/alerts").await;
    assert_eq!(status, 200);
    let open = &page[page.find("id=\"open-alerts\"").expect("open alerts")..];
    assert!(open.contains(&format!("id=\"alert-{id}\"")) && open.contains(message));
    assert!(
        page.contains("data-channel=\"webhook\""),
        "deliveries are listed"
    );
    let ack_path = format!("/alerts/{id}/acknowledge");
    assert!(!page.contains(&ack_path), "no button for viewers");
    let csrf = viewer.csrf().await;
    assert_eq!(viewer.post(&ack_path, &[("csrf", &csrf)]).await.0, 403);

    // Operators can, with the form's token only.
    let (_, _, page) = operator.get("/alerts").await;
    assert!(page.contains(&ack_path));
    assert_eq!(operator.post(&ack_path, &[]).await.0, 403);
    assert_eq!(operator.post(&ack_path, &[("csrf", "forged")]).await.0, 403);
    let state: String = sqlx::query_scalar("SELECT state FROM alerts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "firing", "refused requests change nothing");
    let csrf = operator.csrf().await;
    let (status, location, _) = operator.post(&ack_path, &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/alerts?done=acknowledged"))
    );
    let (state, by): (String, Option<String>) =
        sqlx::query_as("SELECT state, acknowledged_by FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), by.as_deref()),
        ("acknowledged", Some("otto"))
    );
    let (_, _, banner) = viewer.get("/alerts/banner").await;
    assert!(banner.contains("data-alert-state=\"acknowledged\""));
    assert!(banner.contains("acknowledged by otto"));
    let (_, location, _) = operator.post(&ack_path, &[("csrf", &csrf)]).await;
    assert_eq!(location.as_deref(), Some("/alerts?done=not_firing"));
    assert_eq!(
        operator
            .post("/alerts/999999/acknowledge", &[("csrf", &csrf)])
            .await
            .0,
        404
    );

    // Resolved: the banner empties, the page lists it among the resolved.
    resolve(&app, "credit_critical").await;
    let (_, _, banner) = viewer.get("/alerts/banner").await;
    assert!(!banner.contains(message) && banner_tag(&banner).ends_with(" hidden>"));
    let (_, _, page) = viewer.get("/alerts").await;
    assert!(page.contains("id=\"no-open-alerts\""));
    let resolved = &page[page
        .find("id=\"resolved-alerts\"")
        .expect("resolved alerts")..];
    assert!(resolved.contains(&format!("id=\"alert-{id}\"")));
    assert_eq!(
        app.count("SELECT count(*) FROM live_log WHERE kind = 'alerts'")
            .await,
        3,
        "fired, acknowledged, resolved: each told to live pages"
    );
    app.stop().await;
}

async fn failed_message(app: &TestApp, n: u32, code: i32) {
    sqlx::query(
        "INSERT INTO messages (sid, direction, from_addr, to_addr, status, error_code) \
         VALUES ($1, 'outbound', 'whatsapp:+14155238886', $2, 'failed', $3)",
    )
    .bind(format!("SM{:032x}", 0xa1e5 + n))
    .bind(format!("whatsapp:+9198{:08}", n))
    .bind(code)
    .execute(&app.pool)
    .await
    .unwrap();
}

fn rules_form<'a>(csrf: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("fr_enabled", "1"),
        ("fr_window", "15"),
        ("fr_threshold", "20"),
        ("fr_min", "20"),
        ("ec_enabled", "1"),
        ("ec_codes", "63016, 63015, 30008"),
        ("ec_count", "5"),
        ("ec_window", "60"),
        ("cs_enabled", "1"),
        ("cs_minutes", "10"),
        ("cs_min", "5"),
        ("lc_enabled", "1"),
        ("lc_window", "60"),
    ];
    for (k, v) in changes {
        form.retain(|(f, _)| f != k);
        if !v.is_empty() || !k.ends_with("_enabled") {
            form.push((*k, *v));
        }
    }
    form
}

#[sqlx::test(migrations = false)]
async fn admins_edit_every_rule_with_errors_beside_the_fields_and_the_rules_take_effect(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    let mut admin = app.admin_browser().await;
    assert_eq!(viewer.get("/admin/alerts").await.0, 403);
    assert_eq!(operator.get("/admin/alerts").await.0, 403);
    let op_csrf = operator.csrf().await;
    assert_eq!(
        operator
            .post("/admin/alerts/rules", &rules_form(&op_csrf, &[]))
            .await
            .0,
        403
    );
    let (status, _, page) = admin.get("/admin/alerts").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"fr_threshold\" name=\"fr_threshold\" value=\"20\""));
    let csrf = admin.csrf().await;
    assert_eq!(
        admin
            .post("/admin/alerts/rules", &rules_form("forged", &[]))
            .await
            .0,
        403
    );

    // Several mistakes at once: each is shown beside its field, and nothing is saved.
    let bad = rules_form(
        &csrf,
        &[
            ("fr_threshold", "150"),
            ("fr_window", "0"),
            ("ec_codes", "63016, abc"),
            ("cs_min", "many"),
        ],
    );
    let (status, _, page) = admin.post("/admin/alerts/rules", &bad).await;
    assert_eq!(status, 400);
    for (field, says) in [
        ("fr_threshold", "at most 100 %"),
        ("fr_window", "between 1 and 10080"),
        ("ec_codes", "\"abc\""),
        ("cs_min", "whole number"),
    ] {
        let at = page
            .find(&format!("id=\"{field}-error\""))
            .unwrap_or_else(|| panic!("no error beside {field}"));
        let shown: String = page[at..].chars().take(200).collect();
        assert!(
            shown.contains(&says.replace('"', "&#34;")) || shown.contains(says),
            "{field}: {shown}"
        );
    }
    assert!(!page.contains("id=\"lc_window-error\""));
    assert!(
        page.contains("name=\"fr_threshold\" value=\"150\""),
        "typed values come back"
    );
    let token = app.api_token(Role::Viewer).await;
    let (_, rules) = call(&app, "GET", "/alert-rules", &token, None).await;
    assert_eq!(
        rules,
        serde_json::to_value(wadash::alerts::rules::Rules::default()).unwrap()
    );

    // Every field saved.
    let good = rules_form(
        &csrf,
        &[
            ("fr_enabled", ""),
            ("fr_window", "30"),
            ("fr_threshold", "35"),
            ("fr_min", "10"),
            ("ec_codes", "63016 30003"),
            ("ec_count", "2"),
            ("ec_window", "45"),
            ("cs_enabled", ""),
            ("cs_minutes", "12"),
            ("cs_min", "3"),
            ("lc_enabled", ""),
            ("lc_window", "120"),
        ],
    );
    let (status, location, _) = admin.post("/admin/alerts/rules", &good).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/alerts?done=rules"))
    );
    let (_, rules) = call(&app, "GET", "/alert-rules", &token, None).await;
    assert_eq!(
        rules,
        json!({
            "failure_rate": {"enabled": false, "window_minutes": 30, "threshold": 0.35, "min_messages": 10},
            "error_codes": {"enabled": true, "codes": [63016, 30003], "count": 2, "window_minutes": 45},
            "callbacks_stalled": {"enabled": false, "minutes": 12, "min_messages": 3},
            "lost_callbacks": {"enabled": false, "window_minutes": 120},
        })
    );
    let (_, _, page) = admin.get("/admin/alerts?done=rules").await;
    assert!(page.contains("name=\"fr_threshold\" value=\"35\""));
    assert!(page.contains("name=\"ec_codes\" value=\"63016, 30003\""));

    // The next check uses them: two 30003 failures now fire; the failure rate is off.
    failed_message(&app, 1, 30003).await;
    failed_message(&app, 2, 30003).await;
    let evaluator = wadash::alerts::evaluate::Evaluator {
        pool: app.pool.clone(),
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    };
    evaluator.run_once(chrono::Utc::now()).await.unwrap();
    let open: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, subject FROM alerts WHERE state <> 'resolved'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(open, [("error_code".to_owned(), "30003".to_owned())]);
    app.stop().await;
}

fn channels_form<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    form
}

#[sqlx::test(migrations = false)]
async fn channels_saved_in_the_dashboard_override_the_environment_and_receive_signed_alerts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let from_env = receiver().await;
    let from_ui = receiver().await;
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("secret_key".into(), secret_key());
        v.insert(
            "alert_webhook_url".into(),
            format!("{}/env", from_env.uri()),
        );
        v.insert("alert_webhook_secret".into(), ENV_SECRET.into());
    })
    .await;
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now())",
    )
    .bind(OPS)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let (_, _, page) = admin.get("/admin/alerts").await;
    assert!(page.contains(&format!("value=\"{}/env\"", from_env.uri())));
    assert!(page.contains("id=\"webhook_secret-state\">set (from the environment)"));
    assert!(!page.contains(ENV_SECRET), "a secret is never shown");

    // A new URL and ops numbers; the blank secret keeps the environment's.
    let ui_url = format!("{}/ui", from_ui.uri());
    let (status, location, _) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(
                &csrf,
                &[
                    ("webhook_url", &ui_url),
                    ("webhook_secret", ""),
                    ("whatsapp", "+91 99000 09999\nwhatsapp:+919900009999"),
                    ("topup_url", ""),
                    ("topup_secret", ""),
                ],
            ),
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/alerts?done=channels"))
    );
    let (_, _, page) = admin.get("/admin/alerts").await;
    assert!(page.contains(&format!("value=\"{ui_url}\"")));
    assert!(
        page.contains(">+919900009999</textarea>"),
        "normalized, once"
    );
    assert!(page.contains("URL <span class=\"muted\">(saved in wadash)"));

    // The running deliverer uses it at once: a test alert reaches the new URL, signed with
    // the environment's secret, and the ops number on WhatsApp.
    let (status, location, _) = admin.post("/admin/alerts/test", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/alerts?done=test"))
    );
    let reqs = received(&from_ui, 1).await;
    assert_eq!(reqs[0].url.path(), "/ui");
    let body = verify(&reqs[0], ENV_SECRET);
    assert_eq!(body["alert"]["kind"], "test");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] Test alert sent by admin")
    );
    eventually("the WhatsApp test alert", Duration::from_secs(10), || async {
        app.count("SELECT count(*) FROM messages WHERE to_addr = 'whatsapp:+919900009999' AND body LIKE 'wadash test: Test alert%'")
            .await
            == 1
    })
    .await;
    assert!(from_env.received_requests().await.unwrap().is_empty());
    let viewer = app.browser_as("vera", Role::Viewer).await;
    eventually("the delivery shown as sent", Duration::from_secs(5), || {
        let mut b = Browser::new(&app.address);
        b.cookies = viewer.cookies.clone();
        async move {
            b.get("/alerts")
                .await
                .2
                .contains("data-channel=\"webhook\" data-event=\"fired\" data-delivery=\"sent\"")
        }
    })
    .await;

    // A secret typed in: stored sealed, never shown, used for the next alert.
    let (status, _, _) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(
                &csrf,
                &[
                    ("webhook_url", &ui_url),
                    ("webhook_secret", UI_SECRET),
                    ("whatsapp", ""),
                    ("topup_url", ""),
                ],
            ),
        )
        .await;
    assert_eq!(status, 303);
    let stored = stored_channels(&app).await.unwrap();
    assert!(
        !stored.contains(UI_SECRET) && stored.contains("\"webhook_secret\":\"v1."),
        "{stored}"
    );
    let (_, _, page) = admin.get("/admin/alerts").await;
    assert!(!page.contains(UI_SECRET));
    assert!(page.contains("id=\"webhook_secret-state\">set (saved in wadash)"));
    admin.post("/admin/alerts/test", &[("csrf", &csrf)]).await;
    let reqs = received(&from_ui, 2).await;
    verify(&reqs[1], UI_SECRET);

    // Mistakes: each beside its field, and nothing saved.
    let (status, _, page) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(
                &csrf,
                &[
                    ("webhook_url", "ftp://hooks.example"),
                    ("whatsapp", "12345"),
                    ("topup_url", "https://finance.example/recharge"),
                    ("topup_secret", "short"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 400);
    for field in ["webhook_url", "whatsapp", "topup_secret"] {
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "no error beside {field}"
        );
    }
    assert!(
        page.contains("value=\"ftp://hooks.example\""),
        "typed values come back"
    );
    assert!(!page.contains("value=\"short\""), "typed secrets do not");
    assert_eq!(
        stored_channels(&app).await.unwrap(),
        stored,
        "nothing saved"
    );
    // Clearing the secret of a webhook that keeps its URL would make it unverifiable.
    let (status, _, page) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(
                &csrf,
                &[("webhook_url", &ui_url), ("webhook_secret_clear", "1")],
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"webhook_secret-error\">the webhook needs a secret"));

    // No webhook at all, whatever the environment says.
    let (status, _, _) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(&csrf, &[("webhook_url", ""), ("webhook_secret_clear", "1")]),
        )
        .await;
    assert_eq!(status, 303);
    let token = app.api_token(Role::Admin).await;
    let (_, view) = call(&app, "GET", "/alert-channels", &token, None).await;
    assert_eq!(view["webhook_url"], Value::Null);
    assert_eq!(view["webhook_secret_set"], false);
    assert_eq!(view["sources"]["webhook_url"], "stored");
    let (status, _, page) = admin.post("/admin/alerts/test", &[("csrf", &csrf)]).await;
    assert_eq!(status, 400);
    assert!(page.contains("no channel is configured"));

    // Back to the environment's channels.
    let (_, location, _) = admin
        .post("/admin/alerts/channels/reset", &[("csrf", &csrf)])
        .await;
    assert_eq!(location.as_deref(), Some("/admin/alerts?done=reset"));
    assert_eq!(stored_channels(&app).await, None);
    admin.post("/admin/alerts/test", &[("csrf", &csrf)]).await;
    let reqs = received(&from_env, 1).await;
    verify(&reqs[0], ENV_SECRET);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn without_a_secret_key_secrets_are_refused_and_nothing_is_saved(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let (_, _, page) = admin.get("/admin/alerts").await;
    assert!(page.contains("id=\"no-secret-key\""));
    let (status, _, page) = admin
        .post(
            "/admin/alerts/channels",
            &channels_form(
                &csrf,
                &[
                    ("webhook_url", "https://hooks.example/wadash"),
                    ("webhook_secret", UI_SECRET),
                ],
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"webhook_secret-error\">WADASH_SECRET_KEY is not set"));
    assert_eq!(stored_channels(&app).await, None);

    let token = app.api_token(Role::Admin).await;
    let (status, body) = call(
        &app,
        "PUT",
        "/alert-channels",
        &token,
        Some(json!({"webhook_url": "https://hooks.example/wadash", "webhook_secret": UI_SECRET})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "secret_key_missing");
    // Numbers need no key.
    let (status, body) = call(
        &app,
        "PUT",
        "/alert-channels",
        &token,
        Some(json!({"whatsapp": [OPS]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["whatsapp"], json!([OPS]));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_channels_api_is_for_admins_never_shows_secrets_and_reaches_every_instance(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let hook = receiver().await;
    let key = |v: &mut std::collections::BTreeMap<String, String>| {
        v.insert("secret_key".into(), secret_key());
    };
    let a = TestApp::spawn_with(opts.clone(), key).await;
    let b = TestApp::spawn_with(opts, key).await;
    let admin = a.api_token(Role::Admin).await;
    for role in [Role::Viewer, Role::Operator] {
        let token = a.api_token(role).await;
        assert_eq!(
            call(&a, "GET", "/alert-channels", &token, None).await.0,
            403
        );
        assert_eq!(
            call(&a, "PUT", "/alert-channels", &token, Some(json!({})))
                .await
                .0,
            403
        );
    }
    let (_, before) = call(&b, "GET", "/alert-channels", &admin, None).await;
    assert_eq!(before["webhook_url"], Value::Null);

    let url = format!("{}/api-set", hook.uri());
    let (status, view) = call(
        &a,
        "PUT",
        "/alert-channels",
        &admin,
        Some(json!({"webhook_url": url, "webhook_secret": UI_SECRET, "whatsapp": [OPS]})),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert!(!view.to_string().contains(UI_SECRET), "write-only");
    assert_eq!(view["webhook_secret_set"], true);
    assert_eq!(view["sources"]["webhook_secret"], "stored");
    assert_eq!(view["sources"]["topup_url"], "environment");

    // The other instance's jobs use it within seconds, without a restart.
    eventually(
        "instance b sees the new channels",
        Duration::from_secs(10),
        || async {
            call(&b, "GET", "/alert-channels", &admin, None).await.1["webhook_url"] == url.as_str()
        },
    )
    .await;
    let (status, test) = call(&b, "POST", "/alert-channels/test", &admin, None).await;
    assert_eq!(status, 201, "{test}");
    let reqs = received(&hook, 1).await;
    assert_eq!(verify(&reqs[0], UI_SECRET)["alert"]["id"], test["id"]);

    // Mistakes are refused with the field named; unknown fields too.
    let (status, body) = call(
        &a,
        "PUT",
        "/alert-channels",
        &admin,
        Some(json!({"webhook_url": "not a url"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook_url"),
        "{body}"
    );
    let (status, _) = call(
        &a,
        "PUT",
        "/alert-channels",
        &admin,
        Some(json!({"webhook": "x"})),
    )
    .await;
    assert_eq!(status, 400);
    // A secret left out is kept.
    let (status, view) = call(
        &a,
        "PUT",
        "/alert-channels",
        &admin,
        Some(json!({"webhook_url": url})),
    )
    .await;
    assert_eq!((status, &view["webhook_secret_set"]), (200, &json!(true)));
    assert_eq!(
        view["whatsapp"],
        json!([]),
        "left out: the environment's (none)"
    );

    let (status, view) = call(&a, "DELETE", "/alert-channels", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(view["webhook_url"], Value::Null);
    assert_eq!(view["sources"]["webhook_url"], "environment");
    a.stop().await;
    b.stop().await;
}
