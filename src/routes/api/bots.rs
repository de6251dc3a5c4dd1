//! `/api/v1/bots` (admin): bot connections, secrets write-only; `POST /bots/{id}/test` asks
//! the bot one phrase. `/api/v1/handoffs` and `/api/v1/conversations/{number}/handoff` and
//! `/give-back` (operator): the "needs a human" queue.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::ApiCaller;
use crate::bots::connections::{self, BotInput, InputError};
use crate::bots::handoff::{self, HandoffError};
use crate::domain::PhoneNumber;
use crate::error::ApiError;
use crate::routes::roles::{Admin, Operator};
use crate::state::AppState;
use crate::storage::bots as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/bots", web::get().to(list))
        .route("/bots", web::post().to(create))
        .route("/bots/{id}", web::get().to(get))
        .route("/bots/{id}", web::patch().to(update))
        .route("/bots/{id}", web::delete().to(delete))
        .route("/bots/{id}/test", web::post().to(test))
        .route("/handoffs", web::get().to(handoffs))
        .route("/conversations/{number}/handoff", web::post().to(take))
        .route(
            "/conversations/{number}/give-back",
            web::post().to(give_back),
        );
}

fn input_error(e: InputError) -> ApiError {
    match e {
        InputError::Invalid(m) => ApiError::BadRequest(m),
        InputError::NoSecretKey => {
            ApiError::Other(StatusCode::CONFLICT, "secret_key_missing", e.to_string())
        }
        InputError::Sealed(_) => {
            ApiError::Other(StatusCode::CONFLICT, "secrets_unreadable", e.to_string())
        }
    }
}

fn name_taken(e: sqlx::Error) -> ApiError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => ApiError::Other(
            StatusCode::CONFLICT,
            "name_taken",
            "another bot has this name".into(),
        ),
        _ => e.into(),
    }
}

fn parse_body(body: &[u8]) -> Result<BotInput, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

async fn find(state: &AppState, id: i64) -> Result<store::BotRow, ApiError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no bot {id}")))
}

async fn list(_: ApiCaller<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let key = state.bots.secret_key();
    let items: Vec<_> = store::all(&state.pool)
        .await?
        .iter()
        .map(|b| connections::view(b, key))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn create(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = parse_body(&body)?;
    for field in ["name", "kind"] {
        let missing = match field {
            "name" => input.name.is_none(),
            _ => input.kind.is_none(),
        };
        if missing {
            return Err(ApiError::BadRequest(format!("{field} is required")));
        }
    }
    let new = connections::validate(&input, None, state.bots.secret_key(), &state.bots.allow)
        .map_err(input_error)?;
    let row = store::insert(&state.pool, &new).await.map_err(name_taken)?;
    tracing::info!(token = caller.token_id, bot = row.id, kind = %row.kind, "bot added");
    Ok(HttpResponse::Created().json(connections::view(&row, state.bots.secret_key())))
}

async fn get(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, *path).await?;
    Ok(HttpResponse::Ok().json(connections::view(&row, state.bots.secret_key())))
}

async fn update(
    caller: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, *path).await?;
    let input = parse_body(&body)?;
    let new = connections::validate(
        &input,
        Some(&existing),
        state.bots.secret_key(),
        &state.bots.allow,
    )
    .map_err(input_error)?;
    let row = store::update(&state.pool, existing.id, &new)
        .await
        .map_err(name_taken)?
        .ok_or_else(|| ApiError::NotFound(format!("no bot {path}")))?;
    state.bots.forget(row.id);
    tracing::info!(token = caller.token_id, bot = row.id, "bot changed");
    Ok(HttpResponse::Ok().json(connections::view(&row, state.bots.secret_key())))
}

async fn delete(
    caller: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let rules = store::rules_using(&state.pool, id).await?;
    if !rules.is_empty() {
        return Err(ApiError::Other(
            StatusCode::CONFLICT,
            "bot_in_use",
            format!(
                "rules hand messages to this bot ({}): change or delete them first",
                rules.join(", ")
            ),
        ));
    }
    match store::delete(&state.pool, id).await {
        Ok(true) => {
            state.bots.forget(id);
            tracing::info!(token = caller.token_id, bot = id, "bot deleted");
            Ok(HttpResponse::NoContent().finish())
        }
        Ok(false) => Err(ApiError::NotFound(format!("no bot {id}"))),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => {
            Err(ApiError::Other(
                StatusCode::CONFLICT,
                "bot_in_use",
                "a rule hands messages to this bot: change or delete it first".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    text: String,
}

/// The longest test phrase: WhatsApp's limit for a message body.
const TEST_MAX_CHARS: usize = 1600;

async fn test(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&state, *path).await?;
    let body: TestBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > TEST_MAX_CHARS {
        return Err(ApiError::BadRequest(format!(
            "text is required (at most {TEST_MAX_CHARS} characters)"
        )));
    }
    Ok(HttpResponse::Ok().json(state.bots.test(&row, text).await))
}

async fn handoffs(_: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = store::queue(&state.pool, 500).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

fn number_of(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| ApiError::BadRequest(format!("number: {e}")))
}

fn handoff_error(e: HandoffError) -> ApiError {
    match e {
        HandoffError::NoConversation(_) => ApiError::NotFound(e.to_string()),
        HandoffError::Database(e) => e.into(),
    }
}

async fn take(
    caller: ApiCaller<Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let number = number_of(&path)?;
    let n = handoff::hand_off(&state.pool, &number)
        .await
        .map_err(handoff_error)?;
    tracing::info!(token = caller.token_id, number = %number.as_str(), "conversation handed to a human");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "number": number.as_str(), "handed_off": n
    })))
}

async fn give_back(
    caller: ApiCaller<Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let number = number_of(&path)?;
    let n = handoff::give_back(&state.pool, &number)
        .await
        .map_err(handoff_error)?;
    tracing::info!(token = caller.token_id, number = %number.as_str(), "conversation given back to the bot");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "number": number.as_str(), "given_back": n
    })))
}
