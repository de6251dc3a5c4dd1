//! Login throttling: after too many failures within a window, an account (whoever tries it)
//! and a client address (whatever account it tries) are refused until the window passes.
//! Failures are rows in `login_failures`, so the limit holds across instances.
//!
//! The decision and the count are one atomic step: [`reserve`] takes a transaction-scoped
//! advisory lock on both keys, counts, and — if neither is over its limit — records the
//! attempt as a failure before the password is checked. A correct password then takes the
//! reservation back ([`succeeded`]). So however many attempts arrive at once, at most the
//! limit are ever checked against a password; an attempt whose process dies mid-way counts
//! as a failure.

use std::time::Duration;

use sqlx::PgPool;

/// Failed attempts allowed per account within [`WINDOW`].
pub const PER_ACCOUNT: i64 = 5;
/// Failed attempts allowed per client address within [`WINDOW`].
pub const PER_CLIENT: i64 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The first half of the two-part advisory lock keys used here (the second is a hash of the
/// throttle key); the two-part keys are a space apart from the jobs' one-part keys.
const LOCK_CLASS: i32 = 0x7767_6c74; // "wglt"

pub fn account_key(username: &str) -> String {
    format!("user:{username}")
}

/// The key of a client address. An IPv6 client is keyed by its /64, the block one host or
/// subscriber gets, so that rotating addresses within it gains no attempts.
pub fn client_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("ip:{net}/64")
        }
        Ok(std::net::IpAddr::V6(v6)) => format!(
            "ip:{}",
            v6.to_ipv4_mapped()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
        ),
        _ => format!("ip:{ip}"),
    }
}

/// An attempt that may check a password; it counts as a failure until [`succeeded`].
#[derive(Debug)]
#[must_use = "a reservation is a recorded failure until the login succeeds"]
pub struct Reservation {
    account_row: i64,
    client_row: i64,
}

/// 32 bits of a key for its advisory lock (FNV-1a: stable across processes and versions).
fn lock_of(key: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// `Some(wait)` when either key is at its limit: how long until the oldest counted failure
/// leaves the window.
async fn over_limit<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    account: &str,
    client: &str,
) -> sqlx::Result<Option<Duration>> {
    let rows: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
        r#"SELECT key, count(*), extract(epoch FROM min(at) + make_interval(secs => $2) - now())::float8
           FROM login_failures
           WHERE key = ANY($1) AND at > now() - make_interval(secs => $2)
           GROUP BY key"#,
    )
    .bind([account, client])
    .bind(WINDOW.as_secs_f64())
    .fetch_all(executor)
    .await?;
    for (key, n, wait) in rows {
        let limit = if key == account {
            PER_ACCOUNT
        } else {
            PER_CLIENT
        };
        if n >= limit {
            return Ok(Some(Duration::from_secs_f64(wait.unwrap_or(0.0).max(1.0))));
        }
    }
    Ok(None)
}

/// Reserves one attempt for `account` from `client`, or says how long until one of them may
/// try again. Atomic across concurrent callers and instances: the check and the record are
/// made under both keys' locks (taken in a fixed order, so callers never deadlock).
pub async fn reserve(
    pool: &PgPool,
    account: &str,
    client: &str,
) -> sqlx::Result<Result<Reservation, Duration>> {
    // Refused at once, without waiting for a lock or holding a connection, when a limit is
    // already reached: a flood of attempts then costs one read each.
    if let Some(wait) = over_limit(pool, account, client).await? {
        return Ok(Err(wait));
    }
    let mut locks = [lock_of(account), lock_of(client)];
    locks.sort_unstable();
    let mut tx = pool.begin().await?;
    // Attempts queue here one at a time per key; a long queue means a flood: refuse.
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *tx)
        .await?;
    let locked = sqlx::query("SELECT pg_advisory_xact_lock($1, $2), pg_advisory_xact_lock($1, $3)")
        .bind(LOCK_CLASS)
        .bind(locks[0])
        .bind(locks[1])
        .execute(&mut *tx)
        .await;
    match locked {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
            return Ok(Err(Duration::from_secs(1)));
        }
        Err(e) => return Err(e),
    }
    if let Some(wait) = over_limit(&mut *tx, account, client).await? {
        tx.rollback().await?;
        return Ok(Err(wait));
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO login_failures (key) SELECT unnest($1::text[]) RETURNING key, id",
    )
    .bind([account, client])
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let id_of = |key: &str| rows.iter().find(|(k, _)| k == key).map_or(0, |(_, id)| *id);
    Ok(Ok(Reservation {
        account_row: id_of(account),
        client_row: id_of(client),
    }))
}

/// The password was wrong: the reservation stays as the failure. Old failures that no
/// longer count are forgotten, which keeps the table small.
pub async fn failed(pool: &PgPool, reservation: Reservation) -> sqlx::Result<()> {
    let _ = reservation;
    sqlx::query("DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)")
        .bind(WINDOW.as_secs_f64() * 2.0)
        .execute(pool)
        .await?;
    Ok(())
}

/// The login succeeded: the account's failures are cleared, and this attempt no longer
/// counts against the client (its earlier failures still do).
pub async fn succeeded(pool: &PgPool, reservation: Reservation, account: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1 OR id = ANY($2)")
        .bind(account)
        .bind([reservation.account_row, reservation.client_row])
        .execute(pool)
        .await?;
    Ok(())
}

/// The password was never checked (the server was too busy): the attempt does not count.
pub async fn release(pool: &PgPool, reservation: Reservation) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE id = ANY($1)")
        .bind([reservation.account_row, reservation.client_row])
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(
            client_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            client_key("2001:db8:1:2::9")
        );
        assert_ne!(client_key("2001:db8:1:3::1"), client_key("2001:db8:1:2::1"));
        assert_eq!(client_key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(client_key("192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(client_key("unknown"), "ip:unknown");
    }
}
