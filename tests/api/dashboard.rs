//! The dashboard over HTTP: logging in and out, sessions, CSRF, roles, throttling, the
//! separation of sessions and API tokens, and the key content of every page.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{ADMIN_PASSWORD, Browser, TestApp, input_value, params};

#[sqlx::test(migrations = false)]
async fn login_rotates_the_session_and_logout_ends_it(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut b = Browser::new(&app.address);

    // Every page needs a login, and says where to come back to.
    let (status, location, _) = b.get("/messages?status=read").await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/login?next=%2Fmessages%3Fstatus%3Dread")
    );

    assert_eq!(b.login("admin", "wrong password!").await, 401);
    assert!(!b.cookies.contains_key("wadash_session"));

    // A session id planted before login is not the one used after it.
    b.cookies.insert("wadash_session".into(), "a".repeat(64));
    let (_, _, page) = b.get("/login").await;
    let token = input_value(&page, "token").unwrap();
    let resp = b
        .post(
            "/login",
            &[
                ("username", "Admin"),
                ("password", ADMIN_PASSWORD),
                ("token", &token),
                ("next", "/messages"),
            ],
        )
        .await;
    assert_eq!((resp.0, resp.1.as_deref()), (303, Some("/messages")));
    let session = b.cookies["wadash_session"].clone();
    assert_ne!(session, "a".repeat(64));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the hash of the new session is stored");
    let raw = app
        .client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        raw.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );

    let (status, _, page) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Delivery funnel"));
    assert!(page.contains(">admin</a>"));

    // An open redirect is not possible through `next`.
    let mut other = Browser::new(&app.address);
    let (_, _, page) = other.get("/login?next=//evil.example/").await;
    let token = input_value(&page, "token").unwrap();
    let next = input_value(&page, "next").unwrap();
    assert_eq!(next, "/");
    let (_, location, _) = other
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("token", &token),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(location.as_deref(), Some("/"));

    // Logging out needs the form token, then the session is gone.
    assert_eq!(b.post("/logout", &[]).await.0, 403);
    let csrf = b.csrf().await;
    let (status, location, _) = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let mut replay = Browser::new(&app.address);
    replay.cookies.insert("wadash_session".into(), session);
    assert_eq!(
        replay.get("/").await.0,
        303,
        "the old cookie no longer works"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn forms_need_their_token_and_actions_their_role(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;

    // Missing or wrong form token: refused, nothing created.
    for token in [None, Some("not-the-token")] {
        let mut form = vec![("name", "ci"), ("role", "viewer")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let (status, _, page) = admin.post("/admin/tokens", &form).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("Form expired"));
    }
    assert_eq!(app.count("SELECT count(*) FROM api_tokens").await, 0);

    // The login form has its own token: without the cookie it came with, refused.
    let mut stranger = Browser::new(&app.address);
    let (status, _, _) = stranger
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("token", "forged"),
            ],
        )
        .await;
    assert_eq!(status, 403);

    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    for b in [&mut viewer, &mut operator] {
        assert_eq!(b.get("/").await.0, 200);
        assert_eq!(b.get("/messages").await.0, 200);
        let (status, _, page) = b.get("/admin").await;
        assert_eq!(status, 403);
        assert!(page.contains("admin role"));
        assert!(
            !page.contains("href=\"/admin\""),
            "no admin link for non-admins"
        );
        let csrf = b.csrf().await;
        let (status, _, _) = b
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("username", "mallory"),
                    ("role", "admin"),
                    ("password", "long enough password"),
                ],
            )
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'mallory'")
            .await,
        0
    );

    // An admin adds someone, who can then log in.
    let (status, location, _) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "Nadia"),
                ("role", "operator"),
                ("password", "a long password 1"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin?done=user"))
    );
    assert_eq!(
        Browser::new(&app.address)
            .login("nadia", "a long password 1")
            .await,
        303
    );
    let (status, _, page) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "nadia"),
                ("role", "viewer"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("at least 12 characters"));

    // The last admin cannot be demoted or disabled.
    let admin_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _, page) = admin
        .post(
            &format!("/admin/users/{admin_id}"),
            &[("csrf", &csrf), ("action", "role"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("last active admin"));

    // Disabling someone ends their sessions at once.
    let vera_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'vera'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _, _) = admin
        .post(
            &format!("/admin/users/{vera_id}"),
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(viewer.get("/").await.0, 303);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn api_tokens_and_sessions_do_not_mix(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let (status, _, page) = admin
        .post(
            "/admin/tokens",
            &[("csrf", &csrf), ("name", "grafana"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, 200);
    let token = page
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("wdsh_"));
    let (_, _, again) = admin.get("/admin").await;
    assert!(!again.contains(&token), "a token is shown once");
    assert!(again.contains("grafana"));

    let (status, _) = app.get_json("/api/v1/messages", &token).await;
    assert_eq!(status, 200);
    // The session cookie is no credential for the API, and a bearer token none for pages.
    let session = admin.cookies["wadash_session"].clone();
    let resp = app
        .client
        .get(format!("{}/api/v1/messages", app.address))
        .header("Cookie", format!("wadash_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    let id: i64 = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _, _) = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.get_json("/api/v1/messages", &token).await.0, 401);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn repeated_failed_logins_are_throttled_and_idle_sessions_expire(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut b = Browser::new(&app.address);
    for _ in 0..5 {
        assert_eq!(b.login("admin", "not the password").await, 401);
    }
    // Now even the right password is refused for a while.
    let (_, _, page) = b.get("/login").await;
    let token = input_value(&page, "token").unwrap();
    let (status, _, page) = b
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("token", &token),
            ],
        )
        .await;
    assert_eq!(status, 429);
    assert!(page.contains("Too many failed attempts"), "{page}");
    // Unknown accounts answer like known ones.
    assert_eq!(
        Browser::new(&app.address)
            .login("nobody", "whatever it is")
            .await,
        401
    );

    sqlx::query("DELETE FROM login_failures")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut ok = app.admin_browser().await;
    assert_eq!(ok.get("/").await.0, 200);
    sqlx::query("UPDATE sessions SET last_seen_at = now() - interval '13 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(ok.get("/").await.0, 303, "an idle session has expired");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn pages_show_the_funnel_timeline_and_conversation_with_text_escaped(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    // Two outbound messages: one read (its `delivered` arriving late), one failed.
    let a = "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let f = "SMffffffffffffffffffffffffffffffff";
    for (sid, status) in [(a, "sent"), (a, "read"), (a, "delivered"), (f, "sent")] {
        assert_eq!(app.post_status(sid, status).await, 204);
    }
    let mut failed = crate::helpers::status_callback(f, "failed");
    failed.push(("ErrorCode".into(), "63016".into()));
    assert_eq!(app.post_signed("/sts", &failed).await.status(), 204);
    // An inbound message whose name and text are markup.
    let inbound = params(&[
        ("MessageSid", "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        ("SmsStatus", "received"),
        ("From", "whatsapp:+919900000000"),
        ("To", "whatsapp:+14155238886"),
        ("ProfileName", "<script>alert(1)</script>"),
        ("Body", "=1+1 <img src=x onerror=alert(2)>"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &inbound).await.status(), 200);

    let mut b = app.admin_browser().await;
    let stage_in = |page: &str, name: &str| {
        page.split(&format!("data-stage=\"{name}\">"))
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap()
            .to_owned()
    };
    // The 24-hour overview reads hourly roll-ups, which follow changes within about a second.
    let mut page = String::new();
    for _ in 0..100 {
        page = b.get("/").await.2;
        if stage_in(&page, "sent") == "2" && stage_in(&page, "failed") == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stage = |name: &str| stage_in(&page, name);
    assert_eq!(
        (
            stage("sent"),
            stage("delivered"),
            stage("read"),
            stage("failed")
        ),
        ("2".into(), "1".into(), "1".into(), "1".into())
    );
    assert!(page.contains("50.0 %"), "delivery rate 1 of 2");
    assert!(page.contains(">63016</a>"), "failure listed by code");
    assert!(!page.contains("No explanation on file"), "and explained");
    assert!(page.contains("<svg"), "traffic chart");
    assert!(!page.contains("<img src=x"), "markup is escaped");
    assert!(
        page.contains("&#60;img src=x onerror=alert(2)&#62;"),
        "shown as text"
    );

    let (status, _, page) = b.get(&format!("/messages/{a}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        page.matches("late / out of order").count(),
        1,
        "the late delivered is marked"
    );
    assert!(page.contains("MessageStatus"), "raw parameters are shown");

    let (_, _, page) = b.get("/messages?direction=inbound").await;
    assert!(page.contains("SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
    assert!(!page.contains(a));
    let (status, _, _) = b.get("/messages?status=bogus").await;
    assert_eq!(status, 400);

    let (status, _, page) = b.get("/conversations/+919900000000").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "shown as text"
    );
    assert!(!page.contains("<script>alert(1)"));

    let resp = b
        .get_response("/messages/export.csv?direction=inbound")
        .await;
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("sid,direction,created_at"));
    assert!(
        lines[1].contains("\"'=1+1 <img src=x onerror=alert(2)>\""),
        "{csv}"
    );

    let (status, _, page) = b.get("/messages/SM00000000000000000000000000000404").await;
    assert_eq!(status, 404);
    assert!(page.contains("Not found"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn every_page_carries_security_headers_and_the_simulator_banner(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts.clone()).await;
    let mut b = app.admin_browser().await;
    for path in [
        "/",
        "/messages",
        "/admin",
        "/account",
        "/messages/SM00000000000000000000000000000404",
        "/login",
    ] {
        let resp = b.get_response(path).await;
        let h = resp.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        let page = resp.text().await.unwrap();
        assert!(page.contains("id=\"simulator-banner\""), "banner on {path}");
        assert!(
            !page.contains("<script>") && !page.contains(" style=\""),
            "no inline script or style on {path}"
        );
    }
    let css = b.get_response("/static/app.css").await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    app.stop().await;

    // A live instance says nothing about a simulator.
    let live = TestApp::spawn_with(opts, |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC0123456789abcdef0123456789abcdef".into(),
        );
        v.insert("twilio_api_base".into(), "http://127.0.0.1:9".into());
    })
    .await;
    let mut b = live.admin_browser().await;
    let (_, _, page) = b.get("/").await;
    assert!(!page.contains("simulator-banner"));
    live.stop().await;
}

#[sqlx::test(migrations = false)]
async fn operators_send_from_the_form_and_viewers_cannot(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    assert_eq!(viewer.get("/send").await.0, 403);
    let (_, _, page) = viewer.get("/").await;
    assert!(!page.contains("href=\"/send\""), "no send link for viewers");
    let csrf = viewer.csrf().await;
    let (status, _, _) = viewer
        .post(
            "/send",
            &[
                ("csrf", &csrf),
                ("to", "+919900000000"),
                ("body", "from a viewer"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.count("SELECT count(*) FROM messages").await,
        0,
        "nothing was sent"
    );

    let mut operator = app.browser_as("otto", Role::Operator).await;
    let csrf = operator.csrf().await;
    // Invalid input: explained, the form keeps what was typed, nothing is sent.
    let (status, _, page) = operator
        .post(
            "/send",
            &[
                ("csrf", &csrf),
                ("to", "9900000000"),
                ("body", "keep <this>"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"send-error\""));
    assert!(page.contains("keep &#60;this&#62;"));
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);

    let (status, location, _) = operator
        .post(
            "/send",
            &[
                ("csrf", &csrf),
                ("to", "+91 99000 00000"),
                ("body", "hello from the form"),
                ("media", "https://example.com/a.png\n"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    // The recipient never wrote, so the page is told to warn about the unknown window.
    let (path, query) = location.split_once('?').unwrap();
    assert!(query.starts_with("warning="), "{query}");
    let sid = path.strip_prefix("/messages/").unwrap();
    let (body, to, media): (Option<String>, Option<String>, i32) =
        sqlx::query_as("SELECT body, to_addr, num_media FROM messages WHERE sid = $1")
            .bind(sid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(body.as_deref(), Some("hello from the form"));
    assert_eq!(to.as_deref(), Some("whatsapp:+919900000000"));
    assert_eq!(media, 1);
    let (status, _, page) = operator.get(&location).await;
    assert_eq!(status, 200);
    assert!(page.contains("hello from the form"));
    app.stop().await;
}
