//! Reading and pruning the live change log (`live_log`, see its migration for why positions
//! are `(xid, id)` and reads stop at the oldest running transaction).

use std::fmt;

use sqlx::PgPool;

/// A place in the log: `(transaction id, row id)`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub xid: u64,
    pub id: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.xid, self.id)
    }
}

impl Position {
    /// Parses what [`Display`](fmt::Display) wrote (an SSE event id).
    pub fn parse(s: &str) -> Option<Self> {
        let (x, i) = s.trim().split_once('.')?;
        Some(Self {
            xid: x.parse().ok()?,
            id: i.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub pos: Position,
    pub kind: String,
    /// JSON text.
    pub payload: String,
}

type RawRow = (
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn xid(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

/// Every row of transactions in `[from_xid, horizon)`, where the horizon is the oldest
/// transaction still running now; returns the rows in order and the horizon.
pub async fn window(pool: &PgPool, from_xid: u64) -> sqlx::Result<(Vec<LogRow>, u64)> {
    let raw: Vec<RawRow> = sqlx::query_as(
        r#"WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x)
           SELECT h.x::text, l.xid::text, l.id, l.kind, l.payload::text
           FROM h LEFT JOIN live_log l ON l.xid >= $1::text::xid8 AND l.xid < h.x
           ORDER BY l.xid, l.id"#,
    )
    .bind(from_xid.to_string())
    .fetch_all(pool)
    .await?;
    let horizon = raw.first().map_or(from_xid, |r| xid(&r.0));
    let rows = raw
        .into_iter()
        .filter_map(|(_, x, id, kind, payload)| {
            Some(LogRow {
                pos: Position {
                    xid: xid(&x?),
                    id: id?,
                },
                kind: kind?,
                payload: payload?,
            })
        })
        .collect();
    Ok((rows, horizon.max(from_xid)))
}

/// The oldest transaction still running: everything before it has finished.
pub async fn current_horizon(pool: &PgPool) -> sqlx::Result<u64> {
    let x: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .fetch_one(pool)
        .await?;
    Ok(xid(&x))
}

/// Rows after `pos` of transactions older than `horizon`, at most `limit` of them.
pub async fn after(
    pool: &PgPool,
    pos: Position,
    horizon: u64,
    limit: i64,
) -> sqlx::Result<Vec<LogRow>> {
    let raw: Vec<(String, i64, String, String)> = sqlx::query_as(
        r#"SELECT xid::text, id, kind, payload::text FROM live_log
           WHERE (xid, id) > ($1::text::xid8, $2) AND xid < $3::text::xid8
           ORDER BY xid, id LIMIT $4"#,
    )
    .bind(pos.xid.to_string())
    .bind(pos.id)
    .bind(horizon.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(raw
        .into_iter()
        .map(|(x, id, kind, payload)| LogRow {
            pos: Position { xid: xid(&x), id },
            kind,
            payload,
        })
        .collect())
}

const PRUNED_KEY: &str = "live_log_pruned_before";

/// Deletes rows older than `keep` and remembers up to which transaction the log is gone, so
/// a client asking to resume from there is told to reload instead of silently missing rows.
pub async fn prune(pool: &PgPool, keep: std::time::Duration) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let gone: Option<String> = sqlx::query_scalar(
        r#"WITH d AS (DELETE FROM live_log WHERE at < now() - make_interval(secs => $1) RETURNING xid)
           SELECT (max(xid::text::numeric) + 1)::text FROM d"#,
    )
    .bind(keep.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    let mut n = 0;
    if let Some(before) = gone {
        sqlx::query(
            r#"INSERT INTO instance_settings (key, value) VALUES ($1, $2)
               ON CONFLICT (key) DO UPDATE SET value = GREATEST(instance_settings.value::numeric, EXCLUDED.value::numeric)::text,
                                               updated_at = now()"#,
        )
        .bind(PRUNED_KEY)
        .bind(&before)
        .execute(&mut *tx)
        .await?;
        n = 1;
    }
    tx.commit().await?;
    Ok(n)
}

/// Transactions before this one may have rows that were pruned.
pub async fn pruned_before(pool: &PgPool) -> sqlx::Result<u64> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM instance_settings WHERE key = $1")
            .bind(PRUNED_KEY)
            .fetch_optional(pool)
            .await?;
    Ok(v.map_or(0, |s| xid(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_order() {
        let p = Position { xid: 812, id: 5 };
        assert_eq!(Position::parse(&p.to_string()), Some(p));
        assert!(Position { xid: 812, id: 9 } < Position { xid: 813, id: 1 });
        assert_eq!(Position::parse("x.1"), None);
        assert_eq!(Position::parse("12"), None);
    }
}
