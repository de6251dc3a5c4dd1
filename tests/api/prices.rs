//! The price table through the API: the default table at first start, uploads that change
//! everything or nothing, estimates by each pricing rule, roles, and broadcast previews priced
//! by the uploaded table.

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::TestApp;

const TABLE: &str = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.01,USD
2025-01-01,twilio_failed,*,*,0.002,USD
2025-01-01,meta_conversation,IN,marketing,0.03,USD
2025-01-01,meta_conversation,*,*,0.09,USD
2025-07-01,meta_template,IN,marketing,0.02,USD
2025-07-01,meta_template,IN,*,0.004,USD
2025-07-01,meta_template,*,*,0.05,USD
";

async fn put_csv(app: &TestApp, token: &str, csv: &str) -> (u16, Value) {
    let resp = app
        .client
        .put(format!("{}/api/v1/prices", app.address))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1{path}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn amounts(items: &Value) -> Vec<String> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p["effective_from"].as_str().unwrap(),
                p["kind"].as_str().unwrap(),
                p["country"].as_str().unwrap(),
                p["category"].as_str().unwrap(),
                p["amount"].as_str().unwrap()
            )
        })
        .collect()
}

#[sqlx::test(migrations = false)]
async fn an_upload_replaces_the_table_whole_or_changes_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let viewer = app.api_token(Role::Viewer).await;
    let (status, seeded) = app.get_json("/api/v1/prices", &viewer).await;
    assert_eq!(status, 200, "{seeded}");
    assert!(
        amounts(&seeded).contains(&"2025-01-01 twilio_message * * 0.005".to_owned()),
        "the default table is seeded at first start: {seeded}"
    );

    let bad = format!(
        "{TABLE}2025-07-01,meta_template,India,marketing,0.02,USD\n\n2025-07-01,meta_template,IN,marketing,0.03,USD\n"
    );
    let (status, body) = put_csv(&app, &admin, &bad).await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [9, 11], "{body}");
    assert!(errors[1]["message"].as_str().unwrap().contains("line 6"));
    let (_, after) = app.get_json("/api/v1/prices", &viewer).await;
    assert_eq!(amounts(&after), amounts(&seeded), "nothing changed");

    let (status, body) = put_csv(&app, &admin, TABLE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], 7);
    let (_, after) = app.get_json("/api/v1/prices", &viewer).await;
    let rows = amounts(&after);
    assert_eq!(rows.len(), 7);
    assert!(rows.contains(&"2025-07-01 meta_template IN marketing 0.02".to_owned()));
    assert_eq!(after["items"][0]["currency"], "USD");
    let by: String = sqlx::query_scalar("SELECT DISTINCT uploaded_by FROM prices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(by.starts_with("api token #"), "{by}");
}

#[sqlx::test(migrations = false)]
async fn only_admins_upload_and_anyone_reads_and_estimates(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    for role in [Role::Viewer, Role::Operator] {
        let token = app.api_token(role).await;
        let (status, body) = put_csv(&app, &token, TABLE).await;
        assert_eq!(status, 403, "{role:?}: {body}");
        let (status, _) = post(
            &app,
            "/prices/estimate",
            &token,
            json!({"to": "+919900000001"}),
        )
        .await;
        assert_eq!(status, 200, "{role:?}");
    }
    let (status, _) = app.get_json("/api/v1/prices", "not-a-token").await;
    assert_eq!(status, 401);
}

