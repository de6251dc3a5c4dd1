//! Registering a WhatsApp number at Twilio (issue 21): the API against the simulator
//! (register → a wrong code refused in words with Twilio's code → the right one → online → a
//! message sent from it), against wiremock playing Twilio (bad input refused naming its field
//! with nothing sent, two admins at once, Twilio failing mid-way then resumed, the
//! first-sender Self Sign-up refusal), a registration closed by the sender sync when nobody
//! came back to the wizard, and the whole wizard in a headless browser.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, call};

const SID: &str = "XE0123456789abcdef0123456789abcdef";

fn body(number: &str) -> Value {
    json!({"number": number, "waba_id": "104567891234567", "verification_method": "sms",
        "profile": {"name": "Owl Air", "about": "Flights and bookings",
            "vertical": "Travel and Transportation", "logo_url": "https://owl.example/logo.png",
            "websites": ["https://owl.example"], "emails": ["help@owl.example"]}})
}

/// Polls `POST /senders/{id}/check` until Twilio's status is `want` (generous bound).
async fn until_status(app: &TestApp, token: &str, id: i64, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, b) = call(app, "POST", &format!("/senders/{id}/check"), token, None).await;
        assert_eq!(status, 200, "{b}");
        if b["twilio_status"] == want {
            return b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not {want} within 30 s: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_number_registered_through_the_api_is_verified_goes_online_and_sends(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sender_step_ms".into(), "200".into());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let operator = app.api_token(Role::Operator).await;
    let (status, _) = call(
        &app,
        "POST",
        "/senders/register",
        &operator,
        Some(body("+15550001111")),
    )
    .await;
    assert_eq!(status, 403, "registering is for admins");

    let (status, reg) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550001111")),
    )
    .await;
    assert_eq!(status, 202, "{reg}");
    let id = reg["id"].as_i64().unwrap();
    let sid = reg["twilio_sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("XE"), "{reg}");
    assert_eq!(reg["twilio_status"], "CREATING");
    // wadash set the webhooks itself; the sender waits, pending, linked to Twilio's SID.
    let row: (String, String, String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT address, kind, status, callback_url, status_callback_url FROM senders WHERE twilio_sid = $1",
    )
    .bind(&sid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (row.0.as_str(), row.1.as_str(), row.2.as_str()),
        ("whatsapp:+15550001111", "number", "pending")
    );
    assert_eq!(row.3, Some(format!("{}/wa", app.address)));
    assert_eq!(row.4, Some(format!("{}/sts", app.address)));
    let (status, refused) = call(
        &app,
        "POST",
        "/messages",
        &operator,
        Some(json!({"to": "+919900000000", "body": "too early", "from": "whatsapp:+15550001111"})),
    )
    .await;
    assert!(status >= 400, "a pending sender does not send: {refused}");

    until_status(&app, &admin, id, "PENDING_VERIFICATION").await;
    let (status, short) = call(
        &app,
        "POST",
        &format!("/senders/{id}/verify"),
        &admin,
        Some(json!({"code": "12345"})),
    )
    .await;
    assert_eq!(
        (status, short["error"]["code"].as_str()),
        (422, Some("invalid_code")),
        "{short}"
    );
    assert!(
        short["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("code:"),
        "{short}"
    );

    let right = wadash::twilio::simulator::verification_code(&sid);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let (status, refused) = call(
        &app,
        "POST",
        &format!("/senders/{id}/verify"),
        &admin,
        Some(json!({"code": wrong})),
    )
    .await;
    assert_eq!(status, 502, "{refused}");
    assert_eq!(refused["error"]["code"], "twilio_error");
    let words = refused["error"]["message"].as_str().unwrap();
    assert!(
        words.contains("63101") && words.contains("verification code is incorrect"),
        "{words}"
    );

    let (status, resent) = call(
        &app,
        "POST",
        &format!("/senders/{id}/verify/resend"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, resent["twilio_status"].as_str()),
        (202, Some("PENDING_VERIFICATION")),
        "{resent}"
    );

    let (status, verified) = call(
        &app,
        "POST",
        &format!("/senders/{id}/verify"),
        &admin,
        Some(json!({"code": right})),
    )
    .await;
    assert_eq!(status, 202, "{verified}");
    assert_eq!(verified["twilio_status"], "VERIFYING");
    let online = until_status(&app, &admin, id, "ONLINE").await;
    assert_eq!(online["sender_status"], "active", "{online}");
    let step: String = sqlx::query_scalar("SELECT step FROM sender_registrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(step, "online");
    let (status, again) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550001111")),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("sender_exists")),
        "{again}"
    );

    let (status, sent) = call(
        &app,
        "POST",
        "/messages",
        &operator,
        Some(json!({"to": "+919900000000", "body": "hello from our new number", "from": "whatsapp:+15550001111"})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let from: String = sqlx::query_scalar("SELECT from_addr FROM messages WHERE sid = $1")
        .bind(sent["sid"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(from, "whatsapp:+15550001111");
    app.stop().await;
}

/// wadash in live mode, its Messaging API at `server`.
async fn live(opts: PgConnectOptions, server: &MockServer) -> TestApp {
    let uri = server.uri();
    TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), uri.clone());
        v.insert("twilio_messaging_base".into(), uri);
    })
    .await
}

fn created(number: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({"sid": SID, "status": "CREATING",
        "sender_id": format!("whatsapp:{number}"), "configuration": {"waba_id": "104567891234567"},
        "webhook": null, "profile": {"name": "Owl Air"}, "properties": null, "offline_reasons": null}))
}

#[sqlx::test(migrations = false)]
async fn bad_input_is_refused_naming_its_field_and_nothing_reaches_twilio(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created("+15550002222"))
        .expect(0)
        .mount(&server)
        .await;
    let app = live(opts, &server).await;
    let admin = app.api_token(Role::Admin).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = body("+15550002222");
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Value)> = vec![
        ("number", with(&|b| b["number"] = json!("15550002222"))),
        ("number", with(&|b| b["number"] = json!("+1 555 CALL NOW"))),
        ("waba_id", with(&|b| b["waba_id"] = json!("WABA-1"))),
        ("waba_id", with(&|b| b["waba_id"] = json!("123"))),
        (
            "verification_method",
            with(&|b| b["verification_method"] = json!("fax")),
        ),
        ("profile.name", with(&|b| b["profile"]["name"] = json!(" "))),
        (
            "profile.about",
            with(&|b| b["profile"]["about"] = json!("a".repeat(140))),
        ),
        (
            "profile.vertical",
            with(&|b| b["profile"]["vertical"] = json!("Airline")),
        ),
        (
            "profile.logo_url",
            with(&|b| b["profile"]["logo_url"] = json!("http://owl.example/l.png")),
        ),
        (
            "profile.websites[0]",
            with(&|b| b["profile"]["websites"] = json!(["owl.example"])),
        ),
        (
            "profile.emails[0]",
            with(&|b| b["profile"]["emails"] = json!(["help at owl"])),
        ),
    ];
    for (field, b) in cases {
        let (status, refused) = call(&app, "POST", "/senders/register", &admin, Some(b)).await;
        assert_eq!(status, 422, "{field}: {refused}");
        assert_eq!(
            refused["error"]["code"], "invalid_registration",
            "{refused}"
        );
        let m = refused["error"]["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
    }
    let (status, refused) = call(
        &app,
        "POST",
        "/senders/1/verify",
        &admin,
        Some(json!({"code": "12a456"})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("invalid_code"))
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sender_registrations").await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM senders WHERE twilio_sid IS NOT NULL")
            .await,
        0
    );
    app.stop().await;
    server.verify().await;
}

