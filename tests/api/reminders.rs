//! Reminders through real HTTP and the simulator (sent on time, exactly once across two
//! instances; late or skipped after downtime; the API), the `remind` and `broadcast`
//! commands, and a `wadash serve` killed with SIGKILL in the middle of a broadcast.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, database_url, free_port, simulator_log};

async fn open_window(app: &TestApp, number: &str) {
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now()) \
         ON CONFLICT (number) DO UPDATE SET last_inbound_at = now()",
    )
    .bind(number)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_due_reminder_is_sent_within_seconds_exactly_once_across_two_instances(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let a = TestApp::spawn(opts.clone()).await;
    let b = TestApp::spawn(opts).await;
    let op = a.api_token(Role::Operator).await;
    let number = "+919900005001";
    open_window(&a, number).await;
    let due = Utc::now() + TimeDelta::seconds(2);
    let (status, r) = call(
        &a,
        "POST",
        "/reminders",
        &op,
        Some(
            json!({"to": number, "body": "Your table is booked for 8 pm",
                    "at": due.to_rfc3339(), "timezone": "Asia/Kolkata"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    let started = Instant::now();
    let sent = loop {
        let mut all = a.simulator_log().await;
        all.extend(b.simulator_log().await);
        if !all.is_empty() {
            // Any second copy would come within the same moment.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut all = a.simulator_log().await;
            all.extend(b.simulator_log().await);
            break all;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the reminder was not sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sent.len(), 1, "exactly once: {sent:?}");
    assert_eq!(sent[0].0, format!("whatsapp:{number}"));
    let late = (sent[0].1 - due).as_seconds_f64();
    eprintln!("reminder sent {late:.2} s after its time");
    assert!((0.0..5.0).contains(&late), "sent {late} s after its time");
    let (_, got) = call(&a, "GET", &format!("/reminders/{id}"), &op, None).await;
    assert_eq!(got["status"], "done", "{got}");
    assert_eq!(got["runs"].as_array().unwrap().len(), 1);
    assert_eq!(got["runs"][0]["outcome"], "sent");
    a.stop().await;
    b.stop().await;
}

#[sqlx::test(migrations = false)]
async fn after_downtime_a_missed_reminder_is_sent_late_once_or_skipped(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("reminder_max_late_secs".into(), "3600".into());
    })
    .await;
    let op = app.api_token(Role::Operator).await;
    let (daily, once) = ("+919900005101", "+919900005102");
    open_window(&app, daily).await;
    open_window(&app, once).await;
    // As if wadash had been down: a daily reminder whose last four occurrences passed (the
    // latest ten minutes ago), and a one-off two hours late.
    let first = Utc::now() - TimeDelta::days(3) - TimeDelta::minutes(10);
    let two_hours_ago = Utc::now() - TimeDelta::hours(2);
    for (number, at, every) in [(daily, first, "daily"), (once, two_hours_ago, "once")] {
        sqlx::query(
            "INSERT INTO reminders (to_number, body, first_at, recurrence, timezone, status, next_at) \
             VALUES ($1, 'check-in', $2, $3, 'UTC', 'active', $2)",
        )
        .bind(number)
        .bind(at)
        .bind(every)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let started = Instant::now();
    loop {
        let runs: i64 = app.count("SELECT count(*) FROM reminder_runs").await;
        if runs == 5 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{runs} runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs: Vec<(String, DateTime<Utc>, String, Option<String>)> = sqlx::query_as(
        "SELECT r.to_number, rr.due_at, rr.outcome, rr.note FROM reminder_runs rr \
         JOIN reminders r ON r.id = rr.reminder_id ORDER BY r.id, rr.due_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let outcomes: Vec<(&str, &str)> = runs.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(
        outcomes,
        [
            (daily, "skipped"),
            (daily, "skipped"),
            (daily, "skipped"),
            (daily, "sent"),
            (once, "skipped"),
        ]
    );
    assert_eq!(
        runs[3].1.timestamp(),
        (first + TimeDelta::days(3)).timestamp(),
        "the original time is kept"
    );
    assert!(
        runs[3].3.as_deref().unwrap_or("").contains("late"),
        "{:?}",
        runs[3]
    );
    let (_, rows) = call(&app, "GET", "/reminders", &op, None).await;
    let daily_row = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["to_number"] == daily)
        .unwrap();
    let next = DateTime::parse_from_rfc3339(daily_row["next_at"].as_str().unwrap()).unwrap();
    assert_eq!(next.timestamp(), (first + TimeDelta::days(4)).timestamp());

    let started = Instant::now();
    while app.simulator_log().await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = app.simulator_log().await;
    assert_eq!(sent.len(), 1, "one late message, not four: {sent:?}");
    assert_eq!(sent[0].0, format!("whatsapp:{daily}"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_reminders_api_validates_edits_pauses_and_cancels(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = app.api_token(Role::Operator).await;
    let viewer = app.api_token(Role::Viewer).await;
    let body = json!({"tag": "vip", "content_sid": "HX0123456789abcdef0123456789abcdef",
                      "at": "2030-03-10T02:30", "every": "daily", "timezone": "America/New_York"});
    let (status, err) = call(&app, "POST", "/reminders", &op, Some(json!({"to": "+919900005201", "body": "x", "at": "2030-01-01T09:00", "timezone": "Mars/Base"}))).await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = call(&app, "POST", "/reminders", &viewer, Some(body.clone())).await;
    assert_eq!(status, 403);
    let (status, err) = call(&app, "POST", "/reminders", &op, Some(body)).await;
    assert_eq!(
        status, 400,
        "02:30 does not exist in New York on 2030-03-10: {err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let (status, r) = call(
        &app,
        "POST",
        "/reminders",
        &op,
        Some(
            json!({"tag": "VIP", "content_sid": "HX0123456789abcdef0123456789abcdef",
                    "at": "2030-03-09T09:00", "every": "daily", "timezone": "America/New_York"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["next_at"], "2030-03-09T14:00:00Z", "EST");
    let id = r["id"].as_i64().unwrap();
    let (_, got) = call(&app, "GET", &format!("/reminders/{id}"), &viewer, None).await;
    assert_eq!(got["to_tag"], "vip");
    let (status, paused) = call(
        &app,
        "PATCH",
        &format!("/reminders/{id}"),
        &op,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    let (status, edited) = call(
        &app,
        "PATCH",
        &format!("/reminders/{id}"),
        &op,
        Some(json!({"every": "weekly:fri", "status": "active"})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["recurrence"], "weekly:fri");
    assert_eq!(
        edited["next_at"], "2030-03-15T13:00:00Z",
        "the next Friday, in EDT"
    );
    let (status, _) = call(&app, "DELETE", &format!("/reminders/{id}"), &op, None).await;
    assert_eq!(status, 204);
    let (_, got) = call(&app, "GET", &format!("/reminders/{id}"), &viewer, None).await;
    assert_eq!(got["status"], "canceled");
    assert_eq!(got["next_at"], Value::Null);
    app.stop().await;
}

fn wadash(opts: &PgConnectOptions, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrations = false)]
async fn the_broadcast_and_remind_commands_queue_and_follow_their_work(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts.clone()).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, _) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": "+14155550100", "mps": 20})),
    )
    .await;
    assert_eq!(status, 201);
    for n in ["+919900005301", "+919900005302"] {
        open_window(&app, n).await;
    }
    let out = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || {
            wadash(
                &opts,
                &[
                    "broadcast",
                    "--to-file",
                    "-",
                    "--body",
                    "Sale starts now",
                    "--sender",
                    "whatsapp:+14155550100",
                ],
                "+919900005301\n+919900005302\nnot-a-number\n",
            )
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("left out not-a-number: invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("2/2 sent"), "the progress bar: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("completed"), "{stdout}");
    assert_eq!(app.simulator_log().await.len(), 2);

    let out = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || {
            wadash(
                &opts,
                &[
                    "remind",
                    "--to",
                    "+919900005301",
                    "--at",
                    "2030-12-01T09:00",
                    "--timezone",
                    "Asia/Kolkata",
                    "--every",
                    "monthly:1",
                    "--body",
                    "Rent is due",
                ],
                "",
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("monthly:1") && stdout.contains("2030-12-01T03:30:00+00:00"),
        "{stdout}"
    );
    let bad = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || {
            wadash(
                &opts,
                &[
                    "remind",
                    "--to",
                    "+919900005301",
                    "--at",
                    "yesterday",
                    "--body",
                    "x",
                ],
                "",
            )
        }
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at must be a time"));
    app.stop().await;
}

fn serve(
    opts: &PgConnectOptions,
    port: u16,
    sim: &wadash::twilio::simulator::Simulator,
    token: &str,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("serve")
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("WADASH_BIND", format!("127.0.0.1:{port}"))
        .env("WADASH_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("TWILIO_ACCOUNT_SID", sim.account_sid())
        .env("TWILIO_AUTH_TOKEN", token)
        .env("TWILIO_API_BASE", sim.url())
        .env("WADASH_BROADCAST_STALE_SECS", "2")
        .env("WADASH_ADMIN_PASSWORD", "an admin password for tests")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let started = Instant::now();
    while !reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "wadash serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_interrupted_by_sigkill_sends_each_recipient_exactly_once_after_restart(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = "kill-test-auth-token";
    let sim = wadash::twilio::simulator::Simulator::start(
        secrecy::SecretString::from(token.to_owned()),
        wadash::twilio::simulator::SimulatorSettings {
            failure_share: 0.0,
            lost_share: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let port = free_port();
    let mut first = serve(&opts, port, &sim, token);
    wait_ready(port).await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone())
        .await
        .unwrap();
    let (_, admin) = wadash::storage::tokens::create(&pool, "kill-test", Role::Admin)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let resp = http
        .post(api("/senders"))
        .bearer_auth(&admin)
        .json(&json!({"address": "+14155550100", "mps": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let numbers: Vec<String> = (0..400).map(|i| format!("+9199{:08}", 6000 + i)).collect();
    let created: Value = http
        .post(api("/broadcasts"))
        .bearer_auth(&admin)
        .json(&json!({"body": "flash sale", "sender": "whatsapp:+14155550100", "audience": {"numbers": numbers}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();

    // Let it get going, then kill it without warning.
    let started = Instant::now();
    loop {
        if simulator_log(sim.url(), sim.account_sid(), token)
            .await
            .len()
            >= 100
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the broadcast did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = simulator_log(sim.url(), sim.account_sid(), token)
        .await
        .len();
    let in_flight: i64 =
        sqlx::query_scalar("SELECT count(*) FROM broadcast_recipients WHERE state = 'sending'")
            .fetch_one(&pool)
            .await
            .unwrap();
    eprintln!("killed after {at_kill} messages, {in_flight} recipients left 'sending'");
    assert!(at_kill < 400, "killed mid-broadcast");

    let mut second = serve(&opts, port, &sim, token);
    wait_ready(port).await;
    let started = Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        if status == "completed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "not completed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for (to, _) in simulator_log(sim.url(), sim.account_sid(), token).await {
        *per_number.entry(to).or_default() += 1;
    }
    assert_eq!(per_number.len(), 400, "every recipient got a message");
    let twice: Vec<_> = per_number.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM broadcast_recipients WHERE state = 'sent' AND message_sid IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sent, 400);
    pool.close().await;
    sim.stop().await;
}
