//! The conversation page over HTTP: the media proxy, locations, and the reply box with the
//! send policy (consent, de-authorization, the 24-hour window) and roles.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::TestApp;

/// The account the tests' inbound messages name.
const AC: &str = "AC00000000000000000000000000000000";

fn inbound(sid: &str, from: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    crate::helpers::inbound(AC, sid, from, extra)
}

#[sqlx::test(migrations = false)]
async fn twilio_media_is_proxied_for_logged_in_users_only_and_other_urls_never(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let url = format!(
        "https://api.twilio.com/2010-04-01/Accounts/{}/Messages/SM00000000000000000000000000000101/Media/ME00000000000000000000000000000001",
        app.twilio.account_sid()
    );
    let p = inbound(
        "SM00000000000000000000000000000101",
        "+919900000101",
        &[
            ("Body", ""),
            ("NumMedia", "2"),
            ("MediaUrl0", &url),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "http://169.254.169.254/latest/meta-data/"),
            ("MediaContentType1", "image/png"),
        ],
    );
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);

    let anonymous = app
        .client
        .get(format!(
            "{}/media/SM00000000000000000000000000000101/0",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.url().path(), "/login", "the proxy needs a login");

    let mut viewer = app.browser_as("viewer", Role::Viewer).await;
    let resp = viewer
        .get_response("/media/SM00000000000000000000000000000101/0")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(
        resp.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "the simulator's photo");

    // A media URL that is not Twilio's is never fetched by the server.
    let (status, _, _) = viewer
        .get("/media/SM00000000000000000000000000000101/1")
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = viewer
        .get("/media/SM00000000000000000000000000000101/7")
        .await;
    assert_eq!(status, 404);

    let (status, _, page) = viewer.get("/conversations/+919900000101").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("src=\"/media/SM00000000000000000000000000000101/0\""),
        "{page}"
    );
    assert!(!page.contains("reply-form"), "viewers get no reply box");
    app.stop().await;
}