#[sqlx::test(migrations = false)]
async fn of_two_admins_registering_one_number_at_once_one_wins_and_the_other_gets_409(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(created("+15550003333").set_delay(Duration::from_millis(500)))
        .expect(1)
        .mount(&server)
        .await;
    let app = live(opts, &server).await;
    let (a, b) = (
        app.api_token(Role::Admin).await,
        app.api_token(Role::Admin).await,
    );
    let ((s1, b1), (s2, b2)) = tokio::join!(
        call(
            &app,
            "POST",
            "/senders/register",
            &a,
            Some(body("+15550003333"))
        ),
        call(
            &app,
            "POST",
            "/senders/register",
            &b,
            Some(body("+15550003333"))
        ),
    );
    let mut statuses = [s1, s2];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{b1} {b2}");
    let lost = if s1 == 409 { b1 } else { b2 };
    assert_eq!(lost["error"]["code"], "registration_exists", "{lost}");
    // Afterwards too, while the registration is open.
    let (status, _) = call(
        &app,
        "POST",
        "/senders/register",
        &a,
        Some(body("+15550003333")),
    )
    .await;
    assert_eq!(status, 409);
    // The wizard is for admins.
    let mut operator = app.browser_as("olga", Role::Operator).await;
    assert_eq!(operator.get("/admin/senders/new").await.0, 403);
    // And in the wizard, at its first step.
    let mut browser = app.admin_browser().await;
    let csrf = browser.csrf().await;
    let (status, _, page) = browser
        .post(
            "/admin/senders/new",
            &[
                ("csrf", &csrf),
                ("number", "+1 555 000 3333"),
                ("waba_id", "104567891234567"),
                ("verification_method", "sms"),
            ],
        )
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("id=\"taken-link\""), "{page}");
    assert_eq!(
        app.count("SELECT count(*) FROM sender_registrations").await,
        1
    );
    app.stop().await;
    server.verify().await;
}

