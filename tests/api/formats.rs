//! Figures and times as the pages write them (issue 19): times in each person's zone with
//! UTC on hover, the message log's sender and error columns and its pages both ways, the
//! broadcast tiles counted as the overview's funnel counts, rules' hit counts and trying a
//! sample message.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::domain::Role;

use crate::helpers::{TestApp, params};

const SANDBOX: &str = "whatsapp:+14155238886";

/// `n` messages one second apart ending at 2026-12-06 15:26:04 UTC, the newest `SM…0001`:
/// outbound from the sandbox to two customers in turn, every fifth failed with 63016, every
/// seventh inbound to the sandbox.
async fn seed_log(pool: &PgPool, n: i32) {
    sqlx::query(
        r#"INSERT INTO messages (sid, direction, from_addr, to_addr, status, error_code,
                                 error_message, body, created_at)
           SELECT 'SM' || lpad(to_hex(g), 32, '0'),
                  CASE WHEN g % 7 = 0 THEN 'inbound' ELSE 'outbound' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+91990000000' || (g % 2)
                       ELSE 'whatsapp:+14155238886' END,
                  CASE WHEN g % 7 = 0 THEN 'whatsapp:+14155238886'
                       ELSE 'whatsapp:+91990000000' || (g % 2) END,
                  CASE WHEN g % 7 = 0 THEN 'received' WHEN g % 5 = 0 THEN 'failed'
                       ELSE 'delivered' END,
                  CASE WHEN g % 7 <> 0 AND g % 5 = 0 THEN 63016 END,
                  CASE WHEN g % 7 <> 0 AND g % 5 = 0 THEN 'Outside the window' END,
                  'message ' || g,
                  timestamptz '2026-12-06 15:26:04+00' - (g - 1) * interval '1 second'
           FROM generate_series(1, $1) g"#,
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

fn sid(n: i32) -> String {
    format!("SM{n:032x}")
}

/// The sids of the log's rows, in page order.
fn row_sids(page: &str) -> Vec<String> {
    page.split("<tr data-sid=\"")
        .skip(1)
        .map(|r| r[..r.find('"').unwrap()].to_owned())
        .collect()
}

/// The `href` of the link with `id`, unescaped.
fn link(page: &str, id: &str) -> Option<String> {
    let at = page.find(&format!("id=\"{id}\""))?;
    let before = &page[..at];
    let href = before.rfind("href=\"")? + 6;
    let end = href + page[href..].find('"')?;
    Some(page[href..end].replace("&#38;", "&").replace("&amp;", "&"))
}

async fn set_zone(pool: &PgPool, username: &str, zone: &str) {
    sqlx::query("UPDATE users SET time_zone = $2 WHERE username = $1")
        .bind(username)
        .bind(zone)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn the_log_pages_both_ways_with_sender_and_error_columns(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    seed_log(&app.pool, 120).await;
    let mut b = app.browser_as("vera", Role::Viewer).await;

    // The newest page: 50 rows, newest first, no newer page, an older one; it follows live.
    let (status, _, first) = b.get("/messages").await;
    assert_eq!(status, 200);
    let page1 = row_sids(&first);
    assert_eq!(page1, (1..=50).map(sid).collect::<Vec<_>>());
    assert!(link(&first, "newer").is_none() && link(&first, "newest").is_none());
    assert!(first.contains("data-live-src=\"/messages?"));
    assert!(first.contains("<th>Sender</th>") && first.contains("<th>Error</th>"));

    // Sender and error cells: an outbound message from the sandbox, failed with 63016.
    let row = |page: &str, n: i32| {
        let s = sid(n);
        let at = page.find(&format!("<tr data-sid=\"{s}\"")).unwrap();
        page[at..at + page[at..].find("</tr>").unwrap()].to_owned()
    };
    let failed = row(&first, 5);
    assert!(
        failed.contains("<td class=\"sender-cell\">+14155238886</td>"),
        "{failed}"
    );
    assert!(
        failed.contains(&format!(
            "<a href=\"/messages/{}\" class=\"error-code\" data-error-code=\"63016\">63016</a>",
            sid(5)
        )),
        "{failed}"
    );
    assert!(failed.contains("24-hour"), "the code in words: {failed}");
    let fine = row(&first, 1);
    assert!(!fine.contains("data-error-code"), "{fine}");
    let inbound = row(&first, 7);
    assert!(
        inbound.contains("<span class=\"muted\">to</span> +14155238886"),
        "an inbound message names the number it was sent to: {inbound}"
    );

    // Older, older again (the last 20), then back newer: the same pages in the same order.
    let older = link(&first, "older").expect("an older page");
    let (_, _, second) = b.get(&older).await;
    let page2 = row_sids(&second);
    assert_eq!(page2, (51..=100).map(sid).collect::<Vec<_>>());
    assert!(
        !second.contains("data-live-src=\"/messages?"),
        "older pages stay put"
    );
    let (_, _, third) = b.get(&link(&second, "older").unwrap()).await;
    assert_eq!(row_sids(&third), (101..=120).map(sid).collect::<Vec<_>>());
    assert!(link(&third, "older").is_none(), "nothing older");
    let (_, _, back2) = b.get(&link(&third, "newer").unwrap()).await;
    assert_eq!(row_sids(&back2), page2);
    assert!(link(&back2, "newer").is_some() && link(&back2, "older").is_some());
    let (_, _, back1) = b.get(&link(&back2, "newer").unwrap()).await;
    assert_eq!(row_sids(&back1), page1, "back at the newest page");
    assert!(link(&back1, "newer").is_none());
    assert!(back1.contains("data-live-src=\"/messages?"));
    assert_eq!(link(&third, "newest").as_deref(), Some("/messages?"));

    // A newer page from the middle: the 50 just above, not the newest 50.
    let (_, _, mid) = b.get(&link(&third, "newer").unwrap()).await;
    let (_, _, above) = b.get(&link(&mid, "newer").unwrap()).await;
    assert_eq!(row_sids(&above), page1);

    // With a filter (the number: four index scans merged), both ways too.
    let (_, _, f1) = b.get("/messages?number=%2B919900000001").await;
    let f1_rows = row_sids(&f1);
    assert_eq!(f1_rows.len(), 50);
    let (_, _, f2) = b.get(&link(&f1, "older").unwrap()).await;
    assert_eq!(row_sids(&f2).len(), 10, "60 messages with that number");
    assert!(link(&f2, "older").is_none());
    let newer = link(&f2, "newer").unwrap();
    assert!(newer.contains("number=%2B919900000001"), "{newer}");
    let (_, _, f1_again) = b.get(&newer).await;
    assert_eq!(row_sids(&f1_again), f1_rows);

    // A cursor this server did not make is refused.
    assert_eq!(b.get("/messages?cursor=bm9wZQ").await.0, 400);
    app.stop().await;
}

#[sqlx::test]
async fn times_render_in_the_readers_zone_with_utc_on_hover(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    seed_log(&app.pool, 3).await;
    let mut ist = app.browser_as("asha", Role::Viewer).await;
    let mut utc = app.browser_as("vera", Role::Viewer).await;
    set_zone(&app.pool, "asha", "Asia/Kolkata").await;
    let newest = r#"<time datetime="2026-12-06T15:26:04.000Z" title="2026-12-06 15:26:04 UTC">"#;
    let us_style = regex::Regex::new(r"\b\d{1,2}/\d{1,2}/\d{4}\b").unwrap();

    for path in [
        "/messages",
        "/messages?fragment=live",
        "/",
        "/?fragment=live",
        &format!("/messages/{}", sid(1)),
        &format!("/messages/{}?fragment=live", sid(1)),
        "/conversations/+919900000001",
    ] {
        let (status, _, page) = ist.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            page.contains(&format!("{newest}2026-12-06 20:56:04 IST</time>")),
            "{path} in Kolkata's time: {page}"
        );
        assert!(!us_style.is_match(&page), "{path}: no US-style dates");
        let (_, _, page) = utc.get(path).await;
        assert!(
            page.contains(&format!("{newest}2026-12-06 15:26:04 UTC</time>")),
            "{path} in UTC for another person: {page}"
        );
    }

    // The banner of open alerts (on every page, and fetched again on its own).
    sqlx::query(
        "INSERT INTO alerts (kind, subject, severity, state, message, fired_at) \
         VALUES ('test', 't', 'warning', 'firing', 'Test alert', \
                 timestamptz '2026-12-06 15:26:04+00')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, _, banner) = ist.get("/alerts/banner").await;
    assert!(
        banner.contains(&format!("{newest}2026-12-06 20:56:04 IST</time>")),
        "{banner}"
    );
    app.stop().await;
}

/// A broadcast of 10 recipients whose messages are in every state, stored directly.
async fn seed_broadcast(pool: &PgPool) -> i64 {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO broadcasts (name, status, body, sender, mps, start_at, audience, \
                                 estimated_cost) \
         VALUES ('Tiles', 'paused', 'hi', 'whatsapp:+14155238886', 10, now(), \
                 '{\"numbers\": 10}', 0.0491234) RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // (recipient state, message status, sent_at?, delivered_at?, read_at?)
    let rows: [(&str, Option<&str>, bool, bool, bool); 10] = [
        ("pending", None, false, false, false),
        ("sent", Some("queued"), false, false, false),
        ("sent", Some("sent"), true, false, false),
        ("sent", Some("delivered"), true, true, false),
        // read, its sent and delivered callbacks lost: still sent and delivered
        ("sent", Some("read"), false, false, true),
        ("sent", Some("read"), true, true, true),
        ("sent", Some("read"), true, true, true),
        // failed after being sent
        ("sent", Some("failed"), true, false, false),
        ("sent", Some("undelivered"), true, false, false),
        ("failed", None, false, false, false),
    ];
    for (i, (state, status, sent, delivered, read)) in rows.into_iter().enumerate() {
        let number = format!("+9199000001{i:02}");
        let sid = status.map(|_| format!("SM{:032x}", 0xb0 + i));
        if let (Some(sid), Some(status)) = (&sid, status) {
            sqlx::query(
                "INSERT INTO messages (sid, direction, from_addr, to_addr, status, sent_at, \
                                       delivered_at, read_at) \
                 VALUES ($1, 'outbound', 'whatsapp:+14155238886', 'whatsapp:' || $2, $3, \
                         CASE WHEN $4 THEN now() END, CASE WHEN $5 THEN now() END, \
                         CASE WHEN $6 THEN now() END)",
            )
            .bind(sid)
            .bind(&number)
            .bind(status)
            .bind(sent)
            .bind(delivered)
            .bind(read)
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO broadcast_recipients (broadcast_id, number, state, message_sid) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&number)
        .bind(state)
        .bind(&sid)
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

/// The text of the element after `marker` (up to its closing tag).
fn text_after<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {page}"));
    let rest = &page[at + marker.len()..];
    &rest[..rest.find("</").unwrap()]
}

#[sqlx::test]
async fn broadcast_tiles_count_like_the_funnel(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let id = seed_broadcast(&app.pool).await;
    let mut b = app.browser_as("vera", Role::Viewer).await;
    let (status, _, page) = b.get(&format!("/broadcasts/{id}")).await;
    assert_eq!(status, 200);
    // Reached at least: sent 7 (the queued one has not been sent), delivered 4, read 3.
    for (bucket, value, share, now) in [
        ("sent", "7", "70.0 %", Some("2")),
        ("delivered", "4", "40.0 %", Some("1")),
        ("read", "3", "30.0 %", Some("3")),
        ("pending", "1", "10.0 %", None),
        ("failed", "2", "20.0 %", None),
        ("undelivered", "1", "10.0 %", None),
        ("canceled", "0", "0 %", None),
    ] {
        let tile = &page[page.find(&format!("id=\"bucket-{bucket}\"")).unwrap()..];
        let tile = &tile[..tile.find("</a>").unwrap()];
        assert_eq!(
            text_after(tile, &format!("data-bucket=\"{bucket}\">")),
            value,
            "{bucket}: {tile}"
        );
        assert!(tile.contains(&format!(">{share}<")), "{bucket}: {tile}");
        match now {
            Some(n) => assert_eq!(
                text_after(
                    tile,
                    &format!(
                        "data-now=\"{bucket}\" title=\"recipients whose message is in exactly this state now\">"
                    )
                ),
                format!("now {n}"),
                "{bucket}"
            ),
            None => assert!(!tile.contains("data-now"), "{bucket}"),
        }
    }
    // The estimate: two decimals on screen, exact on hover.
    assert!(
        page.contains(
            r#"id="estimated-cost"><span class="money" title="0.049123 USD">USD 0.05</span>"#
        ),
        "{page}"
    );

    // The overview's funnel over the same messages counts the same way (the last hour: read
    // from the messages, not the roll-ups that follow them a little later).
    let (_, _, overview) = b.get("/?w=1h").await;
    for (stage, value) in [("sent", "7"), ("delivered", "4"), ("read", "3")] {
        assert_eq!(
            text_after(&overview, &format!("data-stage=\"{stage}\">")),
            value,
            "{stage}"
        );
    }

    // The list agrees: delivered · read · failed (failed and undelivered).
    let (_, _, list) = b.get("/broadcasts").await;
    let row = &list[list.find(&format!("id=\"broadcast-{id}\"")).unwrap()..];
    assert_eq!(text_after(row, "data-count=\"delivered\">"), "4");
    assert_eq!(text_after(row, "data-count=\"read\">"), "3");
    assert_eq!(text_after(row, "data-count=\"failed\">"), "3");
    app.stop().await;
}

fn inbound(sid: &str, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
    params(&[
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", &format!("whatsapp:{from}")),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ])
}

async fn add_rule(app: &TestApp, token: &str, rule: serde_json::Value) -> i64 {
    let resp = app
        .client
        .post(format!("{}/api/v1/rules", app.address))
        .bearer_auth(token)
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[sqlx::test]
async fn rules_count_what_they_answered_and_a_sample_can_be_tried(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let token = app.api_token(Role::Admin).await;
    let hours = add_rule(
        &app,
        &token,
        serde_json::json!({"name": "Hours", "kind": "keyword", "pattern": "hours, open",
                           "reply_body": "We are open 9–17."}),
    )
    .await;
    let other = add_rule(
        &app,
        &token,
        serde_json::json!({"name": "Other line", "kind": "regex", "pattern": "(?i)price",
                           "sender": "whatsapp:+14155550100", "reply_body": "See the list."}),
    )
    .await;

    // Two messages the rule answers (one delivered twice by Twilio), one it does not.
    for (sid, body) in [
        ("SM000000000000000000000000000000a1", "Hours?"),
        ("SM000000000000000000000000000000a1", "Hours?"),
        ("SM000000000000000000000000000000a2", "open"),
        ("SM000000000000000000000000000000a3", "price please"),
    ] {
        let resp = app
            .post_signed("/wa", &inbound(sid, "+919900000001", SANDBOX, body))
            .await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    let hits = |id: i64| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT hits FROM reply_rules WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(hits(hours).await, 2, "a duplicate webhook counts once");
    assert_eq!(hits(other).await, 0, "its sender is another number");
    let (_, rule) = app
        .get_json(&format!("/api/v1/rules/{hours}"), &token)
        .await;
    assert_eq!(rule["hits"], 2);
    assert!(rule["last_hit_at"].is_string(), "{rule}");

    let mut admin = app.admin_browser().await;
    let (status, _, page) = admin.get("/admin/rules").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "data-hits=\"{hours}\">2<br><span class=\"muted\">last <time"
        )),
        "{page}"
    );
    assert!(page.contains(&format!("data-hits=\"{other}\">0<")));

    // Trying samples: stores, counts and sends nothing.
    let before = (
        app.count("SELECT count(*) FROM messages").await,
        app.count("SELECT count(*) FROM auto_replies").await,
    );
    let (status, _, page) = admin.get("/admin/rules?try_body=HOURS!").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "id=\"try-result\" role=\"status\" data-rule-id=\"{hours}\""
        )),
        "{page}"
    );
    assert!(page.contains("Rule “Hours” (keyword) answers."));
    assert!(page.contains("id=\"try-reply\">We are open 9–17.<"));
    assert!(
        page.contains("name=\"try_body\" value=\"HOURS!\""),
        "the form keeps it"
    );

    let (_, _, page) = admin.get("/admin/rules?try_body=price%3F").await;
    assert!(
        page.contains("No rule answers"),
        "the regex rule is for another sender"
    );
    let (_, _, page) = admin
        .get("/admin/rules?try_body=price%3F&try_to=%2B14155550100")
        .await;
    assert!(
        page.contains(&format!("data-rule-id=\"{other}\"")),
        "sent to its sender: {page}"
    );
    let (_, _, page) = admin.get("/admin/rules?try_body=STOP").await;
    assert!(page.contains("An opt-out keyword"), "{page}");
    assert!(!page.contains("data-rule-id"));
    let (status, _, page) = admin
        .get("/admin/rules?try_body=hours&try_to=nonsense")
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"try-error\""), "{page}");
    let (_, _, page) = admin.get("/admin/rules?try_body=%3Cb%3Ehi").await;
    assert!(page.contains("value=\"&#60;b&#62;hi\"") || page.contains("value=\"&lt;b&gt;hi\""));

    assert_eq!(
        (
            app.count("SELECT count(*) FROM messages").await,
            app.count("SELECT count(*) FROM auto_replies").await,
        ),
        before
    );
    assert_eq!(hits(hours).await, 2, "trying counts nothing");

    // Rules are for admins, trying included.
    let mut op = app.browser_as("otto", Role::Operator).await;
    assert_eq!(op.get("/admin/rules?try_body=hours").await.0, 403);
    app.stop().await;
}

