//! Sender health (issue 21, items 2 and 3): Twilio's view of each sender on the senders page
//! and on a sender's own page (escaped, https links only, history in the reader's time zone),
//! "Sync now" for admins, a stale notice while the sender sync fails, `POST
//! /api/v1/senders/sync`, sends refused with 409 `sender_offline` (the sandbox exempt), a
//! broadcast and a reminder run held while their sender is offline and resumed once a sync
//! finds it online (a reminder held past its lateness limit is skipped with the reason), and
//! `wadash simulate sender-offline|sender-online`
//! taking a simulated sender offline so that the sync raises `sender_offline`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{AUTH_TOKEN, TestApp, call, database_url};

const A: &str = "XE0000000000000000000000000000000a";

/// A wadash in live mode whose Messaging API is `server` (its REST API goes nowhere).
async fn live_app(opts: PgConnectOptions, server: &MockServer) -> TestApp {
    let uri = server.uri();
    TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
        v.insert("twilio_messaging_base".into(), uri);
    })
    .await
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

/// Runs the binary off the test's runtime, which serves the instance meanwhile.
async fn wadash(opts: &PgConnectOptions, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wadash"));
    cmd.args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env_remove("WADASH_SIMULATE_AUTH_TOKEN")
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run wadash"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` every 100 ms until it gives a value, for at most `secs` seconds.
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

#[sqlx::test(migrations = false)]
async fn the_pages_show_twilio_s_view_escaped_with_history_sync_now_for_admins_and_a_stale_notice(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    let hostile = "Meta <script>alert(1)</script> disabled it";
    twilio_lists(
        &server,
        vec![json!({"sid": A, "status": "OFFLINE", "sender_id": "whatsapp:+15550000001",
            "configuration": {"waba_id": "1234567"},
            "webhook": {"callback_url": "https://old.example/wa?x=<b>", "status_callback_url": null},
            "profile": {"name": "Owl Air"},
            "properties": {"quality_rating": "LOW", "messaging_limit": "250 Customers/24hr"},
            "offline_reasons": [
                {"code": "63112", "message": hostile, "more_info": "https://www.twilio.com/docs/errors/63112"},
                {"code": "63113", "message": "Second reason", "more_info": "javascript:alert(2)"}
            ]})],
    )
    .await;
    let app = live_app(opts, &server).await;
    sqlx::query("UPDATE users SET time_zone = 'Asia/Kolkata' WHERE username = 'admin'")
        .execute(&app.pool)
        .await
        .unwrap();

    // The JSON API: admins only; 202 with what the sync found.
    let admin_token = app.api_token(Role::Admin).await;
    let op_token = app.api_token(Role::Operator).await;
    let (status, _) = call(&app, "POST", "/senders/sync", &op_token, None).await;
    assert_eq!(status, 403);
    let (status, synced) = call(&app, "POST", "/senders/sync", &admin_token, None).await;
    assert_eq!(status, 202, "{synced}");
    assert_eq!(synced["senders"], 1, "{synced}");
    let fields: Vec<(&str, &str)> = synced["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["field"].as_str().unwrap(), c["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [("status", "OFFLINE"), ("webhooks", "elsewhere")],
        "{synced}"
    );
    let (_, listed) = call(&app, "GET", "/senders", &admin_token, None).await;
    let a = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == "whatsapp:+15550000001")
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(
        (
            a["webhooks_ok"].as_bool(),
            a["callback_url"].as_str(),
            a["twilio_status"].as_str()
        ),
        (
            Some(false),
            Some("https://old.example/wa?x=<b>"),
            Some("OFFLINE")
        ),
        "{a}"
    );
    let id = a["id"].as_i64().unwrap();

    // "Sync now" on the page: an operator may not, an admin may.
    let mut op = app.browser_as("olu", Role::Operator).await;
    let op_csrf = op.csrf().await;
    let (status, _, _) = op
        .post("/admin/senders/sync", &[("csrf", op_csrf.as_str())])
        .await;
    assert_eq!(status, 403);
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let (status, location, _) = admin.post("/admin/senders/sync", &[]).await;
    assert_ne!(status, 303, "no form token, no sync: {location:?}");
    let (status, location, _) = admin
        .post("/admin/senders/sync", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/senders?done=synced"))
    );

    let (status, _, page) = admin.get("/admin/senders?done=synced").await;
    assert_eq!(status, 200);
    for shown in [
        "Twilio&#39;s WhatsApp senders were synced.",
        &format!("id=\"twilio-status-{id}\">OFFLINE<"),
        "quality LOW",
        "limit 250 Customers/24hr",
        "Meta &#60;script&#62;alert(1)&#60;/script&#62; disabled it",
        "href=\"https://www.twilio.com/docs/errors/63112\"",
        &format!("id=\"twilio-webhooks-{id}\""),
        "set them to http://127.0.0.1",
        "https://old.example/wa?x=&#60;b&#62;",
        &format!("href=\"/admin/senders/{id}\""),
    ] {
        assert!(
            page.contains(shown),
            "{shown} not in the senders page: {}",
            &page[page.find("id=\"sender-rows\"").unwrap_or(0)..]
        );
    }
    assert!(!page.contains("<script>alert"), "escaped");
    assert!(!page.contains("javascript:alert"), "only https links");
    assert!(!page.contains("id=\"senders-stale\""), "nothing failed yet");

    // The sender's own page: settings, Twilio's state and its history in the reader's zone.
    let (status, _, one) = admin.get(&format!("/admin/senders/{id}")).await;
    assert_eq!(status, 200);
    for shown in [
        "id=\"sender-twilio-status\">OFFLINE<",
        A,
        "Owl Air",
        "Meta &#60;script&#62;alert(1)&#60;/script&#62; disabled it",
        "id=\"sender-webhooks\"",
        "IST",
    ] {
        assert!(one.contains(shown), "{shown} not in the sender's page");
    }
    assert!(!one.contains("<script>alert") && !one.contains("javascript:alert"));
    let history = &one[one.find("id=\"sender-history\"").unwrap()..];
    assert!(
        history.contains("<td>status</td><td>–</td><td>OFFLINE</td>")
            && history.contains("<td>webhooks</td><td>–</td><td>elsewhere</td>"),
        "{history}"
    );
    assert_eq!(admin.get("/admin/senders/999999").await.0, 404);
    let (status, _, _) = op.get(&format!("/admin/senders/{id}")).await;
    assert_eq!(status, 403, "a sender's page is for admins");

    // Twilio answers 503: the sync fails, the pages say Twilio's view may be stale.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let (status, location, _) = admin
        .post("/admin/senders/sync", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/senders?done=sync-failed"))
    );
    let (status, failed) = call(&app, "POST", "/senders/sync", &admin_token, None).await;
    assert_eq!(
        (status, failed["error"]["code"].as_str()),
        (502, Some("sender_sync_failed")),
        "{failed}"
    );
    let (_, _, page) = admin.get("/admin/senders").await;
    assert!(
        page.contains("id=\"senders-stale\"") && page.contains("The last 2 syncs of Twilio"),
        "stale notice"
    );
    assert!(
        page.contains(&format!("id=\"twilio-status-{id}\">OFFLINE<")),
        "what was known stays"
    );
    let (_, _, one) = admin.get(&format!("/admin/senders/{id}")).await;
    assert!(one.contains("id=\"sender-stale\""));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_send_from_a_sender_twilio_has_offline_is_refused_and_the_sandbox_is_exempt(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    let (status, made) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": "+15550000077", "status": "active"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let reasons = json!([{"code": "63112", "message": "Meta disabled the account",
        "more_info": "https://www.twilio.com/docs/errors/63112"}]);
    // As the sync stores it: the number OFFLINE at Twilio; the sandbox too (Twilio's own).
    sqlx::query(
        "UPDATE senders SET twilio_sid = 'XE' || lpad(id::text, 32, '0'),
                twilio_status = 'OFFLINE', offline_reasons = $1
          WHERE address IN ('whatsapp:+15550000077', 'whatsapp:+14155238886')",
    )
    .bind(&reasons)
    .execute(&app.pool)
    .await
    .unwrap();
    let send = |from: &'static str| {
        call(
            &app,
            "POST",
            "/messages",
            &op,
            Some(json!({"to": "+919900007001", "body": "Boarding now", "from": from})),
        )
    };
    let (status, refused) = send("whatsapp:+15550000077").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("sender_offline")),
        "{refused}"
    );
    let said = refused["error"]["message"].as_str().unwrap();
    assert!(
        said.contains("whatsapp:+15550000077 is OFFLINE at Twilio")
            && said.contains("63112: Meta disabled the account"),
        "{said}"
    );
    let (status, sent) = send("whatsapp:+14155238886").await;
    assert_eq!(status, 201, "the sandbox is exempt: {sent}");

    // Gone from Twilio: refused too; online again: sent.
    sqlx::query("UPDATE senders SET twilio_status = 'ONLINE', offline_reasons = '[]', twilio_gone_at = now() WHERE address = 'whatsapp:+15550000077'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, gone) = send("whatsapp:+15550000077").await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (409, Some("sender_offline")),
        "{gone}"
    );
    sqlx::query("UPDATE senders SET twilio_gone_at = NULL WHERE address = 'whatsapp:+15550000077'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, sent) = send("whatsapp:+15550000077").await;
    assert_eq!(status, 201, "{sent}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_simulated_sender_taken_offline_alerts_holds_its_broadcast_and_reminder_and_resumes_both_when_back(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts.clone(), |v| {
        v.insert("sim_sender_step_ms".into(), "50".into());
    })
    .await;
    let number = "whatsapp:+15550000031";
    // A sender registered at the simulator and verified.
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    let created = client
        .create_sender(&wadash::twilio::messaging::NewSender {
            sender_id: number.into(),
            configuration: Default::default(),
            webhook: Default::default(),
            profile: wadash::twilio::messaging::Profile {
                name: "Owl Air".into(),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    let sid = created.sid.clone();
    let status_at_sim = || {
        let (client, sid) = (client.clone(), sid.clone());
        async move { client.fetch_sender(&sid).await.unwrap().status }
    };
    eventually("the code asked for", 30, || async {
        (status_at_sim().await == "PENDING_VERIFICATION").then_some(())
    })
    .await;
    client
        .update_sender(
            &sid,
            &wadash::twilio::messaging::SenderUpdate {
                configuration: Some(wadash::twilio::messaging::SenderConfiguration {
                    verification_code: Some(wadash::twilio::simulator::verification_code(&sid)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually("online at the simulator", 30, || async {
        (status_at_sim().await == "ONLINE").then_some(())
    })
    .await;

    let admin = app.api_token(Role::Admin).await;
    let op = app.api_token(Role::Operator).await;
    let sync = || async {
        let (status, body) = call(&app, "POST", "/senders/sync", &admin, None).await;
        assert_eq!(status, 202, "{body}");
        body
    };
    sync().await;
    let (status, b) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"body": "Gate change", "sender": number,
            "start_at": "2030-01-01T09:00:00Z",
            "audience": {"numbers": ["+919900009101", "+919900009102"]}})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let broadcast = b["id"].as_i64().unwrap();

    // The simulator takes it offline; the next sync sees it and alerts.
    let (ok, out, err) = wadash(
        &opts,
        &[
            "simulate",
            "sender-offline",
            "--sender",
            number,
            "--reason-code",
            "63112",
            "--reason",
            "Meta disabled the <account>",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("is OFFLINE at the simulator"), "{out}");
    let synced = sync().await;
    assert!(
        synced["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "status" && c["to"] == "OFFLINE" && c["alerts"] == true),
        "{synced}"
    );
    let (subject, message): (String, String) = sqlx::query_as(
        "SELECT subject, message FROM alerts WHERE kind = 'sender_offline' AND state <> 'resolved'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(subject, number);
    assert!(
        message.contains("63112: Meta disabled the <account>"),
        "{message}"
    );
    let (ok, out, _) = wadash(&opts, &["senders", "list"]).await;
    assert!(
        ok && out.contains(number) && out.contains("OFFLINE"),
        "{out}"
    );

    // A send from it is refused; its broadcast, when its turn comes, is held with the reason.
    let (status, refused) = call(
        &app,
        "POST",
        "/messages",
        &op,
        Some(json!({"to": "+919900009101", "body": "hi", "from": number})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("sender_offline"))
    );
    sqlx::query(
        "WITH b AS (UPDATE broadcasts SET start_at = now() WHERE id = $1 RETURNING id)
         UPDATE broadcast_recipients SET next_at = now() WHERE broadcast_id = (SELECT id FROM b)",
    )
    .bind(broadcast)
    .execute(&app.pool)
    .await
    .unwrap();
    let reason = eventually("the broadcast held", 30, || async {
        let (status, reason): (String, Option<String>) =
            sqlx::query_as("SELECT status, paused_reason FROM broadcasts WHERE id = $1")
                .bind(broadcast)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (status == "held").then_some(reason)
    })
    .await
    .unwrap_or_default();
    assert!(
        reason.contains(&format!("{number} is OFFLINE at Twilio"))
            && reason.contains("63112")
            && reason.contains("resumes by itself"),
        "{reason}"
    );
    let (_, shown) = call(&app, "GET", &format!("/broadcasts/{broadcast}"), &op, None).await;
    assert_eq!(shown["status"], "held", "{shown}");
    // Each recipient claimed in the batch goes back to the queue (its task may finish just
    // after the hold): nothing is sent, nothing fails.
    eventually("every recipient back in the queue", 30, || async {
        let (pending, sent_or_failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'pending'),
                    count(*) FILTER (WHERE state IN ('sent', 'failed'))
               FROM broadcast_recipients WHERE broadcast_id = $1",
        )
        .bind(broadcast)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(sent_or_failed, 0, "nothing sent, nothing failed");
        (pending == 2).then_some(())
    })
    .await;

    // A reminder due on it meanwhile waits held with the reason.
    sqlx::query(
        "INSERT INTO reminders (to_number, body, sender, first_at, recurrence, timezone, status, next_at) \
         VALUES ('+919900009103', 'check-in', $1, now(), 'once', 'UTC', 'active', now())",
    )
    .bind(number)
    .execute(&app.pool)
    .await
    .unwrap();
    let run = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
            "SELECT outcome, note, broadcast_id FROM reminder_runs",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    let (outcome, note, reminded) = eventually("the reminder run recorded", 30, run).await;
    let note = note.unwrap_or_default();
    assert_eq!(outcome, "held", "{note}");
    assert!(
        note.contains(&format!("{number} is OFFLINE at Twilio")),
        "{note}"
    );
    let reminded = reminded.expect("the occurrence's broadcast");

    // Back online at the simulator; the next sync lets the broadcast go on by itself.
    let (ok, out, err) = wadash(&opts, &["simulate", "sender-online", "--sender", number]).await;
    assert!(
        ok && out.contains("is ONLINE at the simulator"),
        "{out}\n{err}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still: String = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
        .bind(broadcast)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(still, "held", "nothing resumes before a sync says so");
    // This time the command line syncs, through the instance's simulator.
    let (ok, out, err) = wadash(&opts, &["senders", "sync"]).await;
    assert!(
        ok && out.contains(&format!("{number}  status OFFLINE → ONLINE")),
        "{out}\n{err}"
    );
    eventually("the broadcast completed", 30, || async {
        let (status, sent): (String, i64) = sqlx::query_as(
            "SELECT b.status, (SELECT count(*) FROM broadcast_recipients r \
               WHERE r.broadcast_id = b.id AND r.state = 'sent') \
             FROM broadcasts b WHERE b.id = $1",
        )
        .bind(broadcast)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (status == "completed" && sent == 2).then_some(())
    })
    .await;
    // The held reminder went out too, late, and its run says so.
    let (outcome, note, _) = eventually("the reminder run settled", 30, || async {
        run().await.filter(|(o, _, _)| o != "held")
    })
    .await;
    assert_eq!(outcome, "sent", "{note:?}");
    eventually("the reminder delivered to the simulator", 30, || async {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 AND state = 'sent'",
        )
        .bind(reminded)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (sent == 1).then_some(())
    })
    .await;
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alerts WHERE kind = 'sender_offline' AND state <> 'resolved'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "back online resolves the alert");

    // A number the simulator never registered is refused in words.
    let (ok, _, err) = wadash(
        &opts,
        &["simulate", "sender-offline", "--sender", "+15550000099"],
    )
    .await;
    assert!(
        !ok && err.contains("has no WhatsApp sender whatsapp:+15550000099"),
        "{err}"
    );
    app.stop().await;
}

/// A WhatsApp sender as a sync leaves one that Twilio took offline, with webhooks pointing
/// elsewhere, long reasons and a history, for the layout and accessibility checks; its id.
pub async fn seed_offline_sender(pool: &sqlx::PgPool) -> i64 {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO senders (address, kind, label, status, mps, twilio_sid, twilio_status,
                offline_reasons, quality_rating, messaging_limit, callback_url,
                status_callback_url, webhooks_ok, twilio_synced_at)
         VALUES ('whatsapp:+15550000042', 'number', 'Owl Air support', 'active', 80,
                 'XE00000000000000000000000000000042', 'OFFLINE', $1, 'LOW',
                 '250 Customers/24hr', 'https://a-much-longer-host-name.example.com/hooks/whatsapp/inbound',
                 NULL, false, now())
         RETURNING id",
    )
    .bind(json!([{"code": "63112", "message":
        "The Meta and/or WhatsApp Business Accounts connected to this sender were disabled by Meta",
        "more_info": "https://www.twilio.com/docs/errors/63112"}]))
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sender_changes (sender_id, field, old_value, new_value)
         VALUES ($1, 'status', NULL, 'ONLINE'), ($1, 'status', 'ONLINE', 'OFFLINE'),
                ($1, 'messaging_limit', '1K Customers/24hr', '250 Customers/24hr')",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    id
}

#[sqlx::test(migrations = false)]
async fn a_reminder_held_for_its_sender_past_its_lateness_limit_is_skipped_and_its_broadcast_canceled(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("reminder_max_late_secs".into(), "8".into());
    })
    .await;
    seed_offline_sender(&app.pool).await;
    let reminder: i64 = sqlx::query_scalar(
        "INSERT INTO reminders (to_number, body, sender, first_at, recurrence, timezone, status, next_at) \
         VALUES ('+919900009104', 'boarding soon', 'whatsapp:+15550000042', now(), 'once', 'UTC', \
                 'active', now()) RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let run = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
            "SELECT outcome, note, broadcast_id FROM reminder_runs WHERE reminder_id = $1",
        )
        .bind(reminder)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    // Only the settling of a held run writes this note: the occurrence was queued held first.
    let (outcome, note, broadcast) = eventually("the held run settled", 60, || async {
        run().await.filter(|(o, _, _)| o != "held")
    })
    .await;
    let note = note.unwrap_or_default();
    assert_eq!(outcome, "skipped", "{note}");
    assert!(
        note.starts_with("not sent: its sender could not send for 8 s past its time")
            && note.contains("whatsapp:+15550000042 is OFFLINE at Twilio (63112"),
        "{note}"
    );
    let broadcast = broadcast.expect("the occurrence's broadcast stays linked");
    let (status, canceled, sent): (String, i64, i64) = sqlx::query_as(
        "SELECT b.status,
                (SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = b.id AND state = 'canceled'),
                (SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = b.id AND message_sid IS NOT NULL)
           FROM broadcasts b WHERE b.id = $1",
    )
    .bind(broadcast)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), canceled, sent), ("canceled", 1, 0));
    // The reminder itself has no occurrence left and is done; its page shows the reason.
    let admin = app.api_token(Role::Admin).await;
    let (code, shown) = call(&app, "GET", &format!("/reminders/{reminder}"), &admin, None).await;
    assert_eq!(code, 200, "{shown}");
    assert!(
        shown.to_string().contains("could not send for 8 s"),
        "{shown}"
    );
    app.stop().await;
}
