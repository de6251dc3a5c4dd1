//! The checks of `wadash doctor` other than the webhook self-test: database, migrations, TLS
//! to PostgreSQL, the public URL, Twilio's credentials, the senders' webhooks, the clock, the
//! secret key and the first admin's password.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::postgres::{PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};

use super::{Check, Context, DATABASE_TIMEOUT, NETWORK_TIMEOUT};
use crate::config::{Settings, redact_url};
use crate::credentials::{Effective, Source};
use crate::database::compat;
use crate::domain::probe::is_loopback;
use crate::storage::instance_settings;
use crate::twilio::client::{RetryPolicy, TwilioClient, TwilioError};

const NOT_REACHED: &str = "not checked: the database is unreachable (see `database`)";

/// `database`: connects once, with a bounded wait, and keeps a small pool for the other
/// checks. Never creates the database.
pub(super) async fn database(settings: &Settings) -> (Check, Option<PgPool>) {
    const NAME: &str = "database";
    use secrecy::ExposeSecret as _;
    let shown = redact_url(settings.database.url.expose_secret());
    let opts = match crate::database::connect_options(&settings.database) {
        Ok(o) => o,
        Err(e) => {
            return (
                Check::fail(
                    NAME,
                    format!("{e:#}"),
                    "set DATABASE_URL to postgres://user:password@host:5432/wadash",
                ),
                None,
            );
        }
    };
    let where_ = match opts.get_socket() {
        Some(dir) => format!("the unix socket in {}", dir.display()),
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    };
    let started = Instant::now();
    let conn = match tokio::time::timeout(DATABASE_TIMEOUT, opts.connect()).await {
        Err(_) => {
            return (
                Check::fail(
                    NAME,
                    format!(
                        "no answer from {where_} within {} s ({shown})",
                        DATABASE_TIMEOUT.as_secs()
                    ),
                    "check that PostgreSQL runs and that a firewall lets this machine reach its port",
                ),
                None,
            );
        }
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("3D000") => {
            return (
                Check::fail(
                    NAME,
                    format!(
                        "{where_} answers, but the database {:?} does not exist ({shown})",
                        opts.get_database().unwrap_or("postgres")
                    ),
                    "run `wadash migrate` (or start `wadash serve`): it creates the database and its tables",
                ),
                None,
            );
        }
        Ok(Err(sqlx::Error::Database(e)))
            if matches!(e.code().as_deref(), Some("28P01" | "28000")) =>
        {
            return (
                Check::fail(
                    NAME,
                    format!(
                        "{where_} refused the login of user {:?}: {} ({shown})",
                        opts.get_username(),
                        e.message()
                    ),
                    "check the user and password in DATABASE_URL, and pg_hba.conf on the server",
                ),
                None,
            );
        }
        Ok(Err(e)) => {
            return (
                Check::fail(
                    NAME,
                    format!("cannot connect to {where_}: {e} ({shown})"),
                    "check that PostgreSQL runs there and that DATABASE_URL names the right host and port",
                ),
                None,
            );
        }
        Ok(Ok(c)) => c,
    };
    let took = started.elapsed();
    let mut conn = conn;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|_| "unknown version".into());
    conn.close().await.ok();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(DATABASE_TIMEOUT)
        .connect_lazy_with(opts);
    (
        Check::ok(
            NAME,
            format!(
                "connected to {shown} in {} ms (PostgreSQL {version})",
                took.as_millis()
            ),
        ),
        Some(pool),
    )
}

