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

/// Waits until some backend is blocked on a lock (the statement under test waiting for the
/// open transaction's row), by asking PostgreSQL rather than sleeping.
async fn until_a_backend_waits_for_a_lock(pool: &sqlx::PgPool) {
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no statement ever waited for the open transaction");
}

/// The same callback stored by another transaction between a batch's snapshot and its insert
/// (two instances given one duplicate at once): the batch's statement fails in a way the
/// pipeline recognises, a second attempt skips the event, and through the pipeline the
/// callback is acknowledged and stored once.
#[sqlx::test]
async fn an_event_another_transaction_stores_meanwhile_is_retried_and_stored_once(
    pool: sqlx::PgPool,
) {
    use wadash::storage::events::{apply_batch, lost_a_race};
    use wadash::twilio::webhook::{Webhook, parse};

    let record = |status: &str| {
        let p = status_callback("SM0000000000000000000000000000race", status);
        parse(Webhook::Status, &p, chrono::Utc::now()).unwrap()
    };

    // The statement alone: it waits for the open transaction, then fails as a lost race.
    let first = record("sent");
    let mut open = pool.begin().await.unwrap();
    apply_batch(&mut *open, std::slice::from_ref(&first))
        .await
        .unwrap();
    let racing = tokio::spawn({
        let (pool, again) = (pool.clone(), first.clone());
        async move { apply_batch(&pool, std::slice::from_ref(&again)).await }
    });
    until_a_backend_waits_for_a_lock(&pool).await;
    open.commit().await.unwrap();
    let err = racing
        .await
        .unwrap()
        .expect_err("the duplicate key is seen at insert");
    assert!(lost_a_race(&err), "not recognised as a lost race: {err}");
    let again = apply_batch(&pool, std::slice::from_ref(&first))
        .await
        .unwrap();
    assert_eq!(
        again.inserted, 0,
        "the second attempt skips the stored event"
    );

    // Through the pipeline: answered as stored, and stored once.
    let second = record("delivered");
    let mut open = pool.begin().await.unwrap();
    apply_batch(&mut *open, std::slice::from_ref(&second))
        .await
        .unwrap();
    let settings = wadash::config::IngestSettings {
        max_batch: 16,
        concurrency: 1,
        queue: 64,
        linger: std::time::Duration::ZERO,
        batch_timeout: std::time::Duration::from_secs(30),
    };
    let (ingestor, writers) = wadash::ingest::Ingestor::start(
        pool.clone(),
        settings,
        std::sync::Arc::new(wadash::metrics::Metrics::default()),
    );
    let submitted = tokio::spawn({
        let ingestor = ingestor.clone();
        async move { ingestor.submit(second).await }
    });
    until_a_backend_waits_for_a_lock(&pool).await;
    open.commit().await.unwrap();
    submitted
        .await
        .unwrap()
        .expect("the pipeline retries the batch and acknowledges it");
    drop(ingestor);
    writers.await.unwrap();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_events WHERE message_sid = 'SM0000000000000000000000000000race'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 2, "each distinct callback once");
}
