//! Broadcasts with catalogued templates (issue 20): a CSV with any column names mapped to the
//! template's placeholders on the preview, the first recipients' messages rendered (escaped,
//! gaps flagged), a wrong mapping refused naming the placeholder, each recipient queued with
//! its own values; and a broadcast whose template was deleted, or is no longer approved, held
//! with the reason instead of failing every recipient — resuming once a sync finds the
//! template approved again. Reminders skip a run whose template cannot be sent.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, TestApp, call, post_multipart};

const FAST: &str = "whatsapp:+14155550100";
/// The simulator's sample quick-reply: "Reminder: your appointment with {{1}} is on {{2}}.
/// Will you come?" (approved, utility).
const APPOINTMENT: &str = "HX00000000000000000000000000005a02";

fn quick(v: &mut std::collections::BTreeMap<String, String>) {
    v.insert("sim_sent_ms".into(), "20".into());
    v.insert("sim_delivered_ms".into(), "40".into());
    v.insert("sim_read_ms".into(), "60".into());
    v.insert("sim_failure_share".into(), "0".into());
}

/// A sender of its own, fast; and the simulator's templates in the catalogue.
async fn ready(app: &TestApp) {
    let admin = app.api_token(Role::Admin).await;
    let resp = app
        .client
        .post(format!("{}/api/v1/senders", app.address))
        .bearer_auth(admin)
        .json(&json!({"address": FAST, "mps": 50.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    sync(app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM templates WHERE status = 'approved'")
            .await,
        3,
        "the simulator's samples"
    );
}

/// "Sync now" as an admin: the simulator's catalogue read into wadash's.
async fn sync(app: &TestApp) {
    let mut admin = app.admin_browser().await;
    let token = admin.csrf().await;
    let (status, location, _) = admin.post("/templates/sync", &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/templates?done=synced"));
}

fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

/// The hidden fields of the form with `id`, as a browser sends them back.
fn hidden_of(page: &str, id: &str) -> Vec<(String, String)> {
    let form = page
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no form {id} in {page}"));
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

/// The preview's table of the first recipients' messages.
fn samples(page: &str) -> &str {
    let t = page
        .split("id=\"preview-samples\"")
        .nth(1)
        .expect("the per-recipient preview");
    &t[..t.find("</tbody>").unwrap()]
}

/// The first preview: the form with a CSV file uploaded and the appointment template chosen.
async fn first_preview(b: &Browser, csrf: &str, csv: &str) -> (u16, String) {
    let (status, _, page) = post_multipart(
        b,
        "/broadcasts/preview",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("name", None, b"Appointments"),
            ("content_sid", None, APPOINTMENT.as_bytes()),
            ("sender", None, FAST.as_bytes()),
            ("audience", None, b"paste"),
            ("timezone", None, b"UTC"),
            ("file", Some("patients.csv"), csv.as_bytes()),
        ],
    )
    .await;
    (status, page)
}

/// The mapping form re-posted with `choices` (`map_1` = `column:name`, …).
async fn remap(b: &Browser, page: &str, choices: &[(&str, &str)]) -> (u16, String) {
    let hidden = hidden_of(page, "mapping-form");
    let mut fields: Vec<(&str, Option<&str>, &[u8])> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), None, v.as_bytes()))
        .collect();
    for (k, v) in choices {
        fields.push((k, None, v.as_bytes()));
    }
    let (status, _, page) = post_multipart(b, "/broadcasts/preview", &fields).await;
    (status, page)
}

async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_of(app: &TestApp, id: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, paused_reason FROM broadcasts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn csv_columns_with_any_names_are_mapped_on_the_preview_and_each_recipient_gets_its_own(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    ready(&app).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let csv = "first_name,phone,when,notes\n\
        <b>Dr Rao</b>,+919900000001,Monday 10:00,x\n\
        Dr Iyer,+919900000002,Tuesday 11:00,y\n\
        Dr Sen,+919900000003,Wednesday 09:30,\n\
        Dr Das,+919900000004,Thursday 16:00,\n\
        Dr Roy,+919900000005,Friday 08:00,\n\
        Dr Kaur,+919900000006,Saturday 12:00,\n";

    // No column is named after a placeholder: nothing is mapped yet, and nothing can be
    // confirmed; the first rows show what is missing.
    let (status, page) = first_preview(&op, &csrf, csv).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("id=\"mapping-form\""), "{page}");
    let problems = &page[page.find("id=\"mapping-problems\"").expect("problems")..];
    assert!(
        problems.contains("{{1}} is not mapped") && problems.contains("{{2}} is not mapped"),
        "{problems}"
    );
    assert!(!page.contains("id=\"confirm\""), "nothing to confirm yet");
    for column in ["first_name", "when", "notes"] {
        assert!(
            page.contains(&format!("<option value=\"column:{column}\"")),
            "{column} offered"
        );
    }
    assert!(page.contains("e.g. Dr Rao"), "the sample value as a hint");
    let rows = samples(&page);
    assert!(
        rows.contains("class=\"missing\"") && rows.contains("{{1}} missing"),
        "{rows}"
    );

    // A wrong mapping: {{2}} to be the same for everyone, but left empty.
    let (status, page) = remap(
        &op,
        &page,
        &[
            ("map_1", "column:first_name"),
            ("map_2", "value"),
            ("value_2", " "),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let error = &page[page.find("id=\"preview-error\"").expect("an error")..];
    let error = &error[..error.find("</div>").unwrap()];
    assert!(
        error.contains("{{2}} is to be the same for everyone, but that value is empty"),
        "{error}"
    );
    assert!(!error.contains("{{1}}"), "{{1}} is fine: {error}");

    // first_name → {{1}}, when → {{2}}: every recipient's own message, escaped.
    let (status, page) = remap(
        &op,
        &page,
        &[("map_1", "column:first_name"), ("map_2", "column:when")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<option value=\"column:first_name\" selected>"));
    let rows = samples(&page);
    assert_eq!(rows.matches("<tr").count(), 5, "the first five: {rows}");
    assert!(
        rows.contains("your appointment with <mark>&#60;b&#62;Dr Rao&#60;/b&#62;</mark> is on <mark>Monday 10:00</mark>"),
        "{rows}"
    );
    assert!(!rows.contains("<b>Dr Rao"), "escaped");
    assert!(rows.contains("<mark>Dr Roy</mark>") && !rows.contains("Dr Kaur"));
    assert!(!rows.contains("missing"), "{rows}");
    assert!(page.contains("id=\"preview-template-status\">approved<"));
    assert!(!page.contains("id=\"preview-template-warning\""));
    assert!(page.contains("id=\"preview-template-category\">utility<"));
    assert!(page.contains("id=\"preview-cost\""));
    assert!(page.contains("id=\"confirm\""));

    // Confirmed: each recipient is queued with its own values under the placeholders, and
    // only those (the notes column is not sent).
    let hidden = hidden_of(&page, "confirm-form");
    let form: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, location, page) = op.post("/broadcasts", &form).await;
    assert_eq!(status, 303, "{page}");
    let id: i64 = location
        .unwrap()
        .strip_prefix("/broadcasts/")
        .unwrap()
        .parse()
        .unwrap();
    let stored: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT number, variables FROM broadcast_recipients WHERE broadcast_id = $1 ORDER BY number",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 6);
    assert_eq!(
        stored[0],
        (
            "+919900000001".to_owned(),
            json!({"1": "<b>Dr Rao</b>", "2": "Monday 10:00"})
        )
    );
    assert_eq!(stored[5].1, json!({"1": "Dr Kaur", "2": "Saturday 12:00"}));
    let mapping: serde_json::Value =
        sqlx::query_scalar("SELECT variable_mapping FROM broadcasts WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        mapping,
        json!({"1": {"column": "first_name"}, "2": {"column": "when"}})
    );
    wait_for("every recipient sent", || async {
        app.simulator_log().await.len() == 6
    })
    .await;
    let mut to: Vec<String> = app.simulator_log().await.into_iter().map(|x| x.0).collect();
    to.sort();
    assert_eq!(to[0], "whatsapp:+919900000001");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_row_with_an_empty_mapped_cell_is_named_and_the_api_takes_a_mapping(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    ready(&app).await;
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let csv = "phone,name,when\n+919900000011,Asha,Monday\n+919900000012,Ravi,\n";
    let (_, page) = first_preview(&op, &csrf, csv).await;
    let (status, page) = remap(
        &op,
        &page,
        &[("map_1", "column:name"), ("map_2", "column:when")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    let error = &page[page.find("id=\"preview-error\"").expect("an error")..];
    assert!(
        error.contains("line 3 (+919900000012)") && error.contains("{{2}}"),
        "{error}"
    );
    let rows = samples(&page);
    assert!(rows.contains("class=\"sample-missing\""), "{rows}");
    // A value for everyone fills the gap.
    let (status, page) = remap(
        &op,
        &page,
        &[
            ("map_1", "column:name"),
            ("map_2", "value"),
            ("value_2", "soon"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(samples(&page).contains("with <mark>Ravi</mark> is on <mark>soon</mark>"));
    drop(op);

    // The JSON API: the same mapping, additive; a wrong one names the placeholder.
    let token = app.api_token(Role::Operator).await;
    let body = |mapping: serde_json::Value| {
        json!({"content_sid": APPOINTMENT, "sender": FAST, "preview": true,
               "audience": {"csv": "phone,name,when\n+919900000021,Asha,Monday\n"},
               "variable_mapping": mapping})
    };
    let (status, r) = call(
        &app,
        "POST",
        "/broadcasts",
        &token,
        Some(body(
            json!({"1": {"column": "name"}, "2": {"column": "when"}}),
        )),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["recipients"], 1);
    let (status, r) = call(
        &app,
        "POST",
        "/broadcasts",
        &token,
        Some(body(
            json!({"1": {"column": "name"}, "2": {"column": "wehn"}}),
        )),
    )
    .await;
    assert_eq!(status, 400, "{r}");
    let message = r.to_string();
    assert!(
        message.contains("{{2}} is mapped to the column \\\"wehn\\\""),
        "{message}"
    );
    // Without a mapping the API behaves as before: the columns must be the placeholders.
    let (status, r) = call(
        &app,
        "POST",
        "/broadcasts",
        &token,
        Some(
            json!({"content_sid": APPOINTMENT, "sender": FAST, "preview": true,
                    "audience": {"csv": "number,1,2\n+919900000021,Asha,Monday\n"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    app.stop().await;
}

/// Queues a broadcast of the appointment template to `numbers` through the API.
async fn queued(app: &TestApp, numbers: &[&str]) -> i64 {
    let token = app.api_token(Role::Operator).await;
    let (status, r) = call(
        app,
        "POST",
        "/broadcasts",
        &token,
        Some(
            json!({"content_sid": APPOINTMENT, "sender": FAST, "name": "Appointments",
                    "content_variables": {"1": "Dr Rao", "2": "Monday"},
                    "audience": {"numbers": numbers}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_i64().unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_whose_template_was_deleted_is_held_and_nothing_reaches_twilio(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    ready(&app).await;
    sqlx::query("UPDATE templates SET deleted_at = now() WHERE sid = $1")
        .bind(APPOINTMENT)
        .execute(&app.pool)
        .await
        .unwrap();
    let id = queued(&app, &["+919900000031", "+919900000032", "+919900000033"]).await;
    wait_for("the broadcast held", || async {
        status_of(&app, id).await.0 == "held"
    })
    .await;
    let (_, reason) = status_of(&app, id).await;
    let reason = reason.unwrap();
    assert!(
        reason.contains(
            "appointment_reminder (HX00000000000000000000000000005a02) was deleted at Twilio"
        ),
        "{reason}"
    );
    // It stays held: a few more turns of the runner change nothing, and nothing was sent or
    // failed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&app, id).await.0, "held");
    assert!(
        app.simulator_log().await.is_empty(),
        "nothing reached Twilio"
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 AND state = 'pending' AND attempts = 0",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 3, "every recipient waits, none failed");
    let mut op = app.browser_as("otto", Role::Operator).await;
    let (_, _, page) = op.get(&format!("/broadcasts/{id}")).await;
    let held = &page[page.find("id=\"held-reason\"").expect("the reason shown")..];
    assert!(held.contains("was deleted at Twilio"), "{held}");
    // An operator cancels it.
    let csrf = op.csrf().await;
    let (status, _, _) = op
        .post(&format!("/broadcasts/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&app, id).await.0, "canceled");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_broadcast_whose_template_is_paused_is_held_and_resumes_once_a_sync_finds_it_approved(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    ready(&app).await;
    // WhatsApp paused it (as a sync would have recorded).
    sqlx::query("UPDATE templates SET status = 'paused' WHERE sid = $1")
        .bind(APPOINTMENT)
        .execute(&app.pool)
        .await
        .unwrap();
    // The preview warns before anything is queued.
    let mut op = app.browser_as("otto", Role::Operator).await;
    let csrf = op.csrf().await;
    let (status, page) =
        first_preview(&op, &csrf, "phone,1,2\n+919900000040,Dr Rao,Monday\n").await;
    assert_eq!(status, 200, "{page}");
    let warning = &page[page
        .find("id=\"preview-template-warning\"")
        .expect("a warning")..];
    assert!(
        warning.contains("(paused)") && warning.contains("held"),
        "{warning}"
    );
    let id = queued(&app, &["+919900000041", "+919900000042"]).await;
    wait_for("the broadcast held", || async {
        status_of(&app, id).await.0 == "held"
    })
    .await;
    let reason = status_of(&app, id).await.1.unwrap();
    assert!(
        reason.contains(
            "appointment_reminder (HX00000000000000000000000000005a02) is paused at WhatsApp"
        ) && reason.contains("resumes by itself"),
        "{reason}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        app.simulator_log().await.is_empty(),
        "nothing sent while held"
    );
    let failed: i64 = app
        .count("SELECT count(*) FROM broadcast_recipients WHERE state = 'failed'")
        .await;
    assert_eq!(failed, 0);

    // The next sync reads it approved (the simulator's): the broadcast resumes and completes.
    sync(&app).await;
    wait_for("both recipients sent", || async {
        app.simulator_log().await.len() == 2
    })
    .await;
    wait_for("the broadcast completed", || async {
        status_of(&app, id).await.0 == "completed"
    })
    .await;
    assert_eq!(status_of(&app, id).await.1, None, "the reason is cleared");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_reminder_run_with_a_deleted_template_is_skipped_with_the_reason(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, quick).await;
    ready(&app).await;
    sqlx::query("UPDATE templates SET deleted_at = now() WHERE sid = $1")
        .bind(APPOINTMENT)
        .execute(&app.pool)
        .await
        .unwrap();
    let token = app.api_token(Role::Operator).await;
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let (status, r) = call(
        &app,
        "POST",
        "/reminders",
        &token,
        Some(
            json!({"to": "+919900000051", "content_sid": APPOINTMENT, "sender": FAST,
                    "at": due.to_rfc3339()}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    wait_for("the run recorded", || async {
        app.count("SELECT count(*) FROM reminder_runs").await == 1
    })
    .await;
    let (outcome, broadcast, note): (String, Option<i64>, Option<String>) =
        sqlx::query_as("SELECT outcome, broadcast_id, note FROM reminder_runs")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(outcome, "skipped");
    assert_eq!(broadcast, None, "no broadcast queued to fail");
    let note = note.unwrap();
    assert!(
        note.contains(
            "appointment_reminder (HX00000000000000000000000000005a02) was deleted at Twilio"
        ),
        "{note}"
    );
    assert!(app.simulator_log().await.is_empty());
    app.stop().await;
}

/// Twilio's Messages API double: each create answered 201 with a SID of its own.
struct Created(std::sync::atomic::AtomicU32);

impl wiremock::Respond for Created {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let form: std::collections::HashMap<String, String> =
            serde_urlencoded::from_bytes(&req.body).unwrap();
        wiremock::ResponseTemplate::new(201).set_body_json(json!({
            "sid": format!("SM{n:032x}"), "status": "queued",
            "to": form.get("To"), "from": form.get("From")}))
    }
}

#[sqlx::test(migrations = false)]
async fn twilio_receives_each_recipients_own_content_variables_as_mapped(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const ORDER: &str = "HX00000000000000000000000000000a01";
    let twilio = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/ContentAndApprovals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "contents": [{"sid": ORDER, "friendly_name": "order_update", "language": "en",
                "variables": {"1": "Asha", "2": "A-1"},
                "types": {"twilio/text": {"body": "Hi {{1}}, order {{2}} has shipped."}},
                "approval_requests": {"name": "order_update", "category": "UTILITY",
                    "status": "approved", "rejection_reason": ""},
                "date_updated": "2026-12-01T10:00:00Z"}],
            "meta": {"next_page_url": null}})))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/Messages\.json$"))
        .respond_with(Created(Default::default()))
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let app = TestApp::spawn_with(opts, move |v| {
        v.insert(
            "twilio_account_sid".into(),
            "AC00000000000000000000000000000000".into(),
        );
        v.insert("twilio_api_base".into(), uri.clone());
        v.insert("twilio_content_base".into(), uri);
    })
    .await;
    let admin = app.api_token(Role::Admin).await;
    let resp = app
        .client
        .post(format!("{}/api/v1/senders", app.address))
        .bearer_auth(&admin)
        .json(&json!({"address": FAST, "mps": 50.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    sync(&app).await;

    let token = app.api_token(Role::Operator).await;
    let (status, r) = call(
        &app,
        "POST",
        "/broadcasts",
        &token,
        Some(json!({"content_sid": ORDER, "sender": FAST,
            "audience": {"csv": "order_no,first_name,phone\nA-7,Asha,+919900000071\nB-8,Ravi,+919900000072\n"},
            "variable_mapping": {"1": {"column": "first_name"}, "2": {"column": "order_no"}}})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let sent = || async {
        twilio
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/Messages.json"))
            .map(|r| {
                let form: std::collections::HashMap<String, String> =
                    serde_urlencoded::from_bytes(&r.body).unwrap();
                form
            })
            .collect::<Vec<_>>()
    };
    wait_for("both messages at Twilio", || async {
        sent().await.len() >= 2
    })
    .await;
    let mut got: Vec<(String, String, serde_json::Value)> = sent()
        .await
        .into_iter()
        .map(|f| {
            (
                f["To"].clone(),
                f["ContentSid"].clone(),
                serde_json::from_str(&f["ContentVariables"]).unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                "whatsapp:+919900000071".to_owned(),
                ORDER.to_owned(),
                json!({"1": "Asha", "2": "A-7"})
            ),
            (
                "whatsapp:+919900000072".to_owned(),
                ORDER.to_owned(),
                json!({"1": "Ravi", "2": "B-8"})
            ),
        ]
    );
    app.stop().await;
}
