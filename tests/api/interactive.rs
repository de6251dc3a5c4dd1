//! Interactive replies end to end (issue 20): signed button taps and list selections on `/wa`
//! stored and shown (conversation, message page, JSON API), `button` reply rules answering a
//! tap with TwiML (consent keywords still first), and simulated recipients tapping a
//! broadcast's quick-reply buttons, counted per button on its results.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, params};

const SANDBOX: &str = "whatsapp:+14155238886";
/// The message that carried the buttons.
const ORIGINAL: &str = "SM0000000000000000000000000000aaaa";

fn sid(n: u32) -> String {
    format!("SM{:032x}", 0x7a9000 + n)
}

/// A signed-ready inbound webhook from `from` with `extra` fields, as Twilio sends a tap.
fn inbound(sid: &str, from: &str, body: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = params(&[
        ("SmsMessageSid", sid),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", &format!("whatsapp:{from}")),
        ("To", SANDBOX),
        ("WaId", from.trim_start_matches('+')),
        ("Body", body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ]);
    p.extend(params(extra));
    p
}

fn tap(sid: &str, from: &str, title: &str, payload: &str) -> Vec<(String, String)> {
    inbound(
        sid,
        from,
        title,
        &[
            ("MessageType", "button"),
            ("ButtonText", title),
            ("ButtonPayload", payload),
            ("OriginalRepliedMessageSid", ORIGINAL),
            ("OriginalRepliedMessageSender", SANDBOX),
        ],
    )
}

async fn post(app: &TestApp, p: &[(String, String)]) -> String {
    let resp = app.post_signed("/wa", p).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn taps_and_list_selections_are_stored_as_sent_and_shown_escaped_on_pages_and_in_the_api(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let number = "+919900000071";
    let (button, list, huge) = (sid(1), sid(2), sid(3));
    post(
        &app,
        &tap(&button, number, "Confirm <b>now</b>", "confirm_yes"),
    )
    .await;
    // Twilio's retry of the same webhook changes nothing.
    post(
        &app,
        &tap(&button, number, "Confirm <b>now</b>", "confirm_yes"),
    )
    .await;
    post(
        &app,
        &inbound(
            &list,
            number,
            "Tuesday",
            &[
                ("MessageType", "interactive"),
                ("ListId", "slot_tue"),
                ("ListTitle", "Tuesday"),
                ("ListDescription", "10:00 to 12:00"),
                ("OriginalRepliedMessageSid", ORIGINAL),
            ],
        ),
    )
    .await;
    // A payload far beyond WhatsApp's limits is cut, not a reason to lose the message.
    let long = "p".repeat(5000);
    post(&app, &tap(&huge, number, "Odd", &long)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM interactive_replies").await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE direction = 'inbound'")
            .await,
        3
    );
    let (payload_len, truncated): (i32, bool) = sqlx::query_as(
        "SELECT length(payload), truncated FROM interactive_replies WHERE message_sid = $1",
    )
    .bind(&huge)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((payload_len, truncated), (1000, true));
    let whole: String = sqlx::query_scalar(
        "SELECT params_json->>'ButtonPayload' FROM message_events WHERE message_sid = $1",
    )
    .bind(&huge)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(whole.len(), 5000, "the events keep it whole");

    // The JSON API: one message, and a page of them.
    let viewer = app.api_token(Role::Viewer).await;
    let (status, m) = call(&app, "GET", &format!("/messages/{button}"), &viewer, None).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        m["interactive"],
        json!({"kind": "button", "payload": "confirm_yes", "text": "Confirm <b>now</b>",
               "description": null, "message_type": "button", "replied_to": ORIGINAL,
               "replied_to_sender": SANDBOX, "truncated": false})
    );
    assert_eq!(
        m["body"], "Confirm <b>now</b>",
        "Twilio puts the button's text in Body"
    );
    let (_, page) = call(
        &app,
        "GET",
        "/messages?number=%2B919900000071",
        &viewer,
        None,
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    let by_sid = |s: &str| items.iter().find(|i| i["sid"] == s).unwrap().clone();
    assert_eq!(by_sid(&list)["interactive"]["kind"], "list");
    assert_eq!(by_sid(&list)["interactive"]["payload"], "slot_tue");
    assert_eq!(
        by_sid(&list)["interactive"]["description"],
        "10:00 to 12:00"
    );
    assert_eq!(by_sid(&huge)["interactive"]["truncated"], true);
    // An ordinary message says so.
    post(&app, &inbound(&sid(4), number, "hello", &[])).await;
    let (_, plain) = call(&app, "GET", &format!("/messages/{}", sid(4)), &viewer, None).await;
    assert!(plain["interactive"].is_null(), "{plain}");

    // The conversation page and the message page, escaped.
    let mut b = app.admin_browser().await;
    let (status, _, html) = b.get(&format!("/conversations/{number}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(
            "tapped <strong class=\"tap-title\">‹Confirm &#60;b&#62;now&#60;/b&#62;›</strong>"
        ) || html.contains(
            "tapped <strong class=\"tap-title\">‹Confirm &lt;b&gt;now&lt;/b&gt;›</strong>"
        ),
        "{html}"
    );
    assert!(!html.contains("<b>now</b>"));
    assert!(html.contains("<code class=\"tap-payload\">confirm_yes</code>"));
    assert!(html.contains(&format!("href=\"/messages/{ORIGINAL}\"")));
    assert!(html.contains("chose <strong class=\"tap-title\">‹Tuesday›</strong>"));
    assert!(html.contains("10:00 to 12:00"));
    let (status, _, html) = b.get(&format!("/messages/{button}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<code class=\"tap-payload\">confirm_yes</code>"));
    assert!(html.contains(&format!("href=\"/messages/{ORIGINAL}\"")));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_button_rule_answers_a_tap_before_keyword_rules_and_stop_still_wins(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, bad) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(
            json!({"name": "No payload", "kind": "button", "pattern": "  ",
                    "reply_body": "x"}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    for rule in [
        json!({"name": "Confirm word", "kind": "keyword", "pattern": "confirm",
               "reply_body": "Typed confirm"}),
        json!({"name": "Confirm button", "kind": "button", "pattern": " confirm_yes ",
               "reply_body": "See you on Monday"}),
    ] {
        let (status, r) = call(&app, "POST", "/rules", &admin, Some(rule)).await;
        assert_eq!(status, 201, "{r}");
    }
    let (_, rules) = call(&app, "GET", "/rules", &admin, None).await;
    assert!(
        rules.to_string().contains("\"pattern\":\"confirm_yes\""),
        "stored trimmed: {rules}"
    );

    let number = "+919900000072";
    let twiml = post(&app, &tap(&sid(11), number, "Confirm", "confirm_yes")).await;
    assert!(twiml.contains("<Body>See you on Monday</Body>"), "{twiml}");
    // Another payload: the keyword rule still matches the button's text.
    let twiml = post(&app, &tap(&sid(12), number, "Confirm", "confirm_no")).await;
    assert!(twiml.contains("<Body>Typed confirm</Body>"), "{twiml}");
    // Payloads are case-sensitive.
    let twiml = post(&app, &tap(&sid(13), number, "Later", "CONFIRM_YES")).await;
    assert!(!twiml.contains("See you on Monday"), "{twiml}");
    let hits: i64 = app
        .count("SELECT hits FROM reply_rules WHERE kind = 'button'")
        .await;
    assert_eq!(hits, 1);

    // A button whose text is STOP opts out, whatever rule its payload has.
    let twiml = post(&app, &tap(&sid(14), number, "STOP", "confirm_yes")).await;
    assert!(!twiml.contains("See you on Monday"), "{twiml}");
    let (_, c) = call(&app, "GET", &format!("/contacts/{number}"), &admin, None).await;
    assert_eq!(c["consent"], "opted_out", "{c}");

    // The rules page tries a payload.
    let mut b = app.admin_browser().await;
    let (status, _, html) = b
        .get("/admin/rules?try_body=Confirm&try_payload=confirm_yes")
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Rule “Confirm button” (button payload) answers."),
        "{html}"
    );
    let (_, _, html) = b.get("/admin/rules?try_body=Confirm&try_payload=").await;
    assert!(html.contains("Rule “Confirm word” (keyword) answers."));
    app.stop().await;
}

fn quick(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("sim_sent_ms".into(), "20".into());
    v.insert("sim_delivered_ms".into(), "40".into());
    v.insert("sim_read_ms".into(), "60".into());
    v.insert("sim_failure_share".into(), "0".into());
    v.insert("sim_button_tap_share".into(), "1".into());
}

#[sqlx::test(migrations = false)]
async fn simulated_recipients_tap_a_broadcasts_buttons_and_its_results_count_each_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    let content = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let op = app.api_token(Role::Operator).await;
    let numbers: Vec<String> = (0..6).map(|i| format!("+9199000001{i:02}")).collect();
    let (status, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(
            json!({"name": "Appointments", "content_sid": wadash::twilio::simulator::SAMPLE_SIDS[1],
                    "content_variables": {"1": "Dr Rao", "2": "Monday 10:00"},
                    "audience": {"numbers": numbers}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();

    // Tap share 1.0: every delivered recipient taps one button, once.
    let started = Instant::now();
    let detail: Value = loop {
        let (_, d) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
        let total: i64 = d["buttons"]
            .as_array()
            .map(|b| b.iter().map(|t| t["recipients"].as_i64().unwrap()).sum())
            .unwrap_or(0);
        if total == 6 {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every recipient tapped: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let buttons = detail["buttons"].as_array().unwrap();
    // Both of the template's buttons, in its order, whether tapped or not.
    let listed: Vec<(&str, &str, bool)> = buttons
        .iter()
        .map(|b| {
            (
                b["payload"].as_str().unwrap(),
                b["title"].as_str().unwrap(),
                b["offered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("confirm", "Yes, I'll come", true),
            ("reschedule", "Reschedule", true)
        ]
    );
    // Each recipient's message got exactly one tap, from that recipient, and the counts are
    // those taps.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT r.number, t.payload, count(*) FROM broadcast_recipients r \
         JOIN interactive_replies t ON t.replied_to_sid = r.message_sid \
         JOIN messages m ON m.sid = t.message_sid \
         WHERE r.broadcast_id = $1 AND m.from_addr = 'whatsapp:' || r.number \
           AND m.to_addr = $2 AND t.kind = 'button' \
         GROUP BY r.number, t.payload ORDER BY r.number",
    )
    .bind(id)
    .bind(SANDBOX)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|(_, _, n)| *n == 1), "{rows:?}");
    let taps_of = |p: &str| rows.iter().filter(|(_, q, _)| q == p).count() as i64;
    assert_eq!(buttons[0]["recipients"], taps_of("confirm"));
    assert_eq!(buttons[1]["recipients"], taps_of("reschedule"));

    // A recipient tapping the same button again is still one recipient; a tap on the
    // other button counts there.
    let (number, payload, _) = rows[0].clone();
    let original: String = sqlx::query_scalar(
        "SELECT message_sid FROM broadcast_recipients WHERE broadcast_id = $1 AND number = $2",
    )
    .bind(id)
    .bind(&number)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let other = if payload == "confirm" {
        ("reschedule", "Reschedule")
    } else {
        ("confirm", "Yes, I'll come")
    };
    for (n, (p, title)) in [(21, (payload.as_str(), "again")), (22, other)] {
        let mut again = tap(&sid(n), &number, title, p);
        for (k, v) in again.iter_mut() {
            if k == "OriginalRepliedMessageSid" {
                *v = original.clone();
            }
        }
        post(&app, &again).await;
    }
    let (_, d) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    let count = |p: &str| {
        d["buttons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["payload"] == p)
            .unwrap()["recipients"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(&payload), taps_of(&payload), "{d}");
    assert_eq!(count(other.0), taps_of(other.0) + 1, "{d}");

    // The results page shows the same.
    let mut b = app.admin_browser().await;
    let (status, _, html) = b.get(&format!("/broadcasts/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"broadcast-taps\""), "{html}");
    assert!(html.contains(&format!(
        "<td class=\"num\" data-taps=\"{}\">{}</td>",
        other.0,
        count(other.0)
    )));
    assert!(html.contains("Reschedule"));
    // Each recipient's row says what they tapped: the one who tapped twice shows both, once.
    let rows_html = html.split("id=\"recipient-rows\"").nth(1).unwrap();
    assert_eq!(
        rows_html
            .matches("<span class=\"tag\" title=\"payload ")
            .count(),
        7,
        "six recipients' taps and one more button: {rows_html}"
    );
    // The message tapped lists the taps that answered it.
    let (status, _, html) = b.get(&format!("/messages/{original}")).await;
    assert_eq!(status, 200);
    let answers = html
        .split("id=\"tap-answers\"")
        .nth(1)
        .expect("taps listed");
    assert!(
        answers.contains(&format!("href=\"/messages/{}\"", sid(22))),
        "{answers}"
    );
    assert!(answers.contains(&format!("href=\"/messages/{}\"", sid(21))));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn with_a_tap_share_of_zero_nobody_taps_and_buttons_still_show_zero(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("sim_button_tap_share".into(), "0".into());
    })
    .await;
    let content = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content).await.unwrap();
    let op = app.api_token(Role::Operator).await;
    let (status, created) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(
            json!({"content_sid": wadash::twilio::simulator::SAMPLE_SIDS[1],
                    "content_variables": {"1": "Dr Rao", "2": "Monday 10:00"},
                    "audience": {"numbers": ["+919900000201", "+919900000202"]}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    // Wait until both are read (the last callback), then past when a tap would come.
    let started = Instant::now();
    loop {
        let (_, d) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
        if d["counts"]["read"].as_i64().unwrap_or(0)
            + d["counts"]["delivered"].as_i64().unwrap_or(0)
            == 2
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, d) = call(&app, "GET", &format!("/broadcasts/{id}"), &op, None).await;
    let counts: Vec<i64> = d["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["recipients"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [0, 0], "{d}");
    assert_eq!(
        app.count("SELECT count(*) FROM interactive_replies").await,
        0
    );
    app.stop().await;
}
