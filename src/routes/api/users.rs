//! `/api/v1/users` (admin): the people who use the dashboard, and changing a role or disabling
//! someone. The last active admin can be neither demoted nor disabled (409 `last_admin`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::accounts::admins::{self, AdminError, Change};
use crate::domain::Role;
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::users::{self, UserRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users/{id}", web::get().to(get))
        .route("/users/{id}", web::patch().to(update));
}

/// A user as the API shows them: never the password hash.
#[derive(Debug, Serialize)]
struct UserItem {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<UserRow> for UserItem {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            disabled: u.disabled_at.is_some(),
            username: u.username,
            role: u.role,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

async fn list(_: ApiCaller<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items: Vec<UserItem> = users::all(&state.pool)
        .await?
        .into_iter()
        .map(UserItem::from)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn find(state: &AppState, id: i64) -> Result<UserRow, ApiError> {
    users::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {id}")))
}

async fn get(
    _: ApiCaller<Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(UserItem::from(find(&state, *path).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    role: Option<String>,
    disabled: Option<bool>,
}

async fn update(
    caller: ApiCaller<Admin>,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let patch: Patch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let mut changes = Vec::new();
    if let Some(r) = &patch.role {
        let role = Role::parse(r).ok_or_else(|| {
            ApiError::BadRequest(format!("role must be viewer, operator or admin, got {r:?}"))
        })?;
        changes.push(Change::Role(role));
    }
    match patch.disabled {
        Some(true) => changes.push(Change::Disable),
        Some(false) => changes.push(Change::Enable),
        None => {}
    }
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "give role and/or disabled to change".into(),
        ));
    }
    for change in changes {
        admins::apply(&state.pool, id, change)
            .await
            .map_err(|e| match e {
                AdminError::LastAdmin(why) => {
                    ApiError::Other(StatusCode::CONFLICT, "last_admin", why.into())
                }
                e @ AdminError::NotFound(_) => ApiError::NotFound(e.to_string()),
                AdminError::Database(e) => e.into(),
            })?;
    }
    tracing::info!(
        token_id = caller.token_id,
        user_id = id,
        "user changed through the API"
    );
    Ok(HttpResponse::Ok().json(UserItem::from(find(&state, id).await?)))
}
