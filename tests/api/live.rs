//! Live updates: the change log read in commit-safe order, `GET /events` with resume through
//! `Last-Event-ID` or `?last=` (from any event's id, `hello`'s included), the open streams
//! counted in `/metrics`, and a callback on one instance reaching a browser on another.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use wadash::live::LiveHub;
use wadash::storage::live_log::Position;

use crate::helpers::TestApp;

#[derive(Debug, Clone)]
struct Frame {
    event: String,
    id: Option<String>,
    data: String,
}

/// An open `/events` stream, parsed frame by frame.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(app: &TestApp, session: &str, last_id: Option<&str>) -> Self {
        Self::open_with(app, session, None, last_id).await
    }

    /// A stream opened with `?last=` and/or a `Last-Event-ID` header.
    async fn open_with(
        app: &TestApp,
        session: &str,
        query: Option<&str>,
        header: Option<&str>,
    ) -> Self {
        let url = match query {
            Some(last) => format!("{}/events?last={last}", app.address),
            None => format!("{}/events", app.address),
        };
        let mut req = app
            .client
            .get(url)
            .header("Cookie", format!("wadash_session={session}"));
        if let Some(id) = header {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and retry lines skipped), or `None` after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut f = Frame {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        f.event = v.to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        f.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        f.data.push_str(v);
                        any = true;
                    }
                }
                if any {
                    return Some(f);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Collects `messages` events until one mentions `sid`; returns them.
    async fn until_sid(&mut self, sid: &str) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(f) = self.next(Duration::from_secs(5)).await {
            if f.event == "messages" {
                let done = f.data.contains(sid);
                seen.push(f);
                if done {
                    return seen;
                }
            }
        }
        panic!("no event for {sid}; got {seen:?}");
    }
}

fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

async fn session_of(app: &TestApp) -> String {
    app.admin_browser().await.cookies["wadash_session"].clone()
}

#[sqlx::test(migrations = false)]
async fn events_stream_changes_and_resume_from_last_event_id_without_loss(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("live_poll_ms".into(), "20".into());
    })
    .await;
    let session = session_of(&app).await;

    // Without a session there is no stream.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/events", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    let mut events = Events::open(&app, &session, None).await;
    assert_eq!(
        events.next(Duration::from_secs(5)).await.unwrap().event,
        "hello"
    );
    assert_eq!(app.post_status(&sid(1), "sent").await, 204);
    let got = events.until_sid(&sid(1)).await;
    let first = got.last().unwrap().clone();
    let change: serde_json::Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(change[0]["status"], "sent");
    assert_eq!(change[0]["direction"], "outbound");
    let last_id = first.id.clone().expect("events carry ids");
    drop(events);

    // While the browser is away, three more changes (one of them a duplicate, which
    // changes nothing and so sends nothing).
    assert_eq!(app.post_status(&sid(2), "sent").await, 204);
    assert_eq!(app.post_status(&sid(3), "delivered").await, 204);
    assert_eq!(app.post_status(&sid(3), "delivered").await, 204);
    // Let the instance's poller pass them, so they come back as a replay from the database
    // (before `hello`), not as live events.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut resumed = Events::open(&app, &session, Some(&last_id)).await;
    let mut frames = Vec::new();
    while let Some(f) = resumed.next(Duration::from_millis(800)).await {
        if f.event == "messages" {
            frames.push(f);
        } else if f.event == "hello" {
            break;
        }
    }
    let replayed: String = frames.iter().map(|f| f.data.clone()).collect();
    assert!(
        !replayed.contains(&sid(1)),
        "nothing already seen is repeated"
    );
    assert!(
        replayed.contains(&sid(2)) && replayed.contains(&sid(3)),
        "{replayed}"
    );
    assert_eq!(
        replayed.matches(&sid(3)).count(),
        1,
        "the duplicate changed nothing"
    );
    let ids: Vec<String> = frames.iter().map(|f| f.id.clone().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|i| Position::parse(i).unwrap());
    assert_eq!(ids, sorted, "in log order");

    // And then live again.
    assert_eq!(app.post_status(&sid(4), "read").await, 204);
    let more = resumed.until_sid(&sid(4)).await;
    assert!(more.iter().all(|f| !f.data.contains(&sid(2))));

    // A position whose rows were pruned: the browser must reload.
    sqlx::query("INSERT INTO instance_settings (key, value) VALUES ('live_log_pruned_before', '18446744073709551615')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut stale = Events::open(&app, &session, Some(&last_id)).await;
    let f = stale.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(f.event, "reload");
    app.stop().await;
}

