//! `wadash-naive-peer`: the same `/sts` endpoint as wadash, built from the same parts
//! (signature check, parser, batch statement), but committing one transaction per request
//! instead of group commit. It isolates what group commit is worth.
//!
//! Environment: `DATABASE_URL` (migrated by `wadash migrate`), `BIND` (default
//! `127.0.0.1:8082`), `TOKEN` (the auth token signatures are checked with), `PUBLIC_URL`
//! (default `http://` + `BIND`), `POOL` (connections, default 16), `WORKERS` (default: one per
//! core).

use std::str::FromStr;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wadash::storage::events::apply_batch;
use wadash::twilio::signature::{SignedBody, is_valid};
use wadash::twilio::webhook::{Webhook, parse};

struct State {
    pool: PgPool,
    token: String,
    url: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn status(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return HttpResponse::BadRequest().body("malformed form");
    };
    let signature = req
        .headers()
        .get("X-Twilio-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let url = match req.query_string() {
        "" => state.url.clone(),
        q => format!("{}?{q}", state.url),
    };
    if !is_valid(
        &[state.token.as_bytes()],
        signature,
        &url,
        SignedBody::Form(&params),
    ) {
        return HttpResponse::Forbidden().body("bad signature");
    }
    let record = match parse(Webhook::Status, &params, chrono::Utc::now()) {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    match store(&state.pool, record).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => {
            eprintln!("naive-peer: not stored: {e}");
            HttpResponse::ServiceUnavailable().body("not stored")
        }
    }
}

async fn store(pool: &PgPool, record: wadash::ingest::EventRecord) -> sqlx::Result<()> {
    // A duplicate stored by a concurrent request between this statement's snapshot and its
    // insert fails it (`lost_a_race`); once again, the statement skips it, as wadash does.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store_once(pool, &record).await {
            Err(e) if attempt < 3 && wadash::storage::events::lost_a_race(&e) => {}
            other => return other,
        }
    }
}

async fn store_once(pool: &PgPool, record: &wadash::ingest::EventRecord) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    apply_batch(&mut *tx, std::slice::from_ref(record)).await?;
    tx.commit().await
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let database_url = env_or(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/wadash_bench_naive",
    );
    let bind = env_or("BIND", "127.0.0.1:8082");
    let token = env_or("TOKEN", "bench-auth-token");
    let public_url = env_or("PUBLIC_URL", &format!("http://{bind}"));
    let pool_size: u32 = env_or("POOL", "16").parse().unwrap_or(16);
    let workers: Option<usize> = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok());

    let opts = PgConnectOptions::from_str(&database_url)
        .map_err(|e| std::io::Error::other(format!("DATABASE_URL: {e}")))?
        .application_name("wadash-naive-peer");
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect_lazy_with(opts);
    let state = web::Data::new(State {
        pool,
        token,
        url: format!("{}/sts", public_url.trim_end_matches('/')),
    });
    eprintln!("naive-peer: listening on {bind}, pool {pool_size}");
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/sts", web::post().to(status))
            .route("/healthz", web::get().to(HttpResponse::Ok))
    })
    .bind(&bind)?;
    if let Some(w) = workers {
        server = server.workers(w.max(1));
    }
    server.run().await
}
