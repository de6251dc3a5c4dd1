//! The cloud bot adapters (`wadash::bots::cloud::connect`) with the official SDKs pointed at
//! the local fakes of tests/api/bot_fakes.rs: what the SDKs send (path, SigV4, service-account
//! JWT), how answers map to `BotAnswer` and failures to `BotError` kinds, and the caller's
//! time budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wadash::bots::cloud::{ask_within, connect};
use wadash::bots::{Bot, BotError, BotKind, BotMessage, BotSignal, BotTurn};
use wadash::domain::bot::{BotConfig, ChoiceOption, CxConfig, EsConfig, LexConfig};

use crate::bot_fakes::{
    LexExpect, Reply, TestKey, cx_answer, cx_turn, dialogflow_fake, es_answer, es_turn, lex_answer,
    lex_closed, lex_fake, service_account_json,
};

/// A budget far below the fakes' slow answers and far above a local answer.
const BUDGET: Duration = Duration::from_millis(1500);
/// How long the slow fakes wait before answering.
const SLOW: Duration = Duration::from_secs(20);

fn turn(session: &str, text: &str) -> BotTurn {
    BotTurn {
        session_id: session.into(),
        text: text.into(),
    }
}

fn lex_config(e: &LexExpect, secret: &str) -> BotConfig {
    BotConfig::LexV2(LexConfig {
        bot_id: e.bot_id.clone(),
        bot_alias_id: e.bot_alias_id.clone(),
        locale_id: e.locale_id.clone(),
        region: e.region.clone(),
        access_key_id: Some(e.access_key_id.clone()),
        secret_access_key: Some(secret.into()),
    })
}

/// The caller's budget is the whole cost of a slow turn: the answer is a timeout well before
/// the service answers (bounds generous for a busy CI box).
async fn assert_budget_holds(bot: &Arc<dyn Bot>) {
    let started = Instant::now();
    let err = ask_within(bot.as_ref(), &turn("slow-1", "hello"), BUDGET)
        .await
        .unwrap_err();
    assert_eq!(err, BotError::Timeout(BUDGET));
    assert!(
        started.elapsed() < SLOW / 2,
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn lex_signs_recognize_text_and_its_answer_maps_to_messages_intent_and_slots() {
    let e = LexExpect::test();
    let fake = lex_fake(e.clone(), Reply::Json(lex_answer("contact-1"))).await;
    let bot = connect(&lex_config(&e, &e.secret_access_key), Some(&fake.uri()))
        .await
        .unwrap();
    assert_eq!(bot.kind(), BotKind::LexV2);

    let answer = bot.ask(&turn("contact-1", "I want a pizza")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].check, Ok(()));
    assert_eq!(
        seen[0].path,
        "/bots/BOT0TEST01/botAliases/ALIAS0TEST/botLocales/en_US/sessions/contact-1/text"
    );
    assert_eq!(seen[0].body["text"], "I want a pizza");

    assert_eq!(
        answer.messages,
        vec![
            BotMessage::Text {
                body: "What size would you like?".into()
            },
            BotMessage::Media {
                url: "https://example.com/sizes.png".into(),
                caption: Some("Pizza sizes".into())
            },
            BotMessage::Choices {
                body: "Pizza sizes\nAll prices include tax".into(),
                // A tap sends Lex the button's value.
                options: vec![
                    ChoiceOption::with_value("Small", "small"),
                    ChoiceOption::with_value("Large", "large")
                ]
            },
        ]
    );
    assert_eq!(answer.intent.as_deref(), Some("OrderPizza"));
    assert_eq!(answer.confidence, Some(0.91));
    assert_eq!(
        answer.parameters["Crust"],
        json!({"originalValue": "thin one", "interpretedValue": "thin", "resolvedValues": ["thin"]})
    );
    // Lex's `"Size": null` (an unfilled slot) does not break the SDK's reading.
    assert_eq!(answer.parameters.get("Size"), None);
    assert_eq!(answer.signal, BotSignal::Continue);

    fake.reply(Reply::Json(lex_closed(
        "contact-1",
        "FallbackIntent",
        "Sorry?",
    )));
    let answer = bot.ask(&turn("contact-1", "blah")).await.unwrap();
    assert_eq!(answer.signal, BotSignal::Fallback);
    fake.reply(Reply::Json(lex_closed(
        "contact-1",
        "TalkToAgent",
        "Connecting you",
    )));
    let answer = bot.ask(&turn("contact-1", "agent please")).await.unwrap();
    assert_eq!(answer.signal, BotSignal::Handoff("lex_close".into()));
    assert_eq!(
        answer.messages,
        vec![BotMessage::Text {
            body: "Connecting you".into()
        }]
    );
}

#[tokio::test]
async fn lex_with_a_wrong_secret_fails_the_signature_check_and_is_an_auth_error() {
    let e = LexExpect::test();
    let fake = lex_fake(e.clone(), Reply::Json(lex_answer("s"))).await;
    let bot = connect(&lex_config(&e, "not-the-secret"), Some(&fake.uri()))
        .await
        .unwrap();
    let err = bot.ask(&turn("s", "hi")).await.unwrap_err();
    assert!(matches!(err, BotError::Auth(_)), "{err:?}");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "an auth error is not retried");
    assert_eq!(
        seen[0].check,
        Err("the SigV4 signature does not match".to_string())
    );
}

