//! Alerts: credit levels raise and resolve alerts once, delivered to a local webhook
//! receiver whose signature checks pass, and to an ops number as a WhatsApp message through
//! the simulator; the API lists and acknowledges them.

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::auth::Role;
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
    let ts = req.headers["x-wadash-timestamp"].to_str().unwrap();
    let sig = req.headers["x-wadash-signature"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&req.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("v1={expected}"), "the signature checks");
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "a fresh timestamp");
    serde_json::from_slice(&req.body).unwrap()
}

#[sqlx::test(migrations = false)]
async fn credit_alerts_fire_once_resolve_and_reach_the_webhook_and_whatsapp(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let receiver = MockServer::start().await;
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
            ("alert_webhook_url", "http://unused"),
            ("alert_webhook_secret", SECRET),
            ("alert_whatsapp", OPS),
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
