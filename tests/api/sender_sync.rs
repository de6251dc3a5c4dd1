//! The WhatsApp sender sync (issue 21) against wiremock playing Twilio's Senders API: senders
//! created in the Console are imported, Twilio's status, offline reasons, quality rating,
//! messaging limit and webhooks are kept with their history, and what an ops team must hear
//! of raises alerts naming what uses the sender; a sender that recovers resolves them.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::alerts::channels::ChannelStore;
use wadash::domain::sender_health::SenderRecord;
use wadash::onboarding::sync::{SyncContext, sync_and_alert};
use wadash::storage::{sender_registrations, sender_retire, sender_twilio, senders, sync_state};
use wadash::twilio::messaging::MessagingClient;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;

const A: &str = "XE0000000000000000000000000000000a";
const B: &str = "XE0000000000000000000000000000000b";
const PUBLIC: &str = "https://ops.example.com";

fn messaging(server: &MockServer) -> MessagingClient {
    crate::helpers::twilio_double(
        "http://127.0.0.1:9",
        "AC00000000000000000000000000000000",
        "tok",
        1,
    )
    .messaging(&server.uri())
    .unwrap()
}

fn sender(sid: &str, number: &str, status: &str, quality: &str, limit: &str, hooks: &str) -> Value {
    json!({"sid": sid, "status": status, "sender_id": format!("whatsapp:{number}"),
        "configuration": {"waba_id": "1234567", "verification_method": "sms"},
        "webhook": {"callback_url": format!("{hooks}/wa"), "status_callback_url": format!("{hooks}/sts")},
        "profile": {"name": "Owl Air"},
        "properties": {"quality_rating": quality, "messaging_limit": limit},
        "offline_reasons": if status == "OFFLINE" {
            json!([{"code": "63112", "message": "The Meta account was disabled", "more_info": "https://www.twilio.com/docs/errors/63112"}])
        } else { Value::Null }})
}

async fn twilio_lists(server: &MockServer, senders: Vec<Value>) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .and(query_param("Channel", "whatsapp"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"senders": senders, "meta": {"next_page_url": null}})),
        )
        .mount(server)
        .await;
}

