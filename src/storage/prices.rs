//! The price table: loaded whole, replaced whole by an upload; listed a page at a time for
//! the admin page, and read by country for one estimate.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::price::{Kind, Price};

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

/// Where a row stands on a given day, by the rule the estimator follows: of the rows with the
/// same kind, country and category, the latest that has started is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    InForce,
    /// A later row of the same kind, country and category has started.
    Superseded,
    /// Starts after the day.
    Future,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::InForce => "in_force",
            Standing::Superseded => "superseded",
            Standing::Future => "future",
        }
    }
}

/// A row as the admin page lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub price: Price,
    pub standing: Standing,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    row: Row,
    standing: String,
}

/// One page of the table on `today`: by kind (in [`Kind::ALL`]'s order), then named countries
/// before `*`, named categories before `*`, then by date. The standing is computed over the
/// whole table (a window per kind, country and category), so a row's neighbours on another
/// page still count.
#[tracing::instrument(skip(pool))]
pub async fn page(
    pool: &PgPool,
    today: NaiveDate,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<Listed>> {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let rows = sqlx::query_as::<_, ListedRow>(
        "SELECT effective_from, kind, country, category, amount::text AS amount, currency, \
           CASE WHEN effective_from > $1 THEN 'future' \
                WHEN effective_from = max(effective_from) FILTER (WHERE effective_from <= $1) \
                     OVER (PARTITION BY kind, country, category) THEN 'in_force' \
                ELSE 'superseded' END AS standing \
         FROM prices \
         ORDER BY array_position($2::text[], kind), country = '*', country, \
                  category = '*', category, effective_from \
         LIMIT $3 OFFSET $4",
    )
    .bind(today)
    .bind(&kinds)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let standing = match r.standing.as_str() {
                "future" => Standing::Future,
                "in_force" => Standing::InForce,
                _ => Standing::Superseded,
            };
            Ok(Listed {
                price: Price::try_from(r.row)?,
                standing,
            })
        })
        .collect()
}

/// The table at a glance: its size by standing on `today`, its currency, and its upload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Summary {
    pub rows: i64,
    pub in_force: i64,
    pub future: i64,
    /// One currency in a valid table; the least and greatest are both read so that a table
    /// broken by hand shows it.
    pub currency: Option<String>,
    pub other_currency: Option<String>,
    pub uploaded_at: Option<DateTime<Utc>>,
    /// `None` for the shipped default (or an empty table).
    pub uploaded_by: Option<String>,
    /// Every row is the seeded default's (none was uploaded).
    pub is_default: bool,
}

#[tracing::instrument(skip(pool))]
pub async fn summary(pool: &PgPool, today: NaiveDate) -> sqlx::Result<Summary> {
    // An upload replaces every row in one transaction, so its rows share who and when; the
    // latest is read in case rows were added by hand.
    sqlx::query_as::<_, Summary>(
        "SELECT count(*) AS rows, \
           count(DISTINCT (kind, country, category)) FILTER (WHERE effective_from <= $1) AS in_force, \
           count(*) FILTER (WHERE effective_from > $1) AS future, \
           min(currency) AS currency, \
           NULLIF(max(currency), min(currency)) AS other_currency, \
           max(uploaded_at) AS uploaded_at, \
           (array_agg(uploaded_by ORDER BY uploaded_at DESC) FILTER (WHERE uploaded_by IS NOT NULL))[1] AS uploaded_by, \
           coalesce(bool_and(uploaded_by IS NULL), true) AS is_default \
         FROM prices",
    )
    .bind(today)
    .fetch_one(pool)
    .await
}

/// The rows that can price a message to `country` on `date`: that country's and the `*`
/// rows that had started by then. What `crate::pricing::lookup` would pick from the whole
/// table it picks from these, without reading 100,000 rows for one estimate.
#[tracing::instrument(skip(pool))]
pub async fn applicable(pool: &PgPool, country: &str, date: NaiveDate) -> sqlx::Result<Vec<Price>> {
    sqlx::query_as::<_, Row>(
        "SELECT effective_from, kind, country, category, amount::text AS amount, currency \
         FROM prices WHERE country IN ($1, '*') AND effective_from <= $2",
    )
    .bind(country)
    .bind(date)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Price::try_from)
    .collect()
}
