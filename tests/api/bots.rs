//! Bots through real HTTP: `/api/v1/bots` with write-only secrets, and the built-in demo bot
//! answering WhatsApp conversations through `/wa` — routing by rule, sessions, hand-off to a
//! human (keyword, the bot's signal, repeated fallbacks), giving back, and consent first;
//! and a Lex V2 bot over AWS's SDK against the Lex fake: TwiML in time, the REST client when
//! slow, the fallback reply when throttled.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, call, params};

pub(crate) const SANDBOX: &str = "whatsapp:+14155238886";
pub(crate) const EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
const HANDOFF_REPLY: &str = "A member of our team will answer you here shortly.";

/// A `WADASH_SECRET_KEY` for tests (32 bytes, hex).
fn secret_key() -> String {
    "3c".repeat(32)
}

pub(crate) fn inbound(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    params(&[
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", &format!("whatsapp:{from}")),
        ("To", SANDBOX),
        ("WaId", from.trim_start_matches('+')),
        ("ProfileName", "Ravi"),
        ("Body", body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ])
}

/// Sends a signed inbound message and returns the TwiML answer.
pub(crate) async fn say(app: &TestApp, n: u32, from: &str, body: &str) -> String {
    let sid = format!("SM{:032x}", 0xb07_0000 + n);
    let resp = app.post_signed("/wa", &inbound(&sid, from, body)).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

pub(crate) async fn spawn(opts: PgConnectOptions, extra: &[(&str, &str)]) -> TestApp {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TestApp::spawn_with(opts, move |v| {
        v.insert("secret_key".into(), secret_key());
        v.insert("sim_failure_share".into(), "0".into());
        for (k, val) in extra {
            v.insert(k, val);
        }
    })
    .await
}

/// Adds the demo bot and a rule handing it messages; returns the bot's id.
pub(crate) async fn demo_bot(app: &TestApp, admin: &str, rule: Value) -> i64 {
    let (status, bot) = call(
        app,
        "POST",
        "/bots",
        admin,
        Some(json!({"name": "Demo", "kind": "demo", "config": {}})),
    )
    .await;
    assert_eq!(status, 201, "{bot}");
    let id = bot["id"].as_i64().unwrap();
    let mut rule = rule;
    rule["bot"] = json!(id);
    let (status, body) = call(app, "POST", "/rules", admin, Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    id
}

async fn queue(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get_json("/api/v1/handoffs", token).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn reason_of(items: &[Value], number: &str) -> Option<String> {
    items
        .iter()
        .find(|i| i["number"] == number)
        .map(|i| i["reason"].as_str().unwrap().to_owned())
}

#[sqlx::test(migrations = false)]
async fn bots_are_kept_with_write_only_secrets_and_bad_configurations_are_refused(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;
    const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let lex = json!({"name": "Support", "kind": "lex_v2", "config": {
        "bot_id": "BOT1", "bot_alias_id": "ALIAS1", "locale_id": "en_US", "region": "eu-west-1",
        "access_key_id": "AKIAEXAMPLE", "secret_access_key": SECRET}, "timeout_ms": 4000});
    let (status, created) = call(&app, "POST", "/bots", &admin, Some(lex.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains(SECRET));
    assert_eq!(created["secrets_set"], json!(["secret_access_key"]));
    assert_eq!(created["config"]["access_key_id"], "AKIAEXAMPLE");
    assert_eq!(created["timeout_ms"], 4000);
    let id = created["id"].as_i64().unwrap();
    let stored: String = sqlx::query_scalar("SELECT secrets || config::text FROM bots")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!stored.contains(SECRET), "sealed at rest");

    let (status, listed) = call(&app, "GET", "/bots", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(SECRET));
    let (status, one) = call(&app, "GET", &format!("/bots/{id}"), &admin, None).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("Support")));

    // A change without the secret keeps it.
    let (status, changed) = call(
        &app,
        "PATCH",
        &format!("/bots/{id}"),
        &admin,
        Some(json!({"name": "Support EU", "timeout_ms": 3000})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["secrets_set"], json!(["secret_access_key"]));
    assert_eq!(
        (changed["name"].as_str(), changed["timeout_ms"].as_i64()),
        (Some("Support EU"), Some(3000))
    );

    // Refusals say why.
    for (body, status, needle) in [
        (
            json!({"name": "X", "kind": "watson", "config": {}}),
            400,
            "kind",
        ),
        (
            json!({"name": "X", "kind": "lex_v2", "config": {"bot_id": "B", "bot_alias_id": "A", "locale_id": "en_US"}}),
            400,
            "region",
        ),
        (
            json!({"name": "X", "kind": "dialogflow_cx", "config": {"project": "p", "location": "global", "agent": "a", "language": "en", "service_account_json": "not json"}}),
            400,
            "service_account_json",
        ),
        (
            json!({"name": "X", "kind": "demo", "config": {}, "endpoint": "ftp://bots.example.com"}),
            400,
            "endpoint",
        ),
        (
            json!({"name": "X", "kind": "demo", "config": {}, "endpoint": "http://10.0.0.8/"}),
            400,
            "endpoint",
        ),
        (
            json!({"name": "Support EU", "kind": "demo", "config": {}}),
            409,
            "name",
        ),
        (json!({"kind": "demo"}), 400, "name"),
    ] {
        let (got, err) = call(&app, "POST", "/bots", &admin, Some(body.clone())).await;
        assert_eq!(got, status, "{body} → {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body} → {message}");
    }
    let (status, _) = call(&app, "GET", "/bots", &operator, None).await;
    assert_eq!(status, 403, "bots are for admins");

    // The demo bot answers the test phrase with its intent.
    let demo = demo_bot(
        &app,
        &admin,
        json!({"name": "Orders", "kind": "keyword", "pattern": "order"}),
    )
    .await;
    let (status, tested) = call(
        &app,
        "POST",
        &format!("/bots/{demo}/test"),
        &admin,
        Some(json!({"text": "what are your opening hours?"})),
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["intent"], "opening_hours");
    assert_eq!(tested["signal"]["signal"], "continue");
    assert!(
        tested["messages"][0]["body"]
            .as_str()
            .unwrap()
            .contains("Monday to Friday")
    );

    // A bot a rule uses is not deleted.
    let (status, err) = call(&app, "DELETE", &format!("/bots/{demo}"), &admin, None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("bot_in_use"))
    );
    let rule: i64 = sqlx::query_scalar("SELECT id FROM reply_rules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        call(&app, "DELETE", &format!("/rules/{rule}"), &admin, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&app, "DELETE", &format!("/bots/{demo}"), &admin, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&app, "GET", &format!("/bots/{demo}"), &admin, None)
            .await
            .0,
        404
    );
    let (status, err) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "Gone", "kind": "any", "bot": demo})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_keyword_rule_hands_the_conversation_to_the_demo_bot_which_answers_as_twiml(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    demo_bot(
        &app,
        &admin,
        json!({"name": "Orders", "kind": "keyword", "pattern": "order, orders"}),
    )
    .await;
    let (status, _) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(
            json!({"name": "Hours", "kind": "keyword", "pattern": "hours", "reply_body": "9 to 5"}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    const ASHA: &str = "+919900000201";

    assert_eq!(
        say(&app, 1, ASHA, "hello").await,
        EMPTY,
        "no rule, no session: nothing"
    );
    let first = say(&app, 2, ASHA, "Order").await;
    assert!(first.contains("What is your order number?"), "{first}");
    assert!(
        first.contains("/sts?reply="),
        "tracked like every automatic reply: {first}"
    );
    // No rule matches the number, but the session goes on with the bot, which remembers
    // what it asked.
    let second = say(&app, 3, ASHA, "12345").await;
    assert!(second.contains("Order 12345 is being packed"), "{second}");
    // A fixed-reply rule still answers its keyword during a bot conversation.
    assert!(say(&app, 4, ASHA, "hours").await.contains("9 to 5"));

    let turns: Vec<(String, String, Option<String>, Option<Value>)> = sqlx::query_as(
        "SELECT session_id, outcome, intent, parameters FROM bot_turns ORDER BY created_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].0, turns[1].0, "one session across the messages");
    assert_eq!(turns[1].1, "answered");
    assert_eq!(turns[1].2.as_deref(), Some("order_status"));
    assert_eq!(turns[1].3, Some(json!({"order_number": "12345"})));

    // The simulator plays Twilio: the answers become tracked messages linked to the replies.
    for _ in 0..200 {
        let linked = app
            .count("SELECT count(*) FROM auto_replies WHERE reason = 'bot' AND message_sid IS NOT NULL")
            .await;
        if linked == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT m.body FROM auto_replies r JOIN messages m ON m.sid = r.message_sid \
         WHERE r.reason = 'bot' ORDER BY r.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[1].starts_with("Order 12345"));

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("outcome=\"answered\"} 2"),
        "bot turns counted per bot and outcome"
    );
    assert!(metrics.contains("wadash_bot_latency_seconds_count{bot="));

    // A webhook delivered twice gets the same answer, and the bot is asked once.
    let sid = format!("SM{:032x}", 0xb07_0000 + 3);
    let again = app.post_signed("/wa", &inbound(&sid, ASHA, "12345")).await;
    assert_eq!(again.text().await.unwrap(), second);
    assert_eq!(app.count("SELECT count(*) FROM bot_turns").await, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_session_is_renewed_after_the_idle_time_and_the_bot_forgets(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[("bot_session_idle_secs", "1")]).await;
    let admin = app.api_token(Role::Admin).await;
    demo_bot(&app, &admin, json!({"name": "Everything", "kind": "any"})).await;
    const RAVI: &str = "+919900000202";
    assert!(
        say(&app, 1, RAVI, "order")
            .await
            .contains("What is your order number?")
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A new session: the bot no longer waits for an order number.
    let after = say(&app, 2, RAVI, "12345").await;
    assert!(after.contains("Sorry, I did not understand"), "{after}");
    let sessions = app
        .count("SELECT count(DISTINCT session_id) FROM bot_turns")
        .await;
    assert_eq!(sessions, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn conversations_are_handed_to_a_human_by_keyword_by_the_bot_and_by_repeated_fallbacks(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;
    let viewer = app.api_token(Role::Viewer).await;
    demo_bot(&app, &admin, json!({"name": "Everything", "kind": "any"})).await;
    const KEYWORD: &str = "+919900000211";
    const SIGNAL: &str = "+919900000212";
    const FALLBACKS: &str = "+919900000213";
    const QUIET: &str = "+919900000214";

    assert!(say(&app, 1, KEYWORD, "hi").await.contains("demo assistant"));
    let handed = say(&app, 2, KEYWORD, " Agent! ").await;
    assert!(handed.contains(HANDOFF_REPLY), "{handed}");
    assert_eq!(
        say(&app, 3, KEYWORD, "hi").await,
        EMPTY,
        "a human has it now"
    );

    let signal = say(&app, 4, SIGNAL, "I want to talk to a human").await;
    assert!(
        signal.contains("pass you to a member of our team"),
        "{signal}"
    );

    assert!(
        say(&app, 5, FALLBACKS, "blorp")
            .await
            .contains("Sorry, I did not understand")
    );
    let second = say(&app, 6, FALLBACKS, "blorp blorp").await;
    assert!(second.contains(HANDOFF_REPLY), "{second}");

    let items = queue(&app, &viewer).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(reason_of(&items, KEYWORD).as_deref(), Some("keyword"));
    assert_eq!(
        reason_of(&items, SIGNAL).as_deref(),
        Some("intent:talk_to_human")
    );
    assert_eq!(reason_of(&items, FALLBACKS).as_deref(), Some("fallbacks"));
    assert_eq!(items[0]["number"], KEYWORD, "longest waiting first");
    assert_eq!(items[0]["sender"], SANDBOX);
    assert!(items[0]["since"].as_str().is_some());

    // Giving back needs an operator; the bot then answers again, in a fresh session.
    let path = format!("/conversations/{FALLBACKS}/give-back");
    assert_eq!(call(&app, "POST", &path, &viewer, None).await.0, 403);
    let (status, body) = call(&app, "POST", &path, &operator, None).await;
    assert_eq!(
        (status, body["given_back"].as_i64()),
        (200, Some(1)),
        "{body}"
    );
    assert!(reason_of(&queue(&app, &viewer).await, FALLBACKS).is_none());
    assert!(
        say(&app, 7, FALLBACKS, "hi")
            .await
            .contains("demo assistant")
    );

    // An operator takes a conversation from the bot.
    assert!(say(&app, 8, QUIET, "hi").await.contains("demo assistant"));
    let (status, _) = call(
        &app,
        "POST",
        &format!("/conversations/{QUIET}/handoff"),
        &operator,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        reason_of(&queue(&app, &viewer).await, QUIET).as_deref(),
        Some("operator")
    );
    assert_eq!(say(&app, 9, QUIET, "hello?").await, EMPTY);
    let (status, _) = call(
        &app,
        "POST",
        "/conversations/+919900000299/handoff",
        &operator,
        None,
    )
    .await;
    assert_eq!(status, 404, "a number that never wrote has no conversation");
    let (status, _) = call(&app, "POST", "/conversations/12/handoff", &operator, None).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.count("SELECT count(*) FROM bot_handoffs").await,
        4,
        "every hand-off is recorded for the hand-off rate"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn consent_comes_first_stop_ends_a_bot_conversation_and_blocked_contacts_get_no_bot(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;
    demo_bot(&app, &admin, json!({"name": "Everything", "kind": "any"})).await;
    const MEERA: &str = "+919900000221";
    const JOHN: &str = "+919900000222";

    assert!(say(&app, 1, MEERA, "order").await.contains("order number"));
    let stop = say(&app, 2, MEERA, "STOP").await;
    assert!(stop.contains("You have been unsubscribed"), "{stop}");
    assert!(!stop.contains("Sorry"), "the bot is not asked: {stop}");
    assert_eq!(
        say(&app, 3, MEERA, "12345").await,
        EMPTY,
        "an opted-out contact gets no bot"
    );
    assert_eq!(app.count("SELECT count(*) FROM bot_turns").await, 1);

    assert!(say(&app, 4, JOHN, "hi").await.contains("demo assistant"));
    let (status, _) = call(
        &app,
        "POST",
        &format!("/contacts/{JOHN}/deauthorize"),
        &operator,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        say(&app, 5, JOHN, "hi").await,
        EMPTY,
        "a de-authorized contact gets no bot"
    );
    assert_eq!(app.count("SELECT count(*) FROM bot_turns").await, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn admins_manage_bots_on_their_page_secrets_never_come_back_and_the_test_shows_the_intent(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let (status, _, page) = admin.get("/admin/bots").await;
    assert_eq!(status, 200);
    assert!(page.contains("No bots yet"));
    let (_, _, rules) = admin.get("/admin/rules").await;
    assert!(
        rules.contains("href=\"/admin/bots\""),
        "linked from the rules page"
    );

    // Without the CSRF token nothing is added.
    let (status, _, _) = admin
        .post("/admin/bots", &[("name", "Demo"), ("kind", "demo")])
        .await;
    assert_eq!(status, 403);
    let (status, location, _) = admin
        .post(
            "/admin/bots",
            &[("csrf", &csrf), ("name", "Demo"), ("kind", "demo")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/bots?done=added"))
    );

    const SECRET: &str = "lex-secret-typed-once";
    let lex = [
        ("csrf", csrf.as_str()),
        ("name", "Support"),
        ("kind", "lex_v2"),
        ("bot_id", "BOT1"),
        ("bot_alias_id", "ALIAS1"),
        ("locale_id", "en_US"),
        ("region", ""),
        ("access_key_id", "AKIAEXAMPLE"),
        ("secret_access_key", SECRET),
        // Another kind's field is ignored.
        ("project", "project-not-for-lex"),
    ];
    let (status, _, refused) = admin.post("/admin/bots", &lex).await;
    assert_eq!(status, 400);
    assert!(
        refused.contains("missing field `region`"),
        "the reason is shown"
    );
    assert!(!refused.contains(SECRET), "a typed secret is not sent back");
    let mut fixed = lex.to_vec();
    fixed[6] = ("region", "eu-west-1");
    let (status, _, _) = admin.post("/admin/bots", &fixed).await;
    assert_eq!(status, 303);
    let (_, _, page) = admin.get("/admin/bots").await;
    assert!(page.contains("secret_access_key: (stored)"));
    assert!(!page.contains(SECRET));
    assert!(!page.contains("project-not-for-lex"));

    let demo: i64 = sqlx::query_scalar("SELECT id FROM bots WHERE kind = 'demo'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _, tested) = admin
        .post(
            &format!("/admin/bots/{demo}/test"),
            &[("csrf", &csrf), ("text", "where is my order 4568")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        tested.contains(&format!("id=\"test-intent-{demo}\">order_status<")),
        "{tested}"
    );
    assert!(tested.contains("Order 4568 has shipped"));

    // Operators may not manage bots.
    let mut operator = app.browser_as("olga", Role::Operator).await;
    let (status, _, _) = operator.get("/admin/bots").await;
    assert_eq!(status, 403);

    let (status, location, _) = admin
        .post(&format!("/admin/bots/{demo}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/bots?done=deleted"))
    );
    assert_eq!(app.count("SELECT count(*) FROM bots").await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_failing_bot_gives_the_fallback_reply_and_is_paused_by_the_breaker_with_an_alert(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(
        opts,
        &[
            ("bot_breaker_failures", "2"),
            ("bot_breaker_pause_secs", "600"),
            (
                "bot_fallback_reply",
                "Our assistant is away; we will write back.",
            ),
        ],
    )
    .await;
    let admin = app.api_token(Role::Admin).await;
    // Nothing listens at the endpoint: every call fails (refused, or timed out).
    let port = crate::helpers::free_port();
    let (status, bot) = call(
        &app,
        "POST",
        "/bots",
        &admin,
        Some(json!({"name": "Lex", "kind": "lex_v2", "timeout_ms": 1000,
            "endpoint": format!("http://127.0.0.1:{port}"),
            "config": {"bot_id": "B1", "bot_alias_id": "A1", "locale_id": "en_US",
                "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "x"}})),
    )
    .await;
    assert_eq!(status, 201, "{bot}");
    let id = bot["id"].as_i64().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "Everything", "kind": "any", "bot": id})),
    )
    .await;
    assert_eq!(status, 201);
    const CONTACT: &str = "+919900000231";
    for n in 1..=3 {
        let twiml = say(&app, n, CONTACT, "hello").await;
        assert!(twiml.contains("Our assistant is away"), "{n}: {twiml}");
    }
    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM bot_turns ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        outcomes[..2]
            .iter()
            .all(|o| o == "failed" || o == "timeout"),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[2], "paused",
        "the third is not asked: {outcomes:?}"
    );
    let (status, alerts) = app.get_json("/api/v1/alerts?state=firing", &admin).await;
    assert_eq!(status, 200);
    let items = alerts["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|a| a["kind"] == "bot_failing" && a["message"].as_str().unwrap().contains("Lex")),
        "{alerts}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "wadash_bot_turns_total{{bot=\"{id}\",kind=\"lex_v2\",outcome=\"paused\"}} 1"
        )),
        "{metrics}"
    );
    app.stop().await;
}

/// A Lex V2 bot (the real adapter over AWS's SDK) answering through `/wa` against the Lex
/// fake, which checks every request's path and SigV4 signature; `rule` routes to it.
pub(crate) async fn lex_bot(app: &TestApp, admin: &str, fake: &crate::bot_fakes::BotFake) -> i64 {
    let e = crate::bot_fakes::LexExpect::test();
    let (status, bot) = call(
        app,
        "POST",
        "/bots",
        admin,
        Some(json!({"name": "Lex", "kind": "lex_v2", "timeout_ms": 8000,
            "endpoint": fake.uri(),
            "config": {"bot_id": e.bot_id, "bot_alias_id": e.bot_alias_id, "locale_id": e.locale_id,
                "region": e.region, "access_key_id": e.access_key_id,
                "secret_access_key": e.secret_access_key}})),
    )
    .await;
    assert_eq!(status, 201, "{bot}");
    let id = bot["id"].as_i64().unwrap();
    let (status, body) = call(
        app,
        "POST",
        "/rules",
        admin,
        Some(json!({"name": "Everything", "kind": "any", "bot": id})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    id
}

#[sqlx::test(migrations = false)]
async fn a_lex_bot_answers_as_twiml_in_time_through_the_rest_client_when_slow_and_falls_back_when_throttled(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::bot_fakes::{LexExpect, Reply, lex_closed, lex_fake};
    let app = spawn(
        opts,
        &[
            ("bot_reply_budget_ms", "1000"),
            (
                "bot_fallback_reply",
                "Our assistant is away; we will write back.",
            ),
        ],
    )
    .await;
    let admin = app.api_token(Role::Admin).await;
    let fake = lex_fake(
        LexExpect::test(),
        Reply::Json(lex_closed("s", "BookTable", "Which day suits you?")),
    )
    .await;
    lex_bot(&app, &admin, &fake).await;
    const CONTACT: &str = "+919900000241";

    // In time: the answer is the webhook's TwiML; the request was signed and well formed.
    let twiml = say(&app, 1, CONTACT, "book a table").await;
    assert!(twiml.contains("Which day suits you?"), "{twiml}");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].check, Ok(()), "{seen:?}");
    assert_eq!(seen[0].body["text"], "book a table", "{seen:?}");
    let session = seen[0].path.clone();
    assert!(session.contains("/sessions/wa-"), "{session}");

    // Slow: the webhook answers empty within the budget, and the answer follows through the
    // REST client as an outbound message tracked like any other, in the same session.
    fake.clear();
    fake.reply(Reply::Slow(
        Duration::from_millis(2500),
        lex_closed("s", "BookTable", "Saturday at 8 is booked."),
    ));
    // Empty TwiML is the decision not to wait: had the webhook waited for the 2.5 s bot
    // (inside its 8 s timeout), the answer would be in it.
    let twiml = say(&app, 2, CONTACT, "saturday").await;
    assert_eq!(twiml, EMPTY, "nothing in time");
    let late = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let body: Option<String> = sqlx::query_scalar(
                "SELECT body FROM messages WHERE direction = 'outbound' AND to_addr = $1 \
                   AND body = 'Saturday at 8 is booked.'",
            )
            .bind(format!("whatsapp:{CONTACT}"))
            .fetch_optional(&app.pool)
            .await
            .unwrap();
            if body.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        late.is_ok(),
        "the late answer was not sent through the REST client"
    );
    assert_eq!(fake.seen()[0].path, session, "the same Lex session");

    // Throttled: Lex's ThrottlingException gives the fallback reply, recorded as such.
    fake.reply(Reply::Error(429, "ThrottlingException"));
    let twiml = say(&app, 3, CONTACT, "and sunday?").await;
    assert!(twiml.contains("Our assistant is away"), "{twiml}");
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM bot_turns ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(outcome, "throttled");
    app.stop().await;
}
