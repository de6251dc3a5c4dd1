//! Messaging Services (issue 21) through the API in simulator mode: the account's services
//! with their WhatsApp senders read from Twilio's (the simulator's) Messaging API, and admins
//! putting a sender Twilio lists into a service and taking it out.

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::alerts::channels::ChannelStore;
use wadash::domain::Role;
use wadash::onboarding::sync::{SyncContext, sync_and_alert};
use wadash::twilio::simulator::SAMPLE_SERVICE;

use crate::helpers::{TestApp, call};

#[sqlx::test(migrations = false)]
async fn admins_put_a_twilio_sender_into_a_messaging_service_and_take_it_out(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let viewer = app.api_token(Role::Viewer).await;
    let operator = app.api_token(Role::Operator).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, body) = call(&app, "GET", "/messaging-services", &viewer, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["sid"], SAMPLE_SERVICE, "{body}");
    assert_eq!(body["items"][0]["senders"], json!([]));

    // A number registered at the (simulated) Twilio, then synced into wadash.
    let messaging = app.twilio.messaging(app.twilio.base()).unwrap();
    messaging
        .create_sender(&wadash::twilio::messaging::NewSender {
            sender_id: "whatsapp:+15550000031".into(),
            configuration: Default::default(),
            webhook: Default::default(),
            profile: wadash::twilio::messaging::Profile {
                name: "Owl Air".into(),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    sync_and_alert(
        &app.pool,
        &messaging,
        &ChannelStore::new(app.pool.clone(), Default::default(), None),
        &SyncContext {
            public_url: Some(app.address.clone()),
            mps: 80.0,
        },
    )
    .await
    .unwrap();
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM senders WHERE address = 'whatsapp:+15550000031'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let sandbox: i64 = sqlx::query_scalar("SELECT id FROM senders WHERE kind = 'sandbox'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let path = format!("/messaging-services/{SAMPLE_SERVICE}/senders");
    let attach = |token: String, sender: i64| {
        let path = path.clone();
        let app = &app;
        async move {
            call(
                app,
                "POST",
                &path,
                &token,
                Some(json!({"sender_id": sender})),
            )
            .await
        }
    };
    assert_eq!(attach(operator.clone(), id).await.0, 403, "admins only");
    let (status, err) = attach(admin.clone(), sandbox).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("sender_not_at_twilio")),
        "the sandbox is not a sender Twilio lists: {err}"
    );
    assert_eq!(attach(admin.clone(), 999_999).await.0, 404);
    let (status, _) = call(
        &app,
        "POST",
        "/messaging-services/MGnot-a-sid/senders",
        &admin,
        Some(json!({"sender_id": id})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, added) = attach(admin.clone(), id).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["address"], "whatsapp:+15550000031");
    let (_, body) = call(&app, "GET", "/messaging-services", &viewer, None).await;
    assert_eq!(
        body["items"][0]["senders"],
        json!([{"sid": added["sid"], "address": "whatsapp:+15550000031", "sender_id": id}]),
        "{body}"
    );
    let service_of = || async {
        let (_, sender) = call(&app, "GET", &format!("/senders/{id}"), &viewer, None).await;
        sender["messaging_service_sid"].clone()
    };
    assert_eq!(
        service_of().await,
        json!(SAMPLE_SERVICE),
        "the sender says its service"
    );
    // The sync reads it back from Twilio's services (and keeps it).
    sync_and_alert(
        &app.pool,
        &messaging,
        &ChannelStore::new(app.pool.clone(), Default::default(), None),
        &SyncContext {
            public_url: Some(app.address.clone()),
            mps: 80.0,
        },
    )
    .await
    .unwrap();
    assert_eq!(service_of().await, json!(SAMPLE_SERVICE));
    let (status, err) = attach(admin.clone(), id).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (502, Some("twilio_error")),
        "Twilio's refusal of a second attach, in its words: {err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{err}"
    );

    let (status, _) = call(&app, "DELETE", &format!("{path}/{id}"), &operator, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, "DELETE", &format!("{path}/{id}"), &admin, None).await;
    assert_eq!(status, 204);
    assert_eq!(service_of().await, serde_json::Value::Null);
    let (_, body) = call(&app, "GET", "/messaging-services", &viewer, None).await;
    assert_eq!(body["items"][0]["senders"], json!([]));

    // The same through the admin page: the service, the sender offered, put in, taken out.
    let mut op_page = app.browser_as("op", Role::Operator).await;
    assert_eq!(op_page.get("/admin/messaging-services").await.0, 403);
    let mut admin_page = app.admin_browser().await;
    let (status, _, html) = admin_page.get("/admin/messaging-services").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Simulated notifications") && html.contains(SAMPLE_SERVICE),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<option value=\"{id}\">whatsapp:+15550000031</option>"
        )),
        "the Twilio sender is offered, the sandbox is not: {html}"
    );
    let token = admin_page.csrf().await;
    let id_text = id.to_string();
    let form = [("csrf", token.as_str()), ("sender_id", id_text.as_str())];
    let attach_url = format!("/admin/messaging-services/{SAMPLE_SERVICE}/attach");
    let (status, location, _) = admin_page.post(&attach_url, &form).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/messaging-services?done=attached"))
    );
    let (_, _, html) = admin_page
        .get("/admin/messaging-services?done=attached")
        .await;
    assert!(html.contains("Take out"), "{html}");
    let (status, _, html) = admin_page.post(&attach_url, &form).await;
    assert_eq!(status, 502, "Twilio's refusal shown on the page");
    assert!(html.contains("already"), "{html}");
    let (status, _, _) = admin_page
        .post(
            &format!("/admin/messaging-services/{SAMPLE_SERVICE}/detach"),
            &form,
        )
        .await;
    assert_eq!(status, 303);
    let (_, body) = call(&app, "GET", "/messaging-services", &viewer, None).await;
    assert_eq!(body["items"][0]["senders"], json!([]));
    app.stop().await;
}
