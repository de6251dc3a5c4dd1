//! The balance job and `GET /api/v1/balance`: readings from the simulator as messages spend
//! its credit, one poll per interval across instances, the burn rate and the runway.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::TestApp;

/// A Twilio double whose `Balance.json` answers `balance` (a string, or null for a
/// subaccount) in USD.
async fn balance_double(balance: Value) -> wiremock::MockServer {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let twilio = MockServer::start().await;
    let currency = if balance.is_null() {
        Value::Null
    } else {
        json!("USD")
    };
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "account_sid": "AC00000000000000000000000000000000",
            "balance": balance,
            "currency": currency,
        })))
        .mount(&twilio)
        .await;
    twilio
}

/// The REST client pointed at a Twilio double.
fn twilio_double(uri: &str) -> wadash::twilio::client::TwilioClient {
    wadash::twilio::client::TwilioClient::new(
        uri,
        "AC00000000000000000000000000000000",
        wadash::twilio::client::RestCredentials {
            username: "AC00000000000000000000000000000000".into(),
            secret: secrecy::SecretString::from("token".to_owned()),
        },
        None,
        Duration::from_secs(5),
        wadash::twilio::client::RetryPolicy::default(),
    )
    .unwrap()
}

fn fast_polls(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("balance_poll_secs".into(), "1".into());
    v.insert("sim_failure_share".into(), "0".into());
}

