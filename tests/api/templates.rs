//! The template catalogue sync against a Content API double (wiremock): what is stored, the
//! history of status, category and presence, which changes call for an alert, failures kept
//! without touching the catalogue, and one sync per interval across instances.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::alerts::channels::ChannelStore;
use wadash::domain::template::{Known, TemplateRecord};
use wadash::storage::sync_state;
use wadash::storage::templates::{self, Filter};
use wadash::twilio::content::ContentClient;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;

const A: &str = "HX00000000000000000000000000000001";
const B: &str = "HX00000000000000000000000000000002";
const C: &str = "HX00000000000000000000000000000003";

fn content(server: &MockServer) -> ContentClient {
    crate::helpers::twilio_double(
        "http://127.0.0.1:9",
        "AC00000000000000000000000000000000",
        "tok",
        2,
    )
    .content(&server.uri())
    .unwrap()
}

fn template(sid: &str, name: &str, status: &str, category: &str) -> Value {
    json!({"sid": sid, "friendly_name": name, "language": "en", "variables": {"1": "Ada"},
        "types": {"twilio/text": {"body": format!("{name}: hello {{{{1}}}}")}},
        "approval_requests": {"name": name, "category": category.to_uppercase(), "status": status,
            "rejection_reason": if status == "rejected" { "Too promotional" } else { "" }},
        "date_updated": "2026-12-01T10:00:00Z"})
}

async fn catalogue(server: &MockServer, items: Vec<Value>) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"contents": items, "meta": {"next_page_url": null}})),
        )
        .mount(server)
        .await;
}

