//! Retiring a WhatsApp sender (issue 21 item 4) in simulator mode: de-authorizing lists what
//! uses it, removes it at (the simulated) Twilio, disables it and holds its work (a broadcast
//! held with the reason that no sync clears, a reminder run held likewise); "change number"
//! moves scheduled work, a reply rule and the default flag to another sender, releases
//! broadcasts held for the old one (the held reminder goes out from the new sender), and names the contacts with an open 24-hour window on it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wadash::twilio::messaging::{
    MessagingClient, NewSender, Profile, SenderConfiguration, SenderUpdate,
};

use crate::helpers::{TestApp, call};

async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn spawn(opts: PgConnectOptions) -> TestApp {
    TestApp::spawn_with(opts, |v| {
        v.insert("sim_sender_step_ms".into(), "50".into());
    })
    .await
}

/// Registers `number` at the simulator and verifies it until it is online; its SID.
async fn online_sender(client: &MessagingClient, number: &str) -> String {
    let sid = client
        .create_sender(&NewSender {
            sender_id: number.into(),
            configuration: Default::default(),
            webhook: Default::default(),
            profile: Profile {
                name: "Owl Air".into(),
                ..Default::default()
            },
        })
        .await
        .unwrap()
        .sid;
    let status = || async { client.fetch_sender(&sid).await.unwrap().status };
    eventually("the code asked for", 30, || async {
        (status().await == "PENDING_VERIFICATION").then_some(())
    })
    .await;
    client
        .update_sender(
            &sid,
            &SenderUpdate {
                configuration: Some(SenderConfiguration {
                    verification_code: Some(wadash::twilio::simulator::verification_code(&sid)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually("online at the simulator", 30, || async {
        (status().await == "ONLINE").then_some(())
    })
    .await;
    sid
}

async fn sync(app: &TestApp, admin: &str) {
    let (status, body) = call(app, "POST", "/senders/sync", admin, None).await;
    assert_eq!(status, 202, "{body}");
}

async fn id_of(app: &TestApp, address: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM senders WHERE address = $1")
        .bind(address)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn scheduled_broadcast(app: &TestApp, op: &str, sender: &str) -> i64 {
    let (status, b) = call(
        app,
        "POST",
        "/broadcasts",
        op,
        Some(json!({"body": "Gate change", "sender": sender,
            "start_at": "2030-01-01T09:00:00Z",
            "audience": {"numbers": ["+919900009101", "+919900009102"]}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    b["id"].as_i64().unwrap()
}

async fn reminder(app: &TestApp, sender: &str, due: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO reminders (to_number, body, sender, first_at, recurrence, timezone, status, next_at) \
         VALUES ('+919900009103', 'check-in', $1, $2::timestamptz, 'once', 'UTC', 'active', $2::timestamptz) \
         RETURNING id",
    )
    .bind(sender)
    .bind(due)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn rule(app: &TestApp, sender: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO reply_rules (position, name, kind, pattern, sender, reply_body) \
         VALUES (1, 'hours', 'keyword', 'hours', $1, 'We are open 9-5') RETURNING id",
    )
    .bind(sender)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// A signed inbound message from `from` to sender `to`, as Twilio posts it to `/wa`.
async fn inbound_to(app: &TestApp, sid: &str, from: &str, to: &str) {
    let mut p = crate::helpers::inbound(app.twilio.account_sid(), sid, from, &[("Body", "hello")]);
    for (k, v) in &mut p {
        if k == "To" {
            *v = to.to_owned();
        }
    }
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);
}

async fn broadcast_state(app: &TestApp, id: i64) -> (String, String, Option<String>) {
    sqlx::query_as("SELECT status, sender, paused_reason FROM broadcasts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn de_authorizing_lists_its_users_removes_it_at_twilio_and_holds_its_work(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts).await;
    let a = "whatsapp:+15550000041";
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    let sid = online_sender(&client, a).await;
    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    sync(&app, &admin).await;
    let id = id_of(&app, a).await;
    let broadcast = scheduled_broadcast(&app, &op, a).await;
    let later = reminder(&app, a, "2030-01-01T09:00:00Z").await;
    let rule = rule(&app, a).await;
    inbound_to(
        &app,
        "SM00000000000000000000000000004101",
        "+919900009201",
        a,
    )
    .await;
    let path = format!("/senders/{id}/deauthorize");

    // Without confirmation: what uses it, and nothing changed.
    let (status, body) = call(&app, "POST", &path, &admin, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "confirmation_required", "{body}");
    let uses = &body["uses"];
    assert_eq!(uses["broadcasts"], json!([broadcast]), "{body}");
    assert_eq!(uses["reminders"], json!([later]), "{body}");
    assert_eq!(uses["rules"], json!([rule]), "{body}");
    assert_eq!(uses["is_default"], false);
    assert_eq!(uses["contacts"], 1, "one contact wrote to it: {body}");
    assert_eq!(uses["at_twilio"], true);
    let (status, _) = call(&app, "POST", &path, &op, Some(json!({"confirm": true}))).await;
    assert_eq!(status, 403, "admins only");
    let (status, _) = call(
        &app,
        "POST",
        "/senders/999999/deauthorize",
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(status, 404);
    // The default sender (the sandbox here) cannot be de-authorized.
    let sandbox: (i64, String) = sqlx::query_as("SELECT id, address FROM senders WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, body) = call(
        &app,
        "POST",
        &format!("/senders/{}/deauthorize", sandbox.0),
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("default_sender")),
        "{body}"
    );
    assert_eq!(broadcast_state(&app, broadcast).await.0, "scheduled");

    let (status, done) = call(&app, "POST", &path, &admin, Some(json!({"confirm": true}))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["deleted_at_twilio"], true, "{done}");
    assert_eq!(done["held_broadcasts"], json!([broadcast]), "{done}");
    assert_eq!(done["skipping_reminders"], json!([later]), "{done}");
    assert_eq!(done["rules"], json!([rule]), "{done}");
    // Gone at the simulator; disabled here with its history; its number free to register.
    match client.fetch_sender(&sid).await {
        Err(wadash::twilio::client::TwilioError::Api { status: 404, .. }) => {}
        other => panic!("expected 404 at the simulator, got {other:?}"),
    }
    let (status, gone): (String, bool) =
        sqlx::query_as("SELECT status, twilio_gone_at IS NOT NULL FROM senders WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), gone), ("disabled", true));
    let (status, _, reason) = broadcast_state(&app, broadcast).await;
    assert_eq!(status, "held");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains(&format!("{a} was de-authorized")),
        "{reason}"
    );
    let (status, body) = call(&app, "POST", &path, &admin, Some(json!({"confirm": true}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sender_disabled")),
        "{body}"
    );

    // Its turn comes and a sync runs: still held (a disabled sender never clears a hold).
    sqlx::query("UPDATE broadcasts SET start_at = now() WHERE id = $1")
        .bind(broadcast)
        .execute(&app.pool)
        .await
        .unwrap();
    sync(&app, &admin).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        broadcast_state(&app, broadcast).await.0,
        "held",
        "not resumed by a sync"
    );

    // A reminder due on it waits held with the reason, never dropped.
    let due = reminder(&app, a, "now").await;
    let run = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
            "SELECT outcome, note, broadcast_id FROM reminder_runs WHERE reminder_id = $1",
        )
        .bind(due)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    let (outcome, note, reminded) = eventually("the reminder run recorded", 30, run).await;
    let note = note.unwrap_or_default();
    assert_eq!(outcome, "held", "{note}");
    assert!(
        note.contains(&format!("the sender {a} was de-authorized"))
            && note.contains("at most 60 min past its time"),
        "{note}"
    );
    let reminded = reminded.expect("the occurrence's broadcast");
    assert_eq!(broadcast_state(&app, reminded).await.0, "held");

    // "Change number" onto the sandbox releases the held broadcast there.
    let (status, moved) = call(
        &app,
        "POST",
        &format!("/senders/{id}/replace"),
        &admin,
        Some(json!({"with": sandbox.0})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert!(
        moved["moved"]["broadcasts"]
            .as_array()
            .unwrap()
            .contains(&json!(broadcast)),
        "{moved}"
    );
    let mut released = vec![broadcast, reminded];
    released.sort();
    assert_eq!(moved["moved"]["released"], json!(released), "{moved}");
    let (status, sender, reason) = broadcast_state(&app, broadcast).await;
    assert_ne!(status, "held");
    assert_eq!((sender, reason), (sandbox.1.clone(), None));
    // The held reminder goes out from the new sender, and its run is settled as sent.
    let (outcome, note, _) = eventually("the reminder run settled", 30, || async {
        run().await.filter(|(o, _, _)| o != "held")
    })
    .await;
    assert_eq!(outcome, "sent", "{note:?}");
    assert!(note.unwrap_or_default().starts_with("sent late"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn change_number_moves_scheduled_work_rules_and_the_default_and_names_open_windows(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts).await;
    let (a, b) = ("whatsapp:+15550000051", "whatsapp:+15550000052");
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    online_sender(&client, a).await;
    online_sender(&client, b).await;
    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    sync(&app, &admin).await;
    let (a_id, b_id) = (id_of(&app, a).await, id_of(&app, b).await);
    sqlx::query("UPDATE senders SET is_default = false WHERE is_default")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE senders SET is_default = true WHERE id = $1")
        .bind(a_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let broadcast = scheduled_broadcast(&app, &op, a).await;
    let later = reminder(&app, a, "2030-01-01T09:00:00Z").await;
    let rule = rule(&app, a).await;
    inbound_to(
        &app,
        "SM00000000000000000000000000005101",
        "+919900009301",
        a,
    )
    .await;
    // A contact who wrote to the other number has no open window on this one.
    inbound_to(
        &app,
        "SM00000000000000000000000000005102",
        "+919900009302",
        b,
    )
    .await;
    let disabled: i64 = sqlx::query_scalar(
        "INSERT INTO senders (address, kind, label, status, mps) \
         VALUES ('whatsapp:+15550000053', 'number', 'old', 'disabled', 10) RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let path = format!("/senders/{a_id}/replace");
    let replace = |token: String, body: Value| {
        let (app, path) = (&app, path.clone());
        async move { call(app, "POST", &path, &token, Some(body)).await }
    };
    // The default cannot be de-authorized yet.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/senders/{a_id}/deauthorize"),
        &admin,
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("default_sender")),
        "{body}"
    );
    // Refusals: role, same sender, unknown, not usable, missing.
    assert_eq!(replace(op.clone(), json!({"with": b_id})).await.0, 403);
    let (status, body) = replace(admin.clone(), json!({"with": a_id})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("same_sender")),
        "{body}"
    );
    let (status, _) = replace(admin.clone(), json!({"with": 999_999})).await;
    assert_eq!(status, 404);
    let (status, _) = replace(admin.clone(), json!({"with": "whatsapp:+15559999999"})).await;
    assert_eq!(status, 404);
    let (status, body) = replace(admin.clone(), json!({"with": disabled})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("replacement_not_usable")),
        "{body}"
    );
    let (status, _) = replace(admin.clone(), json!({})).await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &app,
        "POST",
        "/senders/999999/replace",
        &admin,
        Some(json!({"with": b_id})),
    )
    .await;
    assert_eq!(status, 404);
    let unchanged: String = sqlx::query_scalar("SELECT sender FROM broadcasts WHERE id = $1")
        .bind(broadcast)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(unchanged, a, "a refusal moves nothing");

    // By its bare number, as well as by id or full address.
    let (status, done) = replace(admin.clone(), json!({"with": "+15550000052"})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["moved"],
        json!({"broadcasts": [broadcast], "released": [], "reminders": [later], "rules": 1, "default": true}),
        "{done}"
    );
    assert_eq!(
        done["open_windows"],
        json!(["whatsapp:+919900009301"]),
        "{done}"
    );
    assert_eq!(
        (done["from"].as_str(), done["to"].as_str()),
        (Some(a), Some(b))
    );

    let (status, sender, _) = broadcast_state(&app, broadcast).await;
    assert_eq!((status.as_str(), sender.as_str()), ("scheduled", b));
    let on: (String, Option<String>) = sqlx::query_as(
        "SELECT (SELECT sender FROM reminders WHERE id = $1), (SELECT sender FROM reply_rules WHERE id = $2)",
    )
    .bind(later)
    .bind(rule)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(on, (b.to_owned(), Some(b.to_owned())));
    let mut senders = Vec::new();
    for id in [a_id, b_id] {
        let row: (String, bool) =
            sqlx::query_as("SELECT status, is_default FROM senders WHERE id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        senders.push(row);
    }
    assert_eq!(
        senders,
        vec![("active".to_owned(), false), ("active".to_owned(), true)],
        "A stays as it was, but for the default flag"
    );
    // Nothing is left on A: de-authorizing it now holds nothing.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/senders/{a_id}/deauthorize"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        (
            &body["uses"]["broadcasts"],
            &body["uses"]["reminders"],
            &body["uses"]["rules"]
        ),
        (&json!([]), &json!([]), &json!([])),
        "{body}"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_pages_confirm_with_what_uses_the_sender_and_show_what_was_held_and_moved(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts).await;
    let (a, b) = ("whatsapp:+15550000061", "whatsapp:+15550000062");
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    let sid = online_sender(&client, a).await;
    online_sender(&client, b).await;
    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    sync(&app, &admin).await;
    let (a_id, b_id) = (id_of(&app, a).await, id_of(&app, b).await);
    let broadcast = scheduled_broadcast(&app, &op, a).await;
    inbound_to(
        &app,
        "SM00000000000000000000000000006101",
        "+919900009401",
        a,
    )
    .await;

    let mut op_page = app.browser_as("op", Role::Operator).await;
    assert_eq!(
        op_page
            .get(&format!("/admin/senders/{a_id}/deauthorize"))
            .await
            .0,
        403
    );
    let mut page = app.admin_browser().await;
    let (status, _, html) = page.get(&format!("/admin/senders/{a_id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("href=\"/admin/senders/{a_id}/deauthorize\"")),
        "{html}"
    );
    let (status, _, html) = page
        .get(&format!("/admin/senders/{a_id}/deauthorize"))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(
            "<a href=\"/broadcasts/{broadcast}\">#{broadcast}</a>"
        )) && html.contains("in the last 90 days: 1")
            && html.contains("removed at Twilio"),
        "{html}"
    );
    // A form without its token changes nothing.
    let (status, _, _) = page
        .post(
            &format!("/admin/senders/{a_id}/deauthorize"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(broadcast_state(&app, broadcast).await.0, "scheduled");
    let csrf = page.csrf().await;
    let (status, _, html) = page
        .post(
            &format!("/admin/senders/{a_id}/deauthorize"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("{a} was de-authorized and removed at Twilio"))
            && html.contains(&format!(
                "Held broadcasts: <a href=\"/broadcasts/{broadcast}\">#{broadcast}</a>"
            )),
        "{html}"
    );
    assert!(
        client.fetch_sender(&sid).await.is_err(),
        "removed at the simulator"
    );

    // Change number: B is offered, the held broadcast goes to B, the open window is named.
    let (status, _, html) = page.get(&format!("/admin/senders/{a_id}/replace")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<option value=\"{b_id}\">{b}</option>")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("<option value=\"{a_id}\">")),
        "not itself: {html}"
    );
    let (status, _, html) = page
        .post(
            &format!("/admin/senders/{a_id}/replace"),
            &[("csrf", &csrf), ("with", &a_id.to_string())],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("cannot replace itself"), "{html}");
    let (status, _, html) = page
        .post(
            &format!("/admin/senders/{a_id}/replace"),
            &[("csrf", &csrf), ("with", &b_id.to_string())],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("The work of {a} moved to {b}"))
            && html.contains(&format!("released from their hold: #{broadcast}"))
            && html.contains("<li>whatsapp:+919900009401</li>"),
        "{html}"
    );
    let (status, sender, _) = broadcast_state(&app, broadcast).await;
    assert_eq!((status.as_str(), sender.as_str()), ("scheduled", b));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn twilio_failing_changes_nothing_and_a_404_there_counts_as_removed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SID: &str = "XE0000000000000000000000000000007a";
    let app = TestApp::spawn(opts).await;
    let server = MockServer::start().await;
    let messaging = crate::helpers::twilio_double(
        "http://127.0.0.1:9",
        "AC00000000000000000000000000000000",
        "tok",
        1,
    )
    .messaging(&server.uri())
    .unwrap();
    let a = "whatsapp:+15550000071";
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO senders (address, kind, label, status, mps, twilio_sid, twilio_status) \
         VALUES ($1, 'number', 'a', 'active', 80, $2, 'ONLINE') RETURNING id",
    )
    .bind(a)
    .bind(SID)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let op = app.api_token(Role::Operator).await;
    let broadcast = scheduled_broadcast(&app, &op, a).await;

    Mock::given(method("DELETE"))
        .and(path(format!("/v2/Channels/Senders/{SID}")))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        ))
        .mount(&server)
        .await;
    let e = wadash::onboarding::retire::deauthorize(&app.pool, &messaging, id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "twilio_error");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    let (status, gone): (String, bool) =
        sqlx::query_as("SELECT status, twilio_gone_at IS NOT NULL FROM senders WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), gone), ("active", false));
    assert_eq!(broadcast_state(&app, broadcast).await.0, "scheduled");

    // Twilio no longer has it: done, and the work is held as ever.
    server.reset().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2/Channels/Senders/{SID}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let done = wadash::onboarding::retire::deauthorize(&app.pool, &messaging, id)
        .await
        .unwrap();
    assert!(!done.deleted_at_twilio);
    assert_eq!(done.held_broadcasts, vec![broadcast]);
    let history: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT field, new_value FROM sender_changes WHERE sender_id = $1")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        history,
        vec![("presence".to_owned(), Some("gone".to_owned()))]
    );
    // Even were the number listed online at Twilio again, a disabled sender clears no hold.
    sqlx::query("UPDATE senders SET twilio_gone_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(broadcast_state(&app, broadcast).await.0, "held");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_whose_sender_was_disabled_is_held_when_its_turn_comes_not_failed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let a = "whatsapp:+15550000081";
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO senders (address, kind, label, status, mps) \
         VALUES ($1, 'number', 'a', 'active', 80) RETURNING id",
    )
    .bind(a)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let (admin, op) = (
        app.api_token(Role::Admin).await,
        app.api_token(Role::Operator).await,
    );
    let broadcast = scheduled_broadcast(&app, &op, a).await;
    // Disabled by hand (DELETE /api/v1/senders/{id}), not through de-authorize.
    let (status, _) = call(&app, "DELETE", &format!("/senders/{id}"), &admin, None).await;
    assert_eq!(status, 200);
    sqlx::query(
        "WITH b AS (UPDATE broadcasts SET start_at = now() WHERE id = $1 RETURNING id)
         UPDATE broadcast_recipients SET next_at = now() WHERE broadcast_id = (SELECT id FROM b)",
    )
    .bind(broadcast)
    .execute(&app.pool)
    .await
    .unwrap();
    let reason = eventually("the broadcast held", 30, || async {
        let (status, _, reason) = broadcast_state(&app, broadcast).await;
        (status == "held").then_some(reason.unwrap_or_default())
    })
    .await;
    assert!(
        reason.contains(&format!("{a} was de-authorized")),
        "{reason}"
    );
    eventually("every recipient back in the queue", 30, || async {
        let (pending, done): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'pending'),
                    count(*) FILTER (WHERE state IN ('sent', 'failed'))
               FROM broadcast_recipients WHERE broadcast_id = $1",
        )
        .bind(broadcast)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(done, 0, "nothing sent, nothing failed");
        (pending == 2).then_some(())
    })
    .await;
    app.stop().await;
}