#[sqlx::test(migrations = false)]
async fn console_senders_are_imported_and_their_health_is_kept_with_history_and_alerts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    let client = messaging(&server);
    let channels = ChannelStore::new(app.pool.clone(), Default::default(), None);
    let ctx = SyncContext {
        public_url: Some(PUBLIC.into()),
        mps: 80.0,
    };
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
    let admin = app.api_token(wadash::domain::Role::Admin).await;
    let listed = || async {
        let (_, body) = app.get_json("/api/v1/senders", &admin).await;
        body
    };

    // A, online with wadash's webhooks; B, still pending verification, pointing elsewhere.
    twilio_lists(
        &server,
        vec![
            sender(
                A,
                "+15550000001",
                "ONLINE",
                "HIGH",
                "1K Customers/24hr",
                PUBLIC,
            ),
            sender(
                B,
                "+15550000002",
                "PENDING_VERIFICATION",
                "UNKNOWN",
                "",
                "https://old.example",
            ),
        ],
    )
    .await;
    let first = sync_and_alert(&app.pool, &client, &channels, &ctx)
        .await
        .unwrap();
    assert_eq!(first.senders, 2);
    let body = listed().await;
    let find = |body: &Value, n: &str| {
        body.as_array()
            .or_else(|| body["items"].as_array())
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .find(|s| s["address"] == format!("whatsapp:{n}"))
            .cloned()
            .unwrap_or_else(|| panic!("{n} not in {body}"))
    };
    let a = find(&body, "+15550000001");
    assert_eq!(
        (
            a["status"].as_str(),
            a["twilio_status"].as_str(),
            a["twilio_sid"].as_str()
        ),
        (Some("active"), Some("ONLINE"), Some(A)),
        "{a}"
    );
    assert_eq!(a["quality_rating"], "HIGH");
    assert_eq!(a["webhooks_ok"], true);
    assert_eq!(
        a["label"], "Owl Air",
        "the display name labels an imported sender"
    );
    let b = find(&body, "+15550000002");
    assert_eq!(
        (b["status"].as_str(), b["webhooks_ok"].as_bool()),
        (Some("pending"), Some(false)),
        "{b}"
    );
    let hooks = open("sender_webhooks").await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].0, "whatsapp:+15550000002");

    // A broadcast waits on A; then WhatsApp takes A offline, lowers its quality and limit.
    let op = app.api_token(wadash::domain::Role::Operator).await;
    let made: Value = app
        .client
        .post(format!("{}/api/v1/broadcasts", app.address))
        .bearer_auth(&op)
        .json(
            &json!({"body": "Gate change", "sender": "whatsapp:+15550000001",
            "start_at": "2030-01-01T09:00:00Z", "audience": {"numbers": ["+919900008001"]}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let broadcast = made["id"].as_i64().unwrap_or_else(|| panic!("{made}"));
    twilio_lists(
        &server,
        vec![
            sender(
                A,
                "+15550000001",
                "OFFLINE",
                "LOW",
                "250 Customers/24hr",
                PUBLIC,
            ),
            sender(
                B,
                "+15550000002",
                "PENDING_VERIFICATION",
                "UNKNOWN",
                "",
                "https://old.example",
            ),
        ],
    )
    .await;
    sync_and_alert(&app.pool, &client, &channels, &ctx)
        .await
        .unwrap();
    let offline = open("sender_offline").await;
    assert_eq!(offline.len(), 1, "{offline:?}");
    let (subject, severity, message) = &offline[0];
    assert_eq!(
        (subject.as_str(), severity.as_str()),
        ("whatsapp:+15550000001", "critical")
    );
    assert!(
        message.contains("63112: The Meta account was disabled")
            && message.contains(&format!("broadcast #{broadcast}")),
        "{message}"
    );
    assert_eq!(open("sender_quality").await.len(), 1);
    assert_eq!(open("sender_limit").await.len(), 1);
    let a = find(&listed().await, "+15550000001");
    assert_eq!(a["twilio_status"], "OFFLINE");
    assert_eq!(a["offline_reasons"][0]["code"], "63112", "{a}");

    // Back online, webhooks of B fixed, and a sync with nothing new records nothing.
    twilio_lists(
        &server,
        vec![
            sender(
                A,
                "+15550000001",
                "ONLINE",
                "MEDIUM",
                "250 Customers/24hr",
                PUBLIC,
            ),
            sender(
                B,
                "+15550000002",
                "ONLINE",
                "HIGH",
                "1K Customers/24hr",
                PUBLIC,
            ),
        ],
    )
    .await;
    sync_and_alert(&app.pool, &client, &channels, &ctx)
        .await
        .unwrap();
    assert!(
        open("sender_offline").await.is_empty(),
        "back online resolves it"
    );
    assert!(
        open("sender_quality").await.is_empty(),
        "quality back up resolves it"
    );
    assert!(open("sender_webhooks").await.is_empty());
    let b = find(&listed().await, "+15550000002");
    assert_eq!(
        b["status"], "active",
        "a pending sender that comes online is active"
    );
    let again = sync_and_alert(&app.pool, &client, &channels, &ctx)
        .await
        .unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);

    // The history of A, oldest first.
    let history: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.field, c.new_value FROM sender_changes c JOIN senders s ON s.id = c.sender_id
          WHERE s.address = 'whatsapp:+15550000001' ORDER BY c.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let h = |f: &str, t: &str| (f.to_owned(), Some(t.to_owned()));
    assert_eq!(
        history,
        [
            h("status", "ONLINE"),
            h("status", "OFFLINE"),
            h("quality_rating", "LOW"),
            h("messaging_limit", "250 Customers/24hr"),
            h("status", "ONLINE"),
            h("quality_rating", "MEDIUM"),
        ]
    );

    // Removed at Twilio: marked gone, alerted, kept with its history.
    twilio_lists(
        &server,
        vec![sender(
            B,
            "+15550000002",
            "ONLINE",
            "HIGH",
            "1K Customers/24hr",
            PUBLIC,
        )],
    )
    .await;
    sync_and_alert(&app.pool, &client, &channels, &ctx)
        .await
        .unwrap();
    let gone = open("sender_gone").await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    let a = find(&listed().await, "+15550000001");
    assert!(a["twilio_gone_at"].is_string(), "{a}");
    app.stop().await;
}

fn listed(sid: &str, number: &str, service: Option<&str>) -> SenderRecord {
    SenderRecord {
        twilio_sid: sid.into(),
        address: format!("whatsapp:{number}"),
        status: "ONLINE".into(),
        offline_reasons: vec![],
        quality_rating: Some("HIGH".into()),
        messaging_limit: Some("TIER_1K".into()),
        callback_url: None,
        status_callback_url: None,
        waba_id: None,
        display_name: Some("Owl Air".into()),
        profile: json!({}),
        messaging_service_sid: service.map(Into::into),
    }
}

/// A sync whose list Twilio answered before wadash retired a sender or moved it into a
/// Messaging Service leaves those senders as wadash left them (it used to bring the retired
/// sender back and take the service away); the next sync writes Twilio's state as usual.
#[sqlx::test(migrations = false)]
async fn a_sync_that_read_twilio_before_a_retire_or_a_service_move_does_not_undo_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let pool = &app.pool;
    let apply = |fresh: Vec<SenderRecord>, mark| async move {
        sender_twilio::apply(pool, &fresh, None, 80.0, true, mark)
            .await
            .unwrap()
    };
    let state = |number: &'static str| async move {
        sqlx::query_as::<_, (i64, String, bool, Option<String>)>(
            "SELECT id, status, twilio_gone_at IS NOT NULL, messaging_service_sid
               FROM senders WHERE address = $1",
        )
        .bind(format!("whatsapp:{number}"))
        .fetch_one(pool)
        .await
        .unwrap()
    };
    let before_both = vec![
        listed(A, "+15550001001", None),
        listed(B, "+15550001002", None),
    ];
    apply(before_both.clone(), sync_state::mark(pool).await.unwrap()).await;
    let (a, ..) = state("+15550001001").await;
    let (b, ..) = state("+15550001002").await;

    // A sync begins and reads Twilio; then wadash moves A into a service and retires B.
    let read_before = sync_state::mark(pool).await.unwrap();
    const SERVICE: &str = "MG00000000000000000000000000000001";
    senders::set_messaging_service(pool, a, Some(SERVICE))
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sender_retire::mark_deauthorized(&mut conn, b)
        .await
        .unwrap();
    drop(conn);
    let history = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sender_changes")
            .fetch_one(pool)
            .await
            .unwrap()
    };

    // And a number registered with the wizard meanwhile: Twilio accepted it after the read,
    // so the list does not have it; it is not marked gone.
    let reg = sender_registrations::insert(
        pool,
        &sender_registrations::NewRegistration {
            number: "+15550001003",
            waba_id: "1234567",
            verification_method: "sms",
            profile: None,
            created_by: "ada",
        },
        true,
    )
    .await
    .unwrap();
    let c = sender_registrations::submitted(
        pool,
        reg,
        &sender_registrations::Accepted {
            address: "whatsapp:+15550001003",
            label: "Owl Air 3",
            mps: 80.0,
            twilio_sid: "XE0000000000000000000000000000000c",
            twilio_status: "CREATING",
            waba_id: "1234567",
            callback_url: "https://ops.example.com/wa",
            status_callback_url: "https://ops.example.com/sts",
            profile: json!({}),
        },
    )
    .await
    .unwrap();
    let recorded = history().await;
    let as_wadash_left_them = async || {
        assert_eq!(
            state("+15550001001").await,
            (a, "active".into(), false, Some(SERVICE.into()))
        );
        assert_eq!(
            state("+15550001002").await,
            (b, "disabled".into(), true, None)
        );
    };

    let changes = apply(before_both.clone(), read_before).await;
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(
        state("+15550001003").await,
        (c, "pending".into(), false, None)
    );
    as_wadash_left_them().await;
    assert_eq!(history().await, recorded);

    // The next sync read Twilio after all three: A's service as Twilio has it, B no longer
    // listed, and (to show the guard covered only that one sync) the registered number not
    // listed either: now it is marked gone.
    let changes = apply(
        vec![listed(A, "+15550001001", Some(SERVICE))],
        sync_state::mark(pool).await.unwrap(),
    )
    .await;
    let seen: Vec<_> = changes
        .iter()
        .map(|(id, c)| (*id, c.field.as_str(), c.to.as_deref()))
        .collect();
    assert_eq!(seen, [(c, "presence", Some("gone"))]);
    assert!(state("+15550001003").await.2);
    as_wadash_left_them().await;

    // A later list without A's service is Twilio's word: written.
    apply(
        vec![listed(A, "+15550001001", None)],
        sync_state::mark(pool).await.unwrap(),
    )
    .await;
    assert_eq!(state("+15550001001").await.3, None);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_sender_list_that_cannot_be_read_alerts_after_three_failures_and_changes_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let client = messaging(&server);
    let channels = ChannelStore::new(app.pool.clone(), Default::default(), None);
    let ctx = SyncContext {
        public_url: Some(PUBLIC.into()),
        mps: 80.0,
    };
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM senders")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for attempt in 1..=3 {
        assert!(
            sync_and_alert(&app.pool, &client, &channels, &ctx)
                .await
                .is_err()
        );
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM alerts WHERE kind = 'sender_sync' AND state <> 'resolved'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(open, i64::from(attempt == 3), "after {attempt} failures");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM senders")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn in_simulator_mode_a_registered_sender_is_verified_with_its_code_and_comes_online(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sender_step_ms".into(), "200".into());
    })
    .await;
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    let created = client
        .create_sender(&wadash::twilio::messaging::NewSender {
            sender_id: "whatsapp:+15550000009".into(),
            configuration: Default::default(),
            webhook: Default::default(),
            profile: wadash::twilio::messaging::Profile {
                name: "Owl Air".into(),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    assert_eq!(created.status, "CREATING");
    let code = wadash::twilio::simulator::verification_code(&created.sid);
    let verify = |code: String| {
        let client = client.clone();
        let sid = created.sid.clone();
        async move {
            client
                .update_sender(
                    &sid,
                    &wadash::twilio::messaging::SenderUpdate {
                        configuration: Some(wadash::twilio::messaging::SenderConfiguration {
                            verification_code: Some(code),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )
                .await
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client.fetch_sender(&created.sid).await.unwrap().status != "PENDING_VERIFICATION" {
        assert!(
            std::time::Instant::now() < deadline,
            "never asked for a code"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert!(
        verify(wrong.into()).await.is_err(),
        "a wrong code is refused"
    );
    assert_eq!(verify(code).await.unwrap().status, "VERIFYING");
    while client.fetch_sender(&created.sid).await.unwrap().status != "ONLINE" {
        assert!(std::time::Instant::now() < deadline, "never came online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channels = ChannelStore::new(app.pool.clone(), Default::default(), None);
    let synced = sync_and_alert(
        &app.pool,
        &client,
        &channels,
        &SyncContext {
            public_url: Some(app.address.clone()),
            mps: 80.0,
        },
    )
    .await
    .unwrap();
    assert_eq!(synced.senders, 1);
    let status: String =
        sqlx::query_scalar("SELECT status FROM senders WHERE address = 'whatsapp:+15550000009'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "active");
    app.stop().await;
}
