//! The binary itself: `wadash token create` and `wadash migrate`.

use std::process::Command;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, database_url};

fn wadash(opts: &PgConnectOptions, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wadash"))
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wadash")
}

#[sqlx::test(migrations = false)]
async fn token_create_prints_a_working_token_on_its_last_line(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let out = wadash(
        &opts,
        &["token", "create", "--name", "ci bot", "--role", "operator"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("wdsh_") && token.len() > 40, "{stdout}");

    let app = TestApp::spawn(opts.clone()).await;
    let (status, _) = app.get_json("/api/v1/stats/funnel", &token).await;
    assert_eq!(status, 200);
    let (name, role): (String, String) = sqlx::query_as("SELECT name, role FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("ci bot", "operator"));
    app.stop().await;

    let bad = wadash(&opts, &["token", "create", "--name", "x", "--role", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("viewer, operator or admin"));
}

#[sqlx::test(migrations = false)]
async fn migrate_creates_a_missing_database(_: PgPoolOptions, opts: PgConnectOptions) {
    // Short and unique: PostgreSQL truncates names longer than 63 bytes.
    let fresh = format!(
        "wadash_fresh_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_subsec_nanos()
    );
    let fresh_opts = opts.clone().database(&fresh);
    let out = wadash(&fresh_opts, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wadash(&fresh_opts, &["migrate"]);
    assert!(out.status.success(), "migrating twice is harmless");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts.clone())
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&fresh)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(
        exists,
        "{fresh} missing; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{fresh}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
}

#[test]
fn bad_configuration_is_explained_with_exit_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .args(["migrate"])
        .env("WADASH_INGEST_MAX_BATCH", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest_max_batch"));
}

/// `wadash serve` with JSON logs: every line is JSON, no secret appears, the simulator-mode
/// banner is absent in live mode, and SIGTERM shuts down cleanly with status 0.
#[sqlx::test(migrations = false)]
async fn serve_logs_json_without_secrets_and_stops_on_sigterm(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .arg("serve")
        .env("DATABASE_URL", database_url(&opts, None))
        .env_remove("WADASH_CONFIG")
        .env("WADASH_BIND", "127.0.0.1:0")
        .env("WADASH_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "very-secret-auth-token")
        .env("TWILIO_API_KEY", "SK00000000000000000000000000000000")
        .env("TWILIO_API_SECRET", "very-secret-api-secret")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let started = std::time::Instant::now();
    let mut listening = false;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .unwrap();
        let ready: bool = sqlx::query_scalar("SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'wadash' AND datname = current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        if ready {
            listening = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listening, "wadash serve did not start");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );

    let lines = lines.join().unwrap();
    assert!(lines.iter().any(|l| l.contains("listening")), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"stopped\"") || l.contains("stopped")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("SIMULATOR MODE")),
        "live mode does not claim to be the simulator"
    );
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(!l.contains("very-secret"), "secret in log: {l}");
    }
}

fn wadash_stdin(opts: &PgConnectOptions, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wadash"))
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wadash");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrations = false)]
async fn user_add_reads_the_password_from_stdin_and_the_user_can_log_in(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let args = [
        "user",
        "add",
        "--username",
        "Priya",
        "--role",
        "operator",
        "--password-stdin",
    ];
    let out = wadash_stdin(&opts, &args, "a very good password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added priya with role operator"));
    let again = wadash_stdin(&opts, &args, "a very good password\n");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("taken"));
    let short = wadash_stdin(
        &opts,
        &[
            "user",
            "add",
            "--username",
            "sam",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    // Without --password-stdin a password is generated and shown once.
    let generated = wadash_stdin(
        &opts,
        &["user", "add", "--username", "gen", "--role", "viewer"],
        "",
    );
    let stdout = String::from_utf8_lossy(&generated.stdout);
    let pw = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (shown only now): "))
        .expect("generated password")
        .to_owned();

    let app = TestApp::spawn(opts).await;
    let mut b = crate::helpers::Browser::new(&app.address);
    assert_eq!(b.login("priya", "a very good password").await, 303);
    let (_, _, page) = b.get("/").await;
    assert!(page.contains(">priya</a>") && page.contains("operator"));
    assert_eq!(
        crate::helpers::Browser::new(&app.address)
            .login("gen", &pw)
            .await,
        303
    );
    app.stop().await;
}

/// First start without users or WADASH_ADMIN_PASSWORD: `admin` gets a generated password,
/// printed once on standard output and never into the log.
#[sqlx::test(migrations = false)]
async fn first_start_prints_a_generated_admin_password_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use std::io::{BufRead, BufReader};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_wadash"))
            .arg("serve")
            .env("DATABASE_URL", database_url(&opts, None))
            .env_remove("WADASH_CONFIG")
            .env_remove("WADASH_ADMIN_PASSWORD")
            .env("WADASH_BIND", format!("127.0.0.1:{port}"))
            .env("WADASH_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let run = |mut child: std::process::Child| async move {
        let address = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(format!("{address}/healthz")).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let stdout: Vec<String> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .collect();
        let stderr: Vec<String> = BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .collect();
        assert!(child.wait().unwrap().success());
        (stdout, stderr)
    };
    let (stdout, stderr) = run(start()).await;
    let pw = stdout
        .iter()
        .find_map(|l| l.split("log in as `admin` with password: ").nth(1))
        .expect("the generated password on stdout")
        .trim()
        .to_owned();
    assert_eq!(pw.len(), 20);
    assert!(stderr.iter().all(|l| !l.contains(&pw)), "never in the log");
    assert!(stderr.iter().any(|l| l.contains("created the first user")));
    // The second start finds the admin and prints nothing.
    let (stdout, _) = run(start()).await;
    assert!(stdout.iter().all(|l| !l.contains("password")), "{stdout:?}");

    let app = TestApp::spawn(opts.clone()).await;
    assert_eq!(
        crate::helpers::Browser::new(&app.address)
            .login("admin", &pw)
            .await,
        303
    );
    app.stop().await;
}
