//! A 2xx from a webhook means the callback is committed and its WAL is on disk (group commit
//! keeps `synchronous_commit` on, src/ingest/batcher.rs).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, status_callback};

/// Posts callbacks one at a time and, right after each 2xx, looks in the WAL that is already on
/// disk (pg_walinspect reads only flushed WAL) for the commit record of the transaction that
/// stored the callback.
#[sqlx::test(migrations = false)]
async fn a_2xx_means_the_commit_is_already_on_disk(_: PgPoolOptions, opts: PgConnectOptions) {
    let app = TestApp::spawn(opts).await;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(&app.pool)
        .await
        .unwrap();
    // pg_walinspect reads only up to the flushed position, so start from there.
    let start: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    for n in 0..25u32 {
        let sid = format!("SM{n:032}");
        let status = app
            .post_signed("/sts", &status_callback(&sid, "delivered"))
            .await
            .status();
        assert_eq!(status, 204);
        // First thing after the answer: how far the WAL is on disk.
        let flushed: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let xid: String =
            sqlx::query_scalar("SELECT xmin::text FROM message_events WHERE message_sid = $1")
                .bind(&sid)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        // Nothing flushed since the start: the commit cannot be on disk.
        let advanced: bool = sqlx::query_scalar("SELECT $2::pg_lsn > $1::pg_lsn")
            .bind(&start)
            .bind(&flushed)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let commits: i64 = if !advanced {
            0
        } else {
            sqlx::query_scalar(
                "SELECT count(*) FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) \
                 WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%' \
                   AND xid::text = $3",
            )
            .bind(&start)
            .bind(&flushed)
            .bind(&xid)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
        };
        assert_eq!(
            commits, 1,
            "callback {n} (xid {xid}) was answered before its commit reached disk (flushed to {flushed})"
        );
    }
    drop(conn);
    app.stop().await;
}
