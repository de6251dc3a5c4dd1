//! The dashboard's broadcast and reminder pages over HTTP: the broadcast form, its preview
//! (who is left out and why, the cost, the time it takes), confirming, following a broadcast
//! to the end, its controls and their refusals, the results as CSV; reminders created, paused,
//! resumed, edited and canceled through the forms; who may do what, form tokens, escaping.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, TestApp};

const FAST: &str = "whatsapp:+14155550100";

/// Simulated callbacks within tens of milliseconds, no failures, every message read.
fn quick(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("sim_read_share".into(), "1".into());
    v.insert("sim_sent_ms".into(), "20".into());
    v.insert("sim_delivered_ms".into(), "40".into());
    v.insert("sim_read_ms".into(), "60".into());
    v.insert("sim_failure_share".into(), "0".into());
}

/// Registers a sender of its own with a known rate.
async fn fast_sender(app: &TestApp, mps: f64) {
    let admin = app.api_token(Role::Admin).await;
    let resp = app
        .client
        .post(format!("{}/api/v1/senders", app.address))
        .bearer_auth(admin)
        .json(&json!({"address": FAST, "mps": mps}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

/// Undoes the template's escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

/// The preview's hidden fields, as the browser would send them back.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let form = page
        .split("id=\"confirm-form\"")
        .nth(1)
        .expect("the confirm form");
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|chunk| {
            let (name, rest) = chunk.split_once('"').unwrap();
            let value = rest.split_once("value=\"").unwrap().1;
            (
                name.to_owned(),
                unescape(&value[..value.find('"').unwrap()]),
            )
        })
        .collect()
}

async fn post_owned(
    b: &mut Browser,
    path: &str,
    fields: &[(String, String)],
) -> (u16, Option<String>, String) {
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post(path, &form).await
}

/// A broadcast form as an operator fills it.
fn broadcast_form<'a>(csrf: &'a str, name: &'a str, numbers: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", name),
        ("body", "Spring sale starts today"),
        ("media", ""),
        ("content_sid", ""),
        ("content_variables", ""),
        ("sender", FAST),
        ("audience", "paste"),
        ("numbers", numbers),
        ("tag", ""),
        ("start_local", ""),
        ("timezone", "UTC"),
    ]
}

/// Queues a broadcast through the form and returns its id.
async fn confirmed(b: &mut Browser, csrf: &str, name: &str, numbers: &str) -> i64 {
    let (status, location, page) = b
        .post("/broadcasts", &broadcast_form(csrf, name, numbers))
        .await;
    assert_eq!(status, 303, "{page}");
    location
        .unwrap()
        .strip_prefix("/broadcasts/")
        .unwrap()
        .parse()
        .unwrap()
}

