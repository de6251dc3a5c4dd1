//! The admin prices page over HTTP: who may see, download and upload; the form token; uploads
//! (a file, as a browser sends it, or pasted text) that replace the table whole or change
//! nothing and list every bad line; the download in the upload format; the estimate form by
//! the uploaded table; long tables paged; and escaping.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{Browser, Field, TestApp, post_multipart};

const TABLE: &str = "\
effective_from,kind,country,category,amount,currency
2025-01-01,twilio_message,*,*,0.01,USD
2099-01-01,twilio_message,*,*,0.02,USD
2025-01-01,twilio_failed,*,*,0.002,USD
2025-01-01,meta_conversation,*,*,0.09,USD
2025-07-01,meta_template,IN,marketing,0.02,USD
2025-07-01,meta_template,IN,*,0.004,USD
2025-07-01,meta_template,*,*,0.05,USD
2024-01-01,meta_template,*,*,0.07,USD
";

/// Uploads `csv` as the chosen file of the page's form.
async fn upload_file(b: &mut Browser, csv: &str) -> (u16, Option<String>, String) {
    let csrf = b.csrf().await;
    post_multipart(
        b,
        "/admin/prices",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("file", Some("rate-card.csv"), csv.as_bytes()),
            ("csv", None, b""),
        ],
    )
    .await
}

/// The stored table, one row per line, with who uploaded it.
async fn stored(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT concat_ws(' ', effective_from, kind, country, category, amount::text, currency, \
                coalesce(uploaded_by, '-')) \
         FROM prices ORDER BY effective_from, kind, country, category",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The text of the element with `id` up to its closing tag (first `<` after the content).
/// An amount as the page shows it: ("USD 0.01", its exact value on hover "0.01 USD").
fn money_by_id(page: &str, id: &str) -> (String, String) {
    let inner = by_id(page, id);
    let inner = inner.strip_prefix("<strong>").unwrap_or(inner);
    let title = inner
        .split("title=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no money in #{id}: {inner}"));
    let (title, rest) = title.split_once('"').unwrap();
    (rest.trim_start_matches('>').to_owned(), title.to_owned())
}

fn by_id<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &page[at..];
    let start = rest.find('>').unwrap() + 1;
    let rest = &rest[start..];
    &rest[..rest.find("</").unwrap()]
}

