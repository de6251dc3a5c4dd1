//! Broadcasts through real HTTP and the built-in simulator: preview and exclusions, every
//! recipient sent exactly once (also by two instances sharing the queue, and after a SIGKILL),
//! the shared throttle's accuracy, pause/resume/cancel, retrying retryable failures, and the
//! lookup that settles an interrupted send without sending it twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, params as wadash_params};

const FAST: &str = "whatsapp:+14155550100";

/// Registers a sender of its own with a known rate.
async fn fast_sender(app: &TestApp, mps: f64) -> String {
    let admin = app.api_token(Role::Admin).await;
    let (status, s) = call(
        app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": FAST, "label": "bulk", "mps": mps})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    app.api_token(Role::Operator).await
}

fn numbers(n: usize, base: u64) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("+9199{:08}", base + i))
        .collect()
}

/// The send slots reserved for `sender`'s broadcast messages, in order, and the most that
/// fall within any one second (a window starting at any slot).
async fn slots_of(app: &TestApp, sender: &str) -> (Vec<DateTime<Utc>>, usize) {
    let slots: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT r.slot_at FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id \
         WHERE b.sender = $1 AND r.slot_at IS NOT NULL ORDER BY r.slot_at",
    )
    .bind(sender)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let worst = most_in_one_second(&slots);
    (slots, worst)
}

/// The most of `sorted` times that fall within any one second (a window starting at any).
fn most_in_one_second(sorted: &[DateTime<Utc>]) -> usize {
    let mut worst = 0;
    for (i, t) in sorted.iter().enumerate() {
        let within = sorted[i..]
            .iter()
            .take_while(|u| (**u - *t).as_seconds_f64() < 1.0)
            .count();
        worst = worst.max(within);
    }
    worst
}