async fn broadcast_status(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Fields changed from a valid form, the status answered, and what the error says.
type Refusal = (&'static [(&'static str, &'static str)], u16, &'static str);

fn numbers(n: u64, base: u64) -> String {
    (0..n)
        .map(|i| format!("+9199{:08}", base + i))
        .collect::<Vec<_>>()
        .join("\n")
}

#[sqlx::test(migrations = false)]
async fn an_operator_previews_confirms_and_follows_a_broadcast_to_the_end(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 50.0).await;
    sqlx::query("INSERT INTO contacts (number, consent) VALUES ('+919900000002', 'opted_out')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;

    let (status, _, page) = op.get("/broadcasts").await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/broadcasts\" aria-current=\"page\">Broadcasts<"));
    assert!(
        page.contains("href=\"/reminders\""),
        "Reminders in the navigation"
    );
    assert!(
        page.contains("href=\"/broadcasts/new\""),
        "operators may start one"
    );
    let (status, _, page) = op.get("/broadcasts/new").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<option value=\"{FAST}\"")),
        "the fast sender is offered"
    );
    assert!(page.contains("name=\"audience\" value=\"paste\" checked"));
    assert!(page.contains("type=\"datetime-local\""));
    assert!(
        page.contains("become that recipient's own template variables"),
        "CSV columns are explained"
    );

    // Two who get it; an opted-out contact, a line that is no number and a repeat left out.
    let list = "+919900000001\n+919900000002\nnot-a-number\n+91 99000 00001\n+919900000003";
    let (status, _, page) = op
        .post(
            "/broadcasts/preview",
            &broadcast_form(&csrf, "Spring sale", list),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"preview-recipients\">2<"), "{page}");
    assert!(page.contains("id=\"preview-excluded-count\">3<"));
    assert!(
        page.contains(
            "id=\"preview-cost\"><span class=\"money\" title=\"0.01 USD\">USD 0.01</span><"
        ),
        "{page}"
    );
    assert!(page.contains("id=\"preview-duration\">under a second<"));
    assert!(page.contains("id=\"preview-start\">at once<"));
    assert!(page.contains("at 50 messages per second"));
    let excluded = page.split("id=\"preview-excluded\"").nth(1).unwrap();
    for (number, why) in [
        (
            "+919900000002",
            "opted out: they asked to get no more messages",
        ),
        ("not-a-number", "invalid number (line 3)"),
        ("+919900000001", "duplicate: already listed on line 1"),
    ] {
        assert!(
            excluded.contains(&format!("<td>{number}</td><td>{why}")),
            "{number}: {why} in {excluded}"
        );
    }
    assert!(page.contains("Confirm and send"));
    assert_eq!(
        app.count("SELECT count(*) FROM broadcasts").await,
        0,
        "a preview queues nothing"
    );

    // Back to edit: the form again, as filled.
    let fields = hidden_fields(&page);
    assert!(fields.contains(&("csrf".into(), csrf.clone())));
    assert!(
        fields.contains(&("numbers".into(), list.into())),
        "{fields:?}"
    );
    let (status, _, form) = post_owned(&mut op, "/broadcasts/new", &fields).await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"name\" value=\"Spring sale\""));
    assert!(form.contains(&format!(">{list}</textarea>")), "{form}");
    assert!(form.contains(&format!("<option value=\"{FAST}\" selected")));

    // Confirm: queued, and the broadcast's page follows it to the end.
    let (status, location, _) = post_owned(&mut op, "/broadcasts", &fields).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id: i64 = location
        .strip_prefix("/broadcasts/")
        .unwrap()
        .parse()
        .unwrap();
    let (created_by,): (Option<String>,) =
        sqlx::query_as("SELECT created_by FROM broadcasts WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(created_by.as_deref(), Some("otto"));
    let started = Instant::now();
    let page = loop {
        let (status, _, page) = op.get(&location).await;
        assert_eq!(status, 200);
        if page.contains("id=\"broadcast-status\">completed<")
            && page.contains("data-bucket=\"read\">2<")
        {
            break page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not completed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains("data-bucket=\"pending\">0<"));
    assert!(page.contains("data-bucket=\"failed\">0<"));
    assert!(page.contains("2 of 2 done · 100 %"));
    assert!(page.contains("id=\"rate-now\">"), "the current send rate");
    assert!(page.contains("id=\"completed-at\""));
    assert!(page.contains(&format!("href=\"/broadcasts/{id}/results.csv\"")));
    let rows = page.split("id=\"recipient-rows\"").nth(1).unwrap();
    assert!(rows.contains("+919900000001") && rows.contains("+919900000003"));
    assert!(rows.contains("<a href=\"/messages/SM"), "message links");
    let left_out = page.split("id=\"excluded-rows\"").nth(1).unwrap();
    assert!(left_out.contains("<td>+919900000002</td><td>opted out"));
    assert!(
        !page.contains("id=\"action-pause\""),
        "nothing to pause once completed"
    );

    // A bucket filter, and the live fragment alone.
    let (status, _, page) = op.get(&format!("{location}?status=read")).await;
    assert_eq!(status, 200);
    assert!(page.contains("aria-current=\"true\">read"));
    let (_, _, page) = op.get(&format!("{location}?status=failed")).await;
    assert!(page.contains("No recipients are failed."));
    assert_eq!(op.get(&format!("{location}?status=bogus")).await.0, 400);
    let (status, _, fragment) = op.get(&format!("{location}?fragment=live")).await;
    assert_eq!(status, 200);
    assert!(
        fragment
            .trim_start()
            .starts_with("<div id=\"live-broadcast\"")
    );
    assert!(fragment.contains("data-live-stats"));
    assert!(fragment.contains("data-bucket=\"read\">2<"));
    assert!(!fragment.contains("<html") && !fragment.contains("recipient-rows"));

    // The results as CSV, and the list.
    let resp = op.get_response(&format!("{location}/results.csv")).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("number,state,message_status"));
    assert!(csv.contains("+919900000001,sent,read,SM"));
    let (_, _, page) = op.get("/broadcasts").await;
    let row = page
        .split(&format!("id=\"broadcast-{id}\""))
        .nth(1)
        .unwrap();
    assert!(row.contains(&format!("<a href=\"/broadcasts/{id}\">Spring sale</a>")));
    assert!(row.contains("completed") && row.contains("by otto"));
    assert!(row.contains("2 of 2 done"));
    assert_eq!(op.get("/broadcasts/999999").await.0, 404);
    assert_eq!(op.get("/broadcasts/999999/results.csv").await.0, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn broadcast_form_refusals_keep_what_was_typed_and_say_why(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 50.0).await;
    for n in ["+919900000001", "+919900000002"] {
        sqlx::query(
            "INSERT INTO contacts (number, consent, tags) VALUES ($1, 'opted_in', ARRAY['vip'])",
        )
        .bind(n)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO contacts (number, consent) VALUES ('+919900000009', 'opted_out')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;

    let refused = |status: u16, page: &str, expected: &str| {
        assert!(page.contains("id=\"broadcast-error\""), "{page}");
        assert!(page.contains(expected), "{expected:?} in {page}");
        assert!(
            page.contains("name=\"name\" value=\"Kept\""),
            "the name is kept ({status})"
        );
    };
    let cases: [Refusal; 8] = [
        (&[("numbers", "")], 400, "paste at least one number"),
        (
            &[("content_variables", "{not json")],
            400,
            "must be a JSON object",
        ),
        (
            &[("content_variables", "[1, 2]")],
            400,
            "content_variables must be a JSON object",
        ),
        (
            &[
                ("start_local", "2030-01-01T09:00"),
                ("timezone", "Mars/Olympus"),
            ],
            400,
            "is not a known time zone",
        ),
        (
            &[
                ("start_local", "2030-03-10T02:30"),
                ("timezone", "America/New_York"),
            ],
            400,
            "does not exist in America/New_York",
        ),
        (
            &[("sender", "whatsapp:+14155559999")],
            409,
            "whatsapp:+14155559999",
        ),
        (
            &[("numbers", "+919900000009")],
            422,
            "nobody is left to send to",
        ),
        (&[("audience", "tag")], 400, "choose the tag"),
    ];
    for (changes, status, expected) in cases {
        let mut form = broadcast_form(&csrf, "Kept", "+919900000001");
        for (k, v) in changes {
            form.retain(|(name, _)| name != k);
            form.push((*k, *v));
        }
        let (got, _, page) = op.post("/broadcasts/preview", &form).await;
        assert_eq!(got, status, "{changes:?}: {page}");
        refused(got, &page, expected);
        for (k, v) in changes {
            if *k == "numbers" && !v.is_empty() {
                assert!(page.contains(&format!(">{v}</textarea>")), "numbers kept");
            }
            if *k == "timezone" {
                assert!(page.contains(&format!("value=\"{v}\"")), "zone kept");
            }
        }
        if status == 422 {
            assert!(
                page.contains("<li>+919900000009: opted out"),
                "who was left out is listed: {page}"
            );
        }
        // Confirming the same form is refused alike.
        let (got, _, _) = op.post("/broadcasts", &form).await;
        assert_eq!(got, status, "confirm {changes:?}");
    }
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 0);

    // A tag's contacts; a start time in a zone.
    let mut form = broadcast_form(&csrf, "VIP", "");
    form.retain(|(k, _)| !matches!(*k, "audience" | "tag" | "start_local" | "timezone"));
    form.extend([
        ("audience", "tag"),
        ("tag", "vip"),
        ("start_local", "2030-07-01T09:00"),
        ("timezone", "Asia/Kolkata"),
    ]);
    let (_, _, page) = op.get("/broadcasts/new").await;
    assert!(
        page.contains("<option value=\"vip\">vip (2)</option>"),
        "{page}"
    );
    let (status, _, page) = op.post("/broadcasts/preview", &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"preview-recipients\">2<"));
    assert!(page.contains("2030-07-01 03:30:00 UTC"), "{page}");
    assert!(page.contains("(2030-07-01 09:00:00 IST)"), "{page}");
    let (status, location, _) = op.post("/broadcasts", &form).await;
    assert_eq!(status, 303);
    let (_, _, page) = op.get(&location.unwrap()).await;
    assert!(page.contains("id=\"broadcast-status\">scheduled<"));
    assert!(page.contains("contacts tagged vip"));
    assert!(page.contains("id=\"action-pause\"") && page.contains("id=\"action-cancel\""));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn pause_resume_and_cancel_buttons_act_and_a_wrong_state_is_a_409(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 2.0).await; // 30 recipients take 15 s
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let id = confirmed(&mut op, &csrf, "Slow one", &numbers(30, 100)).await;
    let page_path = format!("/broadcasts/{id}");
    let (_, _, page) = op.get(&page_path).await;
    assert!(page.contains("id=\"action-pause\"") && page.contains("id=\"action-cancel\""));
    assert!(!page.contains("id=\"action-resume\""));

    let act = |action: &str| format!("/broadcasts/{id}/{action}");
    let (status, location, _) = op.post(&act("pause"), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("{page_path}?done=pause").as_str()))
    );
    assert_eq!(broadcast_status(&app, id).await, "paused");
    let (_, _, page) = op.get(&location.unwrap()).await;
    assert!(page.contains("id=\"broadcast-notice\""));
    assert!(page.contains("id=\"action-resume\"") && !page.contains("id=\"action-pause\""));

    let (status, _, page) = op.post(&act("pause"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 409);
    assert!(
        page.contains("id=\"broadcast-error\"><p>a paused broadcast cannot pause</p>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"live-broadcast\""),
        "the broadcast's own page"
    );

    let (status, _, _) = op.post(&act("resume"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(broadcast_status(&app, id).await, "running");
    let (status, _, _) = op.post(&act("cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(broadcast_status(&app, id).await, "canceled");
    let (_, _, page) = op.get(&page_path).await;
    assert!(page.contains("id=\"broadcast-status\">canceled<"));
    assert!(
        !page.contains("id=\"broadcast-controls\""),
        "no buttons apply"
    );
    assert!(
        !page.contains("data-bucket=\"canceled\">0<"),
        "the rest canceled"
    );

    for action in ["cancel", "resume", "retry"] {
        let (status, _, page) = op.post(&act(action), &[("csrf", &csrf)]).await;
        assert_eq!(status, 409, "{action}");
        assert!(
            page.contains(&format!("a canceled broadcast cannot {action}")),
            "{page}"
        );
    }
    assert_eq!(op.post(&act("explode"), &[("csrf", &csrf)]).await.0, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn viewers_see_broadcasts_and_reminders_but_cannot_start_or_change_them(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 50.0).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let op_csrf = op.csrf().await;
    let id = confirmed(&mut op, &op_csrf, "For all", "+919900000001").await;
    let (status, location, _) = op
        .post(
            "/reminders",
            &[
                ("csrf", &op_csrf),
                ("target", "number"),
                ("to", "+919900000001"),
                ("body", "Hello"),
                ("at", "2030-01-01T09:00"),
                ("timezone", "UTC"),
                ("every", "daily"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let reminder = location.unwrap();
    let reminder = reminder.split('?').next().unwrap().to_owned();

    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let csrf = viewer.csrf().await;
    let (status, _, page) = viewer.get("/broadcasts").await;
    assert_eq!(status, 200);
    assert!(page.contains("For all"));
    assert!(!page.contains("href=\"/broadcasts/new\""));
    let (status, _, page) = viewer.get(&format!("/broadcasts/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"live-broadcast\""));
    assert!(!page.contains("/pause\"") && !page.contains("/cancel\""));
    assert_eq!(
        viewer
            .get_response(&format!("/broadcasts/{id}/results.csv"))
            .await
            .status()
            .as_u16(),
        200
    );
    let (status, _, page) = viewer.get("/reminders").await;
    assert_eq!(status, 200);
    assert!(page.contains("every day at 09:00"));
    assert!(!page.contains("id=\"new-reminder\""), "no form for viewers");
    let (status, _, page) = viewer.get(&reminder).await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"edit-reminder\"") && !page.contains("id=\"action-pause\""));

    assert_eq!(viewer.get("/broadcasts/new").await.0, 403);
    let form = broadcast_form(&csrf, "Nope", "+919900000002");
    assert_eq!(viewer.post("/broadcasts/preview", &form).await.0, 403);
    assert_eq!(viewer.post("/broadcasts/new", &form).await.0, 403);
    assert_eq!(viewer.post("/broadcasts", &form).await.0, 403);
    for action in ["pause", "cancel", "retry"] {
        let path = format!("/broadcasts/{id}/{action}");
        assert_eq!(viewer.post(&path, &[("csrf", &csrf)]).await.0, 403);
    }
    let reminder_form = [
        ("csrf", csrf.as_str()),
        ("to", "+919900000002"),
        ("body", "x"),
        ("at", "2030-01-01T09:00"),
    ];
    assert_eq!(viewer.post("/reminders", &reminder_form).await.0, 403);
    assert_eq!(
        viewer
            .post(&format!("{reminder}/edit"), &reminder_form)
            .await
            .0,
        403
    );
    for action in ["pause", "cancel"] {
        let path = format!("{reminder}/{action}");
        assert_eq!(viewer.post(&path, &[("csrf", &csrf)]).await.0, 403);
    }
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM reminders WHERE status = 'active'")
            .await,
        1
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn forms_without_the_form_token_are_refused_and_change_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 2.0).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let id = confirmed(&mut op, &csrf, "Guarded", &numbers(20, 300)).await;
    for token in ["", "not-the-token"] {
        let form = broadcast_form(token, "Forged", "+919900000001");
        for path in ["/broadcasts/preview", "/broadcasts", "/broadcasts/new"] {
            let (status, _, page) = op.post(path, &form).await;
            assert_eq!(status, 403, "{path}");
            assert!(page.contains("Form expired"), "{path}");
        }
        let (status, _, _) = op
            .post(&format!("/broadcasts/{id}/cancel"), &[("csrf", token)])
            .await;
        assert_eq!(status, 403);
        let (status, _, _) = op
            .post(
                "/reminders",
                &[
                    ("csrf", token),
                    ("to", "+919900000001"),
                    ("body", "x"),
                    ("at", "2030-01-01T09:00"),
                ],
            )
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 1);
    assert_ne!(broadcast_status(&app, id).await, "canceled");
    assert_eq!(app.count("SELECT count(*) FROM reminders").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn html_in_a_broadcast_name_and_body_is_shown_as_text(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 50.0).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let name = "<script>alert(\"name\")</script>";
    let body = "<img src=x onerror=alert(1)> & \"quotes\"";
    let mut form = broadcast_form(&csrf, name, "+919900000001");
    form.retain(|(k, _)| *k != "body");
    form.push(("body", body));

    let (status, _, page) = op.post("/broadcasts/preview", &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"));
    assert!(page.contains("&#60;script&#62;alert("));
    assert!(page.contains("&#60;img src=x onerror=alert(1)&#62; &#38; "));
    let fields = hidden_fields(&page);
    assert!(fields.contains(&("name".into(), name.into())), "{fields:?}");
    assert!(fields.contains(&("body".into(), body.into())));

    let (status, location, _) = op.post("/broadcasts", &form).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    for path in [location.as_str(), "/broadcasts"] {
        let (_, _, page) = op.get(path).await;
        assert!(page.contains("&#60;script&#62;alert("), "{path}");
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<img src=x"), "{path}");
    }
    let (_, _, page) = op.get(&location).await;
    assert!(page.contains("id=\"broadcast-body\">&#60;img src=x onerror=alert(1)&#62; &#38; "));
    app.stop().await;
}

async fn reminder_row(app: &TestApp, id: i64) -> (String, String, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT status, recurrence, to_number, to_char(next_at AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI') FROM reminders WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn an_operator_creates_pauses_resumes_edits_and_cancels_a_reminder_through_the_forms(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let (status, _, page) = op.get("/reminders").await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/reminders\" aria-current=\"page\">Reminders<"));
    assert!(page.contains("id=\"new-reminder\""));
    assert!(page.contains("name=\"day_thu\""));

    // Everyone tagged vip, Mondays and Thursdays at 09:00 New York time.
    let (status, location, page) = op
        .post(
            "/reminders",
            &[
                ("csrf", &csrf),
                ("target", "tag"),
                ("to", ""),
                ("tag", "VIP"),
                ("body", "Stand-up in 15 minutes"),
                ("media", ""),
                ("content_sid", ""),
                ("at", "2030-03-11T09:00"),
                ("at_was", ""),
                ("timezone", "America/New_York"),
                ("every", "weekly"),
                ("day_mon", "on"),
                ("day_thu", "on"),
                ("month_day", ""),
                ("cron", ""),
            ],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    let location = location.unwrap();
    let path = location.split('?').next().unwrap().to_owned();
    let id: i64 = path.strip_prefix("/reminders/").unwrap().parse().unwrap();
    assert_eq!(
        reminder_row(&app, id).await,
        (
            "active".into(),
            "weekly:mon,thu".into(),
            None,
            Some("2030-03-11T13:00".into())
        )
    );
    let (status, _, page) = op.get(&location).await;
    assert_eq!(status, 200);
    assert!(page.contains("Reminder created."));
    assert!(page.contains("everyone tagged <a href=\"/contacts?tag=vip\">vip</a>"));
    assert!(page.contains("every Monday and Thursday at 09:00"));
    assert!(
        page.contains(
            "id=\"reminder-next\"><time datetime=\"2030-03-11T13:00:00.000Z\" title=\"2030-03-11 13:00:00 UTC\">2030-03-11 13:00:00 UTC</time> <span class=\"muted\">(2030-03-11 09:00:00 EDT)</span>"
        ),
        "{page}"
    );
    assert!(page.contains("name=\"day_mon\" value=\"on\" checked"));
    assert!(page.contains("Not run yet."));
    let (_, _, list) = op.get("/reminders").await;
    let row = list.split(&format!("id=\"reminder-{id}\"")).nth(1).unwrap();
    assert!(row.contains("tag vip") && row.contains("Stand-up in 15 minutes"));
    assert!(row.contains("America/New_York") && row.contains("2030-03-11 09:00:00 EDT"));
    assert!(row.contains(">2030-03-11 13:00:00 UTC</time>") && row.contains(">active<"));

    // Pause, a second pause refused, resume.
    let (status, location, _) = op.post(&format!("{path}/pause"), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("{path}?done=pause").as_str()))
    );
    assert_eq!(reminder_row(&app, id).await.0, "paused");
    let (_, _, page) = op.get(&path).await;
    assert!(page.contains("id=\"action-resume\"") && !page.contains("id=\"action-pause\""));
    let (status, _, page) = op.post(&format!("{path}/pause"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 409);
    assert!(page.contains("a paused reminder cannot pause"));
    let (status, _, _) = op.post(&format!("{path}/resume"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(
        reminder_row(&app, id).await,
        (
            "active".into(),
            "weekly:mon,thu".into(),
            None,
            Some("2030-03-11T13:00".into())
        )
    );

    // Edit: one number, daily; the unchanged time keeps its instant.
    let (status, location, page) = op
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("target", "number"),
                ("to", "+91 99000 00001"),
                ("tag", "vip"),
                ("body", "Stand-up in 5 minutes"),
                ("at", "2030-03-11T09:00"),
                ("at_was", "2030-03-11T09:00"),
                ("timezone", "America/New_York"),
                ("every", "daily"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(
        location.as_deref(),
        Some(format!("{path}?done=saved").as_str())
    );
    assert_eq!(
        reminder_row(&app, id).await,
        (
            "active".into(),
            "daily".into(),
            Some("+919900000001".into()),
            Some("2030-03-11T13:00".into())
        )
    );
    let (status, _, page) = op
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("target", "number"),
                ("to", "+919900000001"),
                ("body", "x"),
                ("at", "2030-03-11T09:00"),
                ("at_was", "2030-03-11T09:00"),
                ("timezone", "Mars/Olympus"),
                ("every", "daily"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("`Mars/Olympus` is not a known time zone"));
    assert!(
        page.contains("name=\"timezone\" value=\"Mars/Olympus\""),
        "kept"
    );

    // Cancel: final; no more forms, and the actions are refused.
    let (status, _, _) = op.post(&format!("{path}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(reminder_row(&app, id).await.0, "canceled");
    let (_, _, page) = op.get(&path).await;
    assert!(page.contains("id=\"reminder-status\">canceled<"));
    assert!(!page.contains("id=\"edit-reminder\"") && !page.contains("id=\"action-cancel\""));
    assert!(page.contains("id=\"reminder-next\"><span class=\"muted\">none"));
    for action in ["cancel", "resume", "pause"] {
        let (status, _, page) = op
            .post(&format!("{path}/{action}"), &[("csrf", &csrf)])
            .await;
        assert_eq!(status, 409, "{action}");
        assert!(page.contains(&format!("a canceled reminder cannot {action}")));
    }
    let (status, _, _) = op
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("to", "+919900000001"),
                ("at", "2030-03-11T09:00"),
            ],
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(op.get("/reminders/999999").await.0, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn reminder_form_errors_explain_and_keep_the_input(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("timezone", "Mars/Olympus")],
            "`Mars/Olympus` is not a known time zone",
        ),
        (
            &[("at", "2030-03-10T02:30"), ("timezone", "America/New_York")],
            "2030-03-10T02:30 does not exist in America/New_York (the clocks jump over it)",
        ),
        (
            &[("every", "weekly")],
            "choose at least one day of the week",
        ),
        (&[("every", "cron"), ("cron", "0 25 * * *")], "cron"),
        (&[("to", "12345")], "12345"),
    ];
    for (changes, expected) in cases {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("target", "number"),
            ("to", "+919900000001"),
            ("body", "Your <b>appointment</b> is tomorrow"),
            ("at", "2030-06-01T09:00"),
            ("timezone", "Asia/Kolkata"),
            ("every", "once"),
        ];
        for (k, v) in changes {
            form.retain(|(name, _)| name != k);
            form.push((*k, *v));
        }
        let (status, _, page) = op.post("/reminders", &form).await;
        assert_eq!(status, 400, "{changes:?}: {page}");
        let error = page.split("id=\"reminder-error\"><p>").nth(1).unwrap();
        let error = &error[..error.find("</p>").unwrap()];
        assert!(error.contains(expected), "{expected:?} in {error:?}");
        assert!(
            page.contains(">Your &#60;b&#62;appointment&#60;/b&#62; is tomorrow</textarea>"),
            "the text is kept, escaped"
        );
        for (k, v) in changes {
            if *k == "at" || *k == "timezone" || *k == "to" || *k == "cron" {
                assert!(
                    page.contains(&format!("name=\"{k}\""))
                        && page.contains(&format!("value=\"{v}\"")),
                    "{k} kept"
                );
            }
            if *k == "every" {
                assert!(page.contains(&format!("<option value=\"{v}\" selected")));
            }
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM reminders").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn confirming_the_same_preview_twice_queues_one_broadcast(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    fast_sender(&app, 50.0).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let (status, _, page) = op
        .post(
            "/broadcasts/preview",
            &broadcast_form(&csrf, "Twice", &numbers(2, 700)),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let fields = hidden_fields(&page);
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "request_key" && v.len() == 32),
        "{fields:?}"
    );
    let (first, a, _) = post_owned(&mut op, "/broadcasts", &fields).await;
    let (second, b, _) = post_owned(&mut op, "/broadcasts", &fields).await;
    assert_eq!((first, second), (303, 303));
    assert_eq!(a, b, "the second confirmation lands on the first broadcast");
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 1);
    // A new preview is a new request.
    let (_, _, page) = op
        .post(
            "/broadcasts/preview",
            &broadcast_form(&csrf, "Twice", &numbers(2, 700)),
        )
        .await;
    let (status, c, _) = post_owned(&mut op, "/broadcasts", &hidden_fields(&page)).await;
    assert_eq!(status, 303);
    assert_ne!(c, a);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_held_broadcast_says_why_and_only_an_admin_releases_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        quick(v);
        v.insert("broadcast_reserve".into(), "19.99".into());
    })
    .await;
    fast_sender(&app, 50.0).await;
    sqlx::query("INSERT INTO balance_readings (balance, currency) VALUES (20.00, 'USD')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let id = confirmed(&mut op, &csrf, "Big one", &numbers(3, 800)).await;
    assert_eq!(broadcast_status(&app, id).await, "held");
    let (_, _, page) = op.get(&format!("/broadcasts/{id}")).await;
    assert!(
        page.contains("id=\"held-reason\"") && page.contains("reserve"),
        "{page}"
    );
    let (status, _, _) = op
        .post(&format!("/broadcasts/{id}/release"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 403);
    let mut admin = app.admin_browser().await;
    let admin_csrf = admin.csrf().await;
    let (status, _, _) = admin
        .post(
            &format!("/broadcasts/{id}/release"),
            &[("csrf", &admin_csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert_ne!(broadcast_status(&app, id).await, "held");
    app.stop().await;
}
