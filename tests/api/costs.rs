//! Costs through real HTTP and the built-in simulator: each message priced when it is sent by
//! its country, category and window; the actual price fetched from Twilio once the message is
//! final; the report's views, cost per user reached and estimate against actual; broadcasts
//! priced in their category; the cost page.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, params};

const TABLE: &str = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.01,USD
2025-01-01,twilio_failed,*,*,0.002,USD
2025-07-01,meta_template,IN,marketing,0.02,USD
2025-07-01,meta_template,IN,*,0.004,USD
2025-07-01,meta_template,*,*,0.05,USD
";

const FAST: &str = "whatsapp:+14155550100";

fn quick(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("sim_sent_ms".into(), "20".into());
    v.insert("sim_delivered_ms".into(), "40".into());
    v.insert("sim_read_ms".into(), "60".into());
    v.insert("sim_read_share".into(), "1".into());
    v.insert("sim_failure_share".into(), "0".into());
}

/// Uploads the test table and registers a fast sender; returns (admin, operator) tokens.
async fn setup(app: &TestApp) -> (String, String) {
    let admin = app.api_token(Role::Admin).await;
    upload_table(app, &admin).await;
    add_fast_sender(app, &admin).await;
    let op = app.api_token(Role::Operator).await;
    (admin, op)
}