async fn wait_until_done(app: &TestApp, token: &str, id: i64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, b) = call(app, "GET", &format!("/broadcasts/{id}"), token, None).await;
        if b["status"] == "completed" || b["status"] == "canceled" {
            return b;
        }
        assert!(started.elapsed() < limit, "broadcast {id} not done: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quick(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("sim_sent_ms".into(), "20".into());
    v.insert("sim_delivered_ms".into(), "40".into());
    v.insert("sim_read_ms".into(), "60".into());
    v.insert("sim_failure_share".into(), "0".into());
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_previews_excludes_and_sends_every_recipient_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let op = fast_sender(&app, 50.0).await;
    for (n, sql) in [
        (
            "+919900000002",
            "INSERT INTO contacts (number, consent) VALUES ($1, 'opted_out')",
        ),
        (
            "+919900000003",
            "INSERT INTO contacts (number, consent, deauthorized_at) VALUES ($1, 'opted_in', now())",
        ),
        (
            "+919900000004",
            "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now() - interval '2 days')",
        ),
        (
            "+919900000005",
            "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now() - interval '1 hour')",
        ),
    ] {
        sqlx::query(sql).bind(n).execute(&app.pool).await.unwrap();
    }
    let mut list = numbers(20, 10);
    list.extend(
        [
            "+919900000002",
            "+919900000003",
            "+919900000004",
            "+919900000005",
            "12345",
            "+919900000010",
        ]
        .map(String::from),
    );
    let body = json!({"name": "Diwali offer", "body": "Offer <b>inside</b>", "sender": FAST,
                      "audience": {"numbers": list}});

    let mut preview = body.clone();
    preview["preview"] = json!(true);
    let (status, p) = call(&app, "POST", "/broadcasts", &op, Some(preview)).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["recipients"], 21);
    assert_eq!(p["estimated_cost"], "0.105");
    assert_eq!(p["sender"], FAST);
    let reasons: Vec<&str> = p["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 5, "{p}");
    assert!(reasons.iter().any(|r| r.starts_with("invalid")));
    assert!(reasons.iter().any(|r| r.starts_with("duplicate")));
    for r in [
        "recipient_opted_out",
        "recipient_deauthorized",
        "outside_service_window",
    ] {
        assert!(reasons.contains(&r), "{r} in {reasons:?}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM broadcasts").await,
        0,
        "a preview queues nothing"
    );

    let (status, created) = call(&app, "POST", "/broadcasts", &op, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["recipients"], 21);
    assert_eq!(created["excluded"].as_array().unwrap().len(), 5);
    let id = created["id"].as_i64().unwrap();
    let done = wait_until_done(&app, &op, id, Duration::from_secs(20)).await;
    assert_eq!(done["recipients"], 21);
    assert_eq!(done["counts"]["pending"], 0);
    assert_eq!(done["counts"]["failed"], 0);

    let mut per_number: HashMap<String, usize> = HashMap::new();
    for (to, _) in app.simulator_log().await {
        *per_number.entry(to).or_default() += 1;
    }
    assert_eq!(per_number.len(), 21);
    assert!(per_number.values().all(|n| *n == 1), "{per_number:?}");
    for excluded in ["+919900000002", "+919900000003", "+919900000004"] {
        assert!(!per_number.contains_key(&format!("whatsapp:{excluded}")));
    }

    let viewer = app.api_token(Role::Viewer).await;
    let (status, page) = call(
        &app,
        "GET",
        &format!("/broadcasts/{id}/recipients?limit=5"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(
        page["items"][0]["message_sid"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
    let csv = app
        .client
        .get(format!(
            "{}/api/v1/broadcasts/{id}/recipients.csv",
            app.address
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 22, "{csv}");
    let (status, _) = call(
        &app,
        "POST",
        "/broadcasts",
        &viewer,
        Some(json!({"body": "x", "audience": {"all_opted_in": true}})),
    )
    .await;
    assert_eq!(status, 403);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn two_instances_share_one_queue_without_sending_anyone_twice(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let a = TestApp::spawn_with(opts.clone(), quick).await;
    let b = TestApp::spawn_with(opts, quick).await;
    let op = fast_sender(&a, 100.0).await;
    let list = numbers(150, 100);
    let (status, created) = call(
        &a,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "hello", "sender": FAST, "audience": {"numbers": list}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    wait_until_done(&a, &op, id, Duration::from_secs(30)).await;
    let mut per_number: HashMap<String, usize> = HashMap::new();
    // Both runners look for work; whichever finds the sender's reserved slots running out
    // claims its next batch (one may carry the sender alone while it keeps up).
    let (from_a, from_b) = (a.simulator_log().await, b.simulator_log().await);
    eprintln!("sent by a: {}, by b: {}", from_a.len(), from_b.len());
    for (to, _) in from_a.into_iter().chain(from_b) {
        *per_number.entry(to).or_default() += 1;
    }
    assert_eq!(per_number.len(), 150, "nobody skipped");
    assert!(per_number.values().all(|n| *n == 1), "nobody twice");
    // The two instances' slots come from one shared reservation: together they never
    // exceed the sender's rate.
    let (slots, worst) = slots_of(&a, FAST).await;
    assert_eq!(slots.len(), 150);
    assert!(
        worst <= 100,
        "{worst} slots within one second for a 100/s sender"
    );
    a.stop().await;
    b.stop().await;
}

/// The throttle's promise is about when wadash lets each message go. So the test checks the
/// send slots the database reserved (`slot_at`, shared by every instance), which carry no
/// network or scheduling jitter, and that no message left before its slot. Arrival times at
/// a receiver do carry jitter, and are measured in bench/broadcast instead.
#[sqlx::test(migrations = false)]
async fn the_throttle_never_lets_a_sender_exceed_its_rate(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let rate = 25.0;
    let op = fast_sender(&app, rate).await;
    let n = 150; // six seconds
    let (status, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "tick", "sender": FAST, "audience": {"numbers": numbers(n, 1000)}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    wait_until_done(&app, &op, id, Duration::from_secs(60)).await;
    assert_eq!(
        app.simulator_log().await.len(),
        n,
        "every message reached Twilio"
    );
    let (slots, worst) = slots_of(&app, FAST).await;
    assert_eq!(slots.len(), n);
    // Consecutive slots are at least 1 / (rate × pace) apart (the database keeps
    // microseconds), so no second holds more than the sender's rate.
    let spacing = 1.0 / (rate * wadash::broadcasts::PACE);
    for pair in slots.windows(2) {
        let gap = (pair[1] - pair[0]).as_seconds_f64();
        assert!(
            gap >= spacing - 2e-6,
            "{gap} s between two slots, the spacing is {spacing} s"
        );
    }
    assert!(worst as f64 <= rate, "{worst} slots within one second");
    // No message left before its slot (both clocks are this machine's).
    let early: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 \
         AND left_at < slot_at - interval '5 milliseconds'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(early, 0, "messages left before their slot");
    // And it keeps up: a busy machine may send late, never early, so only a generous bound.
    let left: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT left_at FROM broadcast_recipients WHERE broadcast_id = $1 ORDER BY left_at",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let span = (left[n - 1] - left[0]).as_seconds_f64();
    let measured = (n - 1) as f64 / span;
    eprintln!("throttle: {measured:.2} msg/s left for a {rate} msg/s sender over {span:.2} s");
    assert!(measured >= rate * 0.6, "{measured} vs {rate}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn pause_holds_resume_continues_and_cancel_stops_what_is_left(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let op = fast_sender(&app, 10.0).await;
    let (_, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "slow", "sender": FAST, "audience": {"numbers": numbers(40, 2000)}})),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, paused) = call(&app, "POST", &format!("/broadcasts/{id}/pause"), &op, None).await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await; // in-flight sends finish
    let (_, before) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, after) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    assert_eq!(
        before["counts"]["pending"], after["counts"]["pending"],
        "nothing sent while paused"
    );
    assert!(after["counts"]["pending"].as_i64().unwrap() > 0);
    let (status, _) = call(&app, "POST", &format!("/broadcasts/{id}/pause"), &op, None).await;
    assert_eq!(status, 409, "already paused");

    let (status, resumed) =
        call(&app, "POST", &format!("/broadcasts/{id}/resume"), &op, None).await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("running")));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, canceled) =
        call(&app, "POST", &format!("/broadcasts/{id}/cancel"), &op, None).await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled"))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, last) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    let c = &last["counts"];
    assert!(c["canceled"].as_i64().unwrap() > 0, "{last}");
    assert_eq!(c["pending"], 0, "{last}");
    let sent = app.simulator_log().await.len() as i64;
    assert_eq!(sent + c["canceled"].as_i64().unwrap(), 40, "{last}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn retry_sends_again_only_recipients_whose_failure_is_retryable(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("sim_failure_share".into(), "1".into());
    })
    .await;
    let op = fast_sender(&app, 50.0).await;
    let (_, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "doomed", "sender": FAST, "audience": {"numbers": numbers(40, 3000)}})),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    wait_until_done(&app, &op, id, Duration::from_secs(20)).await;
    // Wait for the failure callbacks.
    let started = Instant::now();
    loop {
        let settled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM broadcast_recipients r JOIN messages m ON m.sid = r.message_sid \
             WHERE m.status IN ('failed', 'undelivered')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if settled == 40 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{settled} settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retryable: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM broadcast_recipients r JOIN messages m ON m.sid = r.message_sid \
         WHERE m.error_code = ANY($1)",
    )
    .bind(wadash::broadcasts::RETRYABLE_CODES)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        retryable > 0 && retryable < 40,
        "the simulator mixes codes: {retryable}"
    );
    let (status, _) = call(&app, "POST", &format!("/broadcasts/{id}/retry"), &op, None).await;
    assert_eq!(status, 200);
    wait_until_done(&app, &op, id, Duration::from_secs(20)).await;
    let twice: i64 = app
        .count("SELECT count(*) FROM broadcast_recipients WHERE attempts = 2")
        .await;
    assert_eq!(
        twice, retryable,
        "exactly the retryable ones were sent again"
    );
    assert_eq!(app.simulator_log().await.len() as i64, 40 + retryable);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_interrupted_send_is_looked_up_at_twilio_and_never_sent_twice(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("broadcast_stale_secs".into(), "1".into());
    })
    .await;
    let op = fast_sender(&app, 50.0).await;
    // A broadcast queued to start in an hour, so the runner leaves it alone while the test
    // plays a crash: two recipients "sending", one of which Twilio (the simulator) had taken.
    let later = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (_, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "once", "sender": FAST, "start_at": later,
                    "audience": {"numbers": ["+919900004001", "+919900004002"]}})),
    )
    .await;
    assert_eq!(created["status"], "scheduled", "{created}");
    let id = created["id"].as_i64().unwrap();
    let msg = wadash::twilio::client::CreateMessage {
        to: wadash::domain::WhatsAppAddress::parse("+919900004001").unwrap(),
        sender: wadash::twilio::client::Sender::From(
            wadash::domain::WhatsAppAddress::parse(FAST).unwrap(),
        ),
        body: Some("once".into()),
        media_urls: vec![],
        content_sid: None,
        content_variables: None,
    };
    // Twilio took the first message; then the process died before recording it.
    let sent_before_crash = app.twilio.create_message(&msg).await.unwrap();
    sqlx::query(
        "UPDATE broadcast_recipients SET state = 'sending', attempts = 1, \
         claimed_at = clock_timestamp() - interval '2 seconds'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE broadcasts SET status = 'running', start_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until_done(&app, &op, id, Duration::from_secs(20)).await;
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT number, message_sid, attempts FROM broadcast_recipients ORDER BY number",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, "+919900004001");
    assert_eq!(
        rows[0].1, sent_before_crash.sid,
        "found at Twilio, recorded"
    );
    assert_eq!(rows[0].2, 1, "not sent again");
    assert_eq!(rows[1].2, 2, "not at Twilio: sent again, once");
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for (to, _) in app.simulator_log().await {
        *per_number.entry(to).or_default() += 1;
    }
    assert_eq!(per_number.len(), 2);
    assert!(per_number.values().all(|n| *n == 1), "{per_number:?}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_large_audience_is_accepted_in_one_request_and_can_be_canceled_before_it_starts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = fast_sender(&app, 80.0).await;
    let later = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let started = Instant::now();
    let (status, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "big", "sender": FAST, "start_at": later,
                    "audience": {"numbers": numbers(20_000, 100_000)}})),
    )
    .await;
    eprintln!(
        "20,000 recipients previewed and queued in {:?}",
        started.elapsed()
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["recipients"], 20_000);
    assert_eq!(created["status"], "scheduled");
    assert!(created["estimated_seconds"].as_f64().unwrap() > 250.0);
    let id = created["id"].as_i64().unwrap();
    let (status, canceled) =
        call(&app, "POST", &format!("/broadcasts/{id}/cancel"), &op, None).await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled"))
    );
    assert_eq!(canceled["counts"]["canceled"], 20_000);
    assert!(app.simulator_log().await.is_empty(), "nothing was sent");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn twilios_429_requeues_with_back_off_and_holds_the_sender(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429).set_body_json(
                json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
            ),
        )
        .mount(&twilio)
        .await;
    let app = TestApp::spawn_with(opts, |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), twilio.uri());
    })
    .await;
    let op = fast_sender(&app, 50.0).await;
    let (status, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "busy", "sender": FAST, "audience": {"numbers": ["+919900007001"]}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let started = Instant::now();
    let (state, attempts, error, wait): (String, i32, Option<String>, f64) = loop {
        let row: (String, i32, Option<String>, f64) = sqlx::query_as(
            "SELECT state, attempts, error_message, extract(epoch FROM next_at - now())::float8 \
             FROM broadcast_recipients",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if row.2.is_some() {
            break row;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no answer recorded: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (state.as_str(), attempts),
        ("pending", 1),
        "back in the queue, not failed"
    );
    assert!(error.unwrap().contains("429"));
    assert!(wait > 0.5, "backing off ({wait} s)");
    let (_, b) = call(
        &app,
        "GET",
        &format!("/broadcasts/{}", created["id"]),
        &op,
        None,
    )
    .await;
    assert_eq!(b["status"], "running");
    assert_eq!(b["counts"]["failed"], 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_pauses_when_the_balance_runs_out_instead_of_failing_everyone(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // Enough simulated credit for five messages at USD 0.005.
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("sim_balance".into(), "0.025".into());
    })
    .await;
    let op = fast_sender(&app, 50.0).await;
    let (_, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "x", "sender": FAST, "audience": {"numbers": numbers(20, 8000)}})),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let started = Instant::now();
    let b = loop {
        let (_, b) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
        if b["status"] == "paused" {
            break b;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        b["paused_reason"].as_str().unwrap().contains("balance"),
        "{b}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, b) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    assert_eq!(b["counts"]["failed"], 0, "nobody failed: {b}");
    assert_eq!(app.simulator_log().await.len(), 5);
    assert_eq!(b["counts"]["pending"], 15);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_same_idempotency_key_never_queues_a_second_broadcast(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let op = fast_sender(&app, 50.0).await;
    let body = json!({"body": "once", "sender": FAST, "audience": {"numbers": numbers(3, 9000)}});
    let post = async || {
        let resp = app
            .client
            .post(format!("{}/api/v1/broadcasts", app.address))
            .bearer_auth(&op)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let (first, a) = post().await;
    let (second, b) = post().await;
    assert_eq!((first, second), (201, 200), "{a} {b}");
    assert_eq!(a["id"], b["id"]);
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 1);
    wait_until_done(
        &app,
        &op,
        a["id"].as_i64().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(app.simulator_log().await.len(), 3);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_that_would_eat_into_the_reserve_is_held_until_an_admin_releases_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("broadcast_reserve".into(), "19.99".into());
    })
    .await;
    let op = fast_sender(&app, 50.0).await;
    let admin = app.api_token(Role::Admin).await;
    sqlx::query("INSERT INTO balance_readings (balance, currency) VALUES (20.00, 'USD')")
        .execute(&app.pool)
        .await
        .unwrap();
    // One message (0.005) leaves 19.995: above the reserve, sent at once.
    let (_, small) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "one", "sender": FAST, "audience": {"numbers": numbers(1, 9500)}})),
    )
    .await;
    assert_eq!(small["status"], "running", "{small}");
    // Three (0.015) would leave 19.985: held.
    let (status, big) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "three", "sender": FAST, "audience": {"numbers": numbers(3, 9600)}})),
    )
    .await;
    assert_eq!(
        (status, big["status"].as_str()),
        (201, Some("held")),
        "{big}"
    );
    let id = big["id"].as_i64().unwrap();
    let (_, b) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    assert!(
        b["paused_reason"].as_str().unwrap().contains("reserve"),
        "{b}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.simulator_log().await.len(),
        1,
        "nothing of the held one was sent"
    );

    let (status, _) = call(
        &app,
        "POST",
        &format!("/broadcasts/{id}/release"),
        &op,
        None,
    )
    .await;
    assert_eq!(status, 403, "operators cannot spend past the reserve");
    let (status, _) = call(&app, "POST", &format!("/broadcasts/{id}/resume"), &op, None).await;
    assert_eq!(status, 409, "resume is not release");
    let (status, released) = call(
        &app,
        "POST",
        &format!("/broadcasts/{id}/release"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, released["status"].as_str()),
        (200, Some("running")),
        "{released}"
    );
    wait_until_done(&app, &op, id, Duration::from_secs(20)).await;
    assert_eq!(app.simulator_log().await.len(), 4);
    let (status, _) = call(
        &app,
        "POST",
        &format!("/broadcasts/{id}/release"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 409);
    app.stop().await;
}

