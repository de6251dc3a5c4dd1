//! Two-way messaging through real HTTP: contacts made from inbound messages, consent keywords
//! with history and confirmations, automatic replies as TwiML that the simulator then sends
//! and reports on, and every refusal of the send policy through the API, the CLI and the
//! dashboard.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, database_url, params};

const SANDBOX: &str = "whatsapp:+14155238886";
const ECHO_IMAGE: &str = "https://cdn.example.com/thanks.jpg";

fn inbound(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    params(&[
        ("SmsMessageSid", sid),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", &format!("whatsapp:{from}")),
        ("To", SANDBOX),
        ("WaId", from.trim_start_matches('+')),
        ("ProfileName", "Asha <b>K</b>"),
        ("Body", body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ])
}

fn inbound_image(sid: &str, from: &str) -> Vec<(String, String)> {
    let mut p = inbound(sid, from, "");
    p.retain(|(k, _)| k != "NumMedia");
    p.extend(params(&[
        ("NumMedia", "1"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        ),
        ("MediaContentType0", "image/jpeg"),
    ]));
    p
}

fn sid(n: u32) -> String {
    format!("SM{:032x}", 0xabc000 + n)
}

/// Posts a signed inbound message and returns the TwiML answer.
async fn say(app: &TestApp, sid: &str, from: &str, body: &str) -> String {
    let resp = app.post_signed("/wa", &inbound(sid, from, body)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/xml"
    );
    resp.text().await.unwrap()
}

async fn send(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1/messages", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[sqlx::test(migrations = false)]
async fn an_inbound_image_is_answered_with_the_configured_image_and_the_reply_is_tracked(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sent_ms".into(), "20".into());
        v.insert("sim_delivered_ms".into(), "40".into());
        v.insert("sim_read_ms".into(), "60".into());
        v.insert("sim_failure_share".into(), "0".into());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let (status, rule) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(
            json!({"name": "Echo images", "kind": "image_echo", "reply_media": [ECHO_IMAGE],
                    "reply_body": "Thanks for the picture!"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{rule}");

    // A text-only message gets no reply.
    let text = say(&app, &sid(1), "+919900000001", "hello").await;
    assert_eq!(
        text,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );

    let resp = app
        .post_signed("/wa", &inbound_image(&sid(2), "+919900000001"))
        .await;
    assert_eq!(resp.status(), 200);
    let twiml = resp.text().await.unwrap();
    let reply_id: i64 = app
        .count("SELECT id FROM auto_replies WHERE reason = 'image_echo'")
        .await;
    assert_eq!(
        twiml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message statusCallback=\"{}/sts?reply={reply_id}\"><Body>Thanks for the picture!</Body><Media>{ECHO_IMAGE}</Media></Message></Response>",
            app.address
        )
    );

    // The simulator, playing Twilio, creates the reply and reports its status to
    // /sts?reply=<id>, which links it to its message with body and media.
    let reply_sid: String = wait_for("the reply's first callback", async || {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT message_sid FROM auto_replies WHERE id = $1",
        )
        .bind(reply_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    })
    .await;
    let viewer = app.api_token(Role::Viewer).await;
    let m = wait_for("the reply to be delivered", async || {
        let (_, m) = app
            .get_json(&format!("/api/v1/messages/{reply_sid}"), &viewer)
            .await;
        matches!(m["status"].as_str(), Some("delivered" | "read")).then_some(m)
    })
    .await;
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["body"], "Thanks for the picture!");
    assert_eq!(m["media"][0]["url"], ECHO_IMAGE);
    assert_eq!(m["to"], "whatsapp:+919900000001");
    assert_eq!(m["from"], SANDBOX);
    // Twilio charges for the reply like any message: priced as a service message inside the
    // window, once, however many callbacks it gets.
    assert_eq!(m["cost"]["category"], "service", "{m}");
    assert_eq!(m["cost"]["in_window"], true);
    assert_eq!(m["cost"]["estimated"], "0.005");
    assert_eq!(app.count("SELECT count(*) FROM message_costs").await, 1);

    // The same webhook again (Twilio retrying) gets the same answer and no second reply.
    let again = app
        .post_signed("/wa", &inbound_image(&sid(2), "+919900000001"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(again, twiml);
    assert_eq!(app.count("SELECT count(*) FROM auto_replies").await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn stop_and_start_change_consent_with_history_confirmation_and_send_refusal(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let operator = app.api_token(Role::Operator).await;
    let number = "+919900000002";
    let admin = app.api_token(Role::Admin).await;
    let (status, _) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "Hi", "kind": "keyword", "pattern": "hi, hello", "reply_body": "Hello & welcome <3"})),
    )
    .await;
    assert_eq!(status, 201);

    let hi = say(&app, &sid(10), number, "Hi!").await;
    assert!(
        hi.contains("<Body>Hello &amp; welcome &lt;3</Body>"),
        "{hi}"
    );
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{number}"), &operator)
        .await;
    assert_eq!(c["consent"], "opted_in");
    assert_eq!(c["profile_name"], "Asha <b>K</b>");
    assert_eq!(c["window"], "open");
    assert_eq!(c["history"][0]["source"], "first_inbound");

    let stop = say(&app, &sid(11), number, "  stop. ").await;
    assert!(stop.contains("unsubscribed"), "{stop}");
    // Delivered twice: one history entry.
    say(&app, &sid(11), number, "  stop. ").await;
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{number}"), &operator)
        .await;
    assert_eq!(c["consent"], "opted_out");
    let history = c["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{c}");
    assert_eq!(history[0]["change"], "opted_out");
    assert_eq!(history[0]["source"], "keyword");
    assert_eq!(history[0]["detail"], "stop.");
    assert_eq!(history[0]["message_sid"], sid(11));

    let (status, err) = send(&app, &operator, json!({"to": number, "body": "sale!"})).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "recipient_opted_out");
    let (status, err) = send(
        &app,
        &operator,
        json!({"to": number, "content_sid": wadash::twilio::simulator::SAMPLE_SIDS[0], "force": true}),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (409, &json!("recipient_opted_out")),
        "templates and force do not override an opt-out"
    );

    // Opted out: rules stay quiet.
    assert_eq!(
        say(&app, &sid(12), number, "hello").await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );

    let start = say(&app, &sid(13), number, "START").await;
    assert!(start.contains("subscribed again"), "{start}");
    let (status, sent) = send(
        &app,
        &operator,
        json!({"to": number, "body": "welcome back"}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["warnings"], json!([]), "the window is open");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn configured_keywords_and_confirmations_replace_the_defaults(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("opt_out_keywords".into(), "stop, baja".into());
        v.insert("opt_in_keywords".into(), "alta".into());
        v.insert("opt_out_reply".into(), "Adiós".into());
        v.insert("opt_in_reply".into(), "off".into());
    })
    .await;
    let viewer = app.api_token(Role::Viewer).await;
    let number = "+34600000001";
    assert!(
        say(&app, &sid(20), number, "BAJA")
            .await
            .contains("<Body>Adiós</Body>")
    );
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{number}"), &viewer)
        .await;
    assert_eq!(c["consent"], "opted_out");
    say(&app, &sid(21), number, "unsubscribe").await;
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{number}"), &viewer)
        .await;
    assert_eq!(
        c["consent"], "opted_out",
        "unsubscribe is not configured, START neither"
    );
    let answer = say(&app, &sid(22), number, "Alta").await;
    assert_eq!(
        answer, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
        "opt-in confirmation off"
    );
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{number}"), &viewer)
        .await;
    assert_eq!(c["consent"], "opted_in");
    app.stop().await;
}

async fn set_last_inbound(app: &TestApp, number: &str, hours_ago: i64) {
    sqlx::query(
        "INSERT INTO contacts (number, consent, last_inbound_at) \
         VALUES ($1, 'opted_in', now() - make_interval(hours => $2::int)) \
         ON CONFLICT (number) DO UPDATE SET last_inbound_at = EXCLUDED.last_inbound_at",
    )
    .bind(number)
    .bind(hours_ago as i32)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = false)]
async fn the_24_hour_window_refuses_free_form_text_unless_templated_or_forced(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let operator = app.api_token(Role::Operator).await;
    set_last_inbound(&app, "+919900000030", 25).await;
    set_last_inbound(&app, "+919900000031", 23).await;

    let (status, err) = send(
        &app,
        &operator,
        json!({"to": "+919900000030", "body": "hi"}),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "outside_service_window");
    assert!(err["error"]["message"].as_str().unwrap().contains("63016"));
    let (status, err) = send(
        &app,
        &operator,
        json!({"to": "+919900000030", "media_url": "https://cdn.example.com/a.jpg"}),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (409, &json!("outside_service_window")),
        "media is free-form too"
    );

    // An approved template, known to the catalogue, goes without a warning.
    wadash::templates::sync(&app.pool, &app.twilio.content(app.twilio.base()).unwrap())
        .await
        .unwrap();
    let (status, ok) = send(
        &app,
        &operator,
        json!({"to": "+919900000030", "content_sid": wadash::twilio::simulator::SAMPLE_SIDS[0],
               "content_variables": {"1": "Asha", "2": "A-1042", "3": "tomorrow"}}),
    )
    .await;
    assert_eq!(status, 201, "{ok}");
    assert_eq!(ok["warnings"], json!([]));

    let (status, forced) = send(
        &app,
        &operator,
        json!({"to": "+919900000030", "body": "hi", "force": true}),
    )
    .await;
    assert_eq!(status, 201, "{forced}");
    assert!(
        forced["warnings"][0].as_str().unwrap().contains("forced"),
        "{forced}"
    );

    let (status, open) = send(
        &app,
        &operator,
        json!({"to": "+919900000031", "body": "hi"}),
    )
    .await;
    assert_eq!((status, &open["warnings"]), (201, &json!([])), "{open}");

    let (status, stranger) = send(
        &app,
        &operator,
        json!({"to": "+919900000039", "body": "hi"}),
    )
    .await;
    assert_eq!(status, 201, "{stranger}");
    assert!(
        stranger["warnings"][0]
            .as_str()
            .unwrap()
            .contains("never received"),
        "{stranger}"
    );

    let (_, c) = app
        .get_json("/api/v1/contacts/+919900000030", &operator)
        .await;
    assert_eq!(c["window"], "closed");
    app.stop().await;
}

fn wadash_send(opts: &PgConnectOptions, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("send")
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "cli-token")
        // Nothing listens here: a refused send must not need Twilio at all.
        .env("TWILIO_API_BASE", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn opted_out_and_deauthorized_contacts_are_refused_by_api_cli_and_dashboard(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts.clone()).await;
    let operator = app.api_token(Role::Operator).await;
    let (status, c) = call(
        &app,
        "POST",
        "/contacts/+919900000040/opt-out",
        &operator,
        None,
    )
    .await;
    assert_eq!(
        (status, c["consent"].as_str()),
        (200, Some("opted_out")),
        "{c}"
    );
    let (status, c) = call(
        &app,
        "POST",
        "/contacts/+919900000041/deauthorize",
        &operator,
        Some(json!({"note": "asked by phone"})),
    )
    .await;
    assert_eq!(
        (status, c["consent"].as_str()),
        (200, Some("deauthorized")),
        "{c}"
    );
    let viewer = app.api_token(Role::Viewer).await;
    let (status, _) = call(
        &app,
        "POST",
        "/contacts/+919900000041/reauthorize",
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 403, "viewers cannot change consent");

    let mut browser = app.browser_as("op", Role::Operator).await;
    let csrf = browser.csrf().await;
    for (number, code) in [
        ("+919900000040", "recipient_opted_out"),
        ("+919900000041", "recipient_deauthorized"),
    ] {
        let (status, err) = send(&app, &operator, json!({"to": number, "body": "hi"})).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (409, Some(code)),
            "{err}"
        );

        let out = tokio::task::spawn_blocking({
            let opts = opts.clone();
            let number = number.to_owned();
            move || wadash_send(&opts, &["--to", &number, "--body", "hi"])
        })
        .await
        .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expect = if code == "recipient_opted_out" {
            "opted out"
        } else {
            "de-authorized"
        };
        assert!(stderr.contains(expect), "{stderr}");

        let (status, _, page) = browser
            .post(
                "/send",
                &[("csrf", csrf.as_str()), ("to", number), ("body", "hi")],
            )
            .await;
        assert_eq!(status, 409, "{page}");
        assert!(page.contains(expect), "{page}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM messages").await,
        0,
        "nothing was sent"
    );

    let (status, c) = call(
        &app,
        "POST",
        "/contacts/+919900000041/reauthorize",
        &operator,
        None,
    )
    .await;
    assert_eq!((status, c["consent"].as_str()), (200, Some("unknown")));
    let (_, c) = app
        .get_json("/api/v1/contacts/+919900000041", &viewer)
        .await;
    let changes: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["reauthorized", "deauthorized"]);
    assert_eq!(c["history"][1]["detail"], "asked by phone");
    assert_eq!(c["history"][1]["source"], "api");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_number_change_keeps_history_and_refuses_the_old_number(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let operator = app.api_token(Role::Operator).await;
    let (old, new) = ("+919900000050", "+919900000051");
    say(&app, &sid(50), old, "hello").await;
    say(&app, &sid(51), "+919900000052", "hello").await;

    let (status, c) = call(
        &app,
        "PATCH",
        &format!("/contacts/{old}"),
        &operator,
        Some(json!({"number": new, "tags": ["VIP", "north"]})),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["number"], new);
    assert_eq!(c["tags"], json!(["north", "vip"]));
    assert_eq!(c["consent"], "opted_in", "consent follows the contact");

    let (status, _) = app
        .get_json(&format!("/api/v1/contacts/{old}"), &operator)
        .await;
    assert_eq!(status, 404);
    let (_, c) = app
        .get_json(&format!("/api/v1/contacts/{new}"), &operator)
        .await;
    assert_eq!(c["previous_numbers"][0]["number"], old);
    assert_eq!(c["history"][0]["message_sid"], sid(50));

    let (status, err) = send(&app, &operator, json!({"to": old, "body": "hi"})).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "recipient_number_changed");
    assert!(err["error"]["message"].as_str().unwrap().contains(new));

    let (status, err) = call(
        &app,
        "PATCH",
        &format!("/contacts/{new}"),
        &operator,
        Some(json!({"number": "+919900000052"})),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("number_taken"))
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_disabled_sender_keeps_its_history_and_is_refused(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;

    let (_, list) = call(&app, "GET", "/senders", &operator, None).await;
    assert_eq!(
        list["items"][0]["address"], SANDBOX,
        "the configured sender is registered"
    );
    assert_eq!(list["items"][0]["is_default"], true);
    let sandbox_id = list["items"][0]["id"].as_i64().unwrap();
    let (status, s) = call(
        &app,
        "PATCH",
        &format!("/senders/{sandbox_id}"),
        &admin,
        Some(json!({"join_code": "plenty-tiger"})),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        s["join"]["link"],
        "https://wa.me/14155238886?text=join%20plenty-tiger"
    );
    let mut admin_browser = app.admin_browser().await;
    let qr = admin_browser
        .get_response(&format!("/senders/{sandbox_id}/join-qr.svg"))
        .await;
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));

    let (status, _) = call(
        &app,
        "POST",
        "/senders",
        &operator,
        Some(json!({"address": "+14155550100"})),
    )
    .await;
    assert_eq!(status, 403, "operators cannot add senders");
    let (status, s) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": "+14155550100", "label": "Support", "mps": 80})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_i64().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        "/senders",
        &admin,
        Some(json!({"address": "whatsapp:+14155550100"})),
    )
    .await;
    assert_eq!(status, 409, "one row per address");

    let (status, sent) = send(
        &app,
        &operator,
        json!({"to": "+919900000060", "body": "hi", "from": "+14155550100"}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let sent_sid = sent["sid"].as_str().unwrap().to_owned();

    let (status, s) = call(&app, "DELETE", &format!("/senders/{id}"), &admin, None).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("disabled")));
    let (status, err) = send(
        &app,
        &operator,
        json!({"to": "+919900000060", "body": "hi", "from": "+14155550100"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("sender_disabled")),
        "{err}"
    );
    let (status, err) = send(
        &app,
        &operator,
        json!({"to": "+919900000060", "body": "hi", "from": "+14155550199"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("unknown_sender"))
    );
    let (status, m) = app
        .get_json(&format!("/api/v1/messages/{sent_sid}"), &operator)
        .await;
    assert_eq!(
        (status, m["from"].as_str()),
        (200, Some("whatsapp:+14155550100")),
        "history stays"
    );

    let (status, err) = call(
        &app,
        "DELETE",
        &format!("/senders/{sandbox_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("default_sender"))
    );

    // A message to the disabled sender is stored, but no rule answers it.
    let (status, _) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "any", "kind": "regex", "pattern": ".", "reply_body": "auto"})),
    )
    .await;
    assert_eq!(status, 201);
    let mut p = inbound(&sid(60), "+919900000061", "hello");
    for (k, v) in p.iter_mut() {
        if k == "To" {
            *v = "whatsapp:+14155550100".into();
        }
    }
    let answer = app.post_signed("/wa", &p).await.text().await.unwrap();
    assert!(answer.ends_with("<Response/>"), "{answer}");
    assert!(
        say(&app, &sid(61), "+919900000061", "hello")
            .await
            .contains("<Body>auto</Body>")
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn contact_import_is_all_or_nothing_and_an_export_imports_again(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let operator = app.api_token(Role::Operator).await;
    let post_csv = async |body: &str| {
        let resp = app
            .client
            .post(format!("{}/api/v1/contacts/import", app.address))
            .bearer_auth(&operator)
            .header("content-type", "text/csv")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let (status, report) = post_csv(
        "number,name,tags,consent\n+919900000070,Asha,vip,opted_in\n12345,Bad,,\n+919900000072,Ravi,,maybe\n",
    )
    .await;
    assert_eq!(status, 422, "{report}");
    let lines: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4]);
    assert_eq!(report["imported"], 0);
    assert_eq!(
        app.count("SELECT count(*) FROM contacts").await,
        0,
        "nothing half-imported"
    );

    let (status, report) = post_csv(
        "number,name,tags,consent\n+919900000070,Asha,vip;north,opted_in\n+919900000071,\"Ravi, Jr.\",,opted_out\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["imported"].as_i64(), report["created"].as_i64()),
        (Some(2), Some(2))
    );
    let (_, c) = app
        .get_json("/api/v1/contacts/+919900000071", &operator)
        .await;
    assert_eq!(c["consent"], "opted_out");
    assert_eq!(c["history"][0]["source"], "import");

    // A contact who opted out by keyword cannot be opted back in by an import.
    say(&app, &sid(70), "+919900000070", "STOP").await;
    let (status, report) = post_csv("number,consent\n+919900000070,opted_in\n").await;
    assert_eq!(status, 422, "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("START")
    );

    let export = app
        .client
        .get(format!("{}/api/v1/contacts/export", app.address))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    let text = export.text().await.unwrap();
    assert!(text.starts_with("number,profile_name,consent"), "{text}");
    assert!(
        text.contains("+919900000070,Asha <b>K</b>,opted_out,"),
        "{text}"
    );
    assert!(text.contains("\"Ravi, Jr.\""), "{text}");
    let (status, report) = post_csv(&text).await;
    assert_eq!(status, 200, "an export imports unchanged: {report}");
    assert_eq!(report["updated"], 2);

    let (status, page) = app
        .get_json("/api/v1/contacts?tag=VIP&limit=1", &operator)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["number"], "+919900000070");
    app.stop().await;
}