#[sqlx::test(migrations = false)]
async fn a_sync_stores_the_catalogue_and_the_next_records_what_whatsapp_and_meta_changed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    let c = content(&server);

    catalogue(
        &server,
        vec![
            template(A, "order_update", "approved", "utility"),
            template(B, "spring_sale", "pending", "marketing"),
        ],
    )
    .await;
    let first = wadash::templates::sync(&app.pool, &c).await.unwrap();
    assert_eq!(first.templates, 2);
    assert!(
        first.changes.iter().all(|c| !c.alerts()),
        "{:?}",
        first.changes
    );
    let a = templates::get(&app.pool, A).await.unwrap().unwrap();
    assert_eq!(
        (a.status.as_str(), a.category.as_deref(), a.name.as_str()),
        ("approved", Some("utility"), "order_update")
    );
    assert_eq!(a.variables.0["1"], "Ada");
    assert!(a.types.0["twilio/text"]["body"].is_string());

    // Meta re-categorises A and pauses it; B is deleted at Twilio.
    catalogue(
        &server,
        vec![template(A, "order_update", "paused", "marketing")],
    )
    .await;
    let second = wadash::templates::sync(&app.pool, &c).await.unwrap();
    let seen: Vec<(String, Option<String>, Option<String>, bool)> = second
        .changes
        .iter()
        .map(|c| {
            (
                c.field.as_str().to_owned(),
                c.from.clone(),
                c.to.clone(),
                c.alerts(),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert!(
        seen.contains(&("status".into(), s("approved"), s("paused"), true)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("category".into(), s("utility"), s("marketing"), true)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("presence".into(), s("present"), s("deleted"), true)),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 3, "{seen:?}");

    let listed = templates::list(&app.pool, &Filter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|t| t.sid.as_str()).collect::<Vec<_>>(),
        [A],
        "a deleted template leaves the list"
    );
    let b = templates::get(&app.pool, B).await.unwrap().unwrap();
    assert!(b.deleted_at.is_some(), "but keeps its record and history");
    let history = templates::history(&app.pool, A).await.unwrap();
    let fields: Vec<_> = history
        .iter()
        .map(|h| (h.field.as_str(), h.new_value.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            ("status", Some("approved")),
            ("status", Some("paused")),
            ("category", Some("marketing"))
        ]
    );

    // The same catalogue again changes nothing.
    let third = wadash::templates::sync(&app.pool, &c).await.unwrap();
    assert!(third.changes.is_empty(), "{:?}", third.changes);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_failed_sync_is_recorded_and_leaves_the_catalogue_as_it_was(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    let c = content(&server);
    catalogue(
        &server,
        vec![template(A, "order_update", "approved", "utility")],
    )
    .await;
    wadash::templates::sync(&app.pool, &c).await.unwrap();
    let ok_at = templates::sync_state(&app.pool).await.unwrap().last_ok_at;

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    for expected in 1..=2 {
        assert!(wadash::templates::sync(&app.pool, &c).await.is_err());
        let state = templates::sync_state(&app.pool).await.unwrap();
        assert_eq!(state.failures, expected);
        assert_eq!(state.last_ok_at, ok_at);
        assert!(state.last_error.unwrap().contains("503"));
    }
    let a = templates::get(&app.pool, A).await.unwrap().unwrap();
    assert_eq!(
        a.status, "approved",
        "sends keep using the last known status"
    );
    assert!(a.deleted_at.is_none());

    catalogue(
        &server,
        vec![template(A, "order_update", "approved", "utility")],
    )
    .await;
    wadash::templates::sync(&app.pool, &c).await.unwrap();
    assert_eq!(templates::sync_state(&app.pool).await.unwrap().failures, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn one_scheduled_sync_per_interval_however_many_instances_ask(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    catalogue(&server, vec![]).await;
    let c = content(&server);
    let interval = Duration::from_secs(300);
    let channels = ChannelStore::new(app.pool.clone(), Default::default(), None);
    let asks = futures_util::future::join_all(
        (0..8).map(|_| wadash::templates::sync_if_due(&app.pool, &c, &channels, interval)),
    )
    .await;
    let done = asks
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(_))))
        .count();
    assert_eq!(done, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    app.stop().await;
}

fn stored(sid: &str, name: &str, status: &str) -> TemplateRecord {
    TemplateRecord {
        sid: sid.into(),
        name: name.into(),
        language: "en".into(),
        types: json!({"twilio/text": {"body": "hi"}}),
        variables: Default::default(),
        status: status.into(),
        category: (status != "unsubmitted").then(|| "utility".into()),
        rejection_reason: None,
        whatsapp_name: None,
        updated_at: None,
    }
}

/// What wadash did at Twilio while a sync was reading the catalogue is newer than what the
/// sync read: the sync leaves those templates alone (it used to put the old status back, and
/// mark a template created meanwhile deleted), and the next sync brings Twilio's state.
#[sqlx::test(migrations = false)]
async fn a_sync_that_read_twilio_before_a_submit_a_create_or_a_delete_does_not_undo_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let pool = &app.pool;
    let status_of = |sid: &'static str| async move {
        let t = templates::get(pool, sid).await.unwrap().unwrap();
        (t.status, t.deleted_at.is_some())
    };
    let seen = |changes: &[wadash::domain::template::Change]| {
        changes
            .iter()
            .map(|c| (c.sid.clone(), c.field.as_str(), c.to.clone()))
            .collect::<Vec<_>>()
    };
    let first = sync_state::mark(pool).await.unwrap();
    let catalogue = [
        stored(A, "order_update", "unsubmitted"),
        stored(B, "spring_sale", "approved"),
    ];
    templates::apply_catalogue(pool, &catalogue, first)
        .await
        .unwrap();

    // A sync begins and reads Twilio; then an admin submits A, deletes B and creates C.
    let read_before = sync_state::mark(pool).await.unwrap();
    let submitted = Known {
        status: "received".into(),
        category: Some("utility".into()),
        deleted: false,
    };
    templates::set_state(pool, A, &submitted, Some("order_update"))
        .await
        .unwrap()
        .unwrap();
    let deleted = Known {
        status: "approved".into(),
        category: Some("utility".into()),
        deleted: true,
    };
    templates::set_state(pool, B, &deleted, None)
        .await
        .unwrap()
        .unwrap();
    templates::insert_one(pool, &stored(C, "pickup_choice", "unsubmitted"))
        .await
        .unwrap();
    let history_before: usize =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM template_changes")
            .fetch_one(pool)
            .await
            .unwrap() as usize;

    // The sync writes what it read: none of the three is undone, and nothing is recorded.
    let changes = templates::apply_catalogue(pool, &catalogue, read_before)
        .await
        .unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(status_of(A).await, ("received".into(), false));
    assert_eq!(status_of(B).await, ("approved".into(), true));
    assert_eq!(status_of(C).await, ("unsubmitted".into(), false));
    let history_after: i64 = sqlx::query_scalar("SELECT count(*) FROM template_changes")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(history_after as usize, history_before);

    // The next sync read Twilio after all three: its catalogue is written as usual.
    let next = sync_state::mark(pool).await.unwrap();
    let changes = templates::apply_catalogue(
        pool,
        &[
            stored(A, "order_update", "approved"),
            stored(C, "pickup_choice", "unsubmitted"),
        ],
        next,
    )
    .await
    .unwrap();
    assert_eq!(
        seen(&changes),
        [(A.to_owned(), "status", Some("approved".to_owned()))]
    );
    assert_eq!(status_of(A).await, ("approved".into(), false));
    assert_eq!(status_of(B).await, ("approved".into(), true));
    assert_eq!(status_of(C).await, ("unsubmitted".into(), false));

    // And a later sync that no longer lists C marks it deleted: the guard only covers what
    // happened after the read.
    let later = sync_state::mark(pool).await.unwrap();
    let changes = templates::apply_catalogue(pool, &[stored(A, "order_update", "approved")], later)
        .await
        .unwrap();
    assert_eq!(
        seen(&changes),
        [(C.to_owned(), "presence", Some("deleted".to_owned()))]
    );
    app.stop().await;
}