/// While a long broadcast runs on a sender, a reminder due on it leaves within seconds of its
/// time, a message sent through the API and an automatic reply go out within seconds, not
/// after the broadcast; a broadcast on another sender runs beside it; and together they never
/// take the shared sender above its rate (checked on the slots the pacer decided: arrival
/// times at a receiver carry the machine's jitter, bench/broadcast measures those).
#[sqlx::test(migrations = false)]
async fn one_off_sends_and_a_reminder_do_not_wait_behind_a_long_broadcast(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let admin = app.api_token(Role::Admin).await;
    let rate = 10.0;
    let (status, s) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": FAST, "label": "bulk", "mps": rate, "is_default": true})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let other = "whatsapp:+14155550199";
    let (status, s) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": other, "label": "second", "mps": 5.0})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let op = app.api_token(Role::Operator).await;
    // 600 recipients at 10 a second: a minute of sending, canceled once the test has seen
    // what it needs.
    let (status, long) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "bulk", "sender": FAST, "audience": {"numbers": numbers(600, 2000)}})),
    )
    .await;
    assert_eq!(status, 201, "{long}");
    let long_id = long["id"].as_i64().unwrap();
    // Let it get going.
    let started = Instant::now();
    while app.simulator_log().await.len() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the broadcast did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, second) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "other", "sender": other, "audience": {"numbers": numbers(5, 3000)}})),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let number = "+919900004001";
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now())",
    )
    .bind(number)
    .execute(&app.pool)
    .await
    .unwrap();
    let due = Utc::now() + chrono::TimeDelta::seconds(3);
    let (status, r) = call(
        &app,
        "POST",
        "/reminders",
        &op,
        Some(json!({"to": number, "body": "Your table is booked", "at": due.to_rfc3339()})),
    )
    .await;
    assert_eq!(status, 201, "{r}");

    // A one-off message through the API on the busy sender (its default): it takes the next
    // free slot, behind about a second of the broadcast, not behind the broadcast.
    let customer = "+919900004002";
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now())",
    )
    .bind(customer)
    .execute(&app.pool)
    .await
    .unwrap();
    let asked = Utc::now();
    let (status, sent) = call(
        &app,
        "POST",
        "/messages",
        &op,
        Some(json!({"to": customer, "body": "Your order has shipped"})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let api_slot: DateTime<Utc> = sent["slot_at"].as_str().unwrap().parse().unwrap();
    let api_wait = (api_slot - asked).as_seconds_f64();
    eprintln!("the API send's slot came {api_wait:.2} s after the request, during the broadcast");
    assert!(
        api_wait < 5.0,
        "the API send waited {api_wait} s for its slot"
    );
    let reached = app
        .simulator_log()
        .await
        .into_iter()
        .find(|(to, _)| to == &format!("whatsapp:{customer}"))
        .expect("the API send reached Twilio")
        .1;
    assert!(
        (reached - asked).as_seconds_f64() < 10.0,
        "the API send reached Twilio {} s after the request",
        (reached - asked).as_seconds_f64()
    );
    // An inbound STOP on the busy sender: its confirmation, an automatic reply, takes a slot
    // too and the webhook still answers in time with it.
    let stop = wadash_params(&[
        ("MessageSid", "SM00000000000000000000000000004003"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900004003"),
        ("To", FAST),
        ("Body", "STOP"),
        ("AccountSid", app.twilio.account_sid()),
    ]);
    let asked = Instant::now();
    let resp = app.post_signed("/wa", &stop).await;
    let took = asked.elapsed();
    assert_eq!(resp.status(), 200);
    let twiml = resp.text().await.unwrap();
    assert!(twiml.contains("<Message"), "{twiml}");
    assert!(took < Duration::from_secs(10), "the webhook took {took:?}");

    let left_of = async |to: &str| -> Option<DateTime<Utc>> {
        sqlx::query_scalar(
            "SELECT r.left_at FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id \
             WHERE r.number = $1 AND b.id <> $2 AND r.left_at IS NOT NULL",
        )
        .bind(to)
        .bind(long_id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    let waited = Instant::now();
    let reminder_left = loop {
        if let Some(t) = left_of(number).await {
            break t;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the reminder was not sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let late = (reminder_left - due).as_seconds_f64();
    eprintln!("reminder left {late:.2} s after its time, during a 60 s broadcast");
    assert!(late < 5.0, "the reminder left {late} s after its time");
    let waited = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 AND left_at IS NOT NULL",
        )
        .bind(second["id"].as_i64().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if done == 5 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the other sender's broadcast waits"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 AND state = 'pending'",
    )
    .bind(long_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(still > 0, "the long broadcast was still running meanwhile");
    let (status, _) = call(
        &app,
        "POST",
        &format!("/broadcasts/{long_id}/cancel"),
        &op,
        None,
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every slot of the shared sender, the broadcast's and the API send's: never above its
    // rate.
    let (mut slots, _) = slots_of(&app, FAST).await;
    assert!(
        slots.iter().any(|t| *t > api_slot),
        "the broadcast went on after the API send"
    );
    slots.push(api_slot);
    slots.sort();
    let worst = most_in_one_second(&slots);
    assert!(
        worst as f64 <= rate,
        "{worst} slots within one second on a {rate}/s sender"
    );
    app.stop().await;
}

/// A start time that has passed is refused, in preview and when queueing, with when it was;
/// nothing is queued. One a few seconds back (a form filled in at the minute) still starts.
#[sqlx::test(migrations = false)]
async fn a_start_time_that_has_passed_is_refused_with_the_reason(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = app.api_token(Role::Operator).await;
    let hour_ago = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    for preview in [true, false] {
        let (status, b) = call(
            &app,
            "POST",
            "/broadcasts",
            &op,
            Some(
                json!({"body": "late", "start_at": hour_ago, "preview": preview,
                        "audience": {"numbers": ["+919900001111"]}}),
            ),
        )
        .await;
        assert_eq!(status, 400, "{b}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains("has passed (60 min ago)"), "{message}");
    }
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 0);
    let just_now = (Utc::now() - chrono::TimeDelta::seconds(20)).to_rfc3339();
    let (status, b) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "now", "start_at": just_now,
                    "audience": {"numbers": ["+919900001111"]}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    app.stop().await;
}