#[tokio::test]
async fn lex_failures_map_to_kinds_with_at_most_one_retry_and_the_budget_holds() {
    let e = LexExpect::test();
    let fake = lex_fake(e.clone(), Reply::Error(429, "ThrottlingException")).await;
    let bot = connect(&lex_config(&e, &e.secret_access_key), Some(&fake.uri()))
        .await
        .unwrap();

    let err = bot.ask(&turn("s", "hi")).await.unwrap_err();
    assert!(matches!(err, BotError::Throttled(_)), "{err:?}");
    assert_eq!(fake.seen().len(), 2, "one retry at most");
    assert!(fake.seen().iter().all(|s| s.check.is_ok()));

    for (reply, retried, kind) in [
        (Reply::Error(500, "InternalServerException"), true, "failed"),
        (Reply::Error(502, "BadGatewayException"), true, "failed"),
        (Reply::Error(403, "AccessDeniedException"), false, "auth"),
        (Reply::Error(400, "ValidationException"), false, "failed"),
        (
            Reply::Raw(200, "{\"messages\": [{\"contentType\": "),
            false,
            "malformed",
        ),
        (Reply::Raw(200, "<html>gateway</html>"), false, "malformed"),
    ] {
        fake.clear();
        fake.reply(reply.clone());
        let err = bot.ask(&turn("s", "hi")).await.unwrap_err();
        assert_eq!(err.outcome(), kind, "{reply:?} gave {err:?}");
        assert_eq!(fake.seen().len(), if retried { 2 } else { 1 }, "{reply:?}");
    }

    fake.reply(Reply::Slow(SLOW, lex_answer("slow-1")));
    assert_budget_holds(&bot).await;
}

#[tokio::test]
async fn lex_with_half_a_key_pair_is_refused_and_demo_is_not_a_cloud_bot() {
    let e = LexExpect::test();
    let mut config = lex_config(&e, "x");
    if let BotConfig::LexV2(c) = &mut config {
        c.secret_access_key = None;
    }
    let err = connect(&config, None).await.unwrap_err();
    assert!(matches!(err, BotError::Auth(_)), "{err:?}");
    let err = connect(&BotConfig::Demo, None).await.unwrap_err();
    assert!(matches!(err, BotError::Failed(_)), "{err:?}");
}

fn cx_config(key: TestKey, environment: Option<&str>) -> BotConfig {
    BotConfig::DialogflowCx(CxConfig {
        project: "test-only-project".into(),
        location: "europe-west1".into(),
        agent: "agent-1".into(),
        environment: environment.map(str::to_owned),
        language: "en".into(),
        service_account_json: Some(service_account_json(key)),
    })
}