/// The credentials in force (the stored ones only when the database answered) and the REST
/// client for them.
pub(super) async fn context(settings: &Settings, pool: Option<PgPool>) -> Context<'_> {
    let environment = settings.twilio.credentials.clone();
    let mut file_error = None;
    let file = match &settings.credentials.file {
        None => None,
        Some(path) => match crate::credentials::file::read(path) {
            Ok(f) => Some(f),
            Err(e) => {
                file_error = Some(format!("{e:#}"));
                None
            }
        },
    };
    let without_stored = || {
        let mut layers = vec![(Source::Environment, &environment)];
        if let Some(f) = &file {
            layers.push((Source::File, f));
        }
        Effective::merge(&layers)
    };
    let mut stored_error = None;
    let effective = match &pool {
        Some(pool) => {
            // The stored credentials alone (the file was read above), so that an error here
            // is theirs.
            let stored = crate::credentials::manager::Sources {
                environment: Default::default(),
                file: None,
                secret_key: settings.credentials.secret_key.clone(),
            };
            match stored.read(pool, true).await {
                Ok(api)
                    if api.token_source.is_some()
                        || api.account_source.is_some()
                        || api.api_key_source.is_some() =>
                {
                    let mut layers = vec![(Source::Environment, &environment)];
                    if let Some(f) = &file {
                        layers.push((Source::File, f));
                    }
                    layers.push((Source::Api, &api.set));
                    Effective::merge(&layers)
                }
                Ok(_) => without_stored(),
                Err(e) => {
                    stored_error = Some(e);
                    without_stored()
                }
            }
        }
        None => without_stored(),
    };
    let public = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind));
    let twilio = match (&effective.set.account_sid, effective.rest_credentials()) {
        (Some(account), Some(creds)) => TwilioClient::new(
            &settings.twilio.api_base,
            account,
            creds,
            Some(format!("{public}/sts")),
            NETWORK_TIMEOUT,
            RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
        )
        .ok(),
        _ => None,
    };
    let http = reqwest::Client::builder()
        .timeout(NETWORK_TIMEOUT)
        .connect_timeout(NETWORK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wadash-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client without custom TLS builds");
    Context {
        settings,
        pool,
        effective,
        stored_error,
        file_error,
        twilio,
        http,
    }
}

/// `migrations`: the applied migrations against the ones this binary carries.
pub(super) async fn migrations(ctx: &Context<'_>) -> Check {
    const NAME: &str = "migrations";
    let Some(pool) = &ctx.pool else {
        return Check::fail(NAME, NOT_REACHED, "fix `database` first");
    };
    let applied: Vec<(i64, bool, Vec<u8>, String)> = match sqlx::query_as(
        "SELECT version, success, checksum, description FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
            return Check::fail(
                NAME,
                "no migration was ever applied: the database is empty",
                "run `wadash migrate` (or start `wadash serve`, which migrates at start)",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read the migrations: {e}"),
                "check the database user's rights on _sqlx_migrations",
            );
        }
    };
    let embedded: BTreeMap<i64, (&[u8], &str)> = crate::database::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, (m.checksum.as_ref(), m.description.as_ref())))
        .collect();
    let applied_versions: BTreeMap<i64, (bool, &[u8])> = applied
        .iter()
        .map(|(v, ok, sum, _)| (*v, (*ok, sum.as_slice())))
        .collect();
    let descriptions: BTreeMap<i64, String> = applied.iter().map(|r| (r.0, r.3.clone())).collect();
    let failed: Vec<i64> = applied.iter().filter(|r| !r.1).map(|r| r.0).collect();
    let changed: Vec<i64> = applied
        .iter()
        .filter(|(v, ok, sum, _)| *ok && embedded.get(v).is_some_and(|(e, _)| *e != sum.as_slice()))
        .map(|r| r.0)
        .collect();
    let unknown: Vec<i64> = applied_versions
        .keys()
        .filter(|v| !embedded.contains_key(v))
        .copied()
        .collect();
    let pending: Vec<i64> = embedded
        .keys()
        .filter(|v| !applied_versions.contains_key(v))
        .copied()
        .collect();
    let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    if !failed.is_empty() {
        return Check::fail(
            NAME,
            format!("migration(s) {} failed part-way", list(&failed)),
            "read the error `wadash migrate` prints, repair the database, delete the failed row from _sqlx_migrations and run `wadash migrate` again",
        );
    }
    if !changed.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "migration(s) {} differ from what was applied (the file changed after it ran)",
                list(&changed)
            ),
            "run the wadash release that applied them, or restore the database from a backup made with this release",
        );
    }
    if !unknown.is_empty() {
        let descriptions: Vec<compat::Applied> = unknown
            .iter()
            .map(|v| compat::Applied {
                version: *v,
                description: descriptions.get(v).cloned().unwrap_or_default(),
            })
            .collect();
        let known = embedded.keys().copied().collect();
        return match compat::judge(&descriptions, &known) {
            compat::Compat::Incompatible(contract) => Check::fail(
                NAME,
                format!(
                    "the database has contract migration(s) this wadash does not know ({}): a newer wadash removed what this version uses, and this binary's `wadash serve` refuses to start on it",
                    compat::list(&contract)
                ),
                "install the newer wadash on this server too (during a rolling upgrade: finish it)",
            ),
            _ => Check::warn(
                NAME,
                format!(
                    "the database has {} migration(s) this wadash does not know ({}): a newer wadash migrated it. They only add, so this version keeps running (and starts) on it",
                    descriptions.len(),
                    compat::list(&descriptions)
                ),
                "install the newer wadash on this server too (during a rolling upgrade: finish it)",
            ),
        };
    }
    let latest = embedded
        .iter()
        .next_back()
        .map(|(v, (_, d))| format!("{v} {d}"))
        .unwrap_or_default();
    if !pending.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{} of {} migration(s) not applied yet ({}): this binary is newer than the database; running instances of the previous version go on working meanwhile",
                pending.len(),
                embedded.len(),
                list(&pending)
            ),
            "start `wadash serve` with this version (it migrates at start) or run `wadash migrate`",
        );
    }
    Check::ok(
        NAME,
        format!("all {} applied (latest: {latest})", embedded.len()),
    )
}

