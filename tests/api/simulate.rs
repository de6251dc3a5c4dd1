//! `wadash simulate`: signed inbound traffic at a running instance, every kind stored; and
//! the simulator's account-wide APIs (Content, Senders, Services) closed to wrong credentials.

use std::process::Command;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{AUTH_TOKEN, TestApp, database_url};

/// Runs the binary off the test's runtime, which serves the instance meanwhile.
async fn simulate(opts: &PgConnectOptions, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wadash"));
    cmd.arg("simulate")
        .args(args)
        .env("DATABASE_URL", database_url(opts, None))
        .env_remove("WADASH_CONFIG")
        .env_remove("WADASH_SIMULATE_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env("RUST_LOG", "warn");
    tokio::task::spawn_blocking(move || cmd.output().expect("run wadash simulate"))
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn simulate_sends_every_kind_of_inbound_message_signed(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts.clone()).await;
    let out = simulate(
        &opts,
        &[
            "--rate",
            "40",
            "--duration",
            "1s",
            "--url",
            &app.address,
            "--auth-token",
            AUTH_TOKEN,
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent 40 "), "{stdout}");
    assert!(stdout.contains("accepted 40"), "{stdout}");
    let (inbound, images, locations, stops, starts, customers): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE num_media = 1 AND media->0->>'content_type' = 'image/jpeg'),
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_events e
                        WHERE e.message_sid = m.sid AND e.params_json->>'Latitude' IS NOT NULL)),
                    count(*) FILTER (WHERE body = 'STOP'),
                    count(*) FILTER (WHERE body = 'START'),
                    count(DISTINCT from_addr)
             FROM messages m WHERE direction = 'inbound' AND status = 'received'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        (inbound, images, locations, stops, starts),
        (40, 6, 4, 2, 2),
        "two cycles of the fixed mix"
    );
    assert!(customers > 5, "many customers write: {customers}");
    let names: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE profile_name IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(names, 40);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn simulate_uses_the_instances_own_token_and_explains_refusals(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // Simulator mode with no token configured: the instance generated one in its database,
    // and `wadash simulate` finds it there.
    let app = TestApp::spawn_with(opts.clone(), |v| {
        v.remove("twilio_auth_token");
    })
    .await;
    let out = simulate(
        &opts,
        &["--rate", "20", "--duration", "500ms", "--url", &app.address],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE direction = 'inbound'")
            .await,
        10
    );

    let out = simulate(
        &opts,
        &[
            "--rate",
            "20",
            "--duration",
            "500ms",
            "--url",
            &app.address,
            "--auth-token",
            "wrong",
        ],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("10 answered HTTP 403") && stderr.contains("signature refused"),
        "{stderr}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE direction = 'inbound'")
            .await,
        10,
        "nothing unsigned is stored"
    );

    let out = simulate(&opts, &["--rate", "0", "--url", &app.address]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_simulators_account_wide_apis_answer_only_the_accounts_credentials(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn(opts).await;
    let (base, account) = (app.twilio.base(), app.twilio.account_sid());
    let http = reqwest::Client::new();
    let reads = [
        "/v1/ContentAndApprovals",
        "/v2/ContentAndApprovals",
        "/v1/Services",
        "/v2/Channels/Senders?Channel=whatsapp",
    ];
    for path in reads {
        let url = format!("{base}{path}");
        for creds in [None, Some("not-the-token")] {
            let req = http.get(&url);
            let req = match creds {
                Some(t) => req.basic_auth(account, Some(t)),
                None => req,
            };
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{path} with {creds:?}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["code"], 20003, "{path}: {body}");
        }
        let ok = http
            .get(&url)
            .basic_auth(account, Some(AUTH_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200, "{path}");
    }
    // Writes are refused before anything changes: the control endpoint included.
    let refused = http
        .post(format!("{base}/simulator/senders/offline"))
        .json(&serde_json::json!({"sender": "whatsapp:+15550000001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let refused = http
        .post(format!("{base}/v1/Content"))
        .basic_auth(account, Some("not-the-token"))
        .json(&serde_json::json!({"friendly_name": "x", "language": "en", "types": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let unknown = http
        .get(format!(
            "{base}/v1/Content/HX00000000000000000000000000000000"
        ))
        .basic_auth(account, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status().as_u16(),
        404,
        "an unknown template, with the right credentials"
    );
    app.stop().await;
}