#[tokio::test]
async fn dialogflow_cx_sends_a_service_account_jwt_and_its_answer_maps_to_choices_media_and_signals()
 {
    let fake = dialogflow_fake(
        "/v3/projects/test-only-project/locations/europe-west1/agents/agent-1/environments/prod/sessions/",
        TestKey::A,
        Reply::Json(cx_answer()),
    )
    .await;
    let bot = connect(&cx_config(TestKey::A, Some("prod")), Some(&fake.uri()))
        .await
        .unwrap();
    assert_eq!(bot.kind(), BotKind::DialogflowCx);

    let answer = bot.ask(&turn("contact-2", "I want a pizza")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].check, Ok(()));
    assert!(
        seen[0].path.ends_with("/sessions/contact-2:detectIntent"),
        "{}",
        seen[0].path
    );
    assert_eq!(seen[0].body["queryInput"]["text"]["text"], "I want a pizza");
    assert_eq!(seen[0].body["queryInput"]["languageCode"], "en");

    assert_eq!(
        answer.messages,
        vec![
            BotMessage::Media {
                url: "https://example.com/crusts.jpg".into(),
                caption: Some("Crusts".into())
            },
            BotMessage::Choices {
                body: "Which crust?".into(),
                options: vec!["Thin".into(), "Deep pan".into()]
            },
        ]
    );
    assert_eq!(answer.intent.as_deref(), Some("order.pizza"));
    assert_eq!(answer.confidence, Some(0.83));
    assert_eq!(
        answer.parameters,
        json!({"size": "large", "toppings": ["ham", "olives"]})
    );
    assert_eq!(answer.signal, BotSignal::Continue);

    fake.reply(Reply::Json(cx_turn("NO_MATCH", false)));
    let answer = bot.ask(&turn("contact-2", "blah")).await.unwrap();
    assert_eq!(answer.signal, BotSignal::Fallback);
    assert_eq!(answer.intent, None);
    fake.reply(Reply::Json(cx_turn("INTENT", true)));
    let answer = bot.ask(&turn("contact-2", "bye")).await.unwrap();
    assert_eq!(answer.signal, BotSignal::Handoff("cx_end_session".into()));
    assert_eq!(
        answer.messages,
        vec![BotMessage::Text {
            body: "Goodbye".into()
        }]
    );
}

#[tokio::test]
async fn dialogflow_cx_failures_map_to_kinds_without_retrying_and_the_budget_holds() {
    let fake = dialogflow_fake(
        "/v3/projects/test-only-project/locations/europe-west1/agents/agent-1/sessions/",
        TestKey::A,
        Reply::Json(cx_answer()),
    )
    .await;
    // A key the fake does not know: its JWT does not verify.
    let bot = connect(&cx_config(TestKey::B, None), Some(&fake.uri()))
        .await
        .unwrap();
    let err = bot.ask(&turn("s", "hi")).await.unwrap_err();
    assert!(matches!(err, BotError::Auth(_)), "{err:?}");
    assert_eq!(
        fake.seen()[0].check,
        Err("the JWT signature does not verify with the service account's key".to_string())
    );

    let bot = connect(&cx_config(TestKey::A, None), Some(&fake.uri()))
        .await
        .unwrap();
    for (reply, kind) in [
        (Reply::Error(429, "RESOURCE_EXHAUSTED"), "throttled"),
        (Reply::Error(503, "UNAVAILABLE"), "failed"),
        (Reply::Error(500, "INTERNAL"), "failed"),
        (Reply::Error(403, "PERMISSION_DENIED"), "auth"),
        (
            Reply::Raw(200, "{\"queryResult\": {\"responseMessages\": 7}}"),
            "malformed",
        ),
        (Reply::Raw(200, "not json"), "malformed"),
    ] {
        fake.clear();
        fake.reply(reply.clone());
        let err = bot.ask(&turn("s", "hi")).await.unwrap_err();
        assert_eq!(err.outcome(), kind, "{reply:?} gave {err:?}");
        assert_eq!(
            fake.seen().len(),
            1,
            "{reply:?}: DetectIntent is not retried"
        );
        assert_eq!(fake.seen()[0].check, Ok(()));
    }

    fake.reply(Reply::Slow(SLOW, cx_answer()));
    assert_budget_holds(&bot).await;
}

