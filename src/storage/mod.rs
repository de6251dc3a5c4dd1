//! PostgreSQL access, one file per table family. Functions take a connection, pool or
//! transaction; the caller owns the transaction boundary.
//!
//! Query style: runtime-checked `sqlx::query`/`query_as` with `&'static str` SQL and `FromRow`
//! structs; dynamic filters are assembled with `sqlx::QueryBuilder` and bound parameters only.

pub mod alerts;
pub mod auto_replies;
pub mod balance;
pub mod broadcasts;
pub mod contacts;
pub mod costs;
pub mod events;
pub mod instance_settings;
pub mod live_log;
pub mod messages;
pub mod overview;
pub mod prices;
pub mod reconcile_queue;
pub mod reminders;
pub mod reply_rules;
pub mod rollups;
pub mod send_slots;
pub mod senders;
pub mod sessions;
pub mod snapshot;
pub mod tokens;
pub mod users;

/// True for errors after which the same work may succeed on a fresh connection or a second
/// attempt: lost connections, deadlocks, serialization failures, a restarting server.
/// `s` as a literal inside a `LIKE` pattern (`%`, `_` and the escape character escaped).
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some(
                "40001"
                    | "40P01"
                    | "57P01"
                    | "57P02"
                    | "57P03"
                    | "08000"
                    | "08003"
                    | "08006"
                    | "53300"
            )
        ),
        _ => false,
    }
}
