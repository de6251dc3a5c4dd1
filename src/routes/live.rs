//! `GET /events`: the dashboard's Server-Sent Events stream (session login required).
//!
//! Each change-log row becomes one event (`event: messages`, `id: <xid>.<id>`, data: the
//! changed messages as JSON; `stats` and `alerts` rows likewise). The `hello` event carries
//! the version of the open alerts this instance knows, and an id too: the position from which
//! this stream delivers everything, so a client that has seen no other event can resume from
//! it. A client resumes by sending `Last-Event-ID` (what `EventSource` does when it
//! reconnects) or, when it opens a new stream (another tab of the browser taking over the
//! browser's one stream, a page back from the back/forward cache), `?last=<id>`; the header
//! wins when both are given. The stream first replays what the client missed from the
//! database, then `hello`, then continues live, without gaps or repeats. If what it missed is
//! no longer kept, or it falls too far behind, it gets a `reload` event: a page reload shows
//! the truth, silently missing events would not. Open streams are counted in the
//! `wadash_live_streams` gauge.

use std::time::Duration;

use actix_web::{HttpRequest, Responder, web};
use actix_web_lab::sse;
use tokio::sync::{broadcast, mpsc};

use crate::routes::pages::{CurrentUser, PageError};
use crate::state::AppState;
use crate::storage::live_log::{self, Position};

/// Most events replayed to a reconnecting browser before it is told to reload instead.
const REPLAY_LIMIT: i64 = 2000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

fn event(pos: Position, kind: &str, payload: &str) -> sse::Event {
    sse::Data::new(payload.to_owned())
        .event(kind.to_owned())
        .id(pos.to_string())
        .into()
}

fn reload(reason: &str) -> sse::Event {
    sse::Data::new(format!("{{\"reason\":\"{reason}\"}}"))
        .event("reload")
        .into()
}

#[derive(serde::Deserialize)]
struct Resume {
    last: Option<String>,
}

/// Where the client resumes: `Last-Event-ID`, else `?last=`, else nowhere (a fresh stream).
fn resume_point(req: &HttpRequest) -> Option<Position> {
    let header = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(Position::parse);
    header.or_else(|| {
        web::Query::<Resume>::from_query(req.query_string())
            .ok()?
            .into_inner()
            .last
            .as_deref()
            .and_then(Position::parse)
    })
}

async fn events(
    _user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<impl Responder, PageError> {
    let hub = state.live.clone();
    let last = resume_point(&req);
    // Subscribe before reading the horizon: nothing can fall between the two.
    let mut live = hub.subscribe();
    let (tx, rx) = mpsc::channel::<sse::Event>(64);
    let shutdown = hub.shutdown();
    let open_alerts = state.open_alerts.clone();
    let open = state.metrics.live_stream_opened();
    tokio::spawn(async move {
        // Counted until this task ends, however it ends.
        let _open = open;
        // Every row of a transaction before the horizon has been sent to subscribers or is
        // being sent now (the hub advances the horizon first); every later one will reach
        // `live`.
        let horizon = hub.horizon();
        let mut sent = last;
        if let Some(from) = last {
            let pool = hub.pool();
            let replay = match live_log::pruned_before(pool).await {
                Ok(p) if from.xid < p => Err("gone"),
                Ok(_) => live_log::after(pool, from, horizon, REPLAY_LIMIT + 1)
                    .await
                    .map_err(|_| "unavailable"),
                Err(_) => Err("unavailable"),
            };
            match replay {
                Ok(rows) if rows.len() as i64 <= REPLAY_LIMIT => {
                    for r in rows {
                        if tx.send(event(r.pos, &r.kind, &r.payload)).await.is_err() {
                            return;
                        }
                        sent = Some(r.pos);
                    }
                }
                Ok(_) => {
                    let _ = tx.send(reload("too_far_behind")).await;
                    return;
                }
                Err(reason) => {
                    let _ = tx.send(reload(reason)).await;
                    return;
                }
            }
        }
        // The open alerts' version lets a page whose banner was rendered before a change it
        // has not heard of (it connected just after) notice and refresh it.
        // From here on the stream sends exactly the rows after `start`: those of transactions
        // before the horizon were replayed (or are older than the client's own position), and
        // any still arriving on `live` are dropped below. A client resuming from `start` (the
        // hello's id) gets the same rows: no gap, no repeat.
        let start = sent.map_or(Position::at(horizon), |s| s.max(Position::at(horizon)));
        sent = Some(start);
        let hello = serde_json::json!({ "alerts": open_alerts.current().version }).to_string();
        let _ = tx.send(event(start, "hello", &hello)).await;
        loop {
            tokio::select! {
                msg = live.recv() => match msg {
                    Ok(e) => {
                        if sent.is_some_and(|s| e.pos <= s) {
                            continue;
                        }
                        if tx.send(event(e.pos, &e.kind, &e.payload)).await.is_err() {
                            return;
                        }
                        sent = Some(e.pos);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(reload("too_far_behind")).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => return,
            }
        }
    });
    Ok(sse::Sse::from_infallible_receiver(rx)
        .with_keep_alive(Duration::from_secs(15))
        .with_retry_duration(Duration::from_secs(2)))
}