/// An instance in live mode whose Content API is `content`.
async fn live_app(opts: PgConnectOptions, content: &MockServer) -> TestApp {
    let uri = content.uri();
    TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
        v.insert("twilio_content_base".into(), uri);
    })
    .await
}

#[sqlx::test(migrations = false)]
async fn the_api_syncs_on_demand_lists_with_filters_and_a_cursor_and_shows_history(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    catalogue(
        &server,
        vec![
            template(A, "a_order_update", "approved", "utility"),
            template(B, "b_spring_sale", "rejected", "marketing"),
        ],
    )
    .await;
    let app = live_app(opts, &server).await;
    let admin = app.api_token(wadash::domain::Role::Admin).await;
    let viewer = app.api_token(wadash::domain::Role::Viewer).await;
    let post = |token: String| {
        app.client
            .post(format!("{}/api/v1/templates/sync", app.address))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(post(viewer.clone()).await.unwrap().status().as_u16(), 403);
    assert_eq!(post(admin.clone()).await.unwrap().status().as_u16(), 202);

    let started = std::time::Instant::now();
    let listed = loop {
        let (status, body) = app.get_json("/api/v1/templates", &viewer).await;
        assert_eq!(status, 200, "{body}");
        if body["items"].as_array().unwrap().len() == 2 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no sync: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed["items"][0]["sid"], A);
    assert_eq!(listed["items"][0]["whatsapp"]["status"], "approved");
    assert_eq!(listed["items"][0]["whatsapp"]["category"], "utility");
    assert_eq!(
        listed["items"][1]["whatsapp"]["rejection_reason"],
        "Too promotional"
    );
    assert!(listed["sync"]["last_ok_at"].is_string());
    assert_eq!(listed["sync"]["failures"], 0);

    let (_, rejected) = app
        .get_json("/api/v1/templates?status=REJECTED", &viewer)
        .await;
    assert_eq!(rejected["items"].as_array().unwrap().len(), 1);
    assert_eq!(rejected["items"][0]["sid"], B);
    let (_, found) = app.get_json("/api/v1/templates?q=spring", &viewer).await;
    assert_eq!(found["items"][0]["sid"], B);

    let (_, first) = app.get_json("/api/v1/templates?limit=1", &viewer).await;
    assert_eq!(first["items"][0]["sid"], A);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app
        .get_json(
            &format!("/api/v1/templates?limit=1&cursor={cursor}"),
            &viewer,
        )
        .await;
    assert_eq!(second["items"][0]["sid"], B);
    assert!(second["next_cursor"].is_null());
    let (bad, _) = app
        .get_json("/api/v1/templates?cursor=../../x", &viewer)
        .await;
    assert_eq!(bad, 400);

    let (status, detail) = app
        .get_json(&format!("/api/v1/templates/{B}"), &viewer)
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["history"][0]["field"], "status");
    assert_eq!(detail["history"][0]["to"], "rejected");
    let (missing, _) = app
        .get_json(
            "/api/v1/templates/HX000000000000000000000000000000ff",
            &viewer,
        )
        .await;
    assert_eq!(missing, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn in_simulator_mode_the_samples_are_synced_at_start_and_a_submitted_template_is_reviewed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("template_sync_secs".into(), "300".into());
        v.insert("sim_template_review_ms".into(), "600".into());
        v.insert("sim_template_reject_share".into(), "0".into());
    })
    .await;
    let viewer = app.api_token(wadash::domain::Role::Viewer).await;
    let started = std::time::Instant::now();
    let listed = loop {
        let (_, body) = app.get_json("/api/v1/templates", &viewer).await;
        if body["items"].as_array().is_some_and(|i| i.len() == 3) {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no samples: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["appointment_reminder", "order_update", "spring_sale"]
    );
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["whatsapp"]["status"] == "approved")
    );

    // A template created and submitted at the simulator goes received → pending → approved.
    let content = app.twilio.content(app.twilio.base()).unwrap();
    let created = content
        .create(&wadash::twilio::content::NewTemplate {
            friendly_name: "delivery_window".into(),
            language: "en".into(),
            variables: [("1".to_owned(), "9-11".to_owned())].into(),
            types: json!({"twilio/text": {"body": "Your delivery comes between {{1}} today."}})
                .as_object()
                .unwrap()
                .clone(),
        })
        .await
        .unwrap();
    let submitted = content
        .submit(
            &created.sid,
            &wadash::twilio::content::Submission {
                name: "delivery_window".into(),
                category: "utility".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(submitted.status, "received");
    let decided = loop {
        let a = content.approval(&created.sid).await.unwrap().unwrap();
        if a.status == "approved" {
            break a;
        }
        assert!(
            ["received", "pending"].contains(&a.status.as_str()),
            "{a:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(decided.category, "utility");
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let (_, detail) = app
        .get_json(&format!("/api/v1/templates/{}", created.sid), &viewer)
        .await;
    assert_eq!(detail["whatsapp"]["status"], "approved");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn sends_follow_the_catalogue_unapproved_refused_outside_the_window_and_priced_in_whatsapps_category(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("template_sync_secs".into(), "300".into());
        v.insert("sim_template_review_ms".into(), "3600000".into());
    })
    .await;
    let op = app.api_token(wadash::domain::Role::Operator).await;
    let content = app.twilio.content(app.twilio.base()).unwrap();
    let pending = content
        .create(&wadash::twilio::content::NewTemplate {
            friendly_name: "price_drop".into(),
            language: "en".into(),
            variables: [("1".to_owned(), "shoes".to_owned())].into(),
            types: json!({"twilio/text": {"body": "The {{1}} you liked are cheaper now."}})
                .as_object()
                .unwrap()
                .clone(),
        })
        .await
        .unwrap();
    content
        .submit(
            &pending.sid,
            &wadash::twilio::content::Submission {
                name: "price_drop".into(),
                category: "marketing".into(),
            },
        )
        .await
        .unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let approved: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sid FROM templates WHERE status = 'approved' ORDER BY name")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let sid_of = |name: &str| {
        approved
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    let send = |to: &str, sid: &str, category: Option<&str>| {
        // price_drop has one placeholder, order_update three.
        let vars = if sid == pending.sid {
            json!({"1": "x"})
        } else {
            json!({"1": "x", "2": "y", "3": "z"})
        };
        let mut body = json!({"to": to, "content_sid": sid, "content_variables": vars});
        if let Some(c) = category {
            body["template_category"] = json!(c);
        }
        app.client
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth(&op)
            .json(&body)
            .send()
    };

    // Never heard from: WhatsApp needs an approved template.
    let resp = send("+919900007001", &pending.sid, None).await.unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "template_not_approved");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("price_drop") && message.contains("received"),
        "{message}"
    );

    // Inside an open window the same template goes as a session message.
    let inbound = crate::helpers::params(&[
        ("MessageSid", "SM0000000000000000000000000000e001"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900007002"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "hi"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &inbound).await.status(), 200);
    let resp = send("+919900007002", &pending.sid, None).await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );

    // An approved utility template is priced as utility whatever the caller declares.
    let resp = send("+919900007003", &sid_of("order_update"), Some("marketing"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let sent: Value = resp.json().await.unwrap();
    let category: String = sqlx::query_scalar("SELECT category FROM message_costs WHERE sid = $1")
        .bind(sent["sid"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(category, "utility");

    // Variables that do not fit the template are refused before anything is sent.
    for (vars, said) in [
        (json!({"1": "x"}), "needs a value for {{2}}, {{3}}"),
        (
            json!({"1": "x", "2": "y", "3": "z", "4": "w"}),
            "has no placeholder for {{4}}",
        ),
    ] {
        let resp = app
            .client
            .post(format!("{}/api/v1/messages", app.address))
            .bearer_auth(&op)
            .json(
                &json!({"to": "+919900007005", "content_sid": sid_of("order_update"),
                "content_variables": vars}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "template_variables");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{message}");
    }

    // A template the catalogue does not know goes, with a warning.
    let resp = send("+919900007004", "HX00000000000000000000000000000abc", None)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let sent: Value = resp.json().await.unwrap();
    assert!(
        sent["warnings"]
            .to_string()
            .contains("not in wadash's template catalogue"),
        "{sent}"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn template_changes_raise_alerts_that_name_what_uses_the_template_and_resolve_when_it_returns(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    let c = content(&server);
    let channels = ChannelStore::new(app.pool.clone(), Default::default(), None);
    let open = |kind: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, String)>(
                "SELECT subject, severity, message FROM alerts WHERE kind = $1 AND state <> 'resolved'",
            )
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    catalogue(
        &server,
        vec![
            template(A, "order_update", "approved", "utility"),
            template(B, "spring_sale", "approved", "utility"),
        ],
    )
    .await;
    wadash::templates::sync_and_alert(&app.pool, &c, &channels)
        .await
        .unwrap();
    assert!(open("template_blocked").await.is_empty());
    // A broadcast waiting to start and a reminder use A.
    let op = app.api_token(wadash::domain::Role::Operator).await;
    let b: Value = app
        .client
        .post(format!("{}/api/v1/broadcasts", app.address))
        .bearer_auth(&op)
        .json(
            &json!({"content_sid": A, "content_variables": {"1": "Ada"}, "start_at": "2030-01-01T09:00:00Z",
            "audience": {"numbers": ["+919900008001"]}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let broadcast = b["id"].as_i64().unwrap_or_else(|| panic!("{b}"));

    // WhatsApp pauses A; Meta moves B to marketing.
    catalogue(
        &server,
        vec![
            template(A, "order_update", "paused", "utility"),
            template(B, "spring_sale", "approved", "marketing"),
        ],
    )
    .await;
    wadash::templates::sync_and_alert(&app.pool, &c, &channels)
        .await
        .unwrap();
    let blocked = open("template_blocked").await;
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].0, A);
    assert!(
        blocked[0].2.contains("order_update")
            && blocked[0].2.contains("paused")
            && blocked[0].2.contains(&format!("broadcast #{broadcast}")),
        "{}",
        blocked[0].2
    );
    let moved = open("template_category").await;
    assert_eq!(moved.len(), 1);
    assert!(
        moved[0].2.contains("from utility to marketing"),
        "{}",
        moved[0].2
    );

    // Approved again: the blocked alert resolves.
    catalogue(
        &server,
        vec![
            template(A, "order_update", "approved", "utility"),
            template(B, "spring_sale", "approved", "marketing"),
        ],
    )
    .await;
    wadash::templates::sync_and_alert(&app.pool, &c, &channels)
        .await
        .unwrap();
    assert!(open("template_blocked").await.is_empty());

    // Three failed syncs in a row raise template_sync; a good one resolves it.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    for n in 1..=3 {
        assert!(
            wadash::templates::sync_and_alert(&app.pool, &c, &channels)
                .await
                .is_err()
        );
        assert_eq!(
            open("template_sync").await.len(),
            usize::from(n == 3),
            "after {n}"
        );
    }
    catalogue(
        &server,
        vec![template(A, "order_update", "approved", "utility")],
    )
    .await;
    wadash::templates::sync_and_alert(&app.pool, &c, &channels)
        .await
        .unwrap();
    assert!(open("template_sync").await.is_empty());
    assert_eq!(open("template_deleted").await.len(), 1, "B is gone");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_cli_syncs_from_twilio_and_lists_what_it_found(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    catalogue(
        &server,
        vec![
            template(A, "order_update", "approved", "utility"),
            template(B, "spring_sale", "rejected", "marketing"),
        ],
    )
    .await;
    let run = |args: &[&str], live: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wadash"));
        cmd.args(args)
            .env("DATABASE_URL", crate::helpers::database_url(&opts, None))
            .env_remove("WADASH_CONFIG")
            .env_remove("TWILIO_ACCOUNT_SID")
            .env_remove("TWILIO_AUTH_TOKEN")
            .env("RUST_LOG", "warn");
        if live {
            cmd.env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
                .env("TWILIO_AUTH_TOKEN", "tok")
                .env("TWILIO_CONTENT_BASE", server.uri());
        }
        cmd.output().expect("run wadash")
    };
    let out = run(&["templates", "sync"], false);
    assert!(!out.status.success(), "no credentials: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Twilio credentials"));

    let out = run(&["templates", "sync"], true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains(&format!("{B}  status (new) → rejected")),
        "{printed}"
    );

    let out = run(&["templates", "list", "--status", "Approved"], false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains(A) && listed.contains("order_update") && listed.contains("utility"),
        "{listed}"
    );
    assert!(!listed.contains(B), "{listed}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 template(s); last synced from Twilio: 20")
    );
}

#[sqlx::test(migrations = false)]
async fn admins_create_submit_and_delete_templates_and_bad_definitions_never_reach_twilio(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_template_review_ms".into(), "3600000".into());
    })
    .await;
    let admin = app.api_token(wadash::domain::Role::Admin).await;
    let operator = app.api_token(wadash::domain::Role::Operator).await;
    let call = |method: reqwest::Method, path: String, token: &str, body: Option<Value>| {
        let mut req = app
            .client
            .request(method, format!("{}/api/v1{path}", app.address))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let content = app.twilio.content(app.twilio.base()).unwrap();
    let at_twilio = || async { content.list_with_approvals().await.unwrap().len() };
    assert_eq!(at_twilio().await, 3, "the simulator's samples");

    let good = json!({"name": "delivery_slot", "language": "en", "type": "twilio/quick-reply",
        "body": "Your parcel {{1}} comes tomorrow. Which slot suits you?",
        "variables": {"1": "A-1042"},
        "actions": [{"title": "Morning", "id": "am"}, {"title": "Afternoon", "id": "pm"}]});
    let (status, _) = call(
        reqwest::Method::POST,
        "/templates".into(),
        &operator,
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, 403, "operators use templates; admins create them");

    for (bad, field) in [
        (json!({"body": "Your parcel {{2}} comes"}), "body"),
        (json!({"variables": {}}), "variables.1"),
        (json!({"type": "twilio/pigeon"}), "type"),
        (
            json!({"actions": [{"title": "A title far too long for a button"}]}),
            "actions[0].title",
        ),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut def = good.clone();
        for (k, v) in bad.as_object().unwrap() {
            def[k] = v.clone();
        }
        let (status, err) = call(
            reqwest::Method::POST,
            "/templates".into(),
            &admin,
            Some(def),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {err}");
        assert_eq!(err["error"]["code"], "invalid_template");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{bad}: {err}"
        );
    }
    assert_eq!(at_twilio().await, 3, "nothing was created at Twilio");

    let (status, created) = call(
        reqwest::Method::POST,
        "/templates".into(),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert_eq!(created["whatsapp"]["status"], "unsubmitted");
    assert_eq!(at_twilio().await, 4);
    // The same name in the same language again: Twilio (v2's search) says it is taken.
    let (status, err) = call(
        reqwest::Method::POST,
        "/templates".into(),
        &admin,
        Some(good),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("template_exists")),
        "{err}"
    );
    assert!(
        err["error"]["message"].as_str().unwrap().contains(&sid),
        "{err}"
    );
    assert_eq!(at_twilio().await, 4, "the duplicate never reached Twilio");
    let (_, listed) = call(
        reqwest::Method::GET,
        "/templates?q=delivery".into(),
        &operator,
        None,
    )
    .await;
    assert_eq!(
        listed["items"][0]["sid"],
        sid.as_str(),
        "listed at once, before any sync"
    );

    let submit = |body: Value| {
        call(
            reqwest::Method::POST,
            format!("/templates/{sid}/submit"),
            &admin,
            Some(body),
        )
    };
    let (status, err) = submit(json!({"name": "Delivery Slot", "category": "utility"})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("invalid_template")),
        "{err}"
    );
    let (status, err) = submit(json!({"category": "gossip"})).await;
    assert_eq!(status, 422, "{err}");
    let (status, ok) = submit(json!({"category": "utility"})).await;
    assert_eq!(
        (status, ok["status"].as_str()),
        (202, Some("received")),
        "{ok}"
    );

    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("/templates/{sid}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(at_twilio().await, 3);
    let (_, detail) = call(
        reqwest::Method::GET,
        format!("/templates/{sid}"),
        &operator,
        None,
    )
    .await;
    assert!(detail["deleted_at"].is_string(), "{detail}");
    let history: Vec<(String, String)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["field"].as_str().unwrap().to_owned(),
                h["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let h = |f: &str, t: &str| (f.to_owned(), t.to_owned());
    assert_eq!(
        history,
        [
            h("status", "unsubmitted"),
            h("status", "received"),
            h("category", "utility"),
            h("presence", "deleted")
        ]
    );
    let (status, _) = call(
        reqwest::Method::DELETE,
        "/templates/HX000000000000000000000000000000ff".into(),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_composing_forms_offer_the_catalogue_and_a_broadcast_is_estimated_in_whatsapps_category(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    wadash::templates::sync(&app.pool, &app.twilio.content(app.twilio.base()).unwrap())
        .await
        .unwrap();
    let mut browser = app.admin_browser().await;
    // A conversation offers templates once the window has closed.
    let inbound = crate::helpers::params(&[
        ("MessageSid", "SM0000000000000000000000000000e901"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900009003"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "hello"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &inbound).await.status(), 200);
    let (_, _, open) = browser.get("/conversations/+919900009003").await;
    assert!(
        !open.contains(r#"list="template-choices""#),
        "the window is open"
    );
    sqlx::query("UPDATE contacts SET last_inbound_at = now() - interval '2 days' WHERE number = '+919900009003'")
        .execute(&app.pool)
        .await
        .unwrap();
    for page in [
        "/send",
        "/broadcasts/new",
        "/reminders",
        "/conversations/+919900009003",
    ] {
        let (status, _, html) = browser.get(page).await;
        assert_eq!(status, 200, "{page}");
        assert!(html.contains(r#"list="template-choices""#), "{page}");
        assert!(
            html.contains(&format!(
                r#"<option value="{}">order_update · approved · utility · en</option>"#,
                wadash::twilio::simulator::SAMPLE_SIDS[0]
            )),
            "{page}: {html}"
        );
    }

    // The same audience costs less with a utility template than with a marketing one, even
    // when the caller declares marketing: WhatsApp's category counts.
    let op = app.api_token(wadash::domain::Role::Operator).await;
    let estimate = |sid: &str| {
        let vars = if sid == wadash::twilio::simulator::SAMPLE_SIDS[0] {
            json!({"1": "Asha", "2": "A-1", "3": "today"})
        } else {
            json!({"1": "20%"})
        };
        let body = json!({"content_sid": sid, "content_variables": vars, "template_category": "marketing", "preview": true,
            "audience": {"numbers": ["+919900009001", "+919900009002"]}});
        let req = app
            .client
            .post(format!("{}/api/v1/broadcasts", app.address))
            .bearer_auth(&op)
            .json(&body);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["estimated_cost"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .parse::<f64>()
                .unwrap()
        }
    };
    let utility = estimate(wadash::twilio::simulator::SAMPLE_SIDS[0]).await;
    let marketing = estimate(wadash::twilio::simulator::SAMPLE_SIDS[2]).await;
    assert!(
        utility < marketing,
        "utility {utility} < marketing {marketing}"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_whose_variables_do_not_fill_a_catalogued_template_is_refused_before_it_is_queued(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    wadash::templates::sync(&app.pool, &app.twilio.content(app.twilio.base()).unwrap())
        .await
        .unwrap();
    let op = app.api_token(wadash::domain::Role::Operator).await;
    let order_update = wadash::twilio::simulator::SAMPLE_SIDS[0];
    let post = |body: Value| {
        let req = app
            .client
            .post(format!("{}/api/v1/broadcasts", app.address))
            .bearer_auth(&op)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, err) = post(
        json!({"content_sid": order_update, "content_variables": {"1": "Asha"},
        "audience": {"numbers": ["+919900009101"]}}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a value for {{2}}, {{3}}"),
        "{err}"
    );
    let (status, err) = post(
        json!({"content_sid": order_update, "content_variables": {"1": "Asha"},
        "audience": {"csv": "number,2,3,4\n+919900009101,A-1,today,extra\n"}}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let said = err["error"]["message"].as_str().unwrap();
    assert!(
        said.contains("line 2") && said.contains("no placeholder for {{4}}"),
        "{said}"
    );
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 0);
    let (status, ok) = post(
        json!({"content_sid": order_update, "content_variables": {"1": "Asha"},
        "audience": {"csv": "number,2,3\n+919900009101,A-1,today\n"}}),
    )
    .await;
    assert_eq!(status, 201, "{ok}");
    app.stop().await;
}
