//! Property: for random messages with random status sequences, any permutation with random
//! duplicates, applied in random batches, ends in the same stored state and the same event
//! set as in-order delivery — through the real database, not only the pure function.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use sqlx::PgPool;
use wadash::domain::StatusState;
use wadash::ingest::EventRecord;
use wadash::storage::events::apply_batch;
use wadash::twilio::webhook::{Webhook, parse};

/// One message's callbacks in the order Twilio produced them: (status, error code).
fn lifecycle() -> impl Strategy<Value = Vec<(&'static str, Option<i32>)>> {
    let happy = (1usize..=4).prop_map(|n| {
        ["queued", "sent", "delivered", "read"][..n]
            .iter()
            .map(|s| (*s, None))
            .collect::<Vec<_>>()
    });
    let failing = (
        0usize..=2,
        prop_oneof![Just("failed"), Just("undelivered")],
        prop_oneof![Just(63016), Just(30008), Just(63015)],
    )
        .prop_map(|(n, f, code)| {
            let mut v: Vec<_> = ["queued", "sent"][..n].iter().map(|s| (*s, None)).collect();
            v.push((f, Some(code)));
            v
        });
    // A failure reported after delivery, and a status Twilio may invent one day.
    let late_failure = Just(vec![
        ("queued", None),
        ("sent", None),
        ("delivered", None),
        ("failed", Some(30008)),
    ]);
    let odd = Just(vec![
        ("sent", None),
        ("teleported", None),
        ("delivered", None),
    ]);
    prop_oneof![4 => happy, 2 => failing, 1 => late_failure, 1 => odd]
}

#[derive(Debug, Clone)]
struct Case {
    messages: Vec<Vec<(&'static str, Option<i32>)>>,
    /// For the permuted run: a shuffle seed, which callbacks to duplicate, and batch sizes.
    order: Vec<usize>,
    duplicates: Vec<usize>,
    batch_sizes: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(lifecycle(), 1..6).prop_flat_map(|messages| {
        let n: usize = messages.iter().map(Vec::len).sum();
        (
            Just(messages),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec(0..n, 0..n + 1),
            prop::collection::vec(1usize..6, 1..8),
        )
            .prop_map(|(messages, order, duplicates, batch_sizes)| Case {
                messages,
                order,
                duplicates,
                batch_sizes,
            })
    })
}

fn callback(sid: &str, status: &str, code: Option<i32>, at: DateTime<Utc>) -> EventRecord {
    let mut p: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("MessageStatus".into(), status.into()),
        ("To".into(), "whatsapp:+919900000000".into()),
    ];
    if let Some(c) = code {
        p.push(("ErrorCode".into(), c.to_string()));
    }
    parse(Webhook::Status, &p, at).unwrap()
}

/// Callbacks of the case for sids with the given prefix, in Twilio's order, each with the
/// time it was first received.
fn in_order(case: &Case, prefix: &str, base: DateTime<Utc>) -> Vec<EventRecord> {
    let mut out = Vec::new();
    let mut t = 0;
    for (i, m) in case.messages.iter().enumerate() {
        let sid = format!("SM{prefix}{i:04}");
        for (status, code) in m {
            t += 1;
            out.push(callback(&sid, status, *code, base + Duration::seconds(t)));
        }
    }
    out
}

type Stored = (
    Option<String>,
    Option<i32>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
);

async fn stored_state(pool: &PgPool, prefix: &str) -> Vec<Stored> {
    sqlx::query_as(
        "SELECT status, error_code, sent_at, delivered_at, read_at, failed_at, substr(sid, length($1) + 3) \
         FROM messages WHERE sid LIKE 'SM' || $1 || '%' ORDER BY sid",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn stored_events(
    pool: &PgPool,
    prefix: &str,
) -> BTreeSet<(String, String, Option<i32>, String)> {
    let rows: Vec<(String, String, Option<i32>, String)> = sqlx::query_as(
        "SELECT substr(message_sid, length($1) + 3), status, error_code, (COALESCE(params_json::jsonb, params) - 'MessageSid')::text \
         FROM message_events WHERE message_sid LIKE 'SM' || $1 || '%'",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await
    .unwrap();
    let n = rows.len();
    let set: BTreeSet<_> = rows.into_iter().collect();
    assert_eq!(set.len(), n, "no event is stored twice");
    set
}

#[sqlx::test]
async fn any_permutation_with_duplicates_ends_like_in_order_delivery(pool: PgPool) {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let base = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    for case_no in 0..64 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let a = format!("A{case_no:03}x");
        let b = format!("B{case_no:03}x");

        // In order, one callback per transaction.
        let ordered = in_order(&case, &a, base);
        for r in &ordered {
            apply_batch(&pool, std::slice::from_ref(r)).await.unwrap();
        }

        // Shuffled, with duplicates received later, in batches of random sizes.
        let originals = in_order(&case, &b, base);
        let mut shuffled: Vec<EventRecord> =
            case.order.iter().map(|i| originals[*i].clone()).collect();
        for (k, d) in case.duplicates.iter().enumerate() {
            let mut dup = originals[*d].clone();
            dup.received_at += Duration::seconds(1000);
            dup.report.at = dup.received_at;
            let pos = (k * 7919) % (shuffled.len() + 1);
            shuffled.insert(pos, dup);
        }
        let mut rest = &shuffled[..];
        let mut sizes = case.batch_sizes.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            apply_batch(&pool, &rest[..n]).await.unwrap();
            rest = &rest[n..];
        }

        let (sa, sb) = (stored_state(&pool, &a).await, stored_state(&pool, &b).await);
        assert_eq!(sa, sb, "case {case_no}: {case:?}");
        assert_eq!(
            stored_events(&pool, &a).await,
            stored_events(&pool, &b).await,
            "case {case_no}: {case:?}"
        );

        // And the database agrees with the pure state machine.
        for (i, m) in case.messages.iter().enumerate() {
            let mut st = StatusState::default();
            let sid = format!("SM{a}{i:04}");
            for r in ordered.iter().filter(|r| r.sid.as_str() == sid) {
                st.apply(&r.report);
            }
            let row = &sa[i];
            assert_eq!(
                row.0.as_deref(),
                st.status.as_ref().map(|s| s.as_str()),
                "case {case_no} message {i}: {m:?}"
            );
            assert_eq!(
                (row.1, row.2, row.3, row.4, row.5),
                (
                    st.error_code,
                    st.sent_at,
                    st.delivered_at,
                    st.read_at,
                    st.failed_at
                )
            );
        }
    }
}