fn wadash_contacts(opts: &PgConnectOptions, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("contacts")
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrations = false)]
async fn the_cli_imports_exports_and_opts_out_contacts(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts.clone()).await;
    let run = |args: &'static [&'static str], stdin: &'static str| {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || wadash_contacts(&opts, args, stdin))
    };
    let bad = run(
        &["import", "--file", "-"],
        "number,tags\n+919900000080,vip\nnot-a-number,\n",
    )
    .await
    .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("line 3:") && stderr.contains("nothing was imported"),
        "{stderr}"
    );
    assert_eq!(app.count("SELECT count(*) FROM contacts").await, 0);

    let good = run(
        &["import", "--file", "-"],
        "number,tags\n+919900000080,vip\n+919900000081,\n",
    )
    .await
    .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("imported 2 contacts (2 new"));

    let out = run(
        &[
            "opt-out",
            "--number",
            "+91 99000 00080",
            "--note",
            "called us",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "+919900000080 opted_out"
    );
    let operator = app.api_token(Role::Operator).await;
    let (status, err) = send(
        &app,
        &operator,
        json!({"to": "+919900000080", "body": "hi"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("recipient_opted_out"))
    );
    let (_, c) = app
        .get_json("/api/v1/contacts/+919900000080", &operator)
        .await;
    assert_eq!(c["history"][0]["source"], "cli");
    assert_eq!(c["history"][0]["detail"], "called us");

    let export = run(&["export"], "").await.unwrap();
    let csv = String::from_utf8(export.stdout).unwrap();
    assert!(csv.starts_with("number,profile_name,consent"), "{csv}");
    assert!(csv.contains("+919900000080,,opted_out,,,,vip\r\n"), "{csv}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn rules_move_within_their_group_even_when_positions_tie(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let mut ids = Vec::new();
    for (name, kind, pattern) in [
        ("a", "keyword", "a"),
        ("b", "keyword", "b"),
        ("c", "regex", "c"),
    ] {
        let (status, r) = call(
            &app,
            "POST",
            "/rules",
            &admin,
            Some(json!({"name": name, "kind": kind, "pattern": pattern, "reply_body": name})),
        )
        .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().unwrap());
    }
    let (status, echo) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "echo", "kind": "image_echo", "reply_media": [ECHO_IMAGE]})),
    )
    .await;
    assert_eq!(status, 201);
    // Two admins added rules at the same moment: equal positions.
    sqlx::query("UPDATE reply_rules SET position = 10")
        .execute(&app.pool)
        .await
        .unwrap();
    let order = async || {
        let (_, list) = call(&app, "GET", "/rules", &admin, None).await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(order().await, ["a", "b", "c", "echo"]);
    let (status, _) = call(
        &app,
        "POST",
        &format!("/rules/{}/move", ids[2]),
        &admin,
        Some(json!({"direction": "up"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(order().await, ["a", "c", "b", "echo"]);
    let (status, _) = call(
        &app,
        "POST",
        &format!("/rules/{}/move", ids[0]),
        &admin,
        Some(json!({"direction": "down"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(order().await, ["c", "a", "b", "echo"]);
    // The image echo stays after the text rules whatever is asked.
    let (status, _) = call(
        &app,
        "POST",
        &format!("/rules/{}/move", echo["id"]),
        &admin,
        Some(json!({"direction": "up"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(order().await, ["c", "a", "b", "echo"]);
    app.stop().await;
}

/// Linking an automatic reply fills in its message's sender, recipient and body, which the
/// roll-ups group by and live pages show: the change goes to the change log like a callback's,
/// once. (In the flows above the reply's own status callback writes a change-log row too, so
/// they cannot tell whether linking wrote one.)
#[sqlx::test]
async fn linking_a_reply_writes_its_change_to_the_change_log_once(pool: sqlx::PgPool) {
    let sid = "SM0123456789abcdef0123456789abcdef";
    sqlx::query(
        "INSERT INTO messages (sid, direction, status, status_rank) \
         VALUES ($1, 'outbound', 'sent', 40)",
    )
    .bind(sid)
    .execute(&pool)
    .await
    .unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO auto_replies (inbound_sid, position, reason, from_addr, to_addr, body) \
         VALUES ('SMfedcba9876543210fedcba9876543210', 0, 'rule', $1, 'whatsapp:+919900000001', \
                 'Thanks!') RETURNING id",
    )
    .bind(SANDBOX)
    .fetch_one(&pool)
    .await
    .unwrap();

    let linked = wadash::storage::auto_replies::link(&pool, id, sid)
        .await
        .unwrap();
    assert_eq!(
        linked,
        Some((SANDBOX.to_owned(), "whatsapp:+919900000001".to_owned()))
    );
    let log: Vec<(String, Value)> =
        sqlx::query_as("SELECT kind, payload::jsonb FROM live_log ORDER BY xid, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, "messages");
    let changed = &log[0].1;
    assert_eq!(changed.as_array().map(Vec::len), Some(1), "{changed}");
    assert_eq!(changed[0]["sid"], sid);
    assert_eq!(changed[0]["direction"], "outbound");
    assert_eq!(changed[0]["status"], "sent");
    assert_eq!(changed[0]["from"], SANDBOX);
    assert_eq!(changed[0]["to"], "whatsapp:+919900000001");
    assert!(changed[0]["created_at"].is_string(), "{changed}");
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM messages WHERE sid = $1")
        .bind(sid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(body.as_deref(), Some("Thanks!"));

    // Linked already: a later callback for the same reply changes nothing and logs nothing.
    let again = wadash::storage::auto_replies::link(&pool, id, sid)
        .await
        .unwrap();
    assert_eq!(again, None);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM live_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
