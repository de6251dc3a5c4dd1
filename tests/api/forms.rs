//! Safe forms (issue 19), over HTTP: text over Twilio's 1,600 characters and placeholders
//! without a value are refused by the JSON API and the pages alike, with the reason; template
//! variables are sent as rows of fields; every destructive action asks first, and those that
//! can be undone offer it; numbers and contacts come from a file as well as pasted; the last
//! active admin can be neither disabled nor demoted.

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, TestApp, call};

/// Undoes the template's escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

/// The inputs (name, value) of the form with id `id`, as the browser would send them.
fn form_inputs(page: &str, id: &str) -> Vec<(String, String)> {
    let form = page
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no form {id}"));
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

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A `multipart/form-data` POST as a browser sends it: text fields and one file.
async fn post_multipart(
    b: &Browser,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> (u16, Option<String>, String) {
    let mut parts: Vec<crate::helpers::Field> = fields
        .iter()
        .map(|(name, value)| (*name, None, value.as_bytes()))
        .collect();
    if let Some((filename, bytes)) = file {
        parts.push(("file", Some(filename), bytes));
    }
    crate::helpers::post_multipart(b, path, &parts).await
}

/// The broadcast form's fields, pasted numbers, no template.
fn broadcast_fields<'a>(csrf: &'a str, body: &'a str, numbers: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", "forms"),
        ("body", body),
        ("media", ""),
        ("content_sid", ""),
        ("template_category", ""),
        ("sender", ""),
        ("audience", "paste"),
        ("numbers", numbers),
        ("tag", ""),
        ("start_local", ""),
        ("timezone", "UTC"),
    ]
}

