//! Read-only transactions on several connections that all see one snapshot, so that queries
//! run at the same time still agree with each other (as `pg_dump --jobs` does): the first
//! transaction exports its snapshot and the others adopt it before their first query.

use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// `N` (at least one) transactions sharing the snapshot taken now. Dropping them rolls them
/// back, which is all a read-only transaction needs.
pub async fn shared<const N: usize>(
    pool: &PgPool,
) -> sqlx::Result<[Transaction<'static, Postgres>; N]> {
    const { assert!(N > 0) };
    let mut lead = pool.begin_with(BEGIN).await?;
    let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *lead)
        .await?;
    // The identifier comes from the server (hex digits and dashes); SET takes no parameters.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(sqlx::Error::Protocol(format!(
            "unexpected snapshot identifier {id:?}"
        )));
    }
    let mut all = Vec::with_capacity(N);
    all.push(lead);
    for _ in 1..N {
        let mut tx = pool.begin_with(BEGIN).await?;
        sqlx::query(AssertSqlSafe(format!("SET TRANSACTION SNAPSHOT '{id}'")))
            .execute(&mut *tx)
            .await?;
        all.push(tx);
    }
    Ok(all
        .try_into()
        .unwrap_or_else(|_| unreachable!("N transactions were opened")))
}