/// In Chromium, light and dark, wide and phone-sized: the balance tile draws no box inside its
/// panel, and no figure on the overview or the balance page is clipped.
#[sqlx::test]
async fn the_balance_tile_has_no_stray_border_and_no_clipped_figure(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use crate::browser::{browser, driver, log_in_as_admin, screenshot, text_of};
    let app = TestApp::spawn(opts).await;
    sqlx::query(
        "INSERT INTO balance_readings (read_at, balance, currency) \
         VALUES (now() - interval '2 hours', 1234567.891, 'USD'), (now(), 1234560.5, 'USD')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", app.address)).await.unwrap();
    log_in_as_admin(&c).await;
    text_of(&c, "h1").await;
    // Every figure's text fits its box, and the tile's figure has no border of its own.
    let check = r#"
        const clipped = [...document.querySelectorAll('.stat .value')]
          .filter(e => e.scrollWidth > e.clientWidth + 1)
          .map(e => e.textContent.trim());
        const tile = document.querySelector('#balance-tile .stat');
        const border = tile ? getComputedStyle(tile).borderTopWidth : 'none';
        return JSON.stringify({clipped, border});"#;
    for (width, theme) in [(1440, "light"), (390, "dark")] {
        c.set_window_size(width, 900).await.unwrap();
        for path in ["/", "/balance"] {
            c.goto(&format!("{}{path}?theme={theme}", app.address))
                .await
                .unwrap();
            text_of(&c, "h1").await;
            let found = c.execute(check, vec![]).await.unwrap();
            let found: serde_json::Value = serde_json::from_str(found.as_str().unwrap()).unwrap();
            assert_eq!(found["clipped"], serde_json::json!([]), "{path} at {width}");
            if path == "/" {
                assert_eq!(found["border"], "0px", "{path} at {width}");
                let amount = text_of(&c, "#balance-tile .value").await;
                assert_eq!(amount, "USD 1,234,560.50");
            }
            let page = if path == "/" { "overview" } else { "balance" };
            screenshot(&c, &format!("formats-{page}-{width}-{theme}")).await;
        }
    }
    c.close().await.unwrap();
    app.stop().await;
}
