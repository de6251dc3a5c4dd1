//! The first JSON API: authentication, message shapes, filters, keyset pagination, funnel.

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, fixture, status_callback};

async fn send(app: &TestApp, sid: &str, statuses: &[&str]) {
    for s in statuses {
        let mut p = status_callback(sid, s);
        if matches!(*s, "failed" | "undelivered") {
            p.push(("ErrorCode".into(), "63016".into()));
        }
        assert_eq!(app.post_signed("/sts", &p).await.status(), 204);
    }
}

#[sqlx::test(migrations = false)]
async fn api_requires_a_valid_bearer_token(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let url = format!("{}/api/v1/messages", app.address);
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    for bad in ["wdsh_0000", "", "Basic abc"] {
        let resp = app
            .client
            .get(&url)
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{bad:?}");
    }
    let token = app.api_token(Role::Viewer).await;
    let (status, _) = app.get_json("/api/v1/messages", &token).await;
    assert_eq!(status, 200);

    sqlx::query("UPDATE api_tokens SET revoked_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = app.get_json("/api/v1/messages", &token).await;
    assert_eq!(status, 401, "revoked tokens stop working at once");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM api_tokens WHERE token_hash = sha256(convert_to('x', 'UTF8'))"
        )
        .await,
        0
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn message_has_exactly_the_documented_shape(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Viewer).await;
    let sid = "SM00000000000000000000000000000011";
    send(&app, sid, &["sent", "delivered", "sent"]).await;

    let (status, m) = app
        .get_json(&format!("/api/v1/messages/{sid}"), &token)
        .await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec![
        "sid",
        "direction",
        "from",
        "to",
        "body",
        "media",
        "status",
        "error_code",
        "error_message",
        "price",
        "price_unit",
        "created_at",
        "updated_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        // A button tapped or a list item chosen; null here (issue 20).
        "interactive",
        "events",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(m["sid"], sid);
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["status"], "delivered");
    assert_eq!(m["to"], "whatsapp:+919900000000");
    assert_eq!(m["media"], serde_json::json!([]));
    assert!(m["sent_at"].is_string() && m["delivered_at"].is_string() && m["read_at"].is_null());
    let events = m["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "the duplicate 'sent' is one event");
    for e in events {
        let mut k: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        assert_eq!(k, vec!["error_code", "received_at", "status"]);
    }
    assert_eq!(events[0]["status"], "sent");

    let (status, err) = app
        .get_json(
            "/api/v1/messages/SM99999999999999999999999999999999",
            &token,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found");
    let (status, _) = app.get_json("/api/v1/messages/..%2F..%2Fetc", &token).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn inbound_message_shows_its_media(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Viewer).await;
    let mut body = fixture("inbound-seed.form");
    body.retain(|(k, _)| k != "NumMedia");
    body.push(("NumMedia".into(), "1".into()));
    body.push((
        "MediaUrl0".into(),
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1".into(),
    ));
    body.push(("MediaContentType0".into(), "image/jpeg".into()));
    assert_eq!(app.post_signed("/wa", &body).await.status(), 200);
    let (_, m) = app
        .get_json("/api/v1/messages/SM45e9b726c0314a5524c3f3cb4ZZZZZ", &token)
        .await;
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["status"], "received");
    assert_eq!(m["media"][0]["content_type"], "image/jpeg");
    assert_eq!(m["body"], "hey");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn list_filters_and_paginates_without_gaps_or_repeats(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Viewer).await;
    for i in 0..25 {
        let status = if i % 5 == 0 { "failed" } else { "delivered" };
        send(&app, &format!("SM{i:032}"), &[status]).await;
    }
    assert_eq!(
        app.post_signed("/wa", &fixture("inbound-seed.form"))
            .await
            .status(),
        200
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/messages?limit=7&cursor={c}"),
            None => "/api/v1/messages?limit=7".to_owned(),
        };
        let (status, page) = app.get_json(&path, &token).await;
        assert_eq!(status, 200);
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("events").is_none());
            seen.push(item["sid"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 26);
    assert_eq!(unique.len(), 26);

    let (_, failed) = app.get_json("/api/v1/messages?status=failed", &token).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 5);
    assert!(
        failed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["error_code"] == 63016)
    );
    let (_, by_code) = app
        .get_json(
            "/api/v1/messages?error_code=63016&direction=outbound",
            &token,
        )
        .await;
    assert_eq!(by_code["items"].as_array().unwrap().len(), 5);
    let (_, by_number) = app
        .get_json("/api/v1/messages?number=%2B919900000000", &token)
        .await;
    assert_eq!(
        by_number["items"].as_array().unwrap().len(),
        26,
        "inbound from and outbound to the number"
    );
    // The number filter pages like any other: small pages, no gaps, no repeats, newest first.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get_json(
                &format!("/api/v1/messages?number=%2B919900000000&limit=4&cursor={cursor}"),
                &token,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for m in page["items"].as_array().unwrap() {
            seen.push((
                m["created_at"].as_str().unwrap().to_owned(),
                m["sid"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    let mut ordered = seen.clone();
    ordered.sort_by(|a, b| b.cmp(a));
    ordered.dedup();
    assert_eq!(seen, ordered, "newest first, each once");
    let (_, by_text) = app.get_json("/api/v1/messages?q=HE", &token).await;
    assert_eq!(by_text["items"].as_array().unwrap().len(), 1);
    let (_, none) = app.get_json("/api/v1/messages?q=%25", &token).await;
    assert_eq!(
        none["items"].as_array().unwrap().len(),
        0,
        "% is literal text, not a wildcard"
    );
    let (_, future) = app
        .get_json("/api/v1/messages?since=2999-01-01T00:00:00Z", &token)
        .await;
    assert_eq!(future["items"].as_array().unwrap().len(), 0);

    for bad in [
        "status=bogus",
        "limit=0",
        "limit=501",
        "since=yesterday",
        "cursor=!!",
        "number=12",
        "direction=up",
    ] {
        let (status, err) = app
            .get_json(&format!("/api/v1/messages?{bad}"), &token)
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"]["code"], "bad_request", "{bad}");
    }
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn funnel_counts_messages_by_the_furthest_stage_reached(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Viewer).await;
    send(&app, "SM00000000000000000000000000000021", &["queued"]).await;
    send(&app, "SM00000000000000000000000000000022", &["sent"]).await;
    send(
        &app,
        "SM00000000000000000000000000000023",
        &["sent", "delivered"],
    )
    .await;
    // A read whose sent and delivered callbacks were lost still counts as sent and delivered.
    send(&app, "SM00000000000000000000000000000024", &["read"]).await;
    send(
        &app,
        "SM00000000000000000000000000000025",
        &["sent", "failed"],
    )
    .await;
    send(&app, "SM00000000000000000000000000000026", &["undelivered"]).await;
    assert_eq!(
        app.post_signed("/wa", &fixture("inbound-seed.form"))
            .await
            .status(),
        200
    );

    let (status, f) = app.get_json("/api/v1/stats/funnel", &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        f,
        serde_json::json!({"total": 6, "sent": 4, "delivered": 2, "read": 1, "failed": 1, "undelivered": 1})
    );
    let (_, empty) = app
        .get_json("/api/v1/stats/funnel?since=2999-01-01T00:00:00Z", &token)
        .await;
    assert_eq!(empty["total"], 0);
    let (_, all) = app
        .get_json(
            "/api/v1/stats/funnel?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B05:30",
            &token,
        )
        .await;
    assert_eq!(all["total"], 6);
    let (status, _) = app
        .get_json("/api/v1/stats/funnel?until=tomorrow", &token)
        .await;
    assert_eq!(status, 400);
    app.stop().await;
}
