//! `/api/v1/broadcasts`: preview, queue and follow broadcasts; pause, resume, cancel and
//! retry them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::broadcasts::audience::{self, Listed};
use crate::broadcasts::{self, Audience, BroadcastError, BroadcastRequest};
use crate::domain::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::broadcasts::{self as store, BroadcastRow, Counts, RecipientRow};

/// Largest request body: an audience of `audience::MAX_RECIPIENTS` numbers with variables.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/broadcasts")
            // 200,000 numbers or a CSV with variables: far above the default 256 KiB.
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .route("/broadcasts/{id}", web::get().to(get))
    .route("/broadcasts/{id}/recipients", web::get().to(recipients))
    .route("/broadcasts/{id}/recipients.csv", web::get().to(export))
    .route("/broadcasts/{id}/{action}", web::post().to(act));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    body: Option<String>,
    media_url: Option<serde_json::Value>,
    content_sid: Option<String>,
    content_variables: Option<serde_json::Value>,
    sender: Option<String>,
    start_at: Option<String>,
    audience: AudienceBody,
    /// The template's category for the cost estimate (marketing when absent).
    template_category: Option<crate::pricing::Category>,
    /// Only show what would happen.
    #[serde(default)]
    preview: bool,
}

fn broadcast_error(e: BroadcastError) -> ApiError {
    match e {
        BroadcastError::Invalid(m) => ApiError::BadRequest(m),
        BroadcastError::Refused(r) => {
            ApiError::Other(StatusCode::CONFLICT, r.code(), r.to_string())
        }
        e @ BroadcastError::NoRecipients(_) => ApiError::Other(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_recipients",
            e.to_string(),
        ),
        BroadcastError::Duplicate(id) => ApiError::Other(
            StatusCode::CONFLICT,
            "duplicate_request",
            format!("this request was made already: broadcast #{id}"),
        ),
        e @ BroadcastError::Pricing(_) => {
            ApiError::Other(StatusCode::UNPROCESSABLE_ENTITY, "no_price", e.to_string())
        }
        BroadcastError::Database(e) => e.into(),
    }
}

pub fn parse_audience(a: AudienceBody) -> Result<Audience, String> {
    let given = [
        a.numbers.is_some(),
        a.csv.is_some(),
        a.tag.is_some(),
        a.all_opted_in == Some(true),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        return Err(
            "audience must be exactly one of {numbers: [...]}, {csv: \"...\"}, {tag: \"...\"}, {all_opted_in: true}"
                .into(),
        );
    }
    if let Some(numbers) = a.numbers {
        let listed = numbers
            .into_iter()
            .enumerate()
            .map(|(i, raw)| Listed {
                line: i as u64 + 1,
                raw,
                variables: None,
            })
            .collect::<Vec<_>>();
        if listed.len() > audience::MAX_RECIPIENTS {
            return Err(format!(
                "a broadcast goes to at most {} numbers",
                audience::MAX_RECIPIENTS
            ));
        }
        return Ok(Audience::Listed(listed));
    }
    if let Some(csv) = a.csv {
        return audience::parse_csv(csv.as_bytes()).map(Audience::Listed);
    }
    if let Some(tag) = a.tag {
        return Ok(Audience::Tag(tag));
    }
    Ok(Audience::AllOptedIn)
}

/// `audience` in a request (also filled by the dashboard's form): exactly one of the fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    pub numbers: Option<Vec<String>>,
    /// CSV text with a `number` column; other columns are per-recipient template variables.
    pub csv: Option<String>,
    pub tag: Option<String>,
    pub all_opted_in: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Created {
    id: i64,
    status: String,
    recipients: usize,
    excluded: Vec<audience::Excluded>,
    estimated_cost: String,
    cost_currency: String,
    estimated_seconds: f64,
    start_at: chrono::DateTime<Utc>,
}

