//! The dashboard's contact, sender and auto-reply rule pages over HTTP: who may see and
//! change what, the forms' effects and their refusals, CSV import and export, and escaping.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, TestApp, input_value, params};

/// A message from `number` reaches `/wa`, which creates (or updates) its contact.
async fn inbound(app: &TestApp, sid_digit: char, number: &str, profile_name: &str) {
    let sid = format!("SM{}", sid_digit.to_string().repeat(32));
    let from = format!("whatsapp:{number}");
    let msg = params(&[
        ("MessageSid", &sid),
        ("SmsStatus", "received"),
        ("From", &from),
        ("To", "whatsapp:+14155238886"),
        ("ProfileName", profile_name),
        ("Body", "hello"),
        ("NumMedia", "0"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ]);
    assert_eq!(app.post_signed("/wa", &msg).await.status(), 200);
}

async fn consent_of(app: &TestApp, number: &str) -> (String, bool) {
    sqlx::query_as("SELECT consent, deauthorized_at IS NOT NULL FROM contacts WHERE number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn id_of(app: &TestApp, sql: &'static str, name: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn viewers_see_contacts_and_a_contact_page_but_cannot_opt_one_out(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    inbound(&app, '1', "+919900000001", "Asha").await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;

    let (status, _, page) = viewer.get("/contacts").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/contacts\" aria-current=\"page\""),
        "Contacts in the navigation"
    );
    assert!(page.contains("<a href=\"/contacts/+919900000001\">+919900000001</a>"));
    assert!(page.contains("Asha"));
    assert!(page.contains("consent-opted_in"), "consent badge");
    assert!(
        page.contains("23 h 59 min"),
        "the 24-hour window's time left"
    );
    assert!(page.contains("href=\"/contacts/export.csv\""));
    assert!(
        !page.contains("href=\"/contacts/import\""),
        "import is for operators"
    );

    let (status, _, page) = viewer.get("/contacts/+919900000001").await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/conversations/+919900000001\""));
    assert!(
        page.contains("first_inbound"),
        "the history names the source"
    );
    assert!(!page.contains("/consent\""), "no consent form for viewers");

    let csrf = viewer.csrf().await;
    let (status, _, _) = viewer
        .post(
            "/contacts/+919900000001/consent",
            &[("csrf", &csrf), ("action", "opt-out")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        consent_of(&app, "+919900000001").await,
        ("opted_in".into(), false)
    );
    assert_eq!(viewer.get("/contacts/import").await.0, 403);
    assert_eq!(viewer.get("/contacts/+919900000404").await.0, 404);
    assert_eq!(viewer.get("/contacts?consent=bogus").await.0, 400);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn operators_opt_out_and_deauthorize_through_the_form_and_the_history_names_them(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    inbound(&app, '1', "+919900000001", "Asha").await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    let csrf = operator.csrf().await;

    let (status, location, _) = operator
        .post(
            "/contacts/+919900000001/consent",
            &[
                ("csrf", &csrf),
                ("action", "opt-out"),
                ("note", "asked by phone"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/contacts/+919900000001?done=consent"))
    );
    assert_eq!(
        consent_of(&app, "+919900000001").await,
        ("opted_out".into(), false)
    );
    let (source, actor, detail): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT source, actor, detail FROM consent_events WHERE change = 'opted_out'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (source.as_str(), actor.as_deref(), detail.as_deref()),
        ("dashboard", Some("otto"), Some("asked by phone"))
    );
    let (status, _, page) = operator.get("/contacts/+919900000001?done=consent").await;
    assert_eq!(status, 200);
    let history = page.split("id=\"consent-history\"").nth(1).unwrap();
    let newest = history.split("</tr>").next().unwrap();
    assert!(newest.contains("opted out"), "{newest}");
    assert!(newest.contains("dashboard") && newest.contains("otto"));
    assert!(newest.contains("asked by phone"));
    assert!(page.contains("id=\"consent\">opted out<"));

    // De-authorizing is shown apart from what the contact said, and filters apart.
    let (status, _, _) = operator
        .post(
            "/contacts/+919900000001/consent",
            &[("csrf", &csrf), ("action", "deauthorize")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        consent_of(&app, "+919900000001").await,
        ("opted_out".into(), true)
    );
    let (_, _, page) = operator.get("/contacts/+919900000001").await;
    assert!(page.contains("class=\"status consent-deauthorized\" id=\"consent\">de-authorized<"));
    assert!(page.contains("value=\"reauthorize\""), "and can be lifted");
    assert!(
        !page.contains("value=\"opt-out\"") && page.contains("value=\"opt-in\""),
        "the consent buttons follow what the contact said, under the block"
    );
    assert!(page.contains("<span id=\"said\">opted out</span>"));
    let (_, _, page) = operator.get("/contacts?consent=deauthorized").await;
    assert!(page.contains("/contacts/+919900000001"));
    let (_, _, page) = operator.get("/contacts?consent=opted_out").await;
    assert!(!page.contains("/contacts/+919900000001"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn consent_forms_without_the_form_token_are_refused_and_change_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    inbound(&app, '1', "+919900000001", "Asha").await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    for token in [None, Some("not-the-token")] {
        let mut form = vec![("action", "opt-out")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let (status, _, page) = operator
            .post("/contacts/+919900000001/consent", &form)
            .await;
        assert_eq!(status, 403);
        assert!(page.contains("Form expired"));
    }
    assert_eq!(
        consent_of(&app, "+919900000001").await,
        ("opted_in".into(), false)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM consent_events WHERE source = 'dashboard'")
            .await,
        0
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn refused_edits_explain_themselves_keep_what_was_typed_and_number_changes_move_the_page(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    inbound(&app, '1', "+919900000001", "Asha").await;
    inbound(&app, '2', "+919900000002", "Ravi").await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    let csrf = operator.csrf().await;

    let (status, _, page) = operator
        .post(
            "/contacts/+919900000001/edit",
            &[
                ("csrf", &csrf),
                ("tags", "vip, has space"),
                ("profile_name", "Asha K"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"contact-error\""));
    assert!(page.contains("has space"));
    assert_eq!(
        input_value(&page, "tags").as_deref(),
        Some("vip, has space")
    );
    assert_eq!(
        input_value(&page, "profile_name").as_deref(),
        Some("Asha K")
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM contacts WHERE cardinality(tags) > 0 OR profile_name = 'Asha K'"
        )
        .await,
        0,
        "nothing saved"
    );

    let (status, location, _) = operator
        .post(
            "/contacts/+919900000001/edit",
            &[
                ("csrf", &csrf),
                ("tags", "VIP, north"),
                ("profile_name", "Asha K"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/contacts/+919900000001?done=edit"))
    );
    let (_, _, page) = operator.get("/contacts").await;
    assert!(
        page.contains("href=\"/contacts?tag=vip\""),
        "the tag list links to the filter"
    );
    let (_, _, page) = operator.get("/contacts?tag=vip").await;
    assert!(page.contains("/contacts/+919900000001") && page.contains("Asha K"));
    assert!(!page.contains("/contacts/+919900000002"));

    // Another contact's number: refused with 409, the typed number kept.
    let (status, _, page) = operator
        .post(
            "/contacts/+919900000001/number",
            &[("csrf", &csrf), ("new_number", "+919900000002")],
        )
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("already belongs to another contact"));
    assert_eq!(
        input_value(&page, "new_number").as_deref(),
        Some("+919900000002")
    );
    let (status, _, page) = operator
        .post(
            "/contacts/+919900000001/number",
            &[("csrf", &csrf), ("new_number", "99000")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("E.164"));

    let (status, location, _) = operator
        .post(
            "/contacts/+919900000001/number",
            &[("csrf", &csrf), ("new_number", "+91 99000 00009")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/contacts/+919900000009?done=number"))
    );
    let (status, _, page) = operator.get("/contacts/+919900000009").await;
    assert_eq!(status, 200);
    let previous = page.split("id=\"previous-numbers\"").nth(1).unwrap();
    assert!(previous.contains("+919900000001") && previous.contains("otto"));
    assert_eq!(operator.get("/contacts/+919900000001").await.0, 404);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_import_with_one_bad_line_reports_it_and_imports_nothing_and_a_good_one_creates_contacts_that_export(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    let (status, _, page) = operator.get("/contacts/import").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<code>profile_name</code>"),
        "columns documented"
    );
    let csrf = operator.csrf().await;

    let bad = "number,profile_name,tags,consent\n\
               +919900000001,Asha,vip;north,opted_in\n\
               12345,<b>Bold</b>,,\n\
               +919900000003,Ravi,,\n";
    let (status, _, page) = operator
        .post("/contacts/import", &[("csrf", &csrf), ("csv", bad)])
        .await;
    assert_eq!(status, 422);
    let errors = page.split("id=\"import-errors\"").nth(1).unwrap();
    let errors = errors.split("</table>").next().unwrap();
    assert_eq!(
        errors.matches("<tr><td class=\"num\">").count(),
        1,
        "{errors}"
    );
    assert!(errors.contains("<td class=\"num\">3</td>"), "{errors}");
    assert!(errors.contains("E.164"));
    assert!(
        page.contains("12345,&#60;b&#62;Bold&#60;/b&#62;,,"),
        "the pasted text is kept, as text"
    );
    assert!(!page.contains("<b>Bold"));
    assert_eq!(app.count("SELECT count(*) FROM contacts").await, 0);

    let good = "number,profile_name,tags,consent\n\
                +919900000001,Asha,vip;north,opted_in\n\
                +919900000003,Ravi,,\n";
    let (status, location, _) = operator
        .post("/contacts/import", &[("csrf", &csrf), ("csv", good)])
        .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(location, "/contacts/import?imported=2&created=2&updated=0");
    let (_, _, page) = operator.get(&location).await;
    assert!(page.contains("Imported 2 contacts: 2 new, 0 updated."));
    assert_eq!(app.count("SELECT count(*) FROM contacts").await, 2);

    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let resp = viewer.get_response("/contacts/export.csv").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("number,profile_name,consent"));
    assert!(
        csv.contains("+919900000001,Asha,opted_in,,,,north;vip"),
        "{csv}"
    );
    assert!(csv.contains("+919900000003,Ravi,unknown,"), "{csv}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn profile_names_with_markup_are_shown_as_text_on_the_list_and_the_contact_page(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    inbound(&app, '1', "+919900000001", "<script>alert(1)</script>").await;
    let mut admin = app.admin_browser().await;
    for path in ["/contacts", "/contacts/+919900000001"] {
        let (status, _, page) = admin.get(path).await;
        assert_eq!(status, 200);
        assert!(!page.contains("<script>alert(1)"), "{path}");
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path} shows it as text"
        );
        assert!(!page.contains(" style=\""), "no inline style on {path}");
    }
    app.stop().await;
}

/// Where the rule named `name` is on the rules page.
fn place(page: &str, name: &str) -> usize {
    page.find(&format!("data-rule=\"{name}\""))
        .unwrap_or_else(|| panic!("rule {name} not on the page"))
}

#[sqlx::test(migrations = false)]
async fn admins_add_senders_and_rules_through_the_forms_and_move_rules_up_and_down(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let csrf = admin.csrf().await;

    // Senders: the configured sandbox is there and is the default.
    let (status, _, page) = admin.get("/admin/senders").await;
    assert_eq!(status, 200);
    assert!(page.contains("whatsapp:+14155238886"));
    let (status, location, _) = admin
        .post(
            "/admin/senders",
            &[
                ("csrf", &csrf),
                ("address", "+14155550100"),
                ("label", "Marketing"),
                ("status", "active"),
                ("mps", ""),
                ("join_code", ""),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/senders?done=added"))
    );
    let (kind, mps, label): (String, f64, String) = sqlx::query_as(
        "SELECT kind, mps, label FROM senders WHERE address = 'whatsapp:+14155550100'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), mps, label.as_str()),
        ("number", 80.0, "Marketing")
    );
    let (status, _, page) = admin
        .post(
            "/admin/senders",
            &[
                ("csrf", &csrf),
                ("address", "whatsapp:+14155550100"),
                ("status", "active"),
            ],
        )
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("already exists"));
    assert_eq!(
        input_value(&page, "address").as_deref(),
        Some("whatsapp:+14155550100"),
        "the typed address is kept"
    );

    // The sandbox gets a join code; the page shows how to join, with the deep link.
    let sandbox = id_of(
        &app,
        "SELECT id FROM senders WHERE address = $1",
        "whatsapp:+14155238886",
    )
    .await;
    // The sandbox's own rate (the test helper speeds the configured sender up).
    sqlx::query("UPDATE senders SET mps = 1.0 / 3 WHERE id = $1")
        .bind(sandbox)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _, _) = admin
        .post(
            &format!("/admin/senders/{sandbox}"),
            &[
                ("csrf", &csrf),
                ("label", "sandbox"),
                ("status", "active"),
                ("mps", "0.333"),
                ("join_code", "Plenty-Tiger"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, _, page) = admin.get("/admin/senders").await;
    assert!(page.contains("send <code>join plenty-tiger</code> to +14155238886"));
    assert!(page.contains("href=\"https://wa.me/14155238886?text=join%20plenty-tiger\""));
    let mps: f64 = sqlx::query_scalar("SELECT mps FROM senders WHERE id = $1")
        .bind(sandbox)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        (mps - 1.0 / 3.0).abs() < 1e-12,
        "an unchanged field keeps the exact value"
    );

    // The default sender cannot be disabled; another one can.
    let (status, _, page) = admin
        .post(
            &format!("/admin/senders/{sandbox}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 409);
    assert!(page.contains("make another sender the default first"));
    let marketing = id_of(
        &app,
        "SELECT id FROM senders WHERE address = $1",
        "whatsapp:+14155550100",
    )
    .await;
    let (status, _, _) = admin
        .post(
            &format!("/admin/senders/{marketing}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let statuses: Vec<(String, bool)> =
        sqlx::query_as("SELECT status, is_default FROM senders ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![("active".into(), true), ("disabled".into(), false)]
    );

    // Rules: three added, one refused with what was typed kept.
    for (name, kind, pattern, body, media) in [
        ("Hours", "keyword", "hours, opening hours", "9 to 5", ""),
        (
            "Orders",
            "regex",
            r"(?i)order\s+#?\d+",
            "Checking your order",
            "",
        ),
        (
            "Echo",
            "image_echo",
            "",
            "",
            "https://example.com/thanks.jpg\n",
        ),
    ] {
        let (status, location, page) = admin
            .post(
                "/admin/rules",
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("kind", kind),
                    ("pattern", pattern),
                    ("sender", ""),
                    ("reply_body", body),
                    ("reply_media", media),
                    ("enabled", "1"),
                ],
            )
            .await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/admin/rules?done=added")),
            "{page}"
        );
    }
    let (status, _, page) = admin
        .post(
            "/admin/rules",
            &[
                ("csrf", &csrf),
                ("name", "Broken"),
                ("kind", "regex"),
                ("pattern", "(unclosed"),
                ("reply_body", "never"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("not a valid regular expression"));
    let add_form = page.split("id=\"add-rule-h\"").nth(1).unwrap();
    assert_eq!(input_value(add_form, "name").as_deref(), Some("Broken"));
    assert!(add_form.contains("(unclosed"), "the typed pattern is kept");
    assert_eq!(app.count("SELECT count(*) FROM reply_rules").await, 3);

    let (status, _, page) = admin.get("/admin/rules").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Consent keywords first"),
        "the order is explained"
    );
    assert!(place(&page, "Hours") < place(&page, "Orders"));
    assert!(place(&page, "Orders") < place(&page, "Echo"));
    let rule = |name: &'static str| id_of(&app, "SELECT id FROM reply_rules WHERE name = $1", name);
    let (hours, orders, echo) = (
        rule("Hours").await,
        rule("Orders").await,
        rule("Echo").await,
    );
    assert!(
        !page.contains(&format!("/admin/rules/{echo}/move")),
        "image echo is alone in its group"
    );

    let (status, location, _) = admin
        .post(
            &format!("/admin/rules/{orders}/move"),
            &[("csrf", &csrf), ("direction", "up")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/rules?done=moved"))
    );
    let (_, _, page) = admin.get("/admin/rules").await;
    assert!(place(&page, "Orders") < place(&page, "Hours"), "moved up");
    assert!(place(&page, "Hours") < place(&page, "Echo"));
    admin
        .post(
            &format!("/admin/rules/{orders}/move"),
            &[("csrf", &csrf), ("direction", "down")],
        )
        .await;
    let (_, _, page) = admin.get("/admin/rules").await;
    assert!(place(&page, "Hours") < place(&page, "Orders"), "moved down");

    // Disable, edit and delete.
    let (status, _, _) = admin
        .post(&format!("/admin/rules/{hours}/toggle"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = admin
        .post(
            &format!("/admin/rules/{orders}"),
            &[
                ("csrf", &csrf),
                ("name", "Orders"),
                ("kind", "regex"),
                ("pattern", r"(?i)order\s+#?\d+"),
                ("reply_body", "We are looking into it"),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let rows: Vec<(String, bool, Option<String>)> =
        sqlx::query_as("SELECT name, enabled, reply_body FROM reply_rules WHERE kind <> 'image_echo' ORDER BY position")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("Hours".into(), false, Some("9 to 5".into())),
            ("Orders".into(), true, Some("We are looking into it".into())),
        ]
    );
    let (status, _, _) = admin
        .post(&format!("/admin/rules/{echo}/delete"), &[("csrf", &csrf)])
        .await;
    // The page with the notice that offers to undo it (see forms.rs).
    assert_eq!(status, 200);
    assert_eq!(app.count("SELECT count(*) FROM reply_rules").await, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn non_admins_get_403_on_senders_and_rules(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut viewer = app.browser_as("vera", Role::Viewer).await;
    let mut operator = app.browser_as("otto", Role::Operator).await;
    for b in [&mut viewer, &mut operator] {
        let b: &mut Browser = b;
        for path in ["/admin/senders", "/admin/rules"] {
            let (status, _, page) = b.get(path).await;
            assert_eq!(status, 403, "{path}");
            assert!(page.contains("admin role"));
        }
        let (_, _, page) = b.get("/contacts").await;
        assert!(
            !page.contains("href=\"/admin/senders\"") && !page.contains("href=\"/admin/rules\"")
        );
        let csrf = b.csrf().await;
        let (status, _, _) = b
            .post(
                "/admin/senders",
                &[("csrf", &csrf), ("address", "+14155550100")],
            )
            .await;
        assert_eq!(status, 403);
        let (status, _, _) = b
            .post(
                "/admin/rules",
                &[
                    ("csrf", &csrf),
                    ("name", "x"),
                    ("kind", "keyword"),
                    ("pattern", "x"),
                    ("reply_body", "x"),
                ],
            )
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(app.count("SELECT count(*) FROM senders").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM reply_rules").await, 0);
    app.stop().await;
}
