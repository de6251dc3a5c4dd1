//! `/healthz`, `/readyz`, `/metrics`.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, status_callback};

#[sqlx::test(migrations = false)]
async fn health_ready_and_metrics(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    let get = |p: &str| app.client.get(format!("{}{p}", app.address)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let sid = "SM00000000000000000000000000000031";
    assert_eq!(
        app.post_signed("/sts", &status_callback(sid, "sent"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.post_signed("/sts", &status_callback(sid, "sent"))
            .await
            .status(),
        204
    );

    let resp = get("/metrics").await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "wadash_webhook_requests_total{route=\"/sts\",outcome=\"accepted\"} 2",
        "wadash_ingest_duration_seconds_count{route=\"/sts\"} 2",
        "wadash_events_stored_total 1",
        "wadash_events_duplicate_total 1",
        "wadash_db_pool_max_connections 16",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("wadash_db_pool_connections{state=\"idle\"}"));
    app.stop().await;
}