async fn create(
    caller: ApiCaller,
    req: actix_web::HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let request_key = match req.headers().get("Idempotency-Key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
                    )
                })?;
            Some(format!("api:{key}"))
        }
    };
    let b: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let audience = parse_audience(b.audience).map_err(ApiError::BadRequest)?;
    let start_at = super::parse_time("start_at", b.start_at.as_deref())?;
    let media = super::messages::media_urls(b.media_url)?;
    let content_variables = match b.content_variables {
        Some(serde_json::Value::String(s)) => Some(
            serde_json::from_str(&s)
                .map_err(|e| ApiError::BadRequest(format!("content_variables: {e}")))?,
        ),
        other => other.filter(|v| !v.is_null()),
    };
    let req = BroadcastRequest {
        name: b.name,
        body: b.body,
        media,
        content_sid: b.content_sid,
        content_variables,
        sender: b.sender,
        start_at,
        audience,
        created_by: format!("api token #{}", caller.token_id),
        reminder_id: None,
        request_key,
        template_category: b.template_category,
    };
    let now = Utc::now();
    if b.preview {
        let p = broadcasts::preview(&state.pool, &state.default_sender, &req, now)
            .await
            .map_err(broadcast_error)?;
        return Ok(HttpResponse::Ok().json(p));
    }
    let (row, p) = match broadcasts::create(
        &state.pool,
        &state.default_sender,
        state.broadcast_reserve,
        &req,
        now,
    )
    .await
    {
        Ok(created) => created,
        // The same Idempotency-Key again: the broadcast it made, not a second one.
        Err(BroadcastError::Duplicate(id)) => {
            let row = find(&state, id).await?;
            return Ok(HttpResponse::Ok().json(view(&state, row).await?));
        }
        Err(e) => return Err(broadcast_error(e)),
    };
    Ok(HttpResponse::Created().json(Created {
        id: row.id,
        status: row.status,
        recipients: p.recipient_count,
        excluded: p.excluded,
        estimated_cost: p.estimated_cost.to_string(),
        cost_currency: p.cost_currency,
        estimated_seconds: p.estimated_seconds,
        start_at: row.start_at,
    }))
}

/// A broadcast with where its recipients are.
#[derive(Debug, Serialize)]
pub struct BroadcastView {
    #[serde(flatten)]
    pub broadcast: BroadcastRow,
    /// Recipients queued, in all.
    pub recipients: i64,
    pub counts: Counts,
}

pub async fn view(state: &AppState, row: BroadcastRow) -> Result<BroadcastView, sqlx::Error> {
    let counts = store::counts(&state.pool, row.id).await?;
    let recipients = counts.pending
        + counts.sent
        + counts.delivered
        + counts.read
        + counts.failed
        + counts.undelivered
        + counts.canceled;
    Ok(BroadcastView {
        broadcast: row,
        recipients,
        counts,
    })
}

async fn find(state: &AppState, id: i64) -> Result<BroadcastRow, ApiError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no broadcast {id}")))
}

