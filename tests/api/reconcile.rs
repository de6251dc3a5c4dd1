//! Reconciliation: messages whose callbacks were lost are looked up at Twilio and repaired
//! through the state machine, each by exactly one instance.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::config::ReconcileSettings;
use wadash::domain::Role;
use wadash::jobs::reconcile::Reconciler;
use wadash::metrics::Metrics;
use wadash::twilio::client::{RestCredentials, RetryPolicy, TwilioClient};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::TestApp;

const AC: &str = "AC0123456789abcdef0123456789abcdef";

/// Answers a message lookup by the sid's last hex digit: 0–9 delivered (with a price),
/// a sent, b unknown to Twilio (404), c a server error, others failed with 63016.
struct ByLastDigit;

impl Respond for ByLastDigit {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let sid = req
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json")
            .to_owned();
        let last = sid.chars().last().unwrap();
        let (status, code) = match last {
            '0'..='9' => ("delivered", None),
            'a' => ("sent", None),
            'b' => {
                return ResponseTemplate::new(404).set_body_json(json!({
                    "code": 20404, "message": "The requested resource was not found",
                    "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}));
            }
            'c' => {
                return ResponseTemplate::new(500).set_body_json(
                    json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
                );
            }
            _ => ("failed", Some(63016)),
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "sid": sid, "status": status, "error_code": code,
            "error_message": code.map(|_| "Outside the allowed window"),
            "to": "whatsapp:+919900000000", "from": "whatsapp:+14155238886",
            "direction": "outbound-api", "price": "-0.00500", "price_unit": "USD",
            "date_updated": "Tue, 24 Nov 2026 09:58:30 +0000",
        }))
    }
}

fn reconciler(pool: &PgPool, base: &str) -> Reconciler {
    let twilio = TwilioClient::new(
        base,
        AC,
        RestCredentials {
            username: AC.into(),
            secret: "token".to_owned().into(),
        },
        None,
        Duration::from_secs(5),
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    )
    .unwrap();
    Reconciler {
        pool: pool.clone(),
        twilio,
        settings: ReconcileSettings {
            after: Duration::from_secs(60),
            interval: Duration::from_secs(60),
            give_up_after: Duration::from_secs(72 * 3600),
        },
        metrics: Arc::new(Metrics::default()),
    }
}

/// Inserts outbound messages with the given sids and status, created `age` ago.
async fn seed(pool: &PgPool, sids: &[String], status: &str, rank: i16, age: &str) {
    sqlx::query(
        "INSERT INTO messages (sid, direction, to_addr, status, status_rank, created_at)
         SELECT s, 'outbound', 'whatsapp:+919900000000', $2, $3, now() - $4::interval
         FROM UNNEST($1::text[]) AS s",
    )
    .bind(sids)
    .bind(status)
    .bind(rank)
    .bind(age)
    .execute(pool)
    .await
    .unwrap();
}

fn sid(n: usize, last: char) -> String {
    format!("SM{n:031x}{last}")
}