/// The events up to and including `hello` (a replay, then `hello`).
async fn until_hello(events: &mut Events) -> (Vec<Frame>, Frame) {
    let mut frames = Vec::new();
    while let Some(f) = events.next(Duration::from_secs(5)).await {
        if f.event == "hello" {
            return (frames, f);
        }
        frames.push(f);
    }
    panic!("no hello after {frames:?}");
}

/// The `messages` events (the roll-up's `stats` rows come when they come).
fn summary(frames: &[Frame]) -> Vec<(String, String, String)> {
    frames
        .iter()
        .filter(|f| f.event == "messages")
        .map(|f| (f.event.clone(), f.id.clone().unwrap(), f.data.clone()))
        .collect()
}

/// `wadash_live_streams` on `app`'s `/metrics`.
pub(crate) async fn live_streams(app: &TestApp) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("wadash_live_streams "))
        .unwrap_or_else(|| panic!("no wadash_live_streams in {text}"))
        .parse()
        .unwrap()
}

/// Waits until `wadash_live_streams` is `want` (a closed connection is noticed when the server
/// next reads or writes it).
pub(crate) async fn wait_for_streams(app: &TestApp, want: u64, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        let n = live_streams(app).await;
        if n == want {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "wadash_live_streams is {n}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn last_in_the_query_resumes_like_last_event_id_which_wins_and_hello_has_an_id(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = TestApp::spawn_with(opts, |v| {
        v.insert("live_poll_ms".into(), "20".into());
    })
    .await;
    let session = session_of(&app).await;
    assert_eq!(live_streams(&app).await, 0);

    let mut first = Events::open(&app, &session, None).await;
    let (before, hello) = until_hello(&mut first).await;
    assert!(before.is_empty(), "a fresh stream replays nothing");
    let start = hello.id.clone().expect("hello has an id");
    let start_pos = Position::parse(&start).unwrap();
    assert_eq!(live_streams(&app).await, 1);
    assert_eq!(app.post_status(&sid(1), "sent").await, 204);
    let seen = first.until_sid(&sid(1)).await;
    let one = seen.last().unwrap().id.clone().unwrap();
    assert!(
        seen.iter()
            .all(|f| Position::parse(f.id.as_ref().unwrap()).unwrap() > start_pos),
        "everything after hello comes after its id"
    );
    drop(first);
    wait_for_streams(&app, 0, Duration::from_secs(20)).await;

    assert_eq!(app.post_status(&sid(2), "sent").await, 204);
    assert_eq!(app.post_status(&sid(3), "delivered").await, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // `?last=` and `Last-Event-ID` replay the same events.
    let mut by_query = Events::open_with(&app, &session, Some(&one), None).await;
    let mut by_header = Events::open_with(&app, &session, None, Some(&one)).await;
    assert_eq!(live_streams(&app).await, 2);
    let (q, q_hello) = until_hello(&mut by_query).await;
    let (h, _) = until_hello(&mut by_header).await;
    let replayed: String = q.iter().map(|f| f.data.clone()).collect();
    assert!(
        replayed.contains(&sid(2)) && replayed.contains(&sid(3)) && !replayed.contains(&sid(1)),
        "{replayed}"
    );
    assert_eq!(summary(&q), summary(&h));
    let last_replayed = Position::parse(q.last().unwrap().id.as_ref().unwrap()).unwrap();
    assert!(Position::parse(q_hello.id.as_ref().unwrap()).unwrap() >= last_replayed);
    // Then both go on live alike.
    assert_eq!(app.post_status(&sid(4), "read").await, 204);
    let q_live = by_query.until_sid(&sid(4)).await;
    let h_live = by_header.until_sid(&sid(4)).await;
    assert_eq!(summary(&q_live), summary(&h_live));
    assert!(
        !q_live.iter().any(|f| f.data.contains(&sid(3))),
        "no repeat"
    );
    drop(by_query);
    drop(by_header);

    // Resuming from a hello's id gives exactly what came after it: 1, 2, 3 and 4, once each.
    let mut from_hello = Events::open_with(&app, &session, Some(&start), None).await;
    let (all, _) = until_hello(&mut from_hello).await;
    let all: String = all.iter().map(|f| f.data.clone()).collect();
    for n in 1..=4 {
        assert_eq!(all.matches(&sid(n)).count(), 1, "{all}");
    }
    drop(from_hello);

    // With both, the header wins: resuming from the first change, not the later one the
    // query names, so 2 is replayed.
    let two = h
        .iter()
        .find(|f| f.data.contains(&sid(2)))
        .unwrap()
        .id
        .clone()
        .unwrap();
    let mut both = Events::open_with(&app, &session, Some(&two), Some(&one)).await;
    let (b, _) = until_hello(&mut both).await;
    let b: String = b.iter().map(|f| f.data.clone()).collect();
    assert!(b.contains(&sid(2)) && b.contains(&sid(3)), "{b}");
    drop(both);

    // A malformed `last` is no resume point: a fresh stream.
    let mut bad = Events::open_with(&app, &session, Some("nonsense"), None).await;
    let (b, _) = until_hello(&mut bad).await;
    assert!(b.is_empty());
    drop(bad);
    wait_for_streams(&app, 0, Duration::from_secs(20)).await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_callback_received_by_one_instance_reaches_a_browser_on_another(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let a = TestApp::spawn(opts.clone()).await;
    let b = TestApp::spawn(opts).await;
    let session = session_of(&a).await;
    let mut events = Events::open(&a, &session, None).await;
    assert_eq!(
        events.next(Duration::from_secs(5)).await.unwrap().event,
        "hello"
    );
    let started = std::time::Instant::now();
    assert_eq!(b.post_status(&sid(9), "delivered").await, 204);
    events.until_sid(&sid(9)).await;
    // The poll is every 100 ms; the bound is generous for a busy CI machine.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    a.stop().await;
    b.stop().await;
}

async fn write_row(tx: &mut sqlx::PgConnection, tag: &str) {
    sqlx::query(
        "INSERT INTO live_log (kind, payload) VALUES ('test', jsonb_build_array($1::text))",
    )
    .bind(tag)
    .execute(tx)
    .await
    .unwrap();
}

/// Identity values commit out of order; the hub must still deliver every row exactly once.
#[sqlx::test]
async fn rows_committed_out_of_order_are_all_delivered_once(pool: PgPool) {
    // A long write transaction in another database of the same server: transaction ids are
    // cluster-wide, but it must not hold this database's live updates back.
    let url = std::env::var("DATABASE_URL").unwrap();
    let other = PgPool::connect(&url).await.unwrap();
    let mut elsewhere = other.begin().await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *elsewhere)
        .await
        .unwrap();

    let hub = LiveHub::new(pool.clone(), CancellationToken::new(), 64)
        .await
        .unwrap();
    let mut rx = hub.subscribe();

    let mut before = pool.acquire().await.unwrap();
    write_row(&mut before, "before").await;
    hub.poll_once().await.unwrap();
    assert_eq!(
        rx.try_recv().unwrap().payload,
        "[\"before\"]",
        "delivered although another database has a transaction open"
    );

    // `early` takes its transaction id (and row id) first but commits last.
    let mut early = pool.begin().await.unwrap();
    write_row(&mut early, "early").await;
    let mut late = pool.begin().await.unwrap();
    write_row(&mut late, "late").await;
    late.commit().await.unwrap();
    let mut auto = pool.acquire().await.unwrap();
    write_row(&mut auto, "autocommit").await;

    hub.poll_once().await.unwrap();
    let mut got = Vec::new();
    while let Ok(e) = rx.try_recv() {
        got.push(e.payload.clone());
    }
    assert!(
        got.is_empty(),
        "nothing passes a transaction still running: {got:?}"
    );

    early.commit().await.unwrap();
    hub.poll_once().await.unwrap();
    hub.poll_once().await.unwrap();
    while let Ok(e) = rx.try_recv() {
        got.push(e.payload.clone());
    }
    assert_eq!(got, ["[\"early\"]", "[\"late\"]", "[\"autocommit\"]"]);
    elsewhere.rollback().await.unwrap();
    other.close().await;
}
