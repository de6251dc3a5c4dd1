//! Retiring a WhatsApp sender (issue 21): what still uses it (reply rules, contacts whose
//! conversations ran on it, open 24-hour windows), holding its broadcasts when it is
//! de-authorized, and moving its scheduled work, rules and the default flag to another sender.

use sqlx::PgConnection;

/// Reply rules scoped to sender `address`, by id.
pub async fn rules_on(conn: &mut PgConnection, address: &str) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM reply_rules WHERE sender = $1 ORDER BY id")
        .bind(address)
        .fetch_all(conn)
        .await
}

/// How many contacts had a message to or from `address` in the last `days` days (on the
/// `messages_from_idx` and `messages_to_idx` indexes).
pub async fn contacts_on(conn: &mut PgConnection, address: &str, days: i32) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT to_addr AS contact FROM messages
              WHERE from_addr = $1 AND created_at > now() - make_interval(days => $2)
             UNION
             SELECT from_addr FROM messages
              WHERE to_addr = $1 AND created_at > now() - make_interval(days => $2)
         ) c WHERE contact IS NOT NULL",
    )
    .bind(address)
    .bind(days)
    .fetch_one(conn)
    .await
}

/// The contacts (`whatsapp:+…`) whose last inbound message to `address` came in the last 24
/// hours: their customer-service window is open on that number.
pub async fn open_windows(conn: &mut PgConnection, address: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT from_addr FROM messages
          WHERE to_addr = $1 AND direction = 'inbound' AND from_addr IS NOT NULL
            AND created_at > now() - interval '24 hours'
          ORDER BY from_addr",
    )
    .bind(address)
    .fetch_all(conn)
    .await
}

/// Holds every broadcast on `address` still to send (scheduled, running or paused) for its
/// sender, with `reason`; their ids. Broadcasts already held stay held as they are.
pub async fn hold_broadcasts(
    conn: &mut PgConnection,
    address: &str,
    reason: &str,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "UPDATE broadcasts SET status = 'held', paused_reason = $2, held_for = 'sender',
                held_on = $1, updated_at = now()
          WHERE sender = $1 AND status IN ('scheduled', 'running', 'paused')
      RETURNING id",
    )
    .bind(address)
    .bind(reason)
    .fetch_all(conn)
    .await
    .map(sorted)
}

/// Marks sender `id` disabled and gone from Twilio (so its number can be registered again),
/// not the default any more is the caller's rule; records the change in its history.
pub async fn mark_deauthorized(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    let was_gone: Option<bool> = sqlx::query_scalar(
        "UPDATE senders s SET status = 'disabled', twilio_gone_at = COALESCE(s.twilio_gone_at, now()),
                updated_at = now(), local_change = nextval('local_changes')
           FROM senders old WHERE s.id = $1 AND old.id = s.id
       RETURNING old.twilio_gone_at IS NOT NULL OR old.twilio_sid IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if was_gone == Some(false) {
        sqlx::query(
            "INSERT INTO sender_changes (sender_id, field, old_value, new_value)
             VALUES ($1, 'presence', 'present', 'gone')",
        )
        .bind(id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// What moving a sender's work moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    /// Broadcasts still to send, by id (those held for the old sender's sake are released).
    pub broadcasts: Vec<i64>,
    /// Of those, the ones that were held for the old sender and now go ahead.
    pub released: Vec<i64>,
    /// Reminders still to come, by id.
    pub reminders: Vec<i64>,
    /// How many reply rules were scoped to the old sender.
    pub rules: u64,
    /// Whether the default flag moved.
    pub default: bool,
}

/// Moves the work on sender `from` (`from_id`, address `from`) to sender `to_id` (address
/// `to`, `mps` messages per second): broadcasts still to send (held ones held for `from`'s
/// sake are released), reminders still to come, reply rules scoped to it, and the default
/// flag. Run it in one transaction.
pub async fn move_work(
    conn: &mut PgConnection,
    (from_id, from): (i64, &str),
    (to_id, to, mps): (i64, &str, f64),
) -> sqlx::Result<Moved> {
    let released: Vec<i64> = sqlx::query_scalar(
        "UPDATE broadcasts SET sender = $2, mps = $3,
                status = CASE WHEN start_at > now() THEN 'scheduled' ELSE 'running' END,
                paused_reason = NULL, held_for = NULL, held_on = NULL, updated_at = now()
          WHERE sender = $1 AND status = 'held' AND held_for = 'sender' AND held_on = $1
      RETURNING id",
    )
    .bind(from)
    .bind(to)
    .bind(mps)
    .fetch_all(&mut *conn)
    .await?;
    let mut broadcasts: Vec<i64> = sqlx::query_scalar(
        "UPDATE broadcasts SET sender = $2, mps = $3, updated_at = now()
          WHERE sender = $1 AND status IN ('scheduled', 'running', 'paused', 'held')
      RETURNING id",
    )
    .bind(from)
    .bind(to)
    .bind(mps)
    .fetch_all(&mut *conn)
    .await?;
    broadcasts.extend(&released);
    let reminders: Vec<i64> = sqlx::query_scalar(
        "UPDATE reminders SET sender = $2, updated_at = now()
          WHERE sender = $1 AND status IN ('active', 'paused') RETURNING id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let rules =
        sqlx::query("UPDATE reply_rules SET sender = $2, updated_at = now() WHERE sender = $1")
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let default = sqlx::query(
        "UPDATE senders SET is_default = false, updated_at = now() WHERE id = $1 AND is_default",
    )
    .bind(from_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if default {
        sqlx::query("UPDATE senders SET is_default = true, updated_at = now() WHERE id = $1")
            .bind(to_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Moved {
        broadcasts: sorted(broadcasts),
        released: sorted(released),
        reminders: sorted(reminders),
        rules,
        default,
    })
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids
}