#[sqlx::test]
async fn two_instances_look_each_message_up_once_and_repair_it(pool: PgPool) {
    let twilio = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/Messages/SM[0-9a-f]{32}\.json$",
        ))
        .respond_with(ByLastDigit)
        .mount(&twilio)
        .await;

    let lasts = ['1', '2', '3', '4', '5', 'a', 'b', 'c', 'f'];
    let unsettled: Vec<String> = (0..90).map(|n| sid(n, lasts[n % lasts.len()])).collect();
    seed(&pool, &unsettled, "sent", 40, "20 minutes").await;
    let settled: Vec<String> = (100..110).map(|n| sid(n, '1')).collect();
    seed(&pool, &settled, "delivered", 60, "20 minutes").await;
    let recent: Vec<String> = (200..210).map(|n| sid(n, '1')).collect();
    seed(&pool, &recent, "queued", 20, "5 seconds").await;
    let ancient: Vec<String> = (300..305).map(|n| sid(n, '1')).collect();
    seed(&pool, &ancient, "sent", 40, "100 hours").await;

    let (a, b) = (
        reconciler(&pool, &twilio.uri()),
        reconciler(&pool, &twilio.uri()),
    );
    let (ra, rb) = tokio::join!(a.pass(), b.pass());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.queued + rb.queued,
        90,
        "only unsettled messages old enough are queued"
    );
    assert_eq!(ra.looked_up + rb.looked_up, 90);

    // Exactly one lookup per message, across both instances.
    let requests = twilio.received_requests().await.unwrap();
    let mut looked: Vec<String> = requests
        .iter()
        .map(|r| {
            r.url
                .path()
                .rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    looked.sort();
    let mut expected = unsettled.clone();
    expected.sort();
    assert_eq!(looked, expected);

    let status_of = |s: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<i32>, Option<String>)>(
                "SELECT status, error_code, price::text FROM messages WHERE sid = $1",
            )
            .bind(s)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        status_of(sid(0, '1')).await,
        (Some("delivered".into()), None, Some("-0.005000".into()))
    );
    assert_eq!(
        status_of(sid(8, 'f')).await,
        (Some("failed".into()), Some(63016), Some("-0.005000".into()))
    );
    assert_eq!(status_of(sid(5, 'a')).await.0.as_deref(), Some("sent"));
    let poll_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_events WHERE source = 'poll'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        poll_events, 70,
        "every answer but the 404s and 500s is an event"
    );

    // Still in the queue: the ones still `sent` and the ones whose lookup failed, backed off.
    let queued: Vec<(String, i32, bool)> =
        sqlx::query_as("SELECT sid, attempts, next_at > now() FROM reconcile_queue ORDER BY sid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(queued.len(), 20);
    assert!(queued.iter().all(|(s, attempts, later)| {
        (s.ends_with('a') || s.ends_with('c')) && *attempts == 1 && *later
    }));

    // Nothing is due again before its back-off: a second pass looks nothing up.
    let again = a.pass().await.unwrap();
    assert_eq!(again.looked_up, 0);

    // Messages past the give-up age leave the queue without a lookup.
    sqlx::query("UPDATE reconcile_queue SET next_at = now(), created_at = now() - interval '100 hours' WHERE sid LIKE '%a'")
        .execute(&pool)
        .await
        .unwrap();
    let later = b.pass().await.unwrap();
    assert_eq!((later.given_up, later.looked_up), (10, 0));
}

/// Simulator mode end to end: every callback of a message is lost on the way, and the
/// reconciliation job still brings it to its final state by asking the simulator.
#[sqlx::test(migrations = false)]
async fn simulator_lost_callbacks_are_repaired_by_reconciliation(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("sim_sent_ms".into(), "20".into());
        v.insert("sim_delivered_ms".into(), "40".into());
        v.insert("sim_read_share".into(), "0".into());
        v.insert("sim_failure_share".into(), "0".into());
        v.insert("sim_lost_share".into(), "1".into());
        v.insert("reconcile_after_secs".into(), "1".into());
        v.insert("reconcile_interval_secs".into(), "1".into());
    })
    .await;
    let operator = app.api_token(Role::Operator).await;
    let resp = app
        .client
        .post(format!("{}/api/v1/messages", app.address))
        .bearer_auth(&operator)
        .json(&json!({"to": "+919900000000", "body": "will anyone tell us?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let sid = created["sid"].as_str().unwrap().to_owned();

    // No callback arrives; the message stays queued until reconciliation looks it up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.current_status(&sid).await.as_deref(), Some("queued"));
    let mut status = None;
    for _ in 0..100 {
        status = app.current_status(&sid).await;
        if status.as_deref() == Some("delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.as_deref(), Some("delivered"));
    let sources: Vec<String> =
        sqlx::query_scalar("SELECT source FROM message_events WHERE message_sid = $1 ORDER BY id")
            .bind(&sid)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(sources, ["api", "poll"]);
    let (price, queued): (Option<String>, i64) = sqlx::query_as(
        "SELECT (SELECT price::text FROM messages WHERE sid = $1), (SELECT count(*) FROM reconcile_queue)",
    )
    .bind(&sid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(price.as_deref(), Some("-0.005000"));
    assert_eq!(queued, 0, "a settled message leaves the queue");
    app.stop().await;
}