/// Replaces the price table with [`TABLE`] through the API.
async fn upload_table(app: &TestApp, admin: &str) {
    let resp = app
        .client
        .put(format!("{}/api/v1/prices", app.address))
        .bearer_auth(admin)
        .header("Content-Type", "text/csv")
        .body(TABLE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn add_fast_sender(app: &TestApp, admin: &str) {
    let (status, s) = call(
        app,
        "POST",
        "/senders",
        admin,
        Some(json!({"address": FAST, "label": "bulk", "mps": 50})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
}

async fn send(app: &TestApp, op: &str, body: Value) -> String {
    let (status, m) = call(app, "POST", "/messages", op, Some(body)).await;
    assert_eq!(status, 201, "{m}");
    m["sid"].as_str().unwrap().to_owned()
}

async fn costs(app: &TestApp, token: &str) -> Value {
    let (status, r) = call(app, "GET", "/costs", token, None).await;
    assert_eq!(status, 200, "{r}");
    r
}

fn line<'a>(view: &'a Value, key: &str) -> &'a Value {
    view.as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == key)
        .unwrap_or_else(|| panic!("no line {key} in {view}"))
}

fn estimates(rows: &[(String, Option<String>)]) -> Vec<Option<String>> {
    rows.iter().map(|(_, e)| e.clone()).collect()
}

#[sqlx::test(migrations = false)]
async fn each_message_is_priced_when_sent_and_charged_as_twilio_says_once_final(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("price_fetch_secs".into(), "1".into());
    })
    .await;
    let (_, op) = setup(&app).await;
    let viewer = app.api_token(Role::Viewer).await;
    // A message from +919900000001 opens its window (and costs Twilio's fee to receive).
    let inbound = params(&[
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", "whatsapp:+919900000001"),
        ("To", FAST),
        ("Body", "hello"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ]);
    assert_eq!(app.post_signed("/wa", &inbound).await.status(), 200);

    let template = |to: &str, category: Option<&str>| {
        let mut b = json!({"to": to, "from": FAST, "content_sid": wadash::twilio::simulator::SAMPLE_SIDS[0],
                           "content_variables": {"1": "Ada"}});
        if let Some(c) = category {
            b["template_category"] = json!(c);
        }
        b
    };
    let sids = vec![
        // Free-form inside the window: Twilio's fee only.
        send(
            &app,
            &op,
            json!({"to": "+919900000001", "from": FAST, "body": "hi"}),
        )
        .await,
        // A utility template inside the window is free at Meta.
        send(&app, &op, template("+919900000001", Some("utility"))).await,
        // Outside any window wadash knows of, it is not.
        send(&app, &op, template("+919900000002", Some("utility"))).await,
        // A template without a category is priced as marketing; Brazil takes the `*` rate.
        send(&app, &op, template("+5511999990000", None)).await,
    ];
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT category, estimated::text FROM message_costs WHERE sid = ANY($1) \
         ORDER BY array_position($1, sid)",
    )
    .bind(&sids)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["service", "utility", "utility", "marketing"]
    );
    assert_eq!(
        estimates(&rows),
        ["0.010000", "0.010000", "0.014000", "0.060000"].map(|s| Some(s.to_owned()))
    );

    // The simulator charges 0.005 a message, as Twilio reports it once the message is sent;
    // the fetcher asks once each message is final.
    let started = Instant::now();
    let report = loop {
        let r = costs(&app, &viewer).await;
        if r["total"]["actual_messages"] == 4 {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "prices not fetched: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let total = &report["total"];
    assert_eq!(total["messages"], 5, "{report}");
    assert_eq!(total["estimated"], "0.104", "{report}");
    assert_eq!(total["actual"], "0.02");
    assert_eq!(total["estimated_of_actual"], "0.094");
    // What Twilio charged for the four sent, the estimate for the one received.
    assert_eq!(total["spend"], "0.03");
    assert_eq!(total["users_reached"], 3);
    assert_eq!(total["cost_per_user"], "0.01");
    assert_eq!(report["currency"], "USD");
    assert_eq!(line(&report["by_category"], "utility")["messages"], 2);
    assert_eq!(line(&report["by_category"], "inbound")["spend"], "0.01");
    assert_eq!(line(&report["by_country"], "IN")["messages"], 3);
    assert_eq!(line(&report["by_country"], "BR")["estimated"], "0.06");
    assert_eq!(line(&report["by_sender"], FAST)["messages"], 5);
    assert_eq!(report["by_day"].as_array().unwrap().len(), 1);
    // The price is on the messages too, and nothing is left to fetch.
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE direction = 'outbound' AND price = -0.005")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT count(*) FROM message_costs WHERE next_check_at IS NOT NULL")
            .await,
        0
    );
    // Each message shows its own cost.
    let (_, m) = call(
        &app,
        "GET",
        &format!("/messages/{}", sids[2]),
        &viewer,
        None,
    )
    .await;
    assert_eq!(m["cost"]["estimated"], "0.014", "{m}");
    assert_eq!(m["cost"]["actual"], "0.005");
    assert_eq!(m["cost"]["category"], "utility");
    assert_eq!(m["cost"]["in_window"], false);
    let mut b = app.browser_as("olga", Role::Operator).await;
    let (status, _, page) = b.get(&format!("/messages/{}", sids[2])).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(
            r#"id="message-estimate"><span class="money" title="0.014 USD">USD 0.014</span>"#
        ),
        "a message's price keeps its tenths of a cent: {page}"
    );
    // The fetcher settled each one's reach on the way.
    assert_eq!(
        app.count("SELECT count(*) FROM message_costs WHERE reached")
            .await,
        4
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_is_priced_in_its_category_and_shown_on_the_cost_page(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let (_, op) = setup(&app).await;
    let numbers: Vec<String> = (0..5).map(|i| format!("+91990000010{i}")).collect();
    let (status, b) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"name": "OTP <b>wave</b>", "sender": FAST,
                    "content_sid": wadash::twilio::simulator::SAMPLE_SIDS[1],
                    "template_category": "authentication",
                    "audience": {"numbers": numbers}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    assert_eq!(b["estimated_cost"], "0.070", "{b}");
    let started = Instant::now();
    let report = loop {
        let r = costs(&app, &op).await;
        let reached = r["by_broadcast"]
            .as_array()
            .and_then(|l| l.first())
            .map(|l| l["users_reached"].clone());
        if reached == Some(json!(5)) {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not delivered: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let line = &report["by_broadcast"][0];
    assert_eq!(line["key"], id.to_string());
    assert_eq!(line["label"], "OTP <b>wave</b>");
    assert_eq!(line["messages"], 5);
    // 5 × (0.01 Twilio + 0.004 Meta authentication in India), what the preview said.
    assert_eq!(line["estimated"], "0.07");
    assert_eq!(line["cost_per_user"], "0.014");
    assert_eq!(
        line["actual_messages"], 0,
        "the fetcher is off in this test"
    );

    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let (status, _, page) = viewer.get("/costs").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"id="costs-spend"><span class="money" title="0.07 USD">USD 0.07<"#),
        "{page}"
    );
    assert!(
        page.contains("OTP &#60;b&#62;wave&#60;/b&#62;"),
        "the name is escaped"
    );
    assert!(!page.contains("OTP <b>wave"));
    assert!(page.contains(&format!(r#"href="/broadcasts/{id}""#)));
    assert!(
        page.contains(r#"id="costs-per-user"><span class="money" title="0.014 USD">USD 0.014<"#),
        "a cost per user keeps its tenths of a cent: {page}"
    );
    assert!(page.contains("<svg"), "the spend chart");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_bad_range_is_refused_with_the_reason(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let viewer = app.api_token(Role::Viewer).await;
    let (status, e) = call(
        &app,
        "GET",
        "/costs?from=2026-11-25&to=2026-11-24",
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(e.to_string().contains("after"), "{e}");
    let (status, e) = call(&app, "GET", "/costs?from=last-week", &viewer, None).await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = call(&app, "GET", "/costs", "not-a-token", None).await;
    assert_eq!(status, 401);
    let (status, r) = call(
        &app,
        "GET",
        "/costs?from=2026-01-01&to=2026-01-31",
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["total"]["messages"], 0);
    assert_eq!(r["total"]["spend"], "0");

    let mut b = app.browser_as("vic", Role::Viewer).await;
    let (status, _, page) = b.get("/costs?from=2020-01-01&to=2026-01-01").await;
    assert_eq!(status, 400);
    assert!(page.contains(r#"id="costs-error""#), "{page}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_table_uploaded_on_one_instance_prices_every_instances_next_sends(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let a = TestApp::spawn_with(opts.clone(), quick).await;
    let b = TestApp::spawn_with(opts, quick).await;
    let admin = a.api_token(Role::Admin).await;
    add_fast_sender(&a, &admin).await;
    let op = a.api_token(Role::Operator).await;
    let estimate = |sid: String| {
        let pool = a.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT trim_scale(estimated)::text FROM message_costs WHERE sid = $1",
            )
            .bind(sid)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let free_form = |n: u32| json!({"to": format!("+91990000020{n}"), "from": FAST, "body": "hi"});
    // Instance b prices by the shipped table, and now holds it in memory.
    let first = send(&b, &op, free_form(1)).await;
    assert_eq!(estimate(first).await.as_deref(), Some("0.005"));
    // An admin uploads a dearer table through instance a.
    upload_table(&a, &admin).await;
    // a prices by it at once; b notices the new version within its check interval.
    let on_a = send(&a, &op, free_form(2)).await;
    assert_eq!(estimate(on_a).await.as_deref(), Some("0.01"));
    tokio::time::sleep(wadash::pricing::book::CHECK_EVERY + Duration::from_millis(300)).await;
    let on_b = send(&b, &op, free_form(3)).await;
    assert_eq!(estimate(on_b).await.as_deref(), Some("0.01"));
    b.stop().await;
    a.stop().await;
}

/// The cost report's scans run on three connections at once; they read one snapshot, so a
/// row committed meanwhile is seen by all of them or by none.
#[sqlx::test(migrations = false)]
async fn the_report_scans_share_one_snapshot(pool: sqlx::PgPool) {
    sqlx::query("CREATE TABLE seen (n int)")
        .execute(&pool)
        .await
        .unwrap();
    let [mut a, mut b, mut c] = wadash::storage::snapshot::shared::<3>(&pool).await.unwrap();
    // Committed after the snapshot, before the other two transactions read anything.
    sqlx::query("INSERT INTO seen VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    for tx in [&mut a, &mut b, &mut c] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
            .fetch_one(&mut **tx)
            .await
            .unwrap();
        assert_eq!(
            n, 0,
            "every transaction reads the snapshot taken before the insert"
        );
    }
    let read_only = sqlx::query("INSERT INTO seen VALUES (2)")
        .execute(&mut *b)
        .await
        .unwrap_err();
    assert!(read_only.to_string().contains("read-only"), "{read_only}");
}
