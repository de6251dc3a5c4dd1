//! `GET /events`: the dashboard's Server-Sent Events stream (session login required).
//!
//! Each change-log row becomes one event (`event: messages`, `id: <xid>.<id>`, data: the
//! changed messages as JSON; `stats` and `alerts` rows likewise). The first event, `hello`,
//! carries the version of the open alerts this instance knows. A browser that reconnects sends `Last-Event-ID`; the stream
//! first replays what it missed from the database, then continues live, without gaps or
//! repeats. If what it missed is no longer kept, or it falls too far behind, it gets a
//! `reload` event: a page reload shows the truth, silently missing events would not.

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

async fn events(
    _user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<impl Responder, PageError> {
    let hub = state.live.clone();
    let last = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(Position::parse);
    // Subscribe before reading the horizon: nothing can fall between the two.
    let mut live = hub.subscribe();
    let (tx, rx) = mpsc::channel::<sse::Event>(64);
    let shutdown = hub.shutdown();
    let open_alerts = state.open_alerts.clone();
    tokio::spawn(async move {
        let mut sent = last;
        if let Some(from) = last {
            let pool = hub.pool();
            let horizon = hub.horizon();
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
        let hello = serde_json::json!({ "alerts": open_alerts.current().version }).to_string();
        let _ = tx.send(sse::Data::new(hello).event("hello").into()).await;
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