#[tokio::test]
async fn dialogflow_cx_with_a_service_account_json_that_is_not_one_is_an_auth_error() {
    let mut config = cx_config(TestKey::A, None);
    if let BotConfig::DialogflowCx(c) = &mut config {
        c.service_account_json = Some("{\"type\": \"service_account\"}".into());
    }
    let err = connect(&config, Some("http://127.0.0.1:9"))
        .await
        .unwrap_err();
    assert!(matches!(err, BotError::Auth(_)), "{err:?}");
}

fn es_config(environment: Option<&str>) -> BotConfig {
    BotConfig::DialogflowEs(EsConfig {
        project: "test-only-project".into(),
        language: "en".into(),
        environment: environment.map(str::to_owned),
        service_account_json: Some(service_account_json(TestKey::A)),
    })
}

#[tokio::test]
async fn dialogflow_es_sends_a_service_account_jwt_and_its_answer_maps_to_messages_and_signals() {
    let fake = dialogflow_fake(
        "/v2/projects/test-only-project/agent/environments/draft/users/-/sessions/",
        TestKey::A,
        Reply::Json(es_answer()),
    )
    .await;
    let bot = connect(&es_config(Some("draft")), Some(&fake.uri()))
        .await
        .unwrap();
    assert_eq!(bot.kind(), BotKind::DialogflowEs);

    let answer = bot
        .ask(&turn("contact-3", "what do you have"))
        .await
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].check, Ok(()));
    assert_eq!(
        seen[0].body["queryInput"]["text"]["text"],
        "what do you have"
    );
    assert_eq!(seen[0].body["queryInput"]["text"]["languageCode"], "en");
    assert_eq!(
        answer.messages,
        vec![
            BotMessage::Text {
                body: "We have shoes.".into()
            },
            BotMessage::Choices {
                body: "Which colour?".into(),
                options: vec!["Red".into(), "Blue".into()]
            },
            BotMessage::Media {
                url: "https://example.com/runner.png".into(),
                caption: Some("Runner".into())
            },
            BotMessage::Choices {
                body: "Runner\nLight".into(),
                options: vec![ChoiceOption::with_value("Buy", "buy runner")]
            },
        ]
    );
    assert_eq!(answer.intent.as_deref(), Some("catalog.browse"));
    assert_eq!(answer.confidence, Some(0.75));
    assert_eq!(answer.parameters, json!({"category": "shoes"}));
    assert_eq!(answer.signal, BotSignal::Continue);

    for (reply, signal) in [
        (
            es_turn("Default Fallback Intent", true, false),
            BotSignal::Fallback,
        ),
        (
            es_turn("goodbye", false, true),
            BotSignal::Handoff("es_end_interaction".into()),
        ),
        (
            es_turn("talk to a human", false, false),
            BotSignal::Handoff("intent:talk to a human".into()),
        ),
    ] {
        fake.reply(Reply::Json(reply));
        let answer = bot.ask(&turn("contact-3", "x")).await.unwrap();
        assert_eq!(answer.signal, signal);
        assert_eq!(
            answer.messages,
            vec![BotMessage::Text {
                body: "Sorry?".into()
            }]
        );
    }

    fake.clear();
    fake.reply(Reply::Error(429, "RESOURCE_EXHAUSTED"));
    let err = bot.ask(&turn("contact-3", "x")).await.unwrap_err();
    assert!(matches!(err, BotError::Throttled(_)), "{err:?}");
    fake.reply(Reply::Raw(200, "[1, 2"));
    let err = bot.ask(&turn("contact-3", "x")).await.unwrap_err();
    assert!(matches!(err, BotError::Malformed(_)), "{err:?}");
    assert_eq!(fake.seen().len(), 2);
    fake.reply(Reply::Slow(SLOW, es_answer()));
    assert_budget_holds(&bot).await;
}

