//! A rolling upgrade (issue 23): instance A runs the previous release's binary (built from
//! git by `scripts/build-previous`), B this build, both behind the shipped nginx
//! configuration on one database. A migrates it first, B applies this build's newer
//! migrations while A serves; then both take signed callbacks (each stored once), share
//! logins, and each one's live stream shows callbacks the other took; A restarted on the
//! migrated database starts and serves. And the rule that makes it safe, checked with this
//! build alone: newer expand migrations let a binary start (with a warning), a newer contract
//! migration stops it, naming the migration.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{ADMIN_PASSWORD, Browser, ServeProcess, database_url};
use crate::proxy::{
    Nginx, Scratch, certificates, send_signed, send_signed_for, sids, site, status_callbacks_taken,
};

/// The previous release's binary: `WADASH_TEST_PREVIOUS_BIN`, set by `scripts/test`.
fn previous_binary() -> String {
    let path = std::env::var("WADASH_TEST_PREVIOUS_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/previous/wadash").to_owned()
    });
    assert!(
        std::path::Path::new(&path).exists(),
        "the previous release's binary {path} is missing: run scripts/build-previous (scripts/test does)"
    );
    path
}

async fn applied(pool: &sqlx::PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Reads `/events` until a `messages` event mentions `sid`.
async fn live_event_for(resp: &mut reqwest::Response, sid: &str, instance: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains(sid) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("{instance}'s live stream never showed {sid}: {other:?}"),
        }
    }
}

#[sqlx::test(migrations = false)]
async fn the_previous_release_and_this_one_serve_side_by_side_on_one_database(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let previous = previous_binary();
    let dir = Scratch::new("rolling-test");
    certificates(&dir);
    let (http, https) = (crate::helpers::free_port(), crate::helpers::free_port());
    let public = format!("https://localhost:{https}");
    let env = [("WADASH_PUBLIC_URL", public.as_str())];
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone())
        .await
        .unwrap();

    // A, the previous release, creates and migrates the database.
    let a_log = dir.path("a.log");
    let a = ServeProcess::start_binary(&previous, &opts, &env, None).await;
    let before = applied(&pool).await;
    let ours: Vec<i64> = wadash::database::MIGRATOR
        .iter()
        .map(|m| m.version)
        .collect();
    let newer: Vec<i64> = ours
        .iter()
        .filter(|v| !before.contains(v))
        .copied()
        .collect();
    assert!(
        !newer.is_empty(),
        "this build must carry migrations the previous release lacks for this test to mean anything; \
         move scripts/build-previous's PREVIOUS to the last commit before the newest migration"
    );

    // B, this build, applies its newer migrations while A serves.
    let b = ServeProcess::start(&opts, &env).await;
    assert_eq!(applied(&pool).await, ours, "B migrated the database");

    let port_of = |s: &ServeProcess| -> u16 { s.base.rsplit(':').next().unwrap().parse().unwrap() };
    let nginx = Nginx::start(
        &dir,
        &site(&[port_of(&a), port_of(&b)], http, https, &dir),
        https,
    )
    .await;
    let token = wadash::twilio::webhook_keys::simulator_token(&pool)
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    let account = "AC8e904faad99a05efe123e12515a0000";
    let ca = dir.path("ca.pem");

    // Signed callbacks through the proxy: all accepted, each stored once, both took some.
    let report = send_signed(
        &format!("{public}/sts"),
        &token,
        &ca,
        account,
        &sids("r", 30),
    );
    assert_eq!(
        report["statuses"],
        serde_json::json!({"204": 30}),
        "{report}"
    );
    let (stored, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE sid LIKE 'SMr%' AND status = 'delivered'),
                (SELECT count(*) FROM message_events WHERE message_sid LIKE 'SMr%')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((stored, events), (30, 30));
    let (on_a, on_b) = (
        status_callbacks_taken(&a.base).await,
        status_callbacks_taken(&b.base).await,
    );
    assert!(
        on_a > 0 && on_b > 0,
        "both served: {on_a} on A, {on_b} on B"
    );

    // A login made through the proxy works on both versions.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut through = Browser::with_client(&public, client);
    assert_eq!(through.login("admin", ADMIN_PASSWORD).await, 303);
    let direct = |s: &ServeProcess| {
        let mut one = Browser::new(&s.base);
        one.cookies = through.cookies.clone();
        one
    };
    for (name, s) in [("A", &a), ("B", &b)] {
        let (status, _, _) = direct(s).get("/account").await;
        assert_eq!(status, 200, "the session works on {name}");
        let (status, _, page) = direct(s).get("/messages").await;
        assert_eq!(status, 200, "{name}'s messages page");
        assert!(page.contains("SMr"), "{name} lists the callbacks' messages");
    }

    // Each one's live stream shows a callback the other one took.
    for (watcher, w, taker, t, prefix) in [("A", &a, "B", &b, "la"), ("B", &b, "A", &a, "lb")] {
        let mut stream = direct(w).get_response("/events").await;
        assert_eq!(stream.status().as_u16(), 200, "{watcher}'s /events");
        let sid = sids(prefix, 1);
        let report = send_signed_for(
            &format!("{}/sts", t.base),
            &format!("{public}/sts"),
            &token,
            &ca,
            account,
            &sid,
        );
        assert_eq!(
            report["statuses"],
            serde_json::json!({"204": 1}),
            "{taker}: {report}"
        );
        live_event_for(&mut stream, &sid[0], watcher).await;
    }

    // A restarts (a crash, a reboot) before it is upgraded: the previous release starts on
    // the database B migrated, says so, and serves.
    let a_port = port_of(&a);
    drop(a);
    let a_bind = format!("127.0.0.1:{a_port}");
    let a = ServeProcess::start_binary(
        &previous,
        &opts,
        &[
            ("WADASH_PUBLIC_URL", public.as_str()),
            ("WADASH_BIND", a_bind.as_str()),
            ("RUST_LOG", "warn"),
        ],
        Some(std::path::Path::new(&a_log)),
    )
    .await;
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert!(
        log.contains("migrated by a newer wadash"),
        "the previous release warns that it runs on a newer schema:\n{log}"
    );
    let started = Instant::now();
    let mut round = 0;
    while status_callbacks_taken(&a.base).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the restarted A got nothing"
        );
        let report = send_signed(
            &format!("{public}/sts"),
            &token,
            &ca,
            account,
            &sids(&format!("q{round}"), 6),
        );
        assert_eq!(
            report["statuses"],
            serde_json::json!({"204": 6}),
            "{report}"
        );
        round += 1;
    }
    let (status, _, _) = direct(&a).get("/account").await;
    assert_eq!(status, 200, "the session still works on the restarted A");
    drop(nginx);
    drop((a, b));
    pool.close().await;
}

