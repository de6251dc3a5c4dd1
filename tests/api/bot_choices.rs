//! A bot's question with choices through `/wa`: sent through the REST client as a WhatsApp
//! quick reply (or list) with a Content created once per question and cached, a tap reaching
//! the bot as the option's value, and numbered text when the choices do not fit or the
//! Content cannot be created. Against the built-in simulator (Content API included), a Lex
//! fake, and a Twilio double whose Content API fails.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::bots::{EMPTY, SANDBOX, demo_bot, inbound, lex_bot, say, spawn};
use crate::helpers::{AUTH_TOKEN, TestApp, params};

const MENU: [&str; 3] = ["Opening hours", "Order status", "Talk to a person"];

/// A bot reply as sent: (reply id, body, content SID, choice error, message SID).
type SentReply = (i64, Option<String>, Option<String>, Option<String>, String);

/// The bot replies to `contact`, once `n` of them are linked to the message they became.
async fn bot_replies(app: &TestApp, contact: &str, n: usize) -> Vec<SentReply> {
    let rows = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let rows: Vec<SentReply> = sqlx::query_as(
                "SELECT id, body, content_sid, choice_error, message_sid FROM auto_replies \
                     WHERE reason = 'bot' AND to_addr = $1 AND message_sid IS NOT NULL ORDER BY id",
            )
            .bind(format!("whatsapp:{contact}"))
            .fetch_all(&app.pool)
            .await
            .unwrap();
            if rows.len() >= n {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    rows.unwrap_or_else(|_| panic!("{n} bot replies to {contact} were not sent"))
}

/// A Content as the simulator keeps it.
async fn sim_content(app: &TestApp, sid: &str) -> Value {
    let account = app.twilio.account_sid();
    reqwest::Client::new()
        .get(format!("{}/v1/Content/{sid}", app.twilio.base()))
        .basic_auth(account, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// How many Contents the simulated account has (three samples from the start).
async fn sim_contents(app: &TestApp) -> usize {
    let account = app.twilio.account_sid();
    let page: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/ContentAndApprovals?PageSize=1000",
            app.twilio.base()
        ))
        .basic_auth(account, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["contents"].as_array().unwrap().len()
}

/// A tap on button `payload` (`title`) of message `replied_to`.
fn tap(
    sid: &str,
    from: &str,
    payload: &str,
    title: &str,
    replied_to: &str,
) -> Vec<(String, String)> {
    let mut p = inbound(sid, from, title);
    p.extend(params(&[
        ("MessageType", "button"),
        ("ButtonPayload", payload),
        ("ButtonText", title),
        ("OriginalRepliedMessageSid", replied_to),
        ("OriginalRepliedMessageSender", SANDBOX),
    ]));
    p
}

#[sqlx::test(migrations = false)]
async fn the_demo_bots_menu_goes_as_quick_replies_created_once_and_a_tap_reaches_the_bot(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    demo_bot(
        &app,
        &admin,
        json!({"name": "Menu", "kind": "keyword", "pattern": "menu"}),
    )
    .await;
    const ASHA: &str = "+919900000301";
    let samples = sim_contents(&app).await;

    // The webhook answers empty: the menu goes through the REST client with a Content SID.
    assert_eq!(say(&app, 1, ASHA, "menu").await, EMPTY);
    let sent = bot_replies(&app, ASHA, 1).await;
    let (_, body, content_sid, error, message_sid) = sent[0].clone();
    let content_sid = content_sid.expect("sent with a Content");
    assert_eq!(error, None);
    let content = sim_content(&app, &content_sid).await;
    let actions = content["types"]["twilio/quick-reply"]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("a quick reply: {content}"));
    let titles: Vec<&str> = actions
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, MENU);
    assert_eq!(
        content["types"]["twilio/quick-reply"]["body"],
        "What can I help you with?"
    );
    assert_eq!(
        content["types"]["twilio/text"]["body"],
        "What can I help you with?\n1. Opening hours\n2. Order status\n3. Talk to a person"
    );
    // One outbound message, tracked like any other, showing the question and its choices.
    let (shown,): (Option<String>,) =
        sqlx::query_as("SELECT body FROM messages WHERE sid = $1 AND direction = 'outbound'")
            .bind(&message_sid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(shown, body);
    assert!(shown.unwrap().contains("1. Opening hours"));

    // The same question again reuses the Content: created once.
    assert_eq!(say(&app, 2, ASHA, "menu").await, EMPTY);
    let sent = bot_replies(&app, ASHA, 2).await;
    assert_eq!(sent[1].2.as_deref(), Some(content_sid.as_str()));
    assert_eq!(sim_contents(&app).await, samples + 1, "one Content created");
    assert_eq!(
        app.count("SELECT count(*) FROM bot_choice_contents").await,
        1
    );
    // An instance that created the Content at Twilio and died before noting its SID: the
    // instance that takes its claim over finds it by name instead of creating a second one.
    sqlx::query(
        "UPDATE bot_choice_contents SET content_sid = NULL, claimed_at = now() - interval '2 minutes'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(say(&app, 3, ASHA, "menu").await, EMPTY);
    let sent = bot_replies(&app, ASHA, 3).await;
    assert_eq!(sent[2].2.as_deref(), Some(content_sid.as_str()));
    assert_eq!(sim_contents(&app).await, samples + 1, "still one Content");

    // Not a template: the catalogue leaves it out.
    let content_client = app.twilio.content(app.twilio.base()).unwrap();
    wadash::templates::sync(&app.pool, &content_client)
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM templates").await,
        samples as i64
    );

    // A tap on "Opening hours" reaches the bot, whose answer comes back as TwiML.
    let tapped = format!("SM{:032x}", 0xc401);
    let resp = app
        .post_signed(
            "/wa",
            &tap(&tapped, ASHA, "bot-choice-1", "Opening hours", &sent[1].4),
        )
        .await;
    let twiml = resp.text().await.unwrap();
    assert!(twiml.contains("We are open Monday to Friday"), "{twiml}");
    let intent: Option<String> =
        sqlx::query_scalar("SELECT intent FROM bot_turns WHERE inbound_sid = $1")
            .bind(&tapped)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(intent.as_deref(), Some("opening_hours"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_simulators_recipient_taps_a_menu_button_and_the_bot_answers_the_tap(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn(opts, &[("sim_button_tap_share", "1")]).await;
    let admin = app.api_token(Role::Admin).await;
    demo_bot(
        &app,
        &admin,
        json!({"name": "Menu", "kind": "keyword", "pattern": "menu"}),
    )
    .await;
    const RAVI: &str = "+919900000302";
    assert_eq!(say(&app, 11, RAVI, "menu").await, EMPTY);
    // The simulated recipient taps one of the buttons once the menu is delivered; the tap
    // is a second bot turn, whose text is the option's.
    let intent = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let intents: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT intent FROM bot_turns WHERE outcome = 'answered' ORDER BY created_at",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap();
            if intents.len() >= 2 {
                break intents[1].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the simulated tap reached the bot");
    assert!(
        matches!(
            intent.as_deref(),
            Some("opening_hours" | "order_status" | "talk_to_human")
        ),
        "{intent:?}"
    );
    app.stop().await;
}

/// A Lex answer with a question and `options` as Dialogflow-style chips (a custom payload).
fn lex_chips(options: usize) -> Value {
    let chips: Vec<Value> = (1..=options)
        .map(|i| json!({"text": format!("Option {i}")}))
        .collect();
    let mut answer = crate::bot_fakes::lex_answer("s");
    answer["messages"] = json!([
        {"contentType": "PlainText", "content": "Which one?"},
        {"contentType": "CustomPayload",
         "content": json!({"richContent": [[{"type": "chips", "options": chips}]]}).to_string()}
    ]);
    answer
}

#[sqlx::test(migrations = false)]
async fn a_lex_card_with_two_buttons_becomes_media_and_quick_replies_and_eleven_options_numbered_text(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::bot_fakes::{LexExpect, Reply, lex_answer, lex_closed, lex_fake};
    let app = spawn(opts, &[]).await;
    let admin = app.api_token(Role::Admin).await;
    let fake = lex_fake(LexExpect::test(), Reply::Json(lex_answer("s"))).await;
    lex_bot(&app, &admin, &fake).await;
    const CONTACT: &str = "+919900000303";

    // Text, the card's image, and its question with two buttons: in order, through the REST
    // client.
    assert_eq!(say(&app, 21, CONTACT, "I want a pizza").await, EMPTY);
    let sent = bot_replies(&app, CONTACT, 3).await;
    let media: Vec<(Option<String>, i32)> = sqlx::query_as(
        "SELECT m.body, m.num_media FROM auto_replies r JOIN messages m ON m.sid = r.message_sid \
         WHERE r.to_addr = $1 ORDER BY r.id",
    )
    .bind(format!("whatsapp:{CONTACT}"))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(media[0].0.as_deref(), Some("What size would you like?"));
    assert_eq!(
        media[1],
        (Some("Pizza sizes".into()), 1),
        "the card's image"
    );
    let content_sid = sent[2].2.clone().expect("the buttons as a quick reply");
    let content = sim_content(&app, &content_sid).await;
    assert_eq!(
        content["types"]["twilio/quick-reply"]["actions"],
        json!([{"title": "Small", "id": "bot-choice-1"}, {"title": "Large", "id": "bot-choice-2"}])
    );

    // A tap on "Small" sends Lex the button's value, "small".
    fake.clear();
    fake.reply(Reply::Json(lex_closed(
        "s",
        "OrderPizza",
        "A small one it is.",
    )));
    let tapped = format!("SM{:032x}", 0xc421);
    let twiml = app
        .post_signed(
            "/wa",
            &tap(&tapped, CONTACT, "bot-choice-1", "Small", &sent[2].4),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(twiml.contains("A small one it is."), "{twiml}");
    assert_eq!(fake.seen()[0].body["text"], "small");

    // Eleven options fit neither quick replies nor a list: numbered text, no Content. (The
    // fifth reply: the fourth answered the tap.)
    fake.reply(Reply::Json(lex_chips(11)));
    assert_eq!(say(&app, 22, CONTACT, "show me everything").await, EMPTY);
    let sent = bot_replies(&app, CONTACT, 5).await;
    let (_, body, content_sid, error, _) = &sent[4];
    assert_eq!((content_sid, error), (&None, &None));
    let body = body.as_deref().unwrap();
    assert!(body.starts_with("Which one?\n1. Option 1\n"), "{body}");
    assert!(body.ends_with("\n11. Option 11"), "{body}");
    // Four to ten options are a list picker.
    fake.reply(Reply::Json(lex_chips(4)));
    assert_eq!(say(&app, 23, CONTACT, "a few").await, EMPTY);
    let sent = bot_replies(&app, CONTACT, 6).await;
    let content = sim_content(&app, sent[5].2.as_deref().expect("a list")).await;
    assert_eq!(
        content["types"]["twilio/list-picker"]["items"][3],
        json!({"item": "Option 4", "id": "bot-choice-4"})
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn when_twilio_cannot_create_the_content_the_choices_still_go_as_numbered_text(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/Content"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 20001, "message": "Invalid types", "status": 400})),
        )
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Messages\.json$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM0000000000000000000000000000c501", "status": "queued",
            "to": "whatsapp:+919900000304", "from": SANDBOX})))
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let app = spawn(
        opts,
        &[
            ("twilio_account_sid", "AC00000000000000000000000000000000"),
            ("twilio_api_base", uri.as_str()),
            ("twilio_content_base", uri.as_str()),
        ],
    )
    .await;
    let admin = app.api_token(Role::Admin).await;
    demo_bot(
        &app,
        &admin,
        json!({"name": "Menu", "kind": "keyword", "pattern": "menu"}),
    )
    .await;
    const CONTACT: &str = "+919900000304";
    assert_eq!(say(&app, 31, CONTACT, "menu").await, EMPTY);
    let sent = bot_replies(&app, CONTACT, 1).await;
    let (_, _, content_sid, error, _) = &sent[0];
    assert_eq!(content_sid, &None);
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .contains("Invalid types"),
        "the failure is recorded: {error:?}"
    );
    let requests = twilio.received_requests().await.unwrap();
    let creates = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/Content")
        .count();
    assert_eq!(creates, 1);
    let message = requests
        .iter()
        .find(|r| r.url.path().ends_with("/Messages.json"))
        .expect("the answer was sent");
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&message.body).unwrap();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("ContentSid"), None);
    assert_eq!(
        get("Body"),
        Some("What can I help you with?\n1. Opening hours\n2. Order status\n3. Talk to a person")
    );
    // The failed claim was released: the next menu tries again.
    assert_eq!(
        app.count("SELECT count(*) FROM bot_choice_contents").await,
        0
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_question_is_claimed_by_one_caller_at_a_time_and_a_dead_claim_is_taken_over(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use wadash::storage::choice_contents::{Claim, claim, fill, release};
    let app = TestApp::spawn(opts).await;
    let types = json!({"twilio/text": {"body": "x"}});
    let ask = |key: &'static str, stale: f64| {
        let pool = app.pool.clone();
        let types = types.clone();
        async move {
            claim(&pool, key, "AC1", "quick_reply", &types, stale)
                .await
                .unwrap()
        }
    };
    // Eight callers at once (as from several instances): exactly one creates.
    let all = futures_util::future::join_all((0..8).map(|_| ask("k1", 60.0))).await;
    assert_eq!(
        all.iter()
            .filter(|c| **c == Claim::Mine { taken_over: false })
            .count(),
        1,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|c| **c == Claim::Busy).count(),
        7,
        "{all:?}"
    );
    fill(&app.pool, "k1", "HX00000000000000000000000000000001")
        .await
        .unwrap();
    assert_eq!(
        ask("k1", 60.0).await,
        Claim::Ready("HX00000000000000000000000000000001".into())
    );
    // A released claim can be taken again; a filled one is never released.
    assert_eq!(ask("k2", 60.0).await, Claim::Mine { taken_over: false });
    release(&app.pool, "k2").await.unwrap();
    assert_eq!(ask("k2", 60.0).await, Claim::Mine { taken_over: false });
    release(&app.pool, "k1").await.unwrap();
    assert!(matches!(ask("k1", 60.0).await, Claim::Ready(_)));
    // An unfilled claim older than the stale time belongs to a dead instance.
    assert_eq!(ask("k2", 60.0).await, Claim::Busy);
    sqlx::query(
        "UPDATE bot_choice_contents SET claimed_at = now() - interval '2 minutes' WHERE key = 'k2'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(ask("k2", 60.0).await, Claim::Mine { taken_over: true });
    assert_eq!(ask("k2", 60.0).await, Claim::Busy);
    app.stop().await;
}