#[sqlx::test(migrations = false)]
async fn estimates_follow_each_pricing_rule(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    assert_eq!(put_csv(&app, &admin, TABLE).await.0, 200);
    let viewer = app.api_token(Role::Viewer).await;
    let cases = [
        // Free-form in the window: Twilio's fee only.
        (
            json!({"to": "+919900000001", "in_window": true, "at": "2026-01-10T10:00:00Z"}),
            "IN",
            "0.01",
            "0",
            "0.01",
        ),
        // Inbound: Twilio's fee only, even for a template category.
        (
            json!({"to": "+919900000001", "direction": "inbound", "template_category": "marketing", "at": "2026-01-10T10:00:00Z"}),
            "IN",
            "0.01",
            "0",
            "0.01",
        ),
        // Failed: the failed fee instead, nothing to Meta.
        (
            json!({"to": "+919900000001", "failed": true, "template_category": "marketing", "at": "2026-01-10T10:00:00Z"}),
            "IN",
            "0.002",
            "0",
            "0.002",
        ),
        // Per-message model: by country and category, then the * rows.
        (
            json!({"to": "+919900000001", "template_category": "marketing", "at": "2025-07-01T00:00:00Z"}),
            "IN",
            "0.01",
            "0.02",
            "0.03",
        ),
        (
            json!({"to": "+919900000001", "template_category": "authentication", "at": "2025-07-01T00:00:00Z"}),
            "IN",
            "0.01",
            "0.004",
            "0.014",
        ),
        (
            json!({"to": "+4915123456789", "template_category": "marketing", "at": "2025-07-01T00:00:00Z"}),
            "DE",
            "0.01",
            "0.05",
            "0.06",
        ),
        // Utility inside the window is free; outside it is not.
        (
            json!({"to": "+919900000001", "template_category": "utility", "in_window": true, "at": "2025-08-01T00:00:00Z"}),
            "IN",
            "0.01",
            "0",
            "0.01",
        ),
        (
            json!({"to": "+919900000001", "template_category": "utility", "at": "2025-08-01T00:00:00Z"}),
            "IN",
            "0.01",
            "0.004",
            "0.014",
        ),
        // Per-conversation model before July 2025: charged once per open conversation.
        (
            json!({"to": "+919900000001", "template_category": "marketing", "at": "2025-06-30T23:59:59Z"}),
            "IN",
            "0.01",
            "0.03",
            "0.04",
        ),
        (
            json!({"to": "+919900000001", "template_category": "marketing", "conversation_open": true, "at": "2025-06-30T23:59:59Z"}),
            "IN",
            "0.01",
            "0",
            "0.01",
        ),
        (
            json!({"to": "+6791234567", "template_category": "utility", "at": "2025-03-01T00:00:00Z"}),
            "*",
            "0.01",
            "0.09",
            "0.10",
        ),
    ];
    for (body, country, twilio, meta, total) in cases {
        let (status, b) = post(&app, "/prices/estimate", &viewer, body.clone()).await;
        assert_eq!(status, 200, "{body}: {b}");
        assert_eq!(
            (
                &b["country"],
                &b["twilio_fee"],
                &b["meta_fee"],
                &b["total"],
                &b["currency"]
            ),
            (
                &json!(country),
                &json!(twilio),
                &json!(meta),
                &json!(total),
                &json!("USD")
            ),
            "{body}"
        );
    }
    let (status, b) = post(
        &app,
        "/prices/estimate",
        &viewer,
        json!({"to": "+919900000001", "at": "2024-12-31T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (422, Some("no_price")),
        "{b}"
    );
    let (status, _) = post(&app, "/prices/estimate", &viewer, json!({"to": "12345"})).await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_preview_is_priced_by_the_uploaded_table(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    let audience = json!({"numbers": ["+919900000001", "+919900000002", "+4915123456789"]});
    let free_form = json!({"body": "Hello", "audience": audience, "preview": true});
    let (status, p) = post(&app, "/broadcasts", &op, free_form.clone()).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (&p["estimated_cost"], &p["cost_currency"]),
        (&json!("0.015"), &json!("USD")),
        "the default table: 3 × 0.005"
    );

    assert_eq!(put_csv(&app, &admin, TABLE).await.0, 200);
    let (_, p) = post(&app, "/broadcasts", &op, free_form).await;
    assert_eq!(
        p["estimated_cost"], "0.03",
        "free-form: Twilio's fee only, 3 × 0.01"
    );
    let template = json!({"content_sid": "HX0123456789abcdef0123456789abcdef", "audience": audience, "preview": true});
    let (status, p) = post(&app, "/broadcasts", &op, template.clone()).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["estimated_cost"], "0.12",
        "as marketing: 2 × (0.01 + 0.02) + (0.01 + 0.05)"
    );
    let mut utility = template;
    utility["template_category"] = json!("utility");
    let (_, p) = post(&app, "/broadcasts", &op, utility).await;
    assert_eq!(
        p["estimated_cost"], "0.088",
        "utility: 2 × (0.01 + 0.004) + (0.01 + 0.05)"
    );
}