/// `wadash migrate` of this build on `opts`' database, with the warnings it logs.
async fn migrate(opts: &PgConnectOptions) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wadash"));
    cmd.arg("migrate")
        .env_remove("WADASH_CONFIG")
        .env("DATABASE_URL", database_url(opts, None))
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[sqlx::test(migrations = false)]
async fn newer_expand_migrations_let_this_build_start_and_a_newer_contract_migration_stops_it(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (ok, out) = migrate(&opts).await;
    assert!(ok, "{out}");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await
        .unwrap();
    let record = |version: i64, description: &'static str| {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, true, '\\x00', 0)",
        )
        .bind(version)
        .bind(description)
    };
    // What a newer release's expand migration leaves: a new table, a defaulted column.
    sqlx::raw_sql(
        "CREATE TABLE newer_feature (id bigint PRIMARY KEY);
         ALTER TABLE messages ADD COLUMN newer_flag boolean NOT NULL DEFAULT false;",
    )
    .execute(&pool)
    .await
    .unwrap();
    record(29991231000000, "newer feature")
        .execute(&pool)
        .await
        .unwrap();
    let (ok, out) = migrate(&opts).await;
    assert!(
        ok,
        "an expand migration from a newer release is no reason to stop: {out}"
    );
    assert!(out.contains("29991231000000 (newer feature)"), "{out}");
    // This build still starts and serves on it.
    let serve = ServeProcess::start(&opts, &[]).await;
    let status = reqwest::get(format!("{}/readyz", serve.base))
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    drop(serve);

    // A contract migration removed what this build may use: it refuses, naming it.
    record(29991231000001, "contract drop messages body")
        .execute(&pool)
        .await
        .unwrap();
    let (ok, out) = migrate(&opts).await;
    assert!(
        !ok,
        "a newer contract migration must stop this build: {out}"
    );
    assert!(
        out.contains("contract migration(s) 29991231000001 (contract drop messages body)"),
        "{out}"
    );
    pool.close().await;
}