/// `database-tls`: whether this connection to PostgreSQL is encrypted, and verified.
pub(super) async fn database_tls(ctx: &Context<'_>) -> Check {
    const NAME: &str = "database-tls";
    let Some(pool) = &ctx.pool else {
        return Check::fail(NAME, NOT_REACHED, "fix `database` first");
    };
    let Ok(opts) = crate::database::connect_options(&ctx.settings.database) else {
        return Check::fail(NAME, NOT_REACHED, "fix `database` first");
    };
    let row: Result<Option<(bool, Option<String>)>, _> =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_optional(pool)
            .await;
    let (encrypted, version) = match row {
        Ok(Some((ssl, v))) => (ssl, v),
        Ok(None) => (false, None),
        Err(e) => {
            return Check::warn(
                NAME,
                format!("cannot tell: {e}"),
                "PostgreSQL 9.5 or later shows pg_stat_ssl; check sslmode in DATABASE_URL by hand",
            );
        }
    };
    let mode = match opts.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    let state = if encrypted {
        format!(
            "encrypted ({}, sslmode={mode})",
            version.as_deref().unwrap_or("TLS")
        )
    } else {
        format!("not encrypted (sslmode={mode})")
    };
    if let Some(dir) = opts.get_socket() {
        return Check::ok(
            NAME,
            format!(
                "unix socket in {}: never crosses the network",
                dir.display()
            ),
        );
    }
    let host = opts.get_host();
    if host.starts_with('/') || is_loopback(host) {
        return Check::ok(
            NAME,
            format!("{state} to {host}, which is this machine: nothing crosses the network"),
        );
    }
    if !encrypted {
        return Check::warn(
            NAME,
            format!(
                "{state} to {host}: queries, message bodies and the database password cross the network in clear"
            ),
            "turn on ssl in postgresql.conf and add ?sslmode=verify-full&sslrootcert=/path/to/ca.pem to DATABASE_URL",
        );
    }
    match opts.get_ssl_mode() {
        PgSslMode::VerifyFull => Check::ok(
            NAME,
            format!("{state} to {host}, certificate and host name verified"),
        ),
        PgSslMode::VerifyCa => Check::ok(
            NAME,
            format!("{state} to {host}, certificate verified (not its host name)"),
        ),
        _ => Check::warn(
            NAME,
            format!(
                "{state} to {host}, but the server's certificate is not verified: whoever sits on the path can pose as the server"
            ),
            "add sslmode=verify-full (and sslrootcert=/path/to/ca.pem for a private CA) to DATABASE_URL",
        ),
    }
}

