//! `/api/v1/senders`: the business's WhatsApp senders. Anyone may read them; admins add,
//! change and disable (de-authorize) them. Senders are never deleted, so their messages keep
//! their history.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::ApiCaller;
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::senders::{self, JoinInstructions, SenderInput};
use crate::state::AppState;
use crate::storage::senders::{self as store, SenderRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/senders", web::get().to(list))
        .route("/senders", web::post().to(create))
        .route("/senders/{id}", web::get().to(get))
        .route("/senders/{id}", web::patch().to(update))
        .route("/senders/{id}", web::delete().to(disable));
}

#[derive(Debug, Serialize)]
pub struct SenderView {
    #[serde(flatten)]
    pub sender: SenderRow,
    /// For the sandbox with a join code: how people join.
    pub join: Option<JoinInstructions>,
}

impl From<SenderRow> for SenderView {
    fn from(sender: SenderRow) -> Self {
        Self {
            join: senders::join_instructions(&sender),
            sender,
        }
    }
}

/// Saving a sender: a duplicate address is a 409, the single-default and active-default rules
/// come back as 409 too.
pub fn save_error(e: sqlx::Error) -> ApiError {
    match &e {
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("23505")
                && db.constraint() == Some("senders_default_idx") =>
        {
            ApiError::Other(
                StatusCode::CONFLICT,
                "default_changed",
                "another sender was made the default at the same moment; try again".into(),
            )
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => ApiError::Other(
            StatusCode::CONFLICT,
            "sender_exists",
            "a sender with this address already exists".into(),
        ),
        _ => e.into(),
    }
}

async fn list(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items: Vec<SenderView> = store::all(&state.pool)
        .await?
        .into_iter()
        .map(SenderView::from)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

fn parse_body(body: &[u8]) -> Result<SenderInput, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn create(
    _: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let new = senders::validate_new(&parse_body(&body)?).map_err(ApiError::BadRequest)?;
    let mut tx = state.pool.begin().await?;
    let row = store::insert(&mut tx, &new).await.map_err(save_error)?;
    tx.commit().await?;
    tracing::info!(sender = %row.address, status = %row.status, "sender added");
    Ok(HttpResponse::Created().json(SenderView::from(row)))
}

async fn find(state: &AppState, id: i64) -> Result<SenderRow, ApiError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sender {id}")))
}

async fn get(
    _: ApiCaller,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SenderView::from(find(&state, *path).await?)))
}

async fn update(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, *path).await?;
    let new =
        senders::validate_update(&existing, &parse_body(&body)?).map_err(ApiError::BadRequest)?;
    if existing.is_default && !new.is_default {
        return Err(ApiError::Other(
            StatusCode::CONFLICT,
            "default_sender",
            "this is the default sender: make another sender the default first".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let row = store::update(&mut tx, existing.id, &new)
        .await
        .map_err(save_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no sender {}", existing.id)))?;
    tx.commit().await?;
    tracing::info!(sender = %row.address, status = %row.status, "sender changed");
    Ok(HttpResponse::Ok().json(SenderView::from(row)))
}

/// De-authorizes a sender: nothing is sent from it any more; its history stays.
async fn disable(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, *path).await?;
    if existing.is_default {
        return Err(ApiError::Other(
            StatusCode::CONFLICT,
            "default_sender",
            "the default sender cannot be disabled: make another sender the default first".into(),
        ));
    }
    let input = SenderInput {
        status: Some(crate::domain::SenderStatus::Disabled.as_str().into()),
        ..Default::default()
    };
    let new = senders::validate_update(&existing, &input).map_err(ApiError::BadRequest)?;
    let mut tx = state.pool.begin().await?;
    let row = store::update(&mut tx, existing.id, &new)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sender {}", existing.id)))?;
    tx.commit().await?;
    tracing::info!(sender = %row.address, "sender disabled");
    Ok(HttpResponse::Ok().json(SenderView::from(row)))
}
