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
    /// Before every row of transaction `xid` and after every row of the ones before it (row
    /// ids start at 1).
    pub fn at(xid: u64) -> Self {
        Self { xid, id: 0 }
    }

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

/// The horizon: the oldest transaction still running that may have written to this
/// database (its id, so every smaller one is finished or belongs elsewhere), or the next
/// transaction id when there is none. Transaction ids are cluster-wide, so plain
/// `pg_snapshot_xmin` would let a long write in *another* database on the same server hold
/// live updates back; transactions positively known (from `pg_stat_activity`) to run in
/// another database are therefore left out. Anything unknown counts as ours, so a
/// transaction of this database is never passed over while it runs.
const HORIZON_CTE: &str = r#"s AS (SELECT pg_current_snapshot() AS snap),
other AS (SELECT backend_xid::text::numeric AS x FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()),
h AS (SELECT COALESCE(
          (SELECT min(x) FROM s, pg_snapshot_xip(s.snap) AS x
           WHERE (x::text::numeric % 4294967296) NOT IN (SELECT x FROM other)),
          (SELECT pg_snapshot_xmax(snap) FROM s)) AS x)"#;

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

/// Every row of transactions in `[from_xid, horizon)` (see [`HORIZON_CTE`]); returns the rows
/// in order and the horizon.
pub async fn window(pool: &PgPool, from_xid: u64) -> sqlx::Result<(Vec<LogRow>, u64)> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "WITH {HORIZON_CTE} SELECT h.x::text, l.xid::text, l.id, l.kind, l.payload::text \
             FROM h LEFT JOIN live_log l ON l.xid >= $1::text::xid8 AND l.xid < h.x \
             ORDER BY l.xid, l.id"
        )
    });
    let raw: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
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

/// The horizon now (see [`HORIZON_CTE`]).
pub async fn current_horizon(pool: &PgPool) -> sqlx::Result<u64> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| format!("WITH {HORIZON_CTE} SELECT h.x::text FROM h"));
    let x: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
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
        assert!(
            Position {
                xid: 811,
                id: i64::MAX
            } < Position::at(812)
        );
        assert!(Position::at(812) < Position { xid: 812, id: 1 });
    }
}
