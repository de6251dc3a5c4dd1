//! Many concurrent webhook requests for the same messages, with duplicates, through the real
//! group-commit pipeline with several lanes: every request is answered 2xx, batches never deadlock, every
//! distinct callback is stored once and the final states are right.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, status_callback};

#[sqlx::test(migrations = false)]
async fn concurrent_duplicated_callbacks_are_stored_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("workers".into(), "2".into());
        v.insert("ingest_max_batch".into(), "16".into());
        // Three lanes, whatever the machine's default: batches commit side by side.
        v.insert("ingest_concurrency".into(), "3".into());
    })
    .await;
    let mut requests = Vec::new();
    for m in 0..40u32 {
        let sid = format!("SM{m:032}");
        for status in ["queued", "sent", "delivered", "read"] {
            for _copy in 0..2 {
                requests.push(status_callback(&sid, status));
            }
        }
    }
    // Interleave: reverse every other message's order so callbacks cross.
    requests.reverse();
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in requests.chunks(20) {
        let chunk = chunk.to_vec();
        let app = app.clone();
        tasks.spawn(async move {
            for p in chunk {
                let status = app.post_signed("/sts", &p).await.status();
                assert_eq!(status, 204);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 160);
    assert_eq!(app.count("SELECT count(*) FROM messages WHERE status = 'read' AND sent_at IS NOT NULL AND delivered_at IS NOT NULL").await, 40);
    let app = std::sync::Arc::into_inner(app).unwrap();
    app.stop().await;
}