/// Also for an event the previous binary stored (parameters in `params`, `jsonb`, rather than
/// `params_json`): its location and its parameters show as well during a rolling upgrade.
#[sqlx::test(migrations = false)]
async fn locations_show_coordinates_and_a_map_link(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let p = inbound(
        "SM00000000000000000000000000000201",
        "+919900000201",
        &[
            ("Body", ""),
            ("NumMedia", "0"),
            ("Latitude", "12.9716"),
            ("Longitude", "77.5946"),
            ("Address", "MG Road <Bengaluru>"),
        ],
    );
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);
    let older = "SM00000000000000000000000000000202";
    let p = inbound(
        older,
        "+919900000201",
        &[
            ("Body", ""),
            ("NumMedia", "0"),
            ("Latitude", "28.6139"),
            ("Longitude", "77.2095"),
            ("Label", "India Gate"),
        ],
    );
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);
    let (fresh, stored): (serde_json::Value, Option<serde_json::Value>) =
        sqlx::query_as("SELECT params, params_json FROM message_events WHERE message_sid = $1")
            .bind(older)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        fresh,
        serde_json::json!({}),
        "this binary leaves `params` empty"
    );
    assert_eq!(stored.unwrap()["Label"], "India Gate");
    sqlx::query(
        "UPDATE message_events SET params = params_json::jsonb, params_json = NULL \
         WHERE message_sid = $1",
    )
    .bind(older)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut b = app.admin_browser().await;
    let (_, _, page) = b.get("/conversations/+919900000201").await;
    assert!(page.contains("12.9716, 77.5946"), "{page}");
    assert!(
        page.contains("28.6139, 77.2095"),
        "the previous binary's row: {page}"
    );
    assert!(page.contains("India Gate"), "{page}");
    assert!(
        page.contains("MG Road &#60;Bengaluru&#62;"),
        "escaped: {page}"
    );
    assert!(
        page.contains(
            "https://www.openstreetmap.org/?mlat=12.9716&#38;mlon=77.5946#map=16/12.9716/77.5946"
        ),
        "{page}"
    );
    let (status, _, page) = b.get(&format!("/messages/{older}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("India Gate"), "its parameters: {page}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_reply_box_sends_within_the_window_and_respects_consent(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let number = "+919900000301";
    let p = inbound(
        "SM00000000000000000000000000000301",
        number,
        &[("Body", "help"), ("NumMedia", "0")],
    );
    assert_eq!(app.post_signed("/wa", &p).await.status(), 200);

    let mut op = app.browser_as("op", Role::Operator).await;
    let (status, _, page) = op.get(&format!("/conversations/{number}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"reply-form\""), "{page}");
    assert!(page.contains("opted in"), "{page}");
    assert!(
        page.contains("23 h 59 min") || page.contains("24 h 0 min"),
        "{page}"
    );
    let csrf = op.csrf().await;
    let (status, location, _) = op
        .post(
            &format!("/conversations/{number}/reply"),
            &[("csrf", &csrf), ("body", "We are on it")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(&*format!("/conversations/{number}"))
    );
    let sent: i64 = app
        .count(
            "SELECT count(*) FROM messages WHERE direction = 'outbound' AND body = 'We are on it'",
        )
        .await;
    assert_eq!(sent, 1);

    let (status, _, _) = op
        .post(
            &format!("/conversations/{number}/reply"),
            &[("body", "no token")],
        )
        .await;
    assert_eq!(status, 403, "CSRF");

    // The window closes: free-form text is refused, forcing sends with a warning.
    sqlx::query("UPDATE contacts SET last_inbound_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _, page) = op
        .post(
            &format!("/conversations/{number}/reply"),
            &[("csrf", &csrf), ("body", "late")],
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        page.contains("63016") && page.contains("late"),
        "explained, draft kept: {page}"
    );
    let (status, location, _) = op
        .post(
            &format!("/conversations/{number}/reply"),
            &[("csrf", &csrf), ("body", "late"), ("force", "1")],
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.contains("?warning="), "{location}");
    let (status, _, page) = op.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<p class=\"warning-box\" role=\"status\">sent outside"),
        "the warning is shown: {page}"
    );
    let (_, _, page) = op.get(&format!("/conversations/{number}")).await;
    assert!(!page.contains("sent outside"), "and only once");

    // After STOP the box is closed and a crafted POST is refused.
    let stop = inbound(
        "SM00000000000000000000000000000302",
        number,
        &[("Body", "STOP"), ("NumMedia", "0")],
    );
    assert_eq!(app.post_signed("/wa", &stop).await.status(), 200);
    let (_, _, page) = op.get(&format!("/conversations/{number}")).await;
    assert!(page.contains("id=\"reply-blocked\""), "{page}");
    let (status, _, _) = op
        .post(
            &format!("/conversations/{number}/reply"),
            &[("csrf", &csrf), ("body", "still there?"), ("force", "1")],
        )
        .await;
    assert_eq!(status, 409);

    let mut viewer = app.browser_as("viewer", Role::Viewer).await;
    let csrf = viewer.csrf().await;
    let (status, _, _) = viewer
        .post(
            &format!("/conversations/{number}/reply"),
            &[("csrf", &csrf), ("body", "x")],
        )
        .await;
    assert_eq!(status, 403);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_send_form_shows_the_warnings_of_what_it_sent(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut op = app.browser_as("op", Role::Operator).await;
    let csrf = op.csrf().await;
    let (status, location, _) = op
        .post(
            "/send",
            &[("csrf", &csrf), ("to", "+919900000401"), ("body", "hello")],
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.starts_with("/messages/SM"), "{location}");
    let (status, _, page) = op.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"warning-box\"")
            && page.contains("never received a message from +919900000401"),
        "{page}"
    );
    app.stop().await;
}