#[sqlx::test(migrations = false)]
async fn readings_follow_what_messages_spend_and_give_a_burn_rate_and_runway(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, fast_polls).await;
    let viewer = app.api_token(Role::Viewer).await;
    let started = Instant::now();
    let first = loop {
        let (status, b) = app.get_json("/api/v1/balance", &viewer).await;
        assert_eq!(status, 200, "{b}");
        if b["balance"].is_string() {
            break b;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first["balance"], "20.00", "the simulator's starting credit");
    assert_eq!(first["currency"], "USD");

    let op = app.api_token(Role::Operator).await;
    for i in 0..4 {
        let resp = app
            .client
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth(&op)
            .json(&json!({"to": format!("+91990000{i:04}"), "body": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    // A later reading shows the four messages' USD 0.02.
    let started = Instant::now();
    let b: Value = loop {
        let (_, b) = app.get_json("/api/v1/balance", &viewer).await;
        if b["balance"] == "19.98" {
            break b;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let readings = b["readings"].as_array().unwrap();
    assert!(readings.len() >= 2, "{b}");
    assert_eq!(readings.first().unwrap()["balance"], "20.00");
    // Readings a few seconds apart are too short to rate; the traffic's prices are not yet in
    // (they come when messages are final), so there may be no burn rate yet, but never a
    // negative one.
    if let Some(burn) = b["burn_per_hour"].as_str() {
        assert!(!burn.starts_with('-'), "{b}");
    }
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn two_instances_take_one_reading_per_interval_between_them(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let tweak = |v: &mut std::collections::BTreeMap<String, String>| {
        v.insert("balance_poll_secs".into(), "2".into());
    };
    let a = TestApp::spawn_with(opts.clone(), tweak).await;
    let b = TestApp::spawn_with(opts, tweak).await;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT read_at FROM balance_readings ORDER BY read_at")
            .fetch_all(&a.pool)
            .await
            .unwrap();
    // At most one reading per interval in all (the promise); at least two in 6.5 s even on
    // a busy machine (a lower bound that depends on speed stays generous).
    assert!((2..=4).contains(&times.len()), "{times:?}");
    for w in times.windows(2) {
        let gap = (w[1] - w[0]).as_seconds_f64();
        assert!(gap >= 1.9, "two readings {gap} s apart");
    }
    a.stop().await;
    b.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_burn_rate_comes_from_readings_and_ignores_top_ups(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("balance_poll_secs".into(), "0".into());
    })
    .await;
    for (ago_h, balance) in [(4, "100.00"), (2, "90.00"), (1, "190.00"), (0, "180.00")] {
        sqlx::query(
            "INSERT INTO balance_readings (read_at, balance, currency) \
             VALUES (now() - make_interval(hours => $1), $2::numeric, 'USD')",
        )
        .bind(ago_h)
        .bind(balance)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let viewer = app.api_token(Role::Viewer).await;
    let (_, b) = app.get_json("/api/v1/balance", &viewer).await;
    assert_eq!(b["balance"], "180.00");
    assert_eq!(b["burn_source"], "readings");
    assert_eq!(b["burn_per_hour"], "5.00");
    assert_eq!(b["runway_hours"], 36.0);
    assert_eq!(b["runway"], "1 d 12 h");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_job_reads_twilios_balance_contract_and_skips_subaccounts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    // Prism serves Twilio's own OpenAPI description of Balance.json.
    let prism = crate::twilio_contract::prism();
    let poller = wadash::jobs::balance::BalancePoller {
        pool: app.pool.clone(),
        twilio: prism,
        interval: Duration::from_secs(3600),
        levels: Default::default(),
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    };
    assert!(
        poller.poll_once().await.unwrap(),
        "a reading from the contract's example"
    );
    assert!(
        !poller.poll_once().await.unwrap(),
        "not again within the interval"
    );
    assert_eq!(app.count("SELECT count(*) FROM balance_readings").await, 1);

    // A subaccount: Twilio answers without a balance, and nothing is recorded.
    sqlx::query("DELETE FROM balance_readings")
        .execute(&app.pool)
        .await
        .unwrap();
    let twilio = balance_double(Value::Null).await;
    let sub = wadash::jobs::balance::BalancePoller {
        pool: app.pool.clone(),
        twilio: twilio_double(&twilio.uri()),
        interval: Duration::from_secs(1),
        levels: Default::default(),
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    };
    assert!(!sub.poll_once().await.unwrap());
    assert_eq!(app.count("SELECT count(*) FROM balance_readings").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_credit_level_falls_to_low_then_critical_as_messages_spend_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        fast_polls(v);
        v.insert("credit_low".into(), "19.99".into());
        v.insert("credit_critical".into(), "19.97".into());
    })
    .await;
    let viewer = app.api_token(Role::Viewer).await;
    let op = app.api_token(Role::Operator).await;
    let wait_level = async |want: &str| {
        let started = Instant::now();
        loop {
            let (_, b) = app.get_json("/api/v1/balance", &viewer).await;
            if b["level"] == want {
                return b;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "want {want}: {b}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let b = wait_level("ok").await;
    assert_eq!(
        (b["low_at"].as_str(), b["critical_at"].as_str()),
        (Some("19.99"), Some("19.97"))
    );
    let send = async |n: u32| {
        for i in 0..n {
            let resp = app
                .client
                .post(format!("{}/api/v1/messages", app.address))
                .bearer_auth(&op)
                .json(&json!({"to": format!("+91990001{i:04}"), "body": "hi"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }
    };
    send(2).await; // 19.99
    let b = wait_level("low").await;
    assert_eq!(b["balance"], "19.99");
    send(4).await; // 19.97
    let b = wait_level("critical").await;
    assert_eq!(b["balance"], "19.97");
    app.stop().await;
}

/// A fresh account with USD 0.05 and no spend yet: the adaptive lines (hours of spend) are
/// zero, but the floors are not, so its first reading is below both lines and raises the
/// critical alert. The floors are settings: set to zero they let the same reading pass.
#[sqlx::test(migrations = false)]
async fn a_fresh_account_with_five_cents_is_critical_at_its_first_reading(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let twilio = balance_double(json!("0.05")).await;
    let poller = |levels: wadash::balance::Levels| wadash::jobs::balance::BalancePoller {
        pool: app.pool.clone(),
        twilio: twilio_double(&twilio.uri()),
        interval: Duration::from_millis(1),
        levels,
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    };
    let levels_of = |pairs: &[(&str, &str)]| {
        wadash::config::Settings::from_values(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
        .credit
    };
    let open_kinds = async || -> Vec<String> {
        sqlx::query_scalar("SELECT kind FROM alerts WHERE state <> 'resolved' ORDER BY kind")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };

    // Floors turned off: nothing spent, so no line, so no alert.
    let off = levels_of(&[("credit_low_floor", "0"), ("credit_critical_floor", "0")]);
    assert!(poller(off).poll_once().await.unwrap());
    assert!(open_kinds().await.is_empty());
    let (status, body) = {
        let viewer = app.api_token(Role::Viewer).await;
        app.get_json("/api/v1/balance", &viewer).await
    };
    assert_eq!(status, 200, "{body}");

    // The defaults (low 5.00, critical 1.00): the next reading is critical, and raises the
    // critical alert alone (it supersedes the low one: one credit alert at a time).
    sqlx::query("DELETE FROM balance_readings")
        .execute(&app.pool)
        .await
        .unwrap();
    let defaults = levels_of(&[]);
    assert_eq!(defaults.low_floor.to_string(), "5");
    assert_eq!(defaults.critical_floor.to_string(), "1");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(poller(defaults).poll_once().await.unwrap());
    assert_eq!(open_kinds().await, ["credit_critical"]);

    assert!(
        wadash::config::Settings::from_values(
            &[("credit_low_floor".to_owned(), "-1".to_owned())]
                .into_iter()
                .collect()
        )
        .is_err(),
        "a negative floor is refused"
    );
    app.stop().await;
}

/// Work already queued counts in the pace the lines are drawn at: nothing spent yet, but a
/// broadcast of 200 messages (1.00 by the price table) starts within the day, so a balance of
/// 0.90 is below the low line (24 h of that pace) though above the critical one (4 h).
#[sqlx::test(migrations = false)]
async fn queued_broadcasts_count_in_the_pace_of_the_credit_lines(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let twilio = balance_double(json!("0.90")).await;
    let op = app.api_token(Role::Operator).await;
    let numbers: Vec<String> = (0..200).map(|i| format!("+9199{:08}", 7000 + i)).collect();
    let start_at = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (status, b) = crate::helpers::call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "later", "start_at": start_at, "audience": {"numbers": numbers}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let levels = wadash::config::Settings::from_values(
        &[("credit_low_floor", "0"), ("credit_critical_floor", "0")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
    .unwrap()
    .credit;
    let poller = wadash::jobs::balance::BalancePoller {
        pool: app.pool.clone(),
        twilio: twilio_double(&twilio.uri()),
        interval: Duration::from_secs(3600),
        levels,
        channels: wadash::alerts::channels::ChannelStore::new(
            app.pool.clone(),
            Default::default(),
            None,
        ),
    };
    assert!(poller.poll_once().await.unwrap());
    let open: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM alerts WHERE state <> 'resolved' ORDER BY kind")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(open, ["credit_low"]);
    let s = wadash::balance::status::current(&app.pool, &levels, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(s.scheduled_cost.to_string().trim_end_matches('0'), "1.");
    assert_eq!(wadash::balance::money(s.low_at), "1.00");
    let viewer = app.api_token(Role::Viewer).await;
    let (status, view) = app.get_json("/api/v1/balance", &viewer).await;
    assert_eq!(status, 200);
    assert_eq!(view["scheduled_cost_24h"], "1.00", "{view}");
    app.stop().await;
}

/// Reminders due within the day count in the pace too, every occurrence to every recipient: a
/// daily reminder to one number an hour from now (one occurrence within the day) and one to a
/// tag of three contacts in two hours (three messages), at 0.005 each by the price table.
#[sqlx::test(migrations = false)]
async fn reminders_due_within_the_day_count_in_the_pace_of_the_credit_lines(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = app.api_token(Role::Operator).await;
    for n in ["+919900008001", "+919900008002", "+919900008003"] {
        sqlx::query(
            "INSERT INTO contacts (number, consent, tags) VALUES ($1, 'opted_in', ARRAY['vip'])",
        )
        .bind(n)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let at = |hours| (chrono::Utc::now() + chrono::TimeDelta::hours(hours)).to_rfc3339();
    for body in [
        json!({"to": "+919900008009", "body": "daily", "at": at(1), "every": "daily"}),
        json!({"tag": "vip", "body": "for the tag", "at": at(2)}),
        // Beyond the day: not counted.
        json!({"to": "+919900008009", "body": "later", "at": at(30)}),
    ] {
        let (status, r) = crate::helpers::call(&app, "POST", "/reminders", &op, Some(body)).await;
        assert_eq!(status, 201, "{r}");
    }
    let levels = wadash::balance::Levels::default();
    let s = wadash::balance::status::current(&app.pool, &levels, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(wadash::balance::money(s.scheduled_cost), "0.02");
    let viewer = app.api_token(Role::Viewer).await;
    let (status, view) = app.get_json("/api/v1/balance", &viewer).await;
    assert_eq!(status, 200);
    assert_eq!(view["scheduled_cost_24h"], "0.02", "{view}");
    app.stop().await;
}