#[tokio::test]
async fn dialogflow_es_without_an_environment_uses_the_draft_agent_session() {
    let fake = dialogflow_fake(
        "/v2/projects/test-only-project/agent/sessions/",
        TestKey::A,
        Reply::Json(es_answer()),
    )
    .await;
    let bot = connect(&es_config(None), Some(&fake.uri())).await.unwrap();
    bot.ask(&turn("contact-4", "hi")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(
        seen[0].path,
        "/v2/projects/test-only-project/agent/sessions/contact-4:detectIntent"
    );
    assert_eq!(seen[0].check, Ok(()));
}

// ---------------------------------------------------------------------------------------
// The standard credential chains: a connection without a key pair / service-account JSON,
// through `wadash serve` processes of their own, since aws-config's default chain and
// google-cloud-auth's application-default credentials read the process environment (the
// test's own environment is not handed down: see `start_without_cloud_credentials`).

mod chains {
    use std::path::PathBuf;

    use serde_json::{Value, json};
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use wadash::domain::Role;

    use crate::bot_fakes::{
        LexExpect, Reply, TestKey, cx_answer, dialogflow_fake, es_answer, lex_answer, lex_fake,
        service_account_json,
    };
    use crate::helpers::{ADMIN_PASSWORD, Browser, ServeProcess, free_port};

    /// An empty home directory of the test's own, removed when dropped.
    struct Home(PathBuf);

    impl Home {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "wadash-chains-{}-{}",
                std::process::id(),
                free_port()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Home(dir)
        }

        fn file(&self, name: &str, text: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_string_lossy().into_owned()
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Serve {
        serve: ServeProcess,
        token: String,
        client: reqwest::Client,
    }

    /// `wadash serve` with `env` and none of the test process's cloud credentials; loopback
    /// endpoints allowed (the fakes); instance metadata off, so a chain that finds nothing
    /// ends at once instead of waiting for 169.254.169.254.
    async fn serve(opts: &PgConnectOptions, home: &Home, env: &[(&str, &str)]) -> Serve {
        let mut all = vec![
            ("WADASH_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ];
        all.extend_from_slice(env);
        let serve = ServeProcess::start_without_cloud_credentials(opts, &home.0, &all).await;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .unwrap();
        let token = wadash::storage::tokens::create(&pool, "test", Role::Admin)
            .await
            .unwrap()
            .1;
        pool.close().await;
        Serve {
            serve,
            token,
            client: reqwest::Client::new(),
        }
    }

    impl Serve {
        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            let resp = self
                .client
                .post(format!("{}/api/v1{path}", self.serve.base))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }

        /// Adds a bot (asserting 201) and returns its view.
        async fn bot(&self, body: Value) -> Value {
            let (status, bot) = self.post("/bots", body).await;
            assert_eq!(status, 201, "{bot}");
            bot
        }

        async fn test(&self, bot: &Value, text: &str) -> Value {
            let id = bot["id"].as_i64().unwrap();
            let (status, tested) = self
                .post(&format!("/bots/{id}/test"), json!({"text": text}))
                .await;
            assert_eq!(status, 200, "{tested}");
            tested
        }

        /// The admin page's line for `bot`.
        async fn page_line(&self, bot: &Value) -> String {
            let mut browser = Browser::new(&self.serve.base);
            assert_eq!(browser.login("admin", ADMIN_PASSWORD).await, 303);
            let (status, _, html) = browser.get("/admin/bots").await;
            assert_eq!(status, 200);
            let start = html
                .find(&format!("id=\"bot-{}\"", bot["id"]))
                .expect("the bot's article");
            html[start..]
                .lines()
                .find(|l| l.contains("timeout"))
                .unwrap_or_default()
                .to_owned()
        }
    }

    fn lex_without_keys(e: &LexExpect, endpoint: &str) -> Value {
        json!({"name": "Lex", "kind": "lex_v2", "endpoint": endpoint,
            "config": {"bot_id": e.bot_id, "bot_alias_id": e.bot_alias_id,
                "locale_id": e.locale_id, "region": e.region}})
    }

    #[sqlx::test(migrations = false)]
    async fn lex_without_a_key_pair_signs_with_the_aws_default_chain_from_the_environment(
        _: PgPoolOptions,
        opts: PgConnectOptions,
    ) {
        let e = LexExpect {
            session_token: Some("test-only-session-token/FwoGZXIvYXdzEJr".into()),
            ..LexExpect::test()
        };
        let fake = lex_fake(e.clone(), Reply::Json(lex_answer("x"))).await;
        let home = Home::new();
        let s = serve(
            &opts,
            &home,
            &[
                ("AWS_ACCESS_KEY_ID", &e.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", &e.secret_access_key),
                ("AWS_SESSION_TOKEN", e.session_token.as_deref().unwrap()),
            ],
        )
        .await;
        let bot = s.bot(lex_without_keys(&e, &fake.uri())).await;
        assert_eq!(bot["credentials"], "AWS default chain", "{bot}");
        assert_eq!(bot["secrets_set"], json!([]), "{bot}");
        assert!(
            s.page_line(&bot)
                .await
                .contains("credentials: AWS default chain")
        );

        let tested = s.test(&bot, "I want a pizza").await;
        assert_eq!(tested["intent"], "OrderPizza", "{tested}");
        let seen = fake.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        // Signed with the environment's key pair, the session token in a signed header.
        assert_eq!(seen[0].check, Ok(()), "{seen:?}");
    }

    #[sqlx::test(migrations = false)]
    async fn lex_without_a_key_pair_signs_with_a_profile_of_the_shared_credentials_file(
        _: PgPoolOptions,
        opts: PgConnectOptions,
    ) {
        let e = LexExpect::test();
        let fake = lex_fake(e.clone(), Reply::Json(lex_answer("x"))).await;
        let home = Home::new();
        let credentials = home.file(
            "aws-credentials",
            &format!(
                "[default]\naws_access_key_id = AKIDNOTTHISONE000\naws_secret_access_key = wrong\n\n\
                 [wadash-bots]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                e.access_key_id, e.secret_access_key
            ),
        );
        let s = serve(
            &opts,
            &home,
            &[
                ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
                ("AWS_PROFILE", "wadash-bots"),
                ("WADASH_SECRET_KEY", &"5a".repeat(32)),
            ],
        )
        .await;
        let bot = s.bot(lex_without_keys(&e, &fake.uri())).await;
        assert_eq!(bot["credentials"], "AWS default chain", "{bot}");
        let tested = s.test(&bot, "I want a pizza").await;
        assert_eq!(tested["intent"], "OrderPizza", "{tested}");
        let seen = fake.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        // The profile's key pair, and no session token header (the fake refuses one).
        assert_eq!(seen[0].check, Ok(()), "{seen:?}");

        // A key pair entered with the connection wins over the chain, and says so.
        let entered = s
            .bot(
                json!({"name": "Lex keyed", "kind": "lex_v2", "endpoint": fake.uri(),
                "config": {"bot_id": e.bot_id, "bot_alias_id": e.bot_alias_id,
                    "locale_id": e.locale_id, "region": e.region,
                    "access_key_id": "AKIDENTERED0000", "secret_access_key": "entered"}}),
            )
            .await;
        assert_eq!(entered["credentials"], "access key entered", "{entered}");
    }

    #[sqlx::test(migrations = false)]
    async fn lex_with_an_aws_default_chain_that_finds_nothing_says_what_it_looked_at_and_no_secret(
        _: PgPoolOptions,
        opts: PgConnectOptions,
    ) {
        let e = LexExpect::test();
        let fake = lex_fake(e.clone(), Reply::Json(lex_answer("x"))).await;
        let home = Home::new();
        // Half a pair in the environment is no credentials; its secret is never repeated.
        let secret = "test-only-half-pair-secret-0000";
        let s = serve(&opts, &home, &[("AWS_SECRET_ACCESS_KEY", secret)]).await;
        let bot = s.bot(lex_without_keys(&e, &fake.uri())).await;
        let tested = s.test(&bot, "hello").await;
        assert_eq!(tested["error"], "auth", "{tested}");
        let message = tested["message"].as_str().unwrap();
        for said in [
            "AWS default credential chain found no credentials",
            "AWS_ACCESS_KEY_ID not set",
            "AWS_SECRET_ACCESS_KEY set",
            "profile \"default\"",
            "/.aws/credentials",
            "EC2 instance metadata",
        ] {
            assert!(message.contains(said), "{said:?} in {message}");
        }
        assert!(!message.contains(secret), "{message}");
        assert!(fake.seen().is_empty(), "nothing is sent unsigned");
    }

    #[sqlx::test(migrations = false)]
    async fn dialogflow_without_a_key_uses_application_default_credentials_from_the_environment(
        _: PgPoolOptions,
        opts: PgConnectOptions,
    ) {
        let cx = dialogflow_fake(
            "/v3/projects/test-only-project/locations/global/agents/agent-1/sessions/",
            TestKey::B,
            Reply::Json(cx_answer()),
        )
        .await;
        let es = dialogflow_fake(
            "/v2/projects/test-only-project/agent/sessions/",
            TestKey::B,
            Reply::Json(es_answer()),
        )
        .await;
        let home = Home::new();
        let key_file = home.file("sa.json", &service_account_json(TestKey::B));
        let s = serve(
            &opts,
            &home,
            &[("GOOGLE_APPLICATION_CREDENTIALS", &key_file)],
        )
        .await;
        let cx_bot = s
            .bot(
                json!({"name": "CX", "kind": "dialogflow_cx", "endpoint": cx.uri(),
                "config": {"project": "test-only-project", "location": "global",
                    "agent": "agent-1", "language": "en"}}),
            )
            .await;
        let es_bot = s
            .bot(
                json!({"name": "ES", "kind": "dialogflow_es", "endpoint": es.uri(),
                "config": {"project": "test-only-project", "language": "en"}}),
            )
            .await;
        for bot in [&cx_bot, &es_bot] {
            assert_eq!(
                bot["credentials"], "application default credentials",
                "{bot}"
            );
        }
        assert!(
            s.page_line(&cx_bot)
                .await
                .contains("credentials: application default credentials")
        );

        let tested = s.test(&cx_bot, "I want a pizza").await;
        assert_eq!(tested["intent"], "order.pizza", "{tested}");
        let tested = s.test(&es_bot, "what do you have").await;
        assert_eq!(tested["intent"], "catalog.browse", "{tested}");
        for fake in [&cx, &es] {
            let seen = fake.seen();
            assert_eq!(seen.len(), 1, "{seen:?}");
            // A bearer JWT signed with the key of the file GOOGLE_APPLICATION_CREDENTIALS
            // names (key B: not the key the other tests paste).
            assert_eq!(seen[0].check, Ok(()), "{seen:?}");
        }
    }

    #[sqlx::test(migrations = false)]
    async fn dialogflow_with_application_default_credentials_that_find_nothing_says_where_it_looked(
        _: PgPoolOptions,
        opts: PgConnectOptions,
    ) {
        let cx = dialogflow_fake(
            "/v3/projects/test-only-project/locations/global/agents/agent-1/sessions/",
            TestKey::A,
            Reply::Json(cx_answer()),
        )
        .await;
        let home = Home::new();
        let missing = home.0.join("no-such-key.json");
        let missing = missing.to_string_lossy();
        let s = serve(
            &opts,
            &home,
            &[("GOOGLE_APPLICATION_CREDENTIALS", &missing)],
        )
        .await;
        let bot = s
            .bot(
                json!({"name": "CX", "kind": "dialogflow_cx", "endpoint": cx.uri(),
                "config": {"project": "test-only-project", "location": "global",
                    "agent": "agent-1", "language": "en"}}),
            )
            .await;
        let tested = s.test(&bot, "hello").await;
        assert_eq!(tested["error"], "auth", "{tested}");
        let message = tested["message"].as_str().unwrap();
        assert!(
            message.contains("application default credentials found none")
                && message.contains(&format!("GOOGLE_APPLICATION_CREDENTIALS ({missing})")),
            "{message}"
        );
        assert!(cx.seen().is_empty());
    }
}
