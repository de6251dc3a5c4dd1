//! One-way sending through `POST /api/v1/messages` and `wadash send`: validation, roles, the
//! create status recorded at once, Twilio's errors explained, and a callback that overtakes
//! the create call.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, database_url};

const AC: &str = "AC0123456789abcdef0123456789abcdef";

fn prism_url() -> String {
    std::env::var("WADASH_TEST_PRISM_URL")
        .expect("WADASH_TEST_PRISM_URL is not set: run the suite with scripts/test")
}

async fn live_app(opts: PgConnectOptions, api_base: String) -> TestApp {
    TestApp::spawn_with(opts, move |v| {
        v.insert("twilio_account_sid".into(), AC.into());
        v.insert("twilio_api_base".into(), api_base);
        v.insert("twilio_timeout_ms".into(), "5000".into());
    })
    .await
}

async fn post(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/api/v1/messages", app.address))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[sqlx::test(migrations = false)]
async fn api_send_records_twilios_create_status_and_callbacks_move_it_on(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = live_app(opts, prism_url()).await;
    let operator = app.api_token(Role::Operator).await;
    let (status, created) = post(
        &app,
        Some(&operator),
        json!({"to": "+91 99000 00000", "body": "hello <b>world</b>"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    // wadash never heard from this number, so it cannot know the 24-hour window.
    assert!(
        created["warnings"][0]
            .as_str()
            .unwrap()
            .contains("never received"),
        "{created}"
    );
    assert!(!created["status"].as_str().unwrap().is_empty());

    let viewer = app.api_token(Role::Viewer).await;
    let (_, m) = app
        .get_json(&format!("/api/v1/messages/{sid}"), &viewer)
        .await;
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["to"], "whatsapp:+919900000000");
    assert_eq!(
        m["status"], created["status"],
        "the create status is stored at once"
    );
    assert_eq!(m["events"].as_array().unwrap().len(), 1);

    assert_eq!(app.post_status(&sid, "delivered").await, 204);
    assert_eq!(app.current_status(&sid).await.as_deref(), Some("delivered"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn api_send_checks_roles_and_input_before_calling_twilio(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let app = live_app(opts, server.uri()).await;
    let viewer = app.api_token(Role::Viewer).await;
    let operator = app.api_token(Role::Operator).await;

    let (status, err) = post(&app, None, json!({"to": "+919900000000", "body": "hi"})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, err) = post(
        &app,
        Some(&viewer),
        json!({"to": "+919900000000", "body": "hi"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    for bad in [
        json!({"to": "9900000000", "body": "hi"}),
        json!({"to": "+919900000000"}),
        json!({"to": "+919900000000", "body": "hi", "colour": "red"}),
        json!({"to": "+919900000000", "media_url": "ftp://x/y.png"}),
        json!({"to": "+919900000000", "media_url": (0..11).map(|i| format!("https://x/{i}.png")).collect::<Vec<_>>()}),
        json!({"to": "+919900000000", "content_sid": "HX1", "content_variables": [1]}),
    ] {
        let (status, err) = post(&app, Some(&operator), bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {err}");
        assert_eq!(err["error"]["code"], "bad_request");
    }
    let resp = app
        .client
        .post(format!("{}/api/v1/messages", app.address))
        .bearer_auth(&operator)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn twilio_errors_are_explained_to_the_caller(_: PgPoolOptions, opts: PgConnectOptions) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 63015, "message": "Channel Sandbox can only send messages to phone numbers that have joined the Sandbox", "status": 400})))
        .mount(&server)
        .await;
    let app = live_app(opts, server.uri()).await;
    let operator = app.api_token(Role::Operator).await;
    let (status, err) = post(
        &app,
        Some(&operator),
        json!({"to": "+919900000000", "body": "hi"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "twilio_rejected");
    let text = err["error"]["message"].as_str().unwrap();
    assert!(text.contains("63015") && text.contains("join"), "{text}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_callback_that_overtakes_the_create_call_is_not_demoted(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let sid = "SM0123456789abcdef0123456789abcdef";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued", "to": "whatsapp:+919900000000", "from": "whatsapp:+14155238886"})))
        .mount(&server)
        .await;
    let app = live_app(opts, server.uri()).await;
    assert_eq!(app.post_status(sid, "delivered").await, 204);
    let operator = app.api_token(Role::Operator).await;
    let (status, created) = post(
        &app,
        Some(&operator),
        json!({"to": "+919900000000", "body": "hi"}),
    )
    .await;
    assert_eq!((status, created["status"].as_str()), (201, Some("queued")));
    assert_eq!(app.current_status(sid).await.as_deref(), Some("delivered"));
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 2);
    app.stop().await;
}

/// Simulator mode end to end: the API sends through the built-in simulator over HTTP, the
/// simulator's signed (duplicated, reordered) callbacks drive the message to its final state,
/// and the simulated balance goes down.
#[sqlx::test(migrations = false)]
async fn simulator_mode_sends_and_callbacks_reach_the_final_state(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sent_ms".into(), "50".into());
        v.insert("sim_delivered_ms".into(), "150".into());
        v.insert("sim_read_ms".into(), "250".into());
        v.insert("sim_read_share".into(), "1".into());
        v.insert("sim_failure_share".into(), "0".into());
        v.insert("sim_duplicate_share".into(), "1".into());
        v.insert("sim_reorder_share".into(), "1".into());
    })
    .await;
    let client = app.twilio.clone();
    let before = client.fetch_balance().await.unwrap().balance.unwrap();
    let operator = app.api_token(Role::Operator).await;
    let (status, created) = post(
        &app,
        Some(&operator),
        json!({"to": "+919900000000", "body": "hi from the simulator"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "queued");
    let sid = created["sid"].as_str().unwrap().to_owned();

    let mut final_status = None;
    for _ in 0..100 {
        let s = app.current_status(&sid).await;
        if s.as_deref() == Some("read") {
            final_status = s;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(final_status.as_deref(), Some("read"));
    // Let the late duplicates land, then: every distinct callback stored once, all milestones.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM message_events WHERE message_sid = $1 ORDER BY status",
    )
    .bind(&sid)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(statuses, ["delivered", "queued", "read", "sent"]);
    let (delivered, read): (bool, bool) = sqlx::query_as(
        "SELECT delivered_at IS NOT NULL, read_at IS NOT NULL FROM messages WHERE sid = $1",
    )
    .bind(&sid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(delivered && read);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wadash_events_duplicate_total 3"),
        "every simulated callback was sent twice:\n{metrics}"
    );

    let after = client.fetch_balance().await.unwrap().balance.unwrap();
    assert_eq!(before - after, "0.005".parse().unwrap());
    let fetched = client.fetch_message(&sid).await.unwrap();
    assert_eq!(fetched.status, "read");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn simulator_sends_through_a_messaging_service_and_lists_what_it_sent(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let operator = app.api_token(Role::Operator).await;
    let admin = app.api_token(Role::Admin).await;
    let mg = format!("MG{}", "0123456789abcdef".repeat(2));
    let resp = app
        .client
        .post(format!("{}/api/v1/senders", app.address))
        .bearer_auth(&admin)
        .json(&json!({"address": mg, "label": "marketing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (status, err) = post(
        &app,
        Some(&operator),
        json!({"to": "+919900000000", "body": "hi", "from": mg}),
    )
    .await;
    assert_eq!(status, 201, "{err}");
    let list = app
        .twilio
        .clone()
        .list_messages(&wadash::twilio::client::ListMessages {
            to: Some("whatsapp:+919900000000".into()),
            page_size: 1,
            max_pages: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    app.stop().await;
}

fn wadash_send(opts: &PgConnectOptions, api_base: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("send")
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("TWILIO_ACCOUNT_SID", AC)
        .env("TWILIO_AUTH_TOKEN", "cli-token")
        .env("TWILIO_API_BASE", api_base)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn cli_send_prints_sid_and_status_and_explains_failures(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let out = wadash_send(
        &opts,
        &prism_url(),
        &["--to", "+919900000000", "--body", "hi"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut words = stdout.split_whitespace();
    let sid = words.next().unwrap().to_owned();
    assert!(sid.starts_with("SM"), "{stdout}");
    assert!(words.next().is_some(), "status printed: {stdout}");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE sid = $1")
        .bind(&sid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    pool.close().await;

    let bad = wadash_send(&opts, &prism_url(), &["--to", "9900000000", "--body", "hi"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("E.164"));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}),
        ))
        .mount(&server)
        .await;
    let refused = wadash_send(
        &opts,
        &server.uri(),
        &["--to", "+15005550001", "--body", "hi"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("21211") && stderr.contains("E.164"),
        "{stderr}"
    );
}

/// One-off sends take their sender's send slots: on the sandbox (one message every three
/// seconds) a second send waits for the next slot, and one that would wait longer than
/// `send_max_wait_ms` is refused with 429, a `Retry-After` and nothing sent. Checked on the
/// slots wadash decided, which carry no scheduling jitter.
#[sqlx::test(migrations = false)]
async fn one_off_sends_keep_to_the_senders_rate_and_refuse_what_would_wait_too_long(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        // Just above the sandbox's spacing (3 s / pace): the next slot is within the wait,
        // the one after it is not, with seconds to spare either way.
        v.insert("send_max_wait_ms".into(), "3100".into());
    })
    .await;
    // The sandbox's own rate (the test helper speeds the configured sender up).
    sqlx::query("UPDATE senders SET mps = 1.0 / 3 WHERE label = 'configured'")
        .execute(&app.pool)
        .await
        .unwrap();
    let operator = app.api_token(Role::Operator).await;
    let send = |to: &'static str| {
        let req = app
            .client
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth(&operator)
            .json(&json!({"to": to, "body": "paced"}));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (status, retry, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, _, first) = send("+919900006001").await;
    assert_eq!(status, 201, "{first}");
    // Two at once: the next slot is three seconds on (within the wait), the one after six
    // (beyond it).
    let (a, b) = tokio::join!(send("+919900006002"), send("+919900006003"));
    let (sent, refused) = if a.0 == 201 { (a, b) } else { (b, a) };
    assert_eq!(sent.0, 201, "{}", sent.2);
    assert_eq!(refused.0, 429, "{}", refused.2);
    assert_eq!(refused.2["error"]["code"], "sender_busy");
    let retry = refused.1.expect("Retry-After");
    // Until the line is within the wait again: about three seconds.
    assert!((1..=4).contains(&retry), "Retry-After: {retry}");
    let slot = |v: &Value| {
        v["slot_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let gap = (slot(&sent.2) - slot(&first)).as_seconds_f64();
    let spacing = 3.0 / wadash::broadcasts::PACE;
    assert!(
        gap >= spacing - 1e-3 && gap < spacing + 1.0,
        "{gap} s between two slots of the sandbox"
    );
    // Nothing of the refused one reached Twilio or the message log.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE direction = 'outbound'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(app.simulator_log().await.len(), 2);
    app.stop().await;
}

/// Automatic replies take their sender's slots too: on the sandbox, a STOP's confirmation
/// right after an API send takes the slot after it, and the webhook answers no earlier than
/// that slot. When the sender's line is longer than a reply may wait, the answer goes at once
/// and the line is not pushed further out for a message that leaves now.
#[sqlx::test(migrations = false)]
async fn automatic_replies_take_the_senders_next_slot_or_none_when_the_line_is_long(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    sqlx::query("UPDATE senders SET mps = 1.0 / 3 WHERE label = 'configured'")
        .execute(&app.pool)
        .await
        .unwrap();
    let sandbox = "whatsapp:+14155238886";
    let next_slot = async || -> chrono::DateTime<chrono::Utc> {
        sqlx::query_scalar("SELECT next_slot FROM send_slots WHERE sender = $1")
            .bind(sandbox)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let operator = app.api_token(Role::Operator).await;
    let (status, sent) = post(
        &app,
        Some(&operator),
        json!({"to": "+919900006101", "body": "first"}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let first: chrono::DateTime<chrono::Utc> = sent["slot_at"].as_str().unwrap().parse().unwrap();
    let spacing = chrono::TimeDelta::microseconds((3e6 / wadash::broadcasts::PACE) as i64);

    let account = app.twilio.account_sid().to_owned();
    let stop = crate::helpers::inbound(
        &account,
        "SM00000000000000000000000000006102",
        "+919900006102",
        &[("Body", "STOP")],
    );
    let resp = app.post_signed("/wa", &stop).await;
    let answered = chrono::Utc::now();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("<Message"));
    // The reply took the slot after the API send's (the database keeps microseconds)...
    let taken = next_slot().await;
    let expected = first + spacing * 2;
    assert!(
        (taken - expected).num_milliseconds().abs() <= 1,
        "the line ends at {taken}, expected {expected}"
    );
    // ...and the answer did not go before it (both clocks are this machine's).
    let reply_slot = first + spacing;
    assert!(
        answered >= reply_slot - chrono::TimeDelta::milliseconds(5),
        "answered at {answered}, before the reply's slot {reply_slot}"
    );

    // A line a minute long: the answer goes at once, the line stays as it was.
    sqlx::query(
        "UPDATE send_slots SET next_slot = clock_timestamp() + interval '60 seconds' \
         WHERE sender = $1",
    )
    .bind(sandbox)
    .execute(&app.pool)
    .await
    .unwrap();
    let before = next_slot().await;
    let stop = crate::helpers::inbound(
        &account,
        "SM00000000000000000000000000006103",
        "+919900006103",
        &[("Body", "STOP")],
    );
    let asked = std::time::Instant::now();
    let resp = app.post_signed("/wa", &stop).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("<Message"));
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "the answer waited {:?}",
        asked.elapsed()
    );
    assert_eq!(next_slot().await, before, "the line was pushed out");
    app.stop().await;
}
