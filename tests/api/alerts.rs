//! Alerts: credit levels raise and resolve alerts once, delivered to a local webhook
//! receiver whose signature checks pass, and to an ops number as a WhatsApp message through
//! the simulator; the API lists and acknowledges them.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;

const SECRET: &str = "alert-webhook-secret";
const OPS: &str = "+919900009999";

async fn reading(app: &TestApp, balance: &str) {
    sqlx::query("INSERT INTO balance_readings (balance, currency) VALUES ($1::numeric, 'USD')")
        .bind(balance)
        .execute(&app.pool)
        .await
        .unwrap();
}

fn verify(req: &wiremock::Request) -> Value {
    crate::helpers::verify_signed(req, SECRET)
}

#[sqlx::test(migrations = false)]
async fn credit_alerts_fire_once_resolve_and_reach_the_webhook_and_whatsapp(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let receiver = MockServer::start().await;
    let topup = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&topup)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let app = TestApp::spawn_with(opts, |v| {
        v.insert(
            "alert_webhook_url".into(),
            format!("{}/hooks/wadash", receiver.uri()),
        );
        v.insert("alert_webhook_secret".into(), SECRET.into());
        v.insert("alert_whatsapp".into(), OPS.into());
        v.insert(
            "topup_webhook_url".into(),
            format!("{}/recharge", topup.uri()),
        );
        v.insert("topup_webhook_secret".into(), SECRET.into());
        v.insert("credit_low".into(), "10".into());
        v.insert("credit_critical".into(), "2".into());
        v.insert("sim_failure_share".into(), "0".into());
    })
    .await;
    // The ops number writes in now and then, so its window is open.
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) VALUES ($1, 'opted_in', now())",
    )
    .bind(OPS)
    .execute(&app.pool)
    .await
    .unwrap();
    let settings = wadash::config::Settings::from_values(
        &[
            ("credit_low", "10"),
            ("credit_critical", "2"),
            ("alert_webhook_url", "https://unused.example"),
            ("outbound_allow_hosts", "127.0.0.1"),
            ("alert_webhook_secret", SECRET),
            ("alert_whatsapp", OPS),
            ("topup_webhook_url", &format!("{}/recharge", topup.uri())),
            ("topup_webhook_secret", SECRET),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    )
    .unwrap();
    let assess = async || {
        let (before, after) =
            wadash::balance::status::reassess(&app.pool, &settings.credit, chrono::Utc::now())
                .await
                .unwrap();
        wadash::alerts::on_credit_level(
            &app.pool,
            &settings.alert_channels,
            before,
            after,
            "x USD",
        )
        .await
        .unwrap();
    };

    for b in ["12.00", "9.50", "9.40", "9.30"] {
        reading(&app, b).await;
        assess().await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM alerts").await,
        1,
        "a balance staying low fires once"
    );
    let viewer = app.api_token(Role::Viewer).await;
    let (_, firing) = app.get_json("/api/v1/alerts?state=firing", &viewer).await;
    assert_eq!(firing["items"].as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(firing["items"][0]["kind"], "credit_low");
    assert_eq!(firing["items"][0]["severity"], "warning");

    // Delivered to the webhook, signed, with Slack's text field.
    let started = Instant::now();
    let first = loop {
        let reqs = receiver.received_requests().await.unwrap();
        if let Some(r) = reqs.first() {
            break r.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.url.path(), "/hooks/wadash");
    let body = verify(&first);
    assert_eq!(body["event"], "fired");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[WARNING] Twilio credit is low"),
        "{body}"
    );

    // The top-up hook hears about credit too, so finance can recharge.
    let started = Instant::now();
    loop {
        let reqs = topup.received_requests().await.unwrap();
        if let Some(r) = reqs.first() {
            assert_eq!(r.url.path(), "/recharge");
            let body = verify(r);
            assert_eq!(body["alert"]["kind"], "credit_low");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no top-up call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And to the ops number, through wadash and the simulator.
    let started = Instant::now();
    loop {
        let sent: i64 = app
            .count("SELECT count(*) FROM messages WHERE to_addr = 'whatsapp:+919900009999' AND body LIKE 'wadash warning: Twilio credit is low%'")
            .await;
        if sent == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no WhatsApp alert"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Acknowledged by an operator; then the balance recovers past the band and it resolves.
    let op = app.api_token(Role::Operator).await;
    let id = firing["items"][0]["id"].as_i64().unwrap();
    let ack = app
        .client
        .post(format!("{}/api/v1/alerts/{id}/acknowledge", app.address))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    let again = app
        .client
        .post(format!("{}/api/v1/alerts/{id}/acknowledge", app.address))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    reading(&app, "10.50").await; // inside the 10 % band: still low
    assess().await;
    assert_eq!(
        app.count("SELECT count(*) FROM alerts WHERE state = 'resolved'")
            .await,
        0
    );
    reading(&app, "50.00").await;
    assess().await;
    let (_, resolved) = app.get_json("/api/v1/alerts?state=resolved", &viewer).await;
    assert_eq!(resolved["items"].as_array().unwrap().len(), 1, "{resolved}");
    let started = Instant::now();
    loop {
        let reqs = receiver.received_requests().await.unwrap();
        if reqs.len() >= 2 {
            let body = verify(&reqs[1]);
            assert_eq!(body["event"], "resolved");
            assert!(body["text"].as_str().unwrap().starts_with("[RESOLVED]"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = app.get_json("/api/v1/alerts?state=bogus", &viewer).await;
    assert_eq!(status, 400);
    app.stop().await;
}

/// Brings the overview's roll-ups (which the failure-rate rule reads) up to date with the
/// messages the tests insert directly (they are not in the change log the roll-up job
/// follows): every bucket of the last three hours, once the job's first pass, which could
/// otherwise write what it read before the inserts, has finished.
async fn roll_up(app: &TestApp) {
    let started = Instant::now();
    let passed = || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM instance_settings WHERE key = $1")
            .bind(wadash::jobs::rollup::POSITION_KEY)
            .fetch_one(&app.pool)
    };
    while passed().await.unwrap() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no roll-up pass"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    recompute_recent(&app.pool).await;
}

async fn recompute_recent(pool: &sqlx::PgPool) {
    use wadash::storage::rollups::{BUCKET, bucket_of, recompute};
    let end = bucket_of(chrono::Utc::now()) + BUCKET;
    let hours: Vec<_> = (1..=3)
        .map(|h| {
            (
                end - chrono::TimeDelta::hours(h),
                end - chrono::TimeDelta::hours(h - 1),
            )
        })
        .collect();
    recompute(pool, &hours, chrono::Utc::now()).await.unwrap();
}

async fn message(app: &TestApp, n: u32, status: &str, error_code: Option<i32>, minutes_ago: i32) {
    sqlx::query(
        "INSERT INTO messages (sid, direction, from_addr, to_addr, status, error_code, created_at) \
         VALUES ($1, 'outbound', 'whatsapp:+14155238886', $2, $3, $4, \
                 now() - make_interval(mins => $5))",
    )
    .bind(format!("SM{:032x}", 0xa1e00 + n))
    .bind(format!("whatsapp:+9199{:08}", n))
    .bind(status)
    .bind(error_code)
    .bind(minutes_ago)
    .execute(&app.pool)
    .await
    .unwrap();
}

fn evaluator(app: &TestApp) -> wadash::alerts::evaluate::Evaluator {
    wadash::alerts::evaluate::Evaluator {
        pool: app.pool.clone(),
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    }
}

async fn open_alerts(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT kind, subject, severity FROM alerts WHERE state <> 'resolved' ORDER BY kind, subject",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn each_rule_fires_once_while_its_condition_holds_and_resolves_after(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    // 25 settled messages from the sandbox in the last 15 min, 10 failed: 6 with 63016.
    for n in 0..15 {
        message(&app, n, "delivered", None, 5).await;
    }
    for n in 15..21 {
        message(&app, n, "failed", Some(63016), 5).await;
    }
    for n in 21..25 {
        message(&app, n, "undelivered", Some(30003), 5).await;
    }
    // Six messages sent 15 minutes ago that never had a callback.
    for n in 100..106 {
        message(&app, n, "queued", None, 15).await;
    }
    wadash::storage::instance_settings::put(
        &app.pool,
        wadash::alerts::evaluate::LOST_KEY,
        &format!("{}|3", chrono::Utc::now().to_rfc3339()),
    )
    .await
    .unwrap();

    roll_up(&app).await;
    let e = evaluator(&app);
    let now = chrono::Utc::now();
    e.run_once(now).await.unwrap().unwrap();
    e.run_once(now).await.unwrap().unwrap();
    let open = open_alerts(&app).await;
    let kinds: Vec<(&str, &str)> = open
        .iter()
        .map(|(k, s, _)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("callbacks_stalled", ""),
            ("error_code", "63016"),
            ("failure_rate", "whatsapp:+14155238886"),
            ("lost_callbacks", ""),
        ],
        "each condition once, however often it is checked"
    );
    assert_eq!(app.count("SELECT count(*) FROM alerts").await, 4);
    let message: String =
        sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'failure_rate'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(message.starts_with("10 of 25 messages"), "{message}");

    // The conditions clear: callbacks arrive, failures age out of the window, reconciliation
    // has been quiet for two hours.
    sqlx::query("UPDATE messages SET status = 'sent' WHERE status = 'queued'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET created_at = created_at - interval '2 hours' WHERE status IN ('failed', 'undelivered')")
        .execute(&app.pool)
        .await
        .unwrap();
    wadash::storage::instance_settings::put(
        &app.pool,
        wadash::alerts::evaluate::LOST_KEY,
        &format!(
            "{}|3",
            (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339()
        ),
    )
    .await
    .unwrap();
    roll_up(&app).await;
    e.run_once(chrono::Utc::now()).await.unwrap().unwrap();
    assert!(open_alerts(&app).await.is_empty());
    assert_eq!(
        app.count("SELECT count(*) FROM alerts WHERE state = 'resolved'")
            .await,
        4
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn admins_tune_the_rules_and_a_disabled_rule_resolves_its_alerts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    for n in 0..20 {
        message(&app, n, "failed", Some(30008), 1).await;
    }
    roll_up(&app).await;
    let e = evaluator(&app);
    e.run_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(open_alerts(&app).await.len(), 2, "failure rate and 30008");

    let viewer = app.api_token(Role::Viewer).await;
    let admin = app.api_token(Role::Admin).await;
    let (_, rules) = app.get_json("/api/v1/alert-rules", &viewer).await;
    assert_eq!(rules["failure_rate"]["threshold"], 0.2);
    let put = async |token: &str, body: &str| {
        let resp = app
            .client
            .put(format!("{}/api/v1/alert-rules", app.address))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    };
    assert_eq!(put(&viewer, "{}").await, 403);
    assert_eq!(
        put(&admin, r#"{"failure_rate": {"threshold": 2}}"#).await,
        400
    );
    assert_eq!(
        put(
            &admin,
            r#"{"failure_rate": {"enabled": false}, "error_codes": {"codes": [63016]}}"#
        )
        .await,
        200
    );
    e.run_once(chrono::Utc::now()).await.unwrap();
    assert!(
        open_alerts(&app).await.is_empty(),
        "both resolved once their rules stop holding"
    );
    let (_, rules) = app.get_json("/api/v1/alert-rules", &viewer).await;
    assert_eq!(rules["failure_rate"]["enabled"], false);
    assert_eq!(rules["error_codes"]["count"], 5, "defaults kept");
    app.stop().await;
}

/// The failure-rate rule reads the roll-ups. What it reads equals a count made straight from
/// `messages` over the same buckets, and a bucket whose rows the previous binary wrote (no
/// `settled` count: a rolling upgrade) is counted from `messages`, with the same result.
#[sqlx::test]
async fn the_failure_rate_reads_the_roll_ups_and_counts_a_bucket_the_previous_binary_wrote_from_messages(
    pool: sqlx::PgPool,
) {
    use wadash::storage::rollups::{BUCKET, bucket_of, failure_counts};
    let statuses = [
        "queued",
        "sent",
        "delivered",
        "read",
        "failed",
        "undelivered",
        "canceled",
        "sending",
    ];
    for n in 0..240u32 {
        let (from, service) = match n % 3 {
            0 => ("whatsapp:+14155238886", None),
            1 => ("whatsapp:+15550001111", None),
            _ => (
                "whatsapp:+15550002222",
                Some("MG00000000000000000000000000000007"),
            ),
        };
        let direction = if n % 11 == 0 { "inbound" } else { "outbound" };
        sqlx::query(
            "INSERT INTO messages (sid, direction, from_addr, to_addr, messaging_service_sid, \
                                   status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(secs => $7))",
        )
        .bind(format!("SM{:032x}", 0xfa000 + n))
        .bind(direction)
        .bind(from)
        .bind(format!("whatsapp:+9199{n:08}"))
        .bind(service)
        .bind(statuses[(n as usize * 7) % statuses.len()])
        // Spread over the last 18 minutes: four or five buckets.
        .bind(f64::from(n) * 4.5)
        .execute(&pool)
        .await
        .unwrap();
    }
    recompute_recent(&pool).await;
    let since = bucket_of(chrono::Utc::now() - chrono::TimeDelta::minutes(15));
    let sorted = |mut v: Vec<(String, i64, i64)>| {
        v.sort();
        v
    };
    let from_messages: Vec<(String, i64, i64)> = sorted(
        sqlx::query_as(
            "SELECT COALESCE(messaging_service_sid, from_addr, ''), \
                    count(*) FILTER (WHERE status IN ('failed', 'undelivered')), \
                    count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read', 'failed', 'undelivered')) \
               FROM messages WHERE created_at >= $1 AND direction = 'outbound' GROUP BY 1",
        )
        .bind(since)
        .fetch_all(&pool)
        .await
        .unwrap(),
    );
    assert_eq!(from_messages.len(), 3, "{from_messages:?}");
    assert!(from_messages.iter().all(|(_, f, s)| *f > 0 && s > f));
    let read = || async { sorted(failure_counts(&pool, since).await.unwrap()) };
    assert_eq!(read().await, from_messages, "from the roll-ups");

    // The previous binary rewrote one bucket, then all of them.
    sqlx::query("UPDATE message_stats_5m SET settled = NULL WHERE bucket = $1")
        .bind(since + BUCKET)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(read().await, from_messages, "one bucket from messages");
    sqlx::query("UPDATE message_stats_5m SET settled = NULL")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(read().await, from_messages, "every bucket from messages");
}