/// `public-url`: `WADASH_PUBLIC_URL` is set, https (plain http only on loopback), and its
/// host resolves.
pub(super) async fn public_url(ctx: &Context<'_>) -> Check {
    const NAME: &str = "public-url";
    let Some(public) = &ctx.settings.public_url else {
        return Check::fail(
            NAME,
            format!(
                "WADASH_PUBLIC_URL is not set: wadash checks Twilio's signatures against http://{} (its bind address), which is not the URL Twilio calls, so every webhook would be refused",
                ctx.settings.bind
            ),
            "set WADASH_PUBLIC_URL to the https:// address of the proxy in front of wadash, e.g. https://wa.example.com",
        );
    };
    let Ok(url) = reqwest::Url::parse(public) else {
        return Check::fail(
            NAME,
            format!("{public} is not a URL"),
            "set WADASH_PUBLIC_URL to e.g. https://wa.example.com",
        );
    };
    let Some(host) = url.host_str().map(str::to_owned) else {
        return Check::fail(
            NAME,
            format!("{public} has no host"),
            "set WADASH_PUBLIC_URL to e.g. https://wa.example.com",
        );
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let resolved = tokio::time::timeout(
        NETWORK_TIMEOUT,
        tokio::net::lookup_host((lookup_host.as_str(), port)),
    )
    .await;
    let addrs: Vec<String> = match resolved {
        Ok(Ok(a)) => {
            let mut v: Vec<String> = a.map(|a| a.ip().to_string()).collect();
            v.sort();
            v.dedup();
            v
        }
        Ok(Err(e)) => {
            return Check::fail(
                NAME,
                format!("{public}: {host} does not resolve ({e})"),
                "create the DNS record for the host (A/AAAA pointing at the proxy) or correct WADASH_PUBLIC_URL",
            );
        }
        Err(_) => {
            return Check::fail(
                NAME,
                format!(
                    "{public}: resolving {host} took over {} s",
                    NETWORK_TIMEOUT.as_secs()
                ),
                "check /etc/resolv.conf and the DNS servers this machine uses",
            );
        }
    };
    let found = format!("{public} ({host} → {})", addrs.join(", "));
    match url.scheme() {
        "https" => Check::ok(NAME, found),
        _ if is_loopback(&host) => Check::warn(
            NAME,
            format!(
                "{found} is plain http on this machine: fine for trying wadash here, but Twilio cannot call it"
            ),
            "for a real deployment put a TLS proxy in front (docs/deploy.md) and set WADASH_PUBLIC_URL to its https:// URL",
        ),
        _ => Check::fail(
            NAME,
            format!(
                "{found} is plain http outside this machine: Twilio's signed callbacks and dashboard passwords would cross the network unencrypted"
            ),
            "terminate TLS in a reverse proxy (docs/deploy.md) and set WADASH_PUBLIC_URL to its https:// URL",
        ),
    }
}

/// The token a probe is signed with: the primary auth token in force, or (simulator mode)
/// the simulator's, read without creating one.
pub(super) async fn signing_token(ctx: &Context<'_>) -> Option<SecretString> {
    if let Some(t) = ctx.effective.webhook_tokens().into_iter().next() {
        return Some(t);
    }
    let pool = ctx.pool.as_ref()?;
    instance_settings::get(pool, crate::twilio::webhook_keys::SIMULATOR_TOKEN_KEY)
        .await
        .ok()
        .flatten()
        .map(SecretString::from)
}

/// `twilio-credentials`: a read-only call (the balance) with the credentials in force.
pub(super) async fn twilio_credentials(ctx: &Context<'_>) -> Check {
    const NAME: &str = "twilio-credentials";
    if let Some(e) = &ctx.file_error {
        return Check::fail(
            NAME,
            format!("the credentials file (WADASH_TWILIO_CREDENTIALS_FILE) cannot be used: {e}"),
            "fix the file (readable by the service's user, in the documented format) or unset WADASH_TWILIO_CREDENTIALS_FILE",
        );
    }
    let Some(client) = &ctx.twilio else {
        if ctx.effective.set.account_sid.is_some() || ctx.effective.set.auth_token.is_some() {
            return Check::fail(
                NAME,
                "incomplete: live mode needs TWILIO_ACCOUNT_SID and an auth token (or TWILIO_API_KEY + TWILIO_API_SECRET)",
                "set the missing value (Twilio Console → Account info)",
            );
        }
        return Check::ok(
            NAME,
            "simulator mode: no Twilio credentials are configured, so the built-in simulator stands in for Twilio (nothing to check)",
        );
    };
    let base = client.base().to_owned();
    let account = client.account_sid().to_owned();
    match client.fetch_balance().await {
        Ok(b) => Check::ok(
            NAME,
            format!(
                "{base} accepted the credentials of {account}{}",
                match (b.balance, b.currency) {
                    (Some(v), Some(c)) => format!(" (balance {v} {c})"),
                    _ => String::new(),
                }
            ),
        ),
        Err(TwilioError::Api { status: 401, .. }) => Check::fail(
            NAME,
            format!("{base} refused the credentials of {account} (401)"),
            "copy the Account SID and auth token (or an API key and secret) from Twilio's Console again; after a token rotation, the old token stops working once the secondary is promoted",
        ),
        Err(e @ TwilioError::Api { .. }) => Check::fail(
            NAME,
            format!("{base} answered for {account}: {e}"),
            "check TWILIO_ACCOUNT_SID (and TWILIO_API_BASE, which should be unset in production)",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("cannot reach {base}: {e}"),
            "let this machine make outbound HTTPS requests to api.twilio.com (firewall, egress proxy)",
        ),
    }
}

/// `sender-webhooks`: each WhatsApp sender at Twilio sends to this `WADASH_PUBLIC_URL`'s
/// `/wa` and `/sts` (Senders API; the last sync's copy if it cannot be read).
pub(super) async fn sender_webhooks(ctx: &Context<'_>) -> Check {
    const NAME: &str = "sender-webhooks";
    let Some(client) = &ctx.twilio else {
        return Check::ok(
            NAME,
            "simulator mode: the simulator's senders call this instance directly",
        );
    };
    let Some(public) = &ctx.settings.public_url else {
        return Check::warn(
            NAME,
            "not checked: WADASH_PUBLIC_URL is not set, so there is nothing to compare with",
            "fix `public-url` first",
        );
    };
    let listed = match client.messaging(&ctx.settings.twilio.messaging_base) {
        Ok(m) => m.list_senders().await.map(|senders| {
            senders
                .into_iter()
                .map(|s| {
                    (
                        s.sender_id,
                        s.webhook.callback_url,
                        s.webhook.status_callback_url,
                    )
                })
                .collect::<Vec<_>>()
        }),
        Err(e) => Err(e),
    };
    let (senders, source) = match listed {
        Ok(s) => (s, None),
        Err(e) => {
            let Some(pool) = &ctx.pool else {
                return Check::warn(
                    NAME,
                    format!("cannot read Twilio's senders ({e}) and the database is unreachable"),
                    "fix `twilio-credentials` and `database` first",
                );
            };
            let rows: Vec<(String, Option<String>, Option<String>)> = match sqlx::query_as(
                "SELECT address, callback_url, status_callback_url FROM senders
                  WHERE kind = 'number' AND twilio_sid IS NOT NULL AND twilio_gone_at IS NULL
                  ORDER BY address",
            )
            .fetch_all(pool)
            .await
            {
                Ok(r) => r,
                Err(db) => {
                    return Check::warn(
                        NAME,
                        format!("cannot read Twilio's senders ({e}) nor the last sync ({db})"),
                        "fix `twilio-credentials` first",
                    );
                }
            };
            (rows, Some(e))
        }
    };
    let wrong: Vec<String> = senders
        .iter()
        .filter(|(_, cb, scb)| {
            !crate::domain::sender_health::webhooks_ok(public, cb.as_deref(), scb.as_deref())
        })
        .map(|(address, cb, scb)| {
            format!(
                "{address} sends messages to {} and status callbacks to {}",
                cb.as_deref().unwrap_or("nowhere"),
                scb.as_deref().unwrap_or("nowhere")
            )
        })
        .collect();
    let from = match &source {
        None => "Twilio's Senders API".to_owned(),
        Some(e) => format!("the last sync (Twilio's Senders API could not be read: {e})"),
    };
    if !wrong.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{} of {} sender(s) do not call {public}/wa and {public}/sts, according to {from}: {}",
                wrong.len(),
                senders.len(),
                wrong.join("; ")
            ),
            format!(
                "in Twilio's Console (Messaging → Senders → WhatsApp senders) set each sender's webhook URL to {public}/wa and its status callback URL to {public}/sts, both POST"
            ),
        );
    }
    if senders.is_empty() {
        return Check::ok(
            NAME,
            format!(
                "no WhatsApp senders at Twilio, according to {from} (the sandbox's webhook is set in Twilio's Console under Messaging → Try it out)"
            ),
        );
    }
    let detail = format!(
        "{} sender(s) call {public}/wa and {public}/sts, according to {from}",
        senders.len()
    );
    match source {
        None => Check::ok(NAME, detail),
        Some(_) => Check::warn(
            NAME,
            detail,
            "fix `twilio-credentials` so that the senders can be read now",
        ),
    }
}

