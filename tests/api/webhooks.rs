//! `/wa` and `/sts`: the seed payloads, signatures, bad input, the state machine over HTTP,
//! and behaviour while the database is down.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{
    AUTH_TOKEN, DbProxy, TestApp, database_url, fixture, params, status_callback,
};

#[sqlx::test(migrations = false)]
async fn inbound_seed_is_stored_and_answered_with_empty_twiml(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let resp = app.post_signed("/wa", &fixture("inbound-seed.form")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let body = resp.text().await.unwrap();
    assert!(body.ends_with("<Response/>"), "{body}");

    let row: (String, String, String, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT direction, status, body, profile_name, wa_id, from_addr FROM messages WHERE sid = 'SM45e9b726c0314a5524c3f3cb4ZZZZZ'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(row.0, "inbound");
    assert_eq!(row.1, "received");
    assert_eq!(row.2, "hey");
    assert_eq!(row.3.as_deref(), Some("Ranjit Sankar"));
    assert_eq!(row.4.as_deref(), Some("91990000000"));
    assert_eq!(row.5.as_deref(), Some("whatsapp:+919900000000"));
    let raw: serde_json::Value = sqlx::query_scalar("SELECT params_json FROM message_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        raw["ReferralNumMedia"], "0",
        "every field is kept in the event"
    );
    assert_eq!(
        raw.as_object().unwrap().len(),
        fixture("inbound-seed.form").len()
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn status_seed_creates_the_unknown_message_as_sent(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let resp = app.post_signed("/sts", &fixture("status-seed.form")).await;
    assert_eq!(resp.status(), 204);
    let (status, sent_at): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT status, sent_at FROM messages WHERE sid = 'SMc4c96554c26604013c6b7f1b4b6DDDDD'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "sent");
    assert!(sent_at.is_some());
    let unknown_field: String =
        sqlx::query_scalar("SELECT params_json->>'ChannelInstallSid' FROM message_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unknown_field, "XEcc20d939f803ee381f2442185EEEEE");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn signature_failures_are_403_and_store_nothing(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let body = fixture("status-seed.form");
    let good = app.sign("/sts", &body);

    let wrong_token = wadash::twilio::signature::compute(
        b"not-the-token",
        &format!("{}/sts", app.address),
        &body,
    );
    let mut tampered = body.clone();
    tampered
        .iter_mut()
        .find(|(k, _)| k == "MessageStatus")
        .unwrap()
        .1 = "read".into();
    let other_url = wadash::twilio::signature::compute(
        AUTH_TOKEN.as_bytes(),
        "https://elsewhere.example/sts",
        &body,
    );
    let other_path = app.sign("/wa", &body);

    for (what, params, sig) in [
        ("wrong token", &body, Some(wrong_token.as_str())),
        ("tampered field", &tampered, Some(good.as_str())),
        ("missing header", &body, None),
        ("signed for another URL", &body, Some(other_url.as_str())),
        ("signed for another path", &body, Some(other_path.as_str())),
        ("garbage header", &body, Some("%%%")),
    ] {
        let resp = app.post_form("/sts", params, sig).await;
        assert_eq!(resp.status(), 403, "{what}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_signature", "{what}");
    }
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 0);

    let metrics = app.metrics().await;
    assert!(
        metrics
            .contains("wadash_webhook_requests_total{route=\"/sts\",outcome=\"bad_signature\"} 6"),
        "{metrics}"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn secondary_token_is_accepted_during_rotation(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert(
            "twilio_auth_token_secondary".into(),
            "the-next-token".into(),
        );
    })
    .await;
    let body = status_callback("SM00000000000000000000000000000001", "delivered");
    let sig = wadash::twilio::signature::compute(
        b"the-next-token",
        &format!("{}/sts", app.address),
        &body,
    );
    assert_eq!(app.post_form("/sts", &body, Some(&sig)).await.status(), 204);
    assert_eq!(
        app.post_signed(
            "/sts",
            &status_callback("SM00000000000000000000000000000002", "sent")
        )
        .await
        .status(),
        204
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn query_string_is_part_of_the_signed_url(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let body = status_callback("SM00000000000000000000000000000003", "sent");
    let sig = app.sign("/sts?tenant=a&x=1", &body);
    let ok = app
        .client
        .post(format!("{}/sts?tenant=a&x=1", app.address))
        .form(&body)
        .header("X-Twilio-Signature", &sig)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    let other = app
        .client
        .post(format!("{}/sts?tenant=b&x=1", app.address))
        .form(&body)
        .header("X-Twilio-Signature", &sig)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn generated_simulator_token_validates_when_no_token_is_configured(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.remove("twilio_auth_token");
    })
    .await;
    let body = status_callback("SM00000000000000000000000000000004", "sent");
    // The test token is not the instance's: refused, so validation is not off.
    assert_eq!(app.post_signed("/sts", &body).await.status(), 403);
    let token: String = sqlx::query_scalar(
        "SELECT value FROM instance_settings WHERE key = 'simulator_auth_token'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(token.len() >= 32);
    let sig = wadash::twilio::signature::compute(
        token.as_bytes(),
        &format!("{}/sts", app.address),
        &body,
    );
    assert_eq!(app.post_form("/sts", &body, Some(&sig)).await.status(), 204);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn bad_input_gets_clear_errors(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let url = format!("{}/sts", app.address);

    // Over 64 KiB: 413, whether declared or streamed.
    let mut big = status_callback("SM00000000000000000000000000000005", "sent");
    big.push(("Padding".into(), "x".repeat(70 * 1024)));
    let resp = app.post_signed("/sts", &big).await;
    assert_eq!(resp.status(), 413);

    // Not a form: 415.
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("X-Twilio-Signature", "x")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", "x")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // Signed but missing the sid: 400 with the reason.
    let no_sid = params(&[("MessageStatus", "sent")]);
    let resp = app.post_signed("/sts", &no_sid).await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MessageSid")
    );

    // Invalid UTF-8 in the body: 400.
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "x")
        .body(&b"MessageSid=%FF%FE"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A NUL byte cannot be stored by PostgreSQL: refused up front, not half-stored.
    let mut nul = status_callback("SM00000000000000000000000000000006", "sent");
    nul.push(("Body".into(), "a\0b".into()));
    assert_eq!(app.post_signed("/sts", &nul).await.status(), 400);

    // A GET is not a webhook: the address takes only POST.
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 405);

    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn markup_and_sql_are_stored_verbatim(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let evil_name = "<script>alert(1)</script>";
    let evil_body = "'); DROP TABLE messages; --";
    let mut body = fixture("inbound-seed.form");
    for (k, v) in body.iter_mut() {
        match k.as_str() {
            "ProfileName" => *v = evil_name.into(),
            "Body" => *v = evil_body.into(),
            _ => {}
        }
    }
    assert_eq!(app.post_signed("/wa", &body).await.status(), 200);
    let (name, text): (String, String) = sqlx::query_as("SELECT profile_name, body FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(name, evil_name);
    assert_eq!(text, evil_body);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn duplicates_and_reordering_over_http(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let sid = "SM00000000000000000000000000000007";
    for status in ["read", "sent", "delivered", "read", "queued", "sent"] {
        assert_eq!(
            app.post_signed("/sts", &status_callback(sid, status))
                .await
                .status(),
            204,
            "{status}"
        );
    }
    let (status, sent, delivered, read): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT status, sent_at IS NOT NULL, delivered_at IS NOT NULL, read_at IS NOT NULL FROM messages WHERE sid = $1",
    )
    .bind(sid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), sent, delivered, read),
        ("read", true, true, true)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM message_events").await,
        4,
        "one event per distinct callback"
    );

    // Failure after read: recorded, not demoting.
    let mut failed = status_callback(sid, "failed");
    failed.push(("ErrorCode".into(), "30008".into()));
    assert_eq!(app.post_signed("/sts", &failed).await.status(), 204);
    let (status, code): (String, Option<i32>) =
        sqlx::query_as("SELECT status, error_code FROM messages WHERE sid = $1")
            .bind(sid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), code), ("read", None));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM message_events WHERE status = 'failed' AND error_code = 30008"
        )
        .await,
        1
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_status_is_an_event_only(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let sid = "SM00000000000000000000000000000008";
    assert_eq!(app.post_status(sid, "teleported").await, 204);
    assert_eq!(
        app.current_status(sid).await,
        None,
        "an unknown sid is created, but the unknown status is not current"
    );
    assert_eq!(app.post_status(sid, "delivered").await, 204);
    assert_eq!(app.post_status(sid, "warp_speed").await, 204);
    assert_eq!(app.current_status(sid).await.as_deref(), Some("delivered"));
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 3);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn database_down_answers_503_then_recovers_by_itself(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let proxy = DbProxy::start(format!("{}:{}", opts.get_host(), opts.get_port())).await;
    let proxied = database_url(&opts, Some(proxy.port));
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("database_url".into(), proxied);
        // Several ingest lanes: each must fail cleanly and recover on its own.
        v.insert("ingest_concurrency".into(), "3".into());
    })
    .await;
    let sid = |n: u32| format!("SM{n:032}");
    assert_eq!(
        app.post_signed("/sts", &status_callback(&sid(1), "sent"))
            .await
            .status(),
        204
    );

    proxy.cut();
    for n in 2..9 {
        let resp = app
            .post_signed("/sts", &status_callback(&sid(n), "sent"))
            .await;
        assert_eq!(resp.status(), 503, "never 2xx without storing");
        assert_eq!(resp.headers()["retry-after"], "1");
    }
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .post_signed("/sts", &status_callback(&sid(9), "sent"))
            .await
            .status()
            == 204
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service recovers without a restart");
    // Every lane is back, not only the one that took the first callback after the outage.
    for n in 10..22 {
        let status = app
            .post_signed("/sts", &status_callback(&sid(n), "sent"))
            .await
            .status();
        assert_eq!(status, 204, "callback {n} after recovery");
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT sid FROM messages ORDER BY sid")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let mut expected = vec![sid(1), sid(9)];
    expected.extend((10..22).map(sid));
    assert_eq!(stored, expected, "only acknowledged callbacks exist");
    app.stop().await;
}