#[sqlx::test(migrations = false)]
async fn a_registration_stopped_by_twilio_failing_is_resumed_where_it_stopped(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(
                json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
            ),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    let app = live(opts, &server).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, failed) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550004444")),
    )
    .await;
    assert_eq!(
        (status, failed["error"]["code"].as_str()),
        (502, Some("twilio_unavailable")),
        "{failed}"
    );
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resumed"),
        "{failed}"
    );
    // Posting the same number again resumes that registration (no second one, no 409).
    let (status, again) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550004444")),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (502, Some("twilio_unavailable")),
        "{again}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sender_registrations").await,
        1
    );
    let kept: (String, Option<String>) =
        sqlx::query_as("SELECT step, last_error FROM sender_registrations")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept.0, "draft");
    assert!(kept.1.unwrap().contains("20503"));
    assert_eq!(
        app.count("SELECT count(*) FROM senders WHERE twilio_sid IS NOT NULL")
            .await,
        0
    );

    // Twilio is back: the wizard shows the stopped registration at its profile step with what
    // was typed and why it stopped, and submitting it again creates the sender.
    Mock::given(method("POST"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(created("+15550004444"))
        .expect(1)
        .mount(&server)
        .await;
    let mut browser = app.admin_browser().await;
    let (_, _, first) = browser.get("/admin/senders/new").await;
    assert!(first.contains("+15550004444"), "offered to resume: {first}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM sender_registrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _, page) = browser.get(&format!("/admin/senders/new/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("20503") && page.contains("value=\"Owl Air\""),
        "{page}"
    );
    let csrf = browser.csrf().await;
    let (status, location, page) = browser
        .post(
            &format!("/admin/senders/new/{id}/profile"),
            &[
                ("csrf", &csrf),
                ("name", "Owl Air"),
                ("vertical", "Travel and Transportation"),
            ],
        )
        .await;
    assert_eq!(
        (status, location),
        (303, Some(format!("/admin/senders/new/{id}"))),
        "{page}"
    );
    let done: (String, String) = sqlx::query_as(
        "SELECT r.step, s.twilio_sid FROM sender_registrations r JOIN senders s ON s.id = r.sender_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(done, ("submitted".to_owned(), SID.to_owned()));
    // Submitted twice (the back button): back to where it is, nothing sent again.
    let (status, location, _) = browser
        .post(
            &format!("/admin/senders/new/{id}/profile"),
            &[("csrf", &csrf), ("name", "Owl Air")],
        )
        .await;
    assert_eq!(
        (status, location),
        (303, Some(format!("/admin/senders/new/{id}")))
    );
    app.stop().await;
    server.verify().await;
}

/// Every Senders API call the registration makes, against Prism serving Twilio's spec (which
/// answers 422 to a request that breaks it, and its example sender otherwise).
#[sqlx::test(migrations = false)]
async fn registering_verifying_resending_and_checking_satisfy_twilios_contract(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let prism = std::env::var("WADASH_TEST_PRISM_MESSAGING_URL").expect(
        "WADASH_TEST_PRISM_MESSAGING_URL is not set: run the suite with scripts/test, which starts Prism",
    );
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC0123456789abcdef0123456789abcdef".into(),
        );
        v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
        v.insert("twilio_messaging_base".into(), prism);
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let (status, reg) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550007777")),
    )
    .await;
    assert_eq!(status, 202, "Prism accepts the create: {reg}");
    let id = reg["id"].as_i64().unwrap();
    for (path, b) in [
        (
            format!("/senders/{id}/verify"),
            Some(json!({"code": "123456"})),
        ),
        (format!("/senders/{id}/verify/resend"), None),
        (format!("/senders/{id}/check"), None),
    ] {
        let (status, answer) = call(&app, "POST", &path, &admin, b).await;
        assert!(
            matches!(status, 200 | 202),
            "Prism accepts {path}: {answer}"
        );
        assert!(
            answer["twilio_sid"].as_str().unwrap().starts_with("XE"),
            "{answer}"
        );
    }
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn twilio_asking_for_self_sign_up_first_is_explained_with_the_console_link(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/Channels/Senders"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 63114,
            "message": "The first WhatsApp sender of this account must be registered through Self Sign-up",
            "more_info": "https://www.twilio.com/docs/errors/63114", "status": 400})))
        .expect(2)
        .mount(&server)
        .await;
    let app = live(opts, &server).await;
    let admin = app.api_token(Role::Admin).await;
    let (status, refused) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550005555")),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (502, Some("self_signup_required")),
        "{refused}"
    );
    let m = refused["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("console.twilio.com") && m.contains("63114") && m.contains("Self Sign-up"),
        "{m}"
    );

    let mut browser = app.admin_browser().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM sender_registrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let csrf = browser.csrf().await;
    let (status, _, page) = browser
        .post(
            &format!("/admin/senders/new/{id}/profile"),
            &[("csrf", &csrf), ("name", "Owl Air")],
        )
        .await;
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("id=\"self-signup-link\"")
            && page.contains(wadash::onboarding::register::SELF_SIGNUP_URL),
        "{page}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM senders WHERE twilio_sid IS NOT NULL")
            .await,
        0
    );
    app.stop().await;
    server.verify().await;
}

