//! Connecting: creating the database when it is missing, running migrations, the pool.

use std::str::FromStr;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::{DatabaseSettings, redact_url};

pub mod compat;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn connect_options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let url = settings.url.expose_secret();
    let opts = PgConnectOptions::from_str(url)
        .with_context(|| format!("DATABASE_URL {} is not a PostgreSQL URL", redact_url(url)))?;
    // A 2xx on a webhook promises the callback is on disk: insist on synchronous commit for
    // our sessions even if the server's default was relaxed.
    Ok(opts
        .application_name("wadash")
        .options([("synchronous_commit", "on")])
        .log_statements(tracing::log::LevelFilter::Trace))
}

/// Creates the database named in the URL if it does not exist (connecting to `postgres` to
/// do so), so a fresh machine needs no manual step.
pub async fn ensure_database(opts: &PgConnectOptions) -> anyhow::Result<()> {
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    match opts.connect().await {
        Ok(conn) => {
            conn.close().await.ok();
            return Ok(());
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot connect to PostgreSQL at {}:{}",
                    opts.get_host(),
                    opts.get_port()
                )
            });
        }
    }
    let mut admin = opts.clone().database("postgres").connect().await.with_context(|| {
        format!("database {name:?} is missing and the 'postgres' database is unreachable to create it")
    })?;
    let ident = name.replace('"', "\"\"");
    let sql = format!("CREATE DATABASE \"{ident}\"");
    match sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
    {
        Ok(_) => tracing::info!(database = %name, "created database"),
        // Another instance created it in the meantime.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => return Err(e).context(format!("creating database {name:?}")),
    }
    admin.close().await.ok();
    Ok(())
}

/// The pool used by the server. Connections are not pinged before use (that would cost a
/// round trip per batch); callers retry transient errors instead.
///
/// Each new connection asks the server to check, every second while a statement runs,
/// that we are still there (`client_connection_check_interval`, PostgreSQL 14+; older
/// servers refuse it and it is skipped). When a batch runs out of time the ingest closes its
/// connection; this makes the server abort the statement then, releasing its row locks,
/// instead of running it to the end for nobody.
pub fn pool(settings: &DatabaseSettings, opts: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if let Err(e) = sqlx::query("SET client_connection_check_interval = '1s'")
                    .execute(&mut *conn)
                    .await
                {
                    tracing::debug!(error = %e, "the server does not check for vanished clients (PostgreSQL < 14)");
                }
                Ok(())
            })
        })
        .connect_lazy_with(opts)
}

/// Creates (if needed), connects and migrates.
pub async fn prepare(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let opts = connect_options(settings)?;
    ensure_database(&opts).await?;
    let pool = pool(settings, opts);
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies this binary's pending migrations, and runs on a database a newer wadash has
/// migrated when that is safe (see [`compat`]): newer expand migrations give a warning,
/// a newer contract migration an error naming it.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let applied = applied_migrations(pool).await?;
    let known = MIGRATOR.iter().map(|m| m.version).collect();
    let mut migrator = sqlx::migrate::Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    match compat::judge(&applied, &known) {
        compat::Compat::Known => {}
        compat::Compat::Ahead(newer) => {
            tracing::warn!(
                migrations = %compat::list(&newer),
                "the database was migrated by a newer wadash; this version runs on it (expand-only changes) but should be upgraded: finish the rolling upgrade"
            );
            migrator.set_ignore_missing(true);
        }
        compat::Compat::Incompatible(contract) => anyhow::bail!(
            "the database was migrated by a newer wadash that removed what this version uses \
             (contract migration(s) {}); install that newer wadash here",
            compat::list(&contract)
        ),
    }
    migrator.run(pool).await.context("applying migrations")
}

/// The applied migrations (none on an empty database).
pub async fn applied_migrations(pool: &PgPool) -> anyhow::Result<Vec<compat::Applied>> {
    let rows: Vec<(i64, String)> =
        match sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // undefined_table: nothing was ever applied.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e).context("reading the applied migrations"),
        };
    Ok(rows
        .into_iter()
        .map(|(version, description)| compat::Applied {
            version,
            description,
        })
        .collect())
}
