//! The price table: loaded whole, replaced whole by an upload.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use crate::pricing::{Kind, Price};

#[derive(sqlx::FromRow)]
struct Row {
    effective_from: NaiveDate,
    kind: String,
    country: String,
    category: String,
    amount: String,
    currency: String,
}

impl TryFrom<Row> for Price {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        Ok(Price {
            effective_from: r.effective_from,
            kind: Kind::parse(&r.kind).map_err(decode)?,
            country: r.country,
            category: r.category,
            amount: r
                .amount
                .parse()
                .map_err(|e: rust_decimal::Error| decode(e.to_string()))?,
            currency: r.currency,
        })
    }
}

/// Every row, oldest first.
#[tracing::instrument(skip_all)]
pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<Price>> {
    sqlx::query_as::<_, Row>(
        "SELECT effective_from, kind, country, category, amount::text AS amount, currency \
         FROM prices ORDER BY effective_from, kind, country, category",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Price::try_from)
    .collect()
}

/// Replaces the whole table, within the caller's transaction.
#[tracing::instrument(skip(conn, prices), fields(rows = prices.len()))]
pub async fn replace(
    conn: &mut PgConnection,
    prices: &[Price],
    uploaded_by: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM prices")
        .execute(&mut *conn)
        .await?;
    insert(&mut *conn, prices, uploaded_by).await?;
    // Every instance's price book notices the new table by this version.
    sqlx::query(
        r#"INSERT INTO instance_settings (key, value) VALUES ($1, txid_current()::text)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"#,
    )
    .bind(VERSION_KEY)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `instance_settings` key that changes whenever the table is replaced.
pub const VERSION_KEY: &str = "prices_version";

/// The table's current version (see [`replace`]); None for the seeded table.
pub async fn version(pool: &PgPool) -> sqlx::Result<Option<String>> {
    crate::storage::instance_settings::get(pool, VERSION_KEY).await
}

async fn insert(
    conn: &mut PgConnection,
    prices: &[Price],
    uploaded_by: Option<&str>,
) -> sqlx::Result<()> {
    // One statement per 5,000 rows keeps the bind count far below PostgreSQL's 65,535.
    for chunk in prices.chunks(5_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO prices (effective_from, kind, country, category, amount, currency, uploaded_by) ",
        );
        q.push_values(chunk, |mut b, p| {
            b.push_bind(p.effective_from)
                .push_bind(p.kind.as_str())
                .push_bind(&p.country)
                .push_bind(&p.category)
                .push_bind(p.amount.to_string())
                .push_unseparated("::numeric")
                .push_bind(&p.currency)
                .push_bind(uploaded_by);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Seeds `prices` when it is empty (the first start), under a lock so that instances starting
/// together seed it once. Returns whether it seeded.
#[tracing::instrument(skip_all)]
pub async fn seed_if_empty(pool: &PgPool, prices: &[Price]) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM prices)")
        .fetch_one(&mut *tx)
        .await?;
    if empty {
        insert(&mut tx, prices, None).await?;
    }
    tx.commit().await?;
    Ok(empty)
}