/// `clock`: this machine's clock against PostgreSQL's and Twilio's (the `Date` of an answer).
pub(super) async fn clock(ctx: &Context<'_>) -> Check {
    const NAME: &str = "clock";
    const WARN_SECS: f64 = 5.0;
    const FAIL_SECS: f64 = 60.0;
    let mut found: Vec<(String, f64)> = Vec::new();
    let mut unreadable = Vec::new();
    if let Some(pool) = &ctx.pool {
        let sent = Utc::now();
        match sqlx::query_scalar::<_, DateTime<Utc>>("SELECT clock_timestamp()")
            .fetch_one(pool)
            .await
        {
            Ok(theirs) => found.push(("PostgreSQL".into(), offset(sent, Utc::now(), theirs, 0.0))),
            Err(e) => unreadable.push(format!("PostgreSQL ({e})")),
        }
    }
    if let Some(client) = &ctx.twilio {
        let base = client.base().to_owned();
        let sent = Utc::now();
        match ctx.http.head(&base).send().await {
            Ok(resp) => {
                let received = Utc::now();
                match resp
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                {
                    // `Date` has whole seconds: its middle is half a second later.
                    Some(d) => found.push((base, offset(sent, received, d.to_utc(), 0.5))),
                    None => unreadable.push(format!("{base} (no Date header)")),
                }
            }
            Err(e) => unreadable.push(format!("{base} ({e})")),
        }
    }
    if found.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "nothing to compare with{}",
                if unreadable.is_empty() {
                    String::new()
                } else {
                    format!(": {}", unreadable.join("; "))
                }
            ),
            "make sure the clock is synchronised (`timedatectl` shows \"System clock synchronized: yes\")",
        );
    }
    let worst = found.iter().map(|(_, o)| o.abs()).fold(0.0f64, f64::max);
    let mut detail = found
        .iter()
        .map(|(who, o)| format!("{:+.1} s against {who}", 0.0 - o))
        .collect::<Vec<_>>()
        .join(", ");
    if !unreadable.is_empty() {
        detail.push_str(&format!(" (not read: {})", unreadable.join("; ")));
    }
    let why = "alert and top-up webhooks carry a timestamp that receivers refuse when it is a few minutes off, and message times, reminders and broadcasts run on this clock";
    let fix = "synchronise the clock with NTP (`timedatectl set-ntp true`, or chrony)";
    if worst > FAIL_SECS {
        Check::fail(NAME, format!("this clock is off: {detail}; {why}"), fix)
    } else if worst > WARN_SECS {
        Check::warn(NAME, format!("this clock drifts: {detail}; {why}"), fix)
    } else {
        Check::ok(NAME, format!("in sync: {detail}"))
    }
}