#[sqlx::test(migrations = false)]
async fn text_over_twilios_limit_is_refused_in_the_api_and_the_pages_counted_as_twilio_counts(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = app.api_token(Role::Operator).await;
    let admin = app.api_token(Role::Admin).await;
    let too_long = "a".repeat(1601);
    // 800 emoji are 1,600 UTF-16 units: the limit exactly; one more is over.
    let emoji_at_limit = "🎉".repeat(800);
    let emoji_over = format!("{emoji_at_limit}a");

    for body in [&too_long, &emoji_over] {
        let (status, err) = call(
            &app,
            "POST",
            "/messages",
            &op,
            Some(json!({"to": "+919900007001", "body": body})),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert!(message(&err).contains("21617"), "{err}");
    }
    let (status, sent) = call(
        &app,
        "POST",
        "/messages",
        &op,
        Some(json!({"to": "+919900007001", "body": emoji_at_limit})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");

    let (status, err) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(
            json!({"body": too_long, "audience": {"numbers": ["+919900007002"]}, "preview": true}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(message(&err).contains("1601 characters"), "{err}");

    let (status, err) = call(
        &app,
        "POST",
        "/reminders",
        &op,
        Some(json!({"to": "+919900007003", "body": too_long, "at": "2030-01-01T09:00"})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(message(&err).contains("21617"), "{err}");

    let (status, err) = call(
        &app,
        "POST",
        "/rules",
        &admin,
        Some(json!({"name": "long", "kind": "keyword", "pattern": "hi", "reply_body": too_long})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        message(&err).contains("reply_body is 1601 characters"),
        "{err}"
    );

    // The pages say the same, keep what was typed, and mark the field with its limit.
    let mut b = app.browser_as("otto", Role::Operator).await;
    let (_, _, page) = b.get("/send").await;
    assert!(
        page.contains("name=\"body\" rows=\"4\" maxlength=\"1600\""),
        "{page}"
    );
    let csrf = b.csrf().await;
    let (status, _, page) = b
        .post(
            "/send",
            &[
                ("csrf", &csrf),
                ("to", "+919900007004"),
                ("body", &too_long),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("21617") && page.contains(&too_long));
    let (status, _, page) = post_multipart(
        &b,
        "/broadcasts/preview",
        &broadcast_fields(&csrf, &too_long, "+919900007005"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("id=\"broadcast-error\"") && page.contains("21617"));
    assert_eq!(
        app.count("SELECT count(*) FROM messages").await,
        1,
        "only the message at the limit was sent"
    );
    assert_eq!(app.count("SELECT count(*) FROM broadcasts").await, 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn placeholders_without_a_value_are_refused_before_preview_naming_them(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let op = app.api_token(Role::Operator).await;
    const HX: &str = "HX0123456789abcdef0123456789abcdef";

    // Free-form text: nothing fills a placeholder.
    let (status, err) = call(
        &app,
        "POST",
        "/messages",
        &op,
        Some(json!({"to": "+919900007101", "body": "Dear {{1}}, see you {{2}}"})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(message(&err).contains("{{1}}, {{2}}"), "{err}");
    // A template with a gap in its variables, or an empty one.
    for (vars, missing) in [
        (json!({"1": "Ada", "3": "Mon"}), "{{2}}"),
        (json!({"1": " "}), "{{1}}"),
    ] {
        let (status, err) = call(
            &app,
            "POST",
            "/messages",
            &op,
            Some(json!({"to": "+919900007101", "content_sid": HX, "content_variables": vars})),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert!(message(&err).contains(missing), "{missing}: {err}");
    }
    // A broadcast whose CSV leaves one row's cell empty, with no value for everyone.
    let csv = "number,1,2\n+919900007102,Asha,Monday\n+919900007103,Ravi,\n";
    let (status, err) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(json!({"content_sid": HX, "audience": {"csv": csv}, "preview": true})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        message(&err).contains("line 3 (+919900007103)") && message(&err).contains("{{2}}"),
        "{err}"
    );
    // A value for everyone fills it.
    let (status, ok) = call(
        &app,
        "POST",
        "/broadcasts",
        &op,
        Some(
            json!({"content_sid": HX, "content_variables": {"2": "soon"},
                    "audience": {"csv": csv}, "preview": true}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    let (status, err) = call(
        &app,
        "POST",
        "/reminders",
        &op,
        Some(json!({"to": "+919900007104", "body": "Hi {{name}}", "at": "2030-01-01T09:00"})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(message(&err).contains("{{name}}"), "{err}");

    // The broadcast form: variables as rows; a gap is refused before the preview, naming it.
    let mut b = app.browser_as("otto", Role::Operator).await;
    let (_, _, page) = b.get("/broadcasts/new").await;
    assert!(page.contains("name=\"var_name_0\"") && page.contains("name=\"var_value_2\""));
    assert!(
        !page.contains("name=\"content_variables\""),
        "no JSON field"
    );
    let csrf = b.csrf().await;
    let mut fields = broadcast_fields(&csrf, "", "+919900007105");
    fields.retain(|(k, _)| *k != "content_sid");
    fields.extend([
        ("content_sid", HX),
        ("var_name_0", "1"),
        ("var_value_0", "Ada"),
        ("var_name_1", "3"),
        ("var_value_1", "Monday"),
        ("var_name_2", ""),
        ("var_value_2", ""),
    ]);
    let (status, _, page) = post_multipart(&b, "/broadcasts/preview", &fields, None).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("{{2}}"), "{page}");
    assert!(
        page.contains("name=\"var_name_1\" value=\"3\""),
        "the rows as they were typed"
    );
    // Filled, the preview carries the variables as the JSON the service reads.
    fields.retain(|(k, _)| !k.starts_with("var_name_1"));
    fields.push(("var_name_1", "2"));
    let (status, _, page) = post_multipart(&b, "/broadcasts/preview", &fields, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("name=\"content_variables\" value=\"{&#34;1&#34;:&#34;Ada&#34;,&#34;2&#34;:&#34;Monday&#34;}\""),
        "{page}"
    );
    // A value without a placeholder is explained.
    let (status, _, page) = b
        .post(
            "/send",
            &[
                ("csrf", &csrf),
                ("to", "+919900007106"),
                ("content_sid", HX),
                ("var_name_0", ""),
                ("var_value_0", "orphan"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("row 1 has a value but no placeholder"),
        "{page}"
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);
    app.stop().await;
}

async fn user_id(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn active_admins(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL")
        .await
}

#[sqlx::test(migrations = false)]
async fn the_last_active_admin_can_be_neither_disabled_nor_demoted_in_pages_or_api(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Admin).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;
    let me = user_id(&app, "admin").await;

    let (status, _, page) = admin
        .post(
            &format!("/admin/users/{me}"),
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("the last active admin cannot be disabled"),
        "{page}"
    );
    for patch in [json!({"disabled": true}), json!({"role": "operator"})] {
        let (status, err) = call(&app, "PATCH", &format!("/users/{me}"), &token, Some(patch)).await;
        assert_eq!(status, 409, "{err}");
        assert_eq!(err["error"]["code"], "last_admin");
        assert!(message(&err).contains("last active admin"), "{err}");
    }
    assert_eq!(active_admins(&app).await, 1);

    // With a second admin, either may go, but not both: two admins disabling each other at
    // the same moment leave one.
    let _second = app.browser_as("sam", Role::Admin).await;
    let sam = user_id(&app, "sam").await;
    let (path_me, path_sam) = (format!("/users/{me}"), format!("/users/{sam}"));
    let (a, b) = tokio::join!(
        call(
            &app,
            "PATCH",
            &path_me,
            &token,
            Some(json!({"disabled": true}))
        ),
        call(
            &app,
            "PATCH",
            &path_sam,
            &token,
            Some(json!({"disabled": true}))
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    assert_eq!(active_admins(&app).await, 1);
    let (status, users) = call(&app, "GET", "/users", &token, None).await;
    assert_eq!(status, 200);
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
    assert!(users["items"][0].get("password_hash").is_none());
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn destructive_actions_ask_first_and_offer_undo_where_it_exists(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Admin).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;

    // A rule: deleting it asks first; the page after it puts it back where it was.
    for name in ["first", "second", "third"] {
        let (status, _) = call(
            &app,
            "POST",
            "/rules",
            &token,
            Some(json!({"name": name, "kind": "keyword", "pattern": name,
                        "reply_body": format!("Reply \"{name}\"\nline two"), "enabled": false})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (_, rules) = call(&app, "GET", "/rules", &token, None).await;
    let second = rules["items"][1]["id"].as_i64().unwrap();
    let (_, _, page) = admin.get("/admin/rules").await;
    let at = page
        .find(&format!("id=\"confirm-delete-{second}\""))
        .unwrap();
    let opened = page[..at].rfind("<details class=\"confirm\">").unwrap();
    assert!(
        !page[opened..at].contains("</details>"),
        "the button is inside the confirmation"
    );
    assert!(page[opened..at].contains("stops answering at once"));
    let (status, _, page) = admin
        .post(&format!("/admin/rules/{second}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Rule “second” deleted.") && page.contains("id=\"undo-delete\""));
    let undo = form_inputs(&page, "undo-delete-form");
    let undo: Vec<(&str, &str)> = undo.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, location, _) = admin.post("/admin/rules/restore", &undo).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/admin/rules?done=restored"));
    let (_, rules) = call(&app, "GET", "/rules", &token, None).await;
    let names: Vec<&str> = rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second", "third"], "back in its place");
    assert_eq!(
        rules["items"][1]["reply_body"],
        "Reply \"second\"\nline two"
    );
    assert_eq!(rules["items"][1]["enabled"], false);

    // A user: disabling asks first; the notice after it enables them again.
    let _vera = app.browser_as("vera", Role::Viewer).await;
    let vera = user_id(&app, "vera").await;
    let (_, _, page) = admin.get("/admin").await;
    assert!(page.contains(&format!("id=\"confirm-disable-{vera}\"")));
    assert!(page.contains("<summary aria-label=\"Disable vera…\">Disable…</summary>"));
    let (status, location, _) = admin
        .post(
            &format!("/admin/users/{vera}"),
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(location, format!("/admin?done=disabled&id={vera}"));
    let (_, _, page) = admin.get(&location).await;
    assert!(page.contains("Undo: enable vera again"), "{page}");
    let (status, _, _) = admin
        .post(
            &format!("/admin/users/{vera}"),
            &[("csrf", &csrf), ("action", "enable")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'vera' AND disabled_at IS NULL")
            .await,
        1
    );
    let (_, _, page) = admin.get(&location).await;
    assert!(!page.contains("Undo: enable"), "no undo once undone");

    // A sender: the undo gives back the status it had (pending here).
    let (status, s) = call(
        &app,
        "POST",
        "/senders",
        &token,
        Some(json!({"address": "whatsapp:+14155550177", "status": "pending"})),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_i64().unwrap();
    let (status, location, _) = admin
        .post(&format!("/admin/senders/{id}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(
        location,
        format!("/admin/senders?done=disabled&id={id}&was=pending")
    );
    let (_, _, page) = admin.get(&location).await;
    assert!(
        page.contains("Undo: make whatsapp:+14155550177 pending again"),
        "{page}"
    );
    let (status, _, _) = admin
        .post(
            &format!("/admin/senders/{id}/restore"),
            &[("csrf", &csrf), ("status", "pending")],
        )
        .await;
    assert_eq!(status, 303);
    let status: String = sqlx::query_scalar("SELECT status FROM senders WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "pending");

    // A token: revoking asks first and says it cannot be undone.
    let (_, _, page) = admin.get("/admin").await;
    assert!(page.contains("A revoked token cannot be restored"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn numbers_and_contacts_come_from_a_file_with_bad_rows_explained(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut b = app.browser_as("otto", Role::Operator).await;
    let csrf = b.csrf().await;

    // Broadcast numbers from a file: the preview counts them, bad lines are listed.
    let file = b"+919900007201\n+919900007202\nnot-a-number\n+919900007201\n";
    let (status, _, page) = post_multipart(
        &b,
        "/broadcasts/preview",
        &broadcast_fields(&csrf, "From a file", ""),
        Some(("numbers.txt", file)),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Confirm and send to 2"), "{page}");
    assert!(
        page.contains("not-a-number") && page.contains("duplicate"),
        "{page}"
    );
    // A spreadsheet is not text: refused, naming the file.
    let (status, _, page) = post_multipart(
        &b,
        "/broadcasts/preview",
        &broadcast_fields(&csrf, "x", ""),
        Some(("numbers.xlsx", b"PK\x03\x04\xff\xfe")),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("numbers.xlsx is not UTF-8 text"), "{page}");
    // Larger than the form's limit: refused in words before anything is read.
    let big = vec![b'1'; 17 * 1024 * 1024];
    let (status, _, page) = post_multipart(
        &b,
        "/broadcasts/preview",
        &broadcast_fields(&csrf, "x", ""),
        Some(("big.csv", &big)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("the upload is larger than 16 MiB"), "{page}");
    // The form token is checked as for any form.
    let (status, _, _) = post_multipart(
        &b,
        "/broadcasts/preview",
        &broadcast_fields("forged", "x", ""),
        Some(("numbers.txt", file)),
    )
    .await;
    assert_eq!(status, 403);

    // Contacts from a file; a file with bad rows imports nothing and lists them.
    let (_, _, page) = b.get("/contacts/import").await;
    assert!(page.contains("enctype=\"multipart/form-data\"") && page.contains("type=\"file\""));
    let good = b"number,profile_name,tags\n+919900007301,Asha,vip\n+919900007302,Ravi,\n";
    let (status, location, page) = post_multipart(
        &b,
        "/contacts/import",
        &[("csrf", &csrf), ("csv", "")],
        Some(("contacts.csv", good)),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert!(location.unwrap().contains("imported=2"));
    let bad = b"number,consent\n+919900007303,opted_in\n12345,opted_in\n+919900007304,maybe\n";
    let (status, _, page) = post_multipart(
        &b,
        "/contacts/import",
        &[("csrf", &csrf), ("csv", "")],
        Some(("contacts.csv", bad)),
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("2 lines need"), "{page}");
    assert!(page.contains("<td class=\"num\">3</td>") && page.contains("<td class=\"num\">4</td>"));
    assert_eq!(app.count("SELECT count(*) FROM contacts").await, 2);
    // Pasting still works, URL-encoded as before.
    let (status, _, _) = b
        .post(
            "/contacts/import",
            &[("csrf", &csrf), ("csv", "number\n+919900007305\n")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.count("SELECT count(*) FROM contacts").await, 3);
    app.stop().await;
}