async fn get(
    caller: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let row = find(&state, *path).await?;
    Ok(HttpResponse::Ok().json(view(&state, row).await?))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list(
    caller: ApiCaller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            super::contacts::parse_cursor(c)
                .ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    let rows = store::list(&state.pool, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<BroadcastRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| rows.last()).flatten().map(|b| {
        format!(
            "{},{}",
            b.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            b.id
        )
    });
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        items.push(view(&state, r).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Debug, Deserialize)]
struct RecipientQuery {
    /// `pending`, `sent`, `delivered`, `read`, `failed`, `undelivered`, `canceled`.
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub const BUCKETS: &[&str] = &[
    "pending",
    "sent",
    "delivered",
    "read",
    "failed",
    "undelivered",
    "canceled",
];

async fn recipients(
    caller: ApiCaller,
    path: web::Path<i64>,
    query: web::Query<RecipientQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let row = find(&state, *path).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let bucket = query.status.as_deref().filter(|s| !s.is_empty());
    if let Some(b) = bucket
        && !BUCKETS.contains(&b)
    {
        return Err(ApiError::BadRequest(format!(
            "status must be one of {}",
            BUCKETS.join(", ")
        )));
    }
    let items: Vec<RecipientRow> = store::recipients(
        &state.pool,
        row.id,
        bucket,
        query.cursor.as_deref().filter(|c| !c.is_empty()),
        limit + 1,
    )
    .await?;
    let more = items.len() as i64 > limit;
    let items: Vec<RecipientRow> = items.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| items.last().map(|r| r.number.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

async fn export(
    caller: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let row = find(&state, *path).await?;
    Ok(results_csv(state.pool.clone(), row.id))
}

/// The results of a broadcast as CSV, streamed a thousand recipients at a time.
pub fn results_csv(pool: sqlx::PgPool, id: i64) -> HttpResponse {
    let body = futures_util::stream::unfold((Some(None::<String>), true), move |(after, first)| {
        let pool = pool.clone();
        async move {
            let after = after?;
            let rows = match store::recipients(&pool, id, None, after.as_deref(), 1000).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "broadcast export stopped");
                    return Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        (None, false),
                    ));
                }
            };
            let mut out = String::new();
            if first {
                out.push_str("number,state,message_status,message_sid,error_code,error_reason,error_message,attempts,sent_at\r\n");
            }
            for r in &rows {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(Vec::new());
                let _ = w.write_record([
                    r.number.as_str(),
                    &r.state,
                    r.message_status.as_deref().unwrap_or(""),
                    r.message_sid.as_deref().unwrap_or(""),
                    &r.error_code.map(|c| c.to_string()).unwrap_or_default(),
                    r.error_reason.as_deref().unwrap_or(""),
                    r.error_message.as_deref().unwrap_or(""),
                    &r.attempts.to_string(),
                    &r.sent_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                ]);
                out.push_str(&String::from_utf8_lossy(
                    &w.into_inner().unwrap_or_default(),
                ));
            }
            let next = (rows.len() == 1000).then(|| rows.last().map(|r| r.number.clone()));
            Some((
                Ok::<_, actix_web::Error>(bytes::Bytes::from(out)),
                (next, false),
            ))
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"wadash-broadcast-{id}.csv\""),
        ))
        .streaming(body)
}

async fn act(
    caller: ApiCaller,
    path: web::Path<(i64, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let (id, action) = path.into_inner();
    if action == "release" {
        // Spending past the reserve is an admin's decision.
        caller.require(Role::Admin)?;
    }
    let row = find(&state, id).await?;
    let by = format!("api token #{}", caller.token_id);
    let row = control(&state, row, &action, &by).await?;
    Ok(HttpResponse::Ok().json(view(&state, row).await?))
}

/// Pause, resume, cancel or retry, for the API and the dashboard.
pub async fn control(
    state: &AppState,
    row: BroadcastRow,
    action: &str,
    by: &str,
) -> Result<BroadcastRow, ApiError> {
    let to = match action {
        "release" => {
            return match store::release(&state.pool, row.id).await? {
                Some(updated) => {
                    tracing::info!(broadcast = row.id, by, "held broadcast released");
                    Ok(updated)
                }
                None => Err(ApiError::Other(
                    StatusCode::CONFLICT,
                    "invalid_state",
                    format!("a {} broadcast is not held", row.status),
                )),
            };
        }
        "pause" => "paused",
        "resume" => "running",
        "cancel" => "canceled",
        "retry" => {
            if !matches!(row.status.as_str(), "running" | "paused" | "completed") {
                return Err(ApiError::Other(
                    StatusCode::CONFLICT,
                    "invalid_state",
                    format!("a {} broadcast cannot retry", row.status),
                ));
            }
            let n = store::retry_failed(&state.pool, row.id, broadcasts::RETRYABLE_CODES).await?;
            tracing::info!(
                broadcast = row.id,
                recipients = n,
                by,
                "retrying failed recipients"
            );
            return find(state, row.id).await;
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "no broadcast action {other:?}; use pause, resume, cancel or retry"
            )));
        }
    };
    match store::set_status(&state.pool, row.id, to).await? {
        Some(updated) => {
            tracing::info!(broadcast = row.id, status = %updated.status, by, "broadcast {action}");
            Ok(updated)
        }
        None => Err(ApiError::Other(
            StatusCode::CONFLICT,
            "invalid_state",
            format!("a {} broadcast cannot {action}", row.status),
        )),
    }
}