/// Seconds by which `theirs` is ahead of this clock, taking the middle of the round trip;
/// `granularity` is added to `theirs` (half a second for `Date`'s whole seconds).
fn offset(
    sent: DateTime<Utc>,
    received: DateTime<Utc>,
    theirs: DateTime<Utc>,
    granularity: f64,
) -> f64 {
    let mid = sent + (received - sent) / 2;
    (theirs - mid).num_milliseconds() as f64 / 1000.0 + granularity
}

/// `secret-key`: secrets stored sealed (credentials or alert secrets set in the dashboard)
/// can be opened with `WADASH_SECRET_KEY`.
pub(super) async fn secret_key(ctx: &Context<'_>) -> Check {
    const NAME: &str = "secret-key";
    let Some(pool) = &ctx.pool else {
        return Check::fail(NAME, NOT_REACHED, "fix `database` first");
    };
    let key_set = ctx.settings.credentials.secret_key.is_some();
    let credentials = instance_settings::get(pool, crate::credentials::manager::STORED_KEY)
        .await
        .ok()
        .flatten()
        .is_some();
    let alert_secrets = instance_settings::get(pool, crate::alerts::channels::KEY)
        .await
        .ok()
        .flatten()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| {
            ["webhook_secret", "topup_secret"]
                .iter()
                .any(|k| v[*k].as_str().is_some_and(|s| !s.is_empty()))
        });
    let mut stored = Vec::new();
    if credentials {
        stored.push("Twilio credentials");
    }
    if alert_secrets {
        stored.push("alert webhook secrets");
    }
    let what = stored.join(" and ");
    if stored.is_empty() {
        return Check::ok(
            NAME,
            if key_set {
                "set; nothing is stored sealed yet"
            } else {
                "not set, and nothing is stored sealed (set WADASH_SECRET_KEY before saving Twilio credentials or alert secrets in the dashboard)"
            },
        );
    }
    if !key_set {
        return Check::fail(
            NAME,
            format!(
                "{what} are stored sealed in the database, but WADASH_SECRET_KEY is not set, so they cannot be opened"
            ),
            "set WADASH_SECRET_KEY to the key they were saved with, on every instance",
        );
    }
    if let Some(e) = &ctx.stored_error {
        return Check::fail(
            NAME,
            format!("set, but the stored {what} cannot be opened with it: {e}"),
            "set WADASH_SECRET_KEY to the key they were saved with (the same on every instance), or save them again in the dashboard",
        );
    }
    Check::ok(NAME, format!("set, and the stored {what} open with it"))
}

/// `admin-password`: no user still has the password wadash generated at first start.
pub(super) async fn admin_password(ctx: &Context<'_>) -> Check {
    const NAME: &str = "admin-password";
    let Some(pool) = &ctx.pool else {
        return Check::fail(NAME, NOT_REACHED, "fix `database` first");
    };
    match crate::storage::users::with_generated_password(pool).await {
        Ok(users) if users.is_empty() => {
            Check::ok(NAME, "no user has the password generated at first start")
        }
        Ok(users) => Check::fail(
            NAME,
            format!(
                "{} still log(s) in with the password wadash generated at first start and printed on standard output (under systemd: into the journal, readable by whoever reads the logs)",
                users.join(", ")
            ),
            "log in and change it (Account → Change password), or have another admin reset it",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("cannot read the users: {e}"),
            "run `wadash migrate` with this version (the users table lacks password_generated)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_takes_the_middle_of_the_round_trip() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        let t1 = t0 + chrono::Duration::seconds(2);
        let theirs = t0 + chrono::Duration::seconds(8);
        assert_eq!(offset(t0, t1, theirs, 0.0), 7.0);
        assert_eq!(offset(t0, t1, theirs, 0.5), 7.5);
    }
}
