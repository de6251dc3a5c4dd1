//! PostgreSQL access, one file per table family. Functions take a connection, pool or
//! transaction; the caller owns the transaction boundary.
//!
//! Query style: runtime-checked `sqlx::query`/`query_as` with `&'static str` SQL and `FromRow`
//! structs; dynamic filters are assembled with `sqlx::QueryBuilder` and bound parameters only.

/// The change log's row for the messages a statement changed: `$changed` names a CTE that
/// returns `sid, direction, status, error_code, from_addr, to_addr, created_at`. One row per
/// statement (never one per message): an array of `{sid, direction, status, error_code, from,
/// to, created_at}`, the shape live pages and the roll-ups read
/// (src/live, src/jobs/rollup.rs). `json_agg` of a row writes the same objects as
/// `json_build_object` per message for a third fewer instructions (the latter looks up each
/// argument's type on every call). Defined before the modules so that each can use it.
macro_rules! live_log_messages {
    ($changed:literal) => {
        concat!(
            "INSERT INTO live_log (kind, payload) SELECT 'messages', json_agg(c) \
             FROM (SELECT sid, direction, status, error_code, from_addr AS \"from\", \
                          to_addr AS \"to\", created_at FROM ",
            $changed,
            ") AS c HAVING count(*) > 0"
        )
    };
}

pub mod alerts;
pub mod auto_replies;
pub mod balance;
pub mod bots;
pub mod broadcasts;
pub mod choice_contents;
pub mod contacts;
pub mod costs;
pub mod events;
pub mod instance_settings;
pub mod interactive;
pub mod live_log;
pub mod messages;
pub mod overview;
pub mod pending_work;
pub mod prices;
pub mod reconcile_queue;
pub mod reminders;
pub mod reply_rules;
pub mod rollups;
pub mod send_slots;
pub mod sender_registrations;
pub mod sender_retire;
pub mod sender_twilio;
pub mod senders;
pub mod sessions;
pub mod snapshot;
pub mod sync_state;
pub mod templates;
pub mod tokens;
pub mod users;

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

/// A `query_as` on PostgreSQL, as the helpers that bind a row's settings take and return it.
type PgQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

/// `$first, $first+1, …`, `n` of them: the values of an `INSERT`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a = $first, b = $first+1, …`: an `UPDATE`'s `SET` of `columns`, bound in that order.
fn assignments(columns: &[&str], first: usize) -> String {
    columns
        .iter()
        .zip(first..)
        .map(|(c, i)| format!("{c} = ${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `work` holding the session advisory lock `key` on a connection of its own, so that one
/// instance at a time does it: `None`, and `work` not run, when another instance holds the lock.
/// The lock goes with the connection if the process dies; a connection whose unlock failed is
/// closed rather than handed back to the pool still holding it.
pub async fn with_session_lock<T, E: From<sqlx::Error>>(
    pool: &sqlx::PgPool,
    key: i64,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Option<T>, E> {
    let mut lock = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *lock)
        .await?;
    if !locked {
        return Ok(None);
    }
    let result = work.await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *lock)
        .await;
    if unlocked.is_err() {
        lock.detach();
    }
    result.map(Some)
}

/// True for errors after which the same work may succeed on a fresh connection or a second
/// attempt: lost connections, deadlocks, serialization failures, a restarting server.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_values_and_update_assignments_number_their_binds() {
        assert_eq!(placeholders(1, 3), "$1, $2, $3");
        assert_eq!(assignments(&["a", "b"], 2), "a = $2, b = $3");
    }
}