/// The element `id`, waited for: after a click the next step's page may still be loading.
async fn present(c: &fantoccini::Client, id: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(fantoccini::Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id} did not appear within 30 s: {e}"))
}

async fn fill(c: &fantoccini::Client, id: &str, text: &str) {
    let e = present(c, id).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &fantoccini::Client, id: &str) {
    present(c, id).await.click().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn in_a_browser_the_wizard_registers_verifies_and_sends_from_a_new_number(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::browser::{browser, driver, log_in_as_admin, screenshot};
    use fantoccini::Locator;

    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sender_step_ms".into(), "300".into());
    })
    .await;
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    c.goto(&format!("{}/admin/senders", app.address))
        .await
        .unwrap();
    present(&c, "register-number").await.click().await.unwrap();

    // A malformed WABA id is refused next to its field, the number kept.
    fill(&c, "w-number", "+1 555 000 6666").await;
    fill(&c, "w-waba", "WABA").await;
    click(&c, "w-next").await;
    let error = present(&c, "w-waba-error").await.text().await.unwrap();
    assert!(error.contains("WhatsApp Business Account id"), "{error}");
    assert_eq!(
        present(&c, "w-number")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("+1 555 000 6666")
    );
    fill(&c, "w-waba", "104567891234567").await;
    click(&c, "w-voice").await;
    click(&c, "w-next").await;

    // The profile: a too-long about is refused, what was typed kept.
    present(&c, "w-name").await;
    fill(&c, "w-name", "Owl Air").await;
    present(&c, "w-about")
        .await
        .send_keys(&"a".repeat(140))
        .await
        .unwrap();
    click(&c, "w-submit").await;
    assert!(
        present(&c, "w-about-error")
            .await
            .text()
            .await
            .unwrap()
            .contains("at most 139")
    );
    assert_eq!(
        crate::accessibility::serious_violations(&c).await,
        Vec::<String>::new(),
        "the profile step with a refused field"
    );
    fill(&c, "w-about", "Flights and bookings").await;
    c.find(Locator::Css(
        "#w-vertical option[value='Travel and Transportation']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    fill(&c, "w-website-1", "https://owl.example").await;
    fill(&c, "w-email", "help@owl.example").await;
    click(&c, "w-submit").await;

    // The code step comes once Twilio (the simulator) is waiting for it; the page reloads by
    // itself until then.
    let started = Instant::now();
    let sim_code = loop {
        if let Ok(e) = c.find(Locator::Id("sim-code")).await {
            break e
                .find(Locator::Css("strong"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no code step within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sid: String = sqlx::query_scalar("SELECT twilio_sid FROM sender_registrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sim_code, wadash::twilio::simulator::verification_code(&sid));
    let wrong = if sim_code == "111111" {
        "222222"
    } else {
        "111111"
    };
    fill(&c, "w-code", wrong).await;
    click(&c, "w-verify").await;
    let refused = present(&c, "w-code-error").await.text().await.unwrap();
    assert!(
        refused.contains("63101") && refused.contains("incorrect"),
        "{refused}"
    );
    assert_eq!(
        crate::accessibility::serious_violations(&c).await,
        Vec::<String>::new(),
        "the code step with a refused code"
    );
    click(&c, "w-resend").await;
    assert!(
        present(&c, "wizard-notice")
            .await
            .text()
            .await
            .unwrap()
            .contains("new code")
    );
    fill(&c, "w-code", &sim_code).await;
    click(&c, "w-verify").await;

    // Status until online (the page reloads by itself), then done.
    let started = Instant::now();
    loop {
        if c.find(Locator::Id("w-done")).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not online within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        crate::accessibility::serious_violations(&c).await,
        Vec::<String>::new(),
        "the done step"
    );
    screenshot(&c, "sender-wizard").await;
    click(&c, "w-send-from").await;
    let chosen = present(&c, "from").await.prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("whatsapp:+15550006666"));
    fill(&c, "to", "+919900000000").await;
    fill(&c, "body", "Hello from our new WhatsApp number").await;
    c.find(Locator::Css("form[action='/send'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE body = 'Hello from our new WhatsApp number'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the message was not sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.close().await.unwrap();
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_registration_the_sender_sync_finds_online_is_closed_without_the_wizard(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sender_step_ms".into(), "100".into());
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let (status, reg) = call(
        &app,
        "POST",
        "/senders/register",
        &admin,
        Some(body("+15550001112")),
    )
    .await;
    assert_eq!(status, 202, "{reg}");
    let id = reg["id"].as_i64().unwrap();
    let sid = reg["twilio_sid"].as_str().unwrap().to_owned();
    until_status(&app, &admin, id, "PENDING_VERIFICATION").await;
    let code = wadash::twilio::simulator::verification_code(&sid);
    let (status, verified) = call(
        &app,
        "POST",
        &format!("/senders/{id}/verify"),
        &admin,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 202, "{verified}");
    // Nobody comes back to the wizard: Meta approves at the simulator, and a sync sees it.
    let client = app.twilio.messaging(app.twilio.base()).unwrap();
    let started = Instant::now();
    while client.fetch_sender(&sid).await.unwrap().status != "ONLINE" {
        assert!(started.elapsed() < Duration::from_secs(30), "not online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let step = || async {
        sqlx::query_scalar::<_, String>("SELECT step FROM sender_registrations")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(step().await, "submitted", "the wizard has not looked");
    let (status, synced) = call(&app, "POST", "/senders/sync", &admin, None).await;
    assert_eq!(status, 202, "{synced}");
    assert_eq!(step().await, "online");
    let (_, sender) = call(&app, "GET", &format!("/senders/{id}"), &admin, None).await;
    assert_eq!(
        (sender["status"].as_str(), sender["twilio_status"].as_str()),
        (Some("active"), Some("ONLINE")),
        "{sender}"
    );
    app.stop().await;
}