#[sqlx::test(migrations = false)]
async fn only_admins_see_download_and_upload_prices(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let before = stored(&app).await;
    for (name, role) in [("vera", Role::Viewer), ("otto", Role::Operator)] {
        let mut b = app.browser_as(name, role).await;
        let (status, _, page) = b.get("/admin/prices").await;
        assert_eq!(status, 403, "{role:?}");
        assert!(page.contains("Not allowed"));
        let (_, _, overview) = b.get("/").await;
        assert!(
            !overview.contains("href=\"/admin/prices\""),
            "{role:?}: no link in the navigation"
        );
        assert_eq!(b.get("/admin/prices.csv").await.0, 403, "{role:?}");
        let (status, _, _) = upload_file(&mut b, TABLE).await;
        assert_eq!(status, 403, "{role:?} with a valid form token");
    }
    assert_eq!(stored(&app).await, before, "nothing changed");

    let (status, location, _) = Browser::new(&app.address).get("/admin/prices").await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/login"));

    let mut admin = app.admin_browser().await;
    let (status, _, page) = admin.get("/admin/prices").await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/admin/prices\" aria-current=\"page\">Prices</a>"));
    let note = by_id(&page, "default-note");
    assert!(note.contains("shipped with wadash"), "{note}");
    assert!(page.contains("its Meta rows are placeholders</strong>"));
    assert_eq!(by_id(&page, "currency").trim(), "USD");
    assert!(by_id(&page, "uploaded").contains("shipped default"));
    assert!(page.contains("id=\"kind-twilio_message\""));
    assert!(page.contains("id=\"kind-meta_template\""));
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(
        !page.contains("<script>") && !page.contains(" style=\""),
        "no inline script or style (the CSP forbids them)"
    );
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_upload_without_the_form_token_is_refused_and_changes_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let before = stored(&app).await;
    let mut admin = app.admin_browser().await;
    for token in [None, Some("not-the-token")] {
        let mut fields: Vec<Field> = vec![("file", Some("rate-card.csv"), TABLE.as_bytes())];
        if let Some(t) = token {
            fields.push(("csrf", None, t.as_bytes()));
        }
        let (status, _, page) = post_multipart(&admin, "/admin/prices", &fields).await;
        assert_eq!(status, 403, "{token:?}");
        assert!(page.contains("Form expired"));
    }
    // A pasted table sent as a plain form is checked the same way.
    let (status, _, _) = admin
        .post(
            "/admin/prices",
            &[("csrf", "not-the-token"), ("csv", TABLE)],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(stored(&app).await, before);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_bad_upload_lists_every_bad_line_and_changes_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let before = stored(&app).await;
    let mut admin = app.admin_browser().await;
    let bad = format!(
        "{TABLE}2025-07-01,meta_template,India,marketing,0.02,USD\n\
         \n\
         2025-07-01,meta_template,IN,marketing,0.03,USD\n\
         2025-07-01,twilio_message,*,*,0.01,EUR\n\
         2025-13-01,twilio_message,*,*,0.01,USD\n"
    );
    let (status, _, page) = upload_file(&mut admin, &bad).await;
    assert_eq!(status, 422);
    let errors = by_id(&page, "upload-errors");
    assert!(
        errors.contains("Nothing changed: rate-card.csv has 4 problems"),
        "{errors}"
    );
    let table = page.split("id=\"upload-errors\"").nth(1).unwrap();
    let table = &table[..table.find("</table>").unwrap()];
    let lines: Vec<&str> = table
        .split("<tr><td class=\"num\">")
        .skip(1)
        .map(|r| &r[..r.find('<').unwrap()])
        .collect();
    assert_eq!(lines, ["10", "12", "13", "14"], "{table}");
    assert!(table.contains("<code>2025-07-01,meta_template,India,marketing,0.02,USD</code>"));
    assert!(table.contains("the same date, kind, country and category are on line 6"));
    assert!(table.contains("a table holds one currency"));
    assert_eq!(stored(&app).await, before, "nothing changed");

    // Pasted text (no file chosen) is refused alike and kept in the form to be fixed.
    let csrf = admin.csrf().await;
    let pasted = "effective_from,kind,country,category,amount,currency\n2025-01-01,twilio_message,*,*,-1,USD\n";
    let (status, _, page) = post_multipart(
        &admin,
        "/admin/prices",
        &[
            ("csrf", None, csrf.as_bytes()),
            ("file", Some(""), b""),
            ("csv", None, pasted.as_bytes()),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Nothing changed: the pasted text has 1 problem"));
    assert!(page.contains("amount cannot be negative"));
    assert!(by_id(&page, "price-csv").contains("2025-01-01,twilio_message,*,*,-1,USD"));

    // An empty form is a problem too, not an empty table.
    let (status, _, page) = post_multipart(
        &admin,
        "/admin/prices",
        &[("csrf", None, csrf.as_bytes()), ("csv", None, b"  \r\n")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("choose a CSV file, or paste the table"));
    assert_eq!(stored(&app).await, before, "still nothing changed");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_good_upload_replaces_the_table_and_the_estimate_form_uses_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let (status, location, _) = upload_file(&mut admin, TABLE).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/prices?uploaded=8"))
    );
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 8);
    assert!(rows.contains(&"2025-07-01 meta_template IN marketing 0.02 USD admin".to_owned()));
    assert!(
        rows.iter().all(|r| r.ends_with(" admin")),
        "uploaded by the admin: {rows:?}"
    );

    let (status, _, page) = admin.get("/admin/prices?uploaded=8").await;
    assert_eq!(status, 200);
    assert!(by_id(&page, "prices-notice").contains("Price table replaced: 8 rows uploaded."));
    assert!(
        !page.contains("id=\"default-note\""),
        "no longer the shipped default"
    );
    assert!(by_id(&page, "uploaded").contains("by admin at"));
    // Of the two `*` meta_template rows, 2025-07-01 is in force and 2024-01-01 superseded;
    // the 2099 Twilio row is future.
    assert!(page.contains("<dd>8 (6 in force today, 1 superseded, 1 future)</dd>"));
    let meta = page.split("id=\"kind-meta_template\"").nth(1).unwrap();
    let meta = &meta[..meta.find("</table>").unwrap()];
    let star_rows: Vec<&str> = meta
        .split("<tr class=")
        .skip(1)
        .filter(|r| r.contains("<td>*</td>\n      <td>*</td>"))
        .collect();
    assert_eq!(star_rows.len(), 2, "{meta}");
    assert!(star_rows[0].contains("2024-01-01") && star_rows[0].contains(">superseded<"));
    assert!(star_rows[1].contains("2025-07-01") && star_rows[1].contains(">in force<"));
    assert!(
        meta.find("<td>IN</td>").unwrap() < meta.find("<td>*</td>").unwrap(),
        "named countries before *"
    );
    let twilio = page.split("id=\"kind-twilio_message\"").nth(1).unwrap();
    let twilio = &twilio[..twilio.find("</table>").unwrap()];
    assert!(twilio.contains(">future<"), "{twilio}");

    // The estimate form, by the uploaded table, with the rows used.
    let (status, _, page) = admin
        .get("/admin/prices?to=%2B919900000001&category=marketing&window=out&date=2025-08-01")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        money_by_id(&page, "twilio-fee"),
        ("USD 0.01".into(), "0.01 USD".into())
    );
    assert_eq!(money_by_id(&page, "meta-fee").0, "USD 0.02");
    assert_eq!(money_by_id(&page, "total-fee").0, "USD 0.03");
    let used = page.split("id=\"used-rows\"").nth(1).unwrap();
    let used = &used[..used.find("</tbody>").unwrap()];
    assert!(used.contains(
        "<td>Twilio</td><td><code>twilio_message</code></td><td>*</td><td>*</td><td>2025-01-01</td>"
    ));
    assert!(used.contains("<td>Meta</td><td><code>meta_template</code></td><td>IN</td><td>marketing</td><td>2025-07-01</td>"));
    assert!(
        page.contains("<option value=\"marketing\" selected>"),
        "the form keeps what was asked"
    );

    // Utility inside the window costs Twilio's fee only; failed pays the failed fee.
    let (_, _, page) = admin
        .get("/admin/prices?to=%2B919900000001&category=utility&window=in&date=2025-08-01")
        .await;
    assert_eq!(money_by_id(&page, "meta-fee").0, "USD 0.00");
    assert!(page.contains("Meta charges nothing for this message"));
    let (_, _, page) = admin
        .get("/admin/prices?to=%2B4915123456789&category=marketing&failed=1&date=2025-08-01")
        .await;
    assert_eq!(
        money_by_id(&page, "twilio-fee"),
        ("USD 0.002".into(), "0.002 USD".into()),
        "a unit price keeps its tenths of a cent"
    );
    assert_eq!(money_by_id(&page, "meta-fee").0, "USD 0.00");
    // Before July 2025: per conversation.
    let (_, _, page) = admin
        .get("/admin/prices?to=%2B4915123456789&category=marketing&date=2025-03-01")
        .await;
    assert_eq!(money_by_id(&page, "meta-fee").0, "USD 0.09");

    // A date the table does not cover, and a number that is not one.
    let (status, _, page) = admin
        .get("/admin/prices?to=%2B919900000001&date=2024-06-01")
        .await;
    assert_eq!(status, 422);
    assert!(by_id(&page, "estimate-error").contains("has no twilio_message price"));
    let (status, _, page) = admin.get("/admin/prices?to=12345").await;
    assert_eq!(status, 400);
    assert!(by_id(&page, "estimate-error").contains("not an international number"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_downloaded_table_uploads_back_identical(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    // The scale of an amount is kept: 0.0100 is not written back as 0.01.
    let table = TABLE.replace(",0.01,", ",0.0100,");
    assert_eq!(upload_file(&mut admin, &table).await.0, 303);
    let resp = admin.get_response("/admin/prices.csv").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("prices.csv")
    );
    let first = resp.text().await.unwrap();
    assert!(first.starts_with("effective_from,kind,country,category,amount,currency\n"));
    assert!(first.ends_with('\n'));
    let sorted = |csv: &str| {
        let mut lines: Vec<String> = csv.lines().skip(1).map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(&first),
        sorted(&table),
        "the upload's rows, in the upload format"
    );
    let rows_before = stored(&app).await;

    assert_eq!(upload_file(&mut admin, &first).await.0, 303);
    let second = admin
        .get_response("/admin/prices.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(stored(&app).await, rows_before);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_long_table_is_shown_a_page_at_a_time(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let mut csv = String::from("effective_from,kind,country,category,amount,currency\n");
    for i in 0..1_200 {
        let day = start + chrono::Duration::days(i);
        csv.push_str(&format!("{day},twilio_message,*,*,0.{i:04},USD\n"));
    }
    assert_eq!(upload_file(&mut admin, &csv).await.0, 303);

    let (_, _, page) = admin.get("/admin/prices").await;
    assert_eq!(page.matches("<tr class=\"standing-row-").count(), 500);
    assert_eq!(
        by_id(&page, "rows-shown"),
        "Rows 1–500 of 1200; 700 not shown on this page."
    );
    assert!(page.contains("href=\"/admin/prices?page=2\" rel=\"next\""));
    let (_, _, page) = admin.get("/admin/prices?page=3").await;
    assert_eq!(page.matches("<tr class=\"standing-row-").count(), 200);
    assert!(by_id(&page, "rows-shown").starts_with("Rows 1001–1200 of 1200"));
    assert!(page.contains("href=\"/admin/prices?page=2\" rel=\"prev\""));
    assert!(!page.contains("rel=\"next\""));
    // Every row has started; the latest (2023-04-14, the last one) is in force.
    assert_eq!(page.matches(">in force</span>").count(), 1);
    let last = page.rsplit("<tr class=\"standing-row-").next().unwrap();
    assert!(
        last.starts_with("in_force") && last.contains("2023-04-14"),
        "{last}"
    );
    assert!(page.contains("<dd>1200 (1 in force today, 1199 superseded, 0 future)</dd>"));
    assert_eq!(admin.get("/admin/prices?page=0").await.0, 400);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn html_in_what_the_page_shows_back_is_escaped(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let mut admin = app.admin_browser().await;
    let evil = "2025-01-01,twilio_message,<script>alert(1)</script>,*,0.01,USD";
    let csv = format!("effective_from,kind,country,category,amount,currency\n{evil}\n");
    let csrf = admin.csrf().await;
    let (status, _, page) = post_multipart(
        &admin,
        "/admin/prices",
        &[
            ("csrf", None, csrf.as_bytes()),
            (
                "file",
                Some("<img src=x onerror=alert(2)>.csv"),
                csv.as_bytes(),
            ),
            ("csv", None, b"<textarea></textarea><b>pasted</b>"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(!page.contains("<script>alert(1)"), "line text and message");
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!page.contains("<img src=x"), "file name");
    assert!(page.contains("&#60;img src=x onerror=alert(2)&#62;.csv"));
    assert!(!page.contains("<b>pasted</b>"), "the textarea's text");
    assert!(page.contains("&#60;/textarea&#62;&#60;b&#62;pasted&#60;/b&#62;"));

    let (status, _, page) = admin
        .get("/admin/prices?to=%3Cb%3Ebold%3C%2Fb%3E&date=%22%3E%3Cscript%3E")
        .await;
    assert_eq!(status, 400);
    assert!(!page.contains("<b>bold</b>") && !page.contains("\"><script>"));
    assert!(page.contains("value=\"&#60;b&#62;bold&#60;/b&#62;\""));
    app.stop().await;
}
