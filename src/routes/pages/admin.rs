//! `/admin` (admin role): people and API tokens. Add a user, change a role, disable or
//! re-enable someone (which ends their sessions), set a new password; create an API token
//! (shown once) or revoke one. The last active admin cannot be demoted or disabled.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::format;
use super::{Chrome, CurrentUser, PageError, html};
use crate::accounts::{admins, normalize_username, password};
use crate::domain::Role;
use crate::routes::pages::{Allowed, CsrfOnly, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::{tokens, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(page))
        .route("/admin/users", web::post().to(add_user))
        .route("/admin/users/{id}", web::post().to(change_user))
        .route("/admin/tokens", web::post().to(create_token))
        .route("/admin/tokens/{id}/revoke", web::post().to(revoke_token));
}

struct UserItem {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
    last_login: Option<format::Stamp>,
    me: bool,
}

struct TokenItem {
    id: i64,
    name: String,
    role: String,
    created: format::Stamp,
    last_used: Option<format::Stamp>,
    created_by: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    users: Vec<UserItem>,
    tokens: Vec<TokenItem>,
    notice: Option<String>,
    /// The user just disabled, offered to be enabled again: (id, username).
    undo: Option<(i64, String)>,
    error: Option<String>,
    new_token: Option<String>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
) -> Result<HttpResponse, PageError> {
    render_with_undo(user, state, notice, error, new_token, None).await
}

async fn render_with_undo(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
    disabled: Option<i64>,
) -> Result<HttpResponse, PageError> {
    let (people, toks) = tokio::try_join!(users::all(&state.pool), tokens::all(&state.pool))?;
    // Undo is offered while the user is still disabled.
    let undo = disabled.and_then(|id| {
        people
            .iter()
            .find(|u| u.id == id && u.disabled_at.is_some())
            .map(|u| (u.id, u.username.clone()))
    });
    let mut resp = html(&AdminPage {
        chrome: Chrome::for_user(user, state, "admin"),
        users: people
            .into_iter()
            .map(|u| UserItem {
                me: u.id == user.id,
                id: u.id,
                role: u.role,
                disabled: u.disabled_at.is_some(),
                last_login: format::Stamp::of(u.last_login_at, user.tz),
                username: u.username,
            })
            .collect(),
        tokens: toks
            .into_iter()
            .map(|t| TokenItem {
                id: t.id,
                name: t.name,
                role: t.role,
                created: format::Stamp::new(t.created_at, user.tz),
                last_used: format::Stamp::of(t.last_used_at, user.tz),
                created_by: t.created_by.unwrap_or_else(|| "command line".into()),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        error: error.clone(),
        notice,
        undo,
        new_token,
    })?;
    if error.is_some() {
        *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

async fn page(
    user: Allowed<Admin>,
    q: web::Query<super::DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let notice = q.notice(&[
        ("user", "User added."),
        ("changed", "User changed."),
        ("enabled", "User enabled again: they can log in."),
        (
            "disabled",
            "User disabled: their sessions ended and they cannot log in.",
        ),
        (
            "revoked",
            "Token revoked: programs using it are refused from now on.",
        ),
    ]);
    let disabled = q.id.filter(|_| q.done.as_deref() == Some("disabled"));
    render_with_undo(&user, &state, notice, None, None, disabled).await
}

fn done(what: &str) -> HttpResponse {
    super::done_redirect("/admin", what)
}

#[derive(Deserialize)]
struct AddUser {
    #[serde(default)]
    csrf: String,
    username: String,
    role: String,
    password: String,
}

async fn add_user(
    Posted { user, form, .. }: Posted<AddUser, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let fail = |e: String| render(&user, &state, None, Some(e), None);
    let username = match normalize_username(&form.username) {
        Ok(u) => u,
        Err(e) => return fail(e).await,
    };
    let Some(role) = Role::parse(&form.role) else {
        return fail("choose viewer, operator or admin".into()).await;
    };
    if let Err(e) = password::check_policy(&form.password) {
        return fail(e).await;
    }
    let pw = form.password;
    let phc = password::limited(move || password::hash(&pw)).await?;
    if users::create(&state.pool, &username, &phc, role)
        .await?
        .is_none()
    {
        return fail(format!("the username {username} is taken")).await;
    }
    tracing::info!(admin = %user.username, %username, %role, "user added");
    Ok(done("user"))
}

#[derive(Deserialize)]
struct ChangeUser {
    #[serde(default)]
    csrf: String,
    /// `role`, `disable`, `enable` or `password`.
    action: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn change_user(
    Posted { user, form, .. }: Posted<ChangeUser, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let fail = |e: String| render(&user, &state, None, Some(e), None);
    let change = match form.action.as_str() {
        "role" => {
            let Some(role) = Role::parse(&form.role) else {
                return fail("choose viewer, operator or admin".into()).await;
            };
            admins::Change::Role(role)
        }
        "disable" => admins::Change::Disable,
        "enable" => admins::Change::Enable,
        "password" => {
            if let Err(e) = password::check_policy(&form.password) {
                return fail(e).await;
            }
            let pw = form.password;
            let phc = password::limited(move || password::hash(&pw)).await?;
            users::set_password(&state.pool, id, &phc).await?;
            tracing::info!(admin = %user.username, user_id = id, "password set");
            return Ok(done("changed"));
        }
        other => return fail(format!("unknown action {other:?}")).await,
    };
    match admins::apply(&state.pool, id, change).await {
        Ok(()) => {}
        Err(admins::AdminError::LastAdmin(why)) => return fail(why.into()).await,
        Err(e @ admins::AdminError::NotFound(_)) => {
            return Err(PageError::NotFound(e.to_string()));
        }
        Err(admins::AdminError::Database(e)) => return Err(e.into()),
    }
    tracing::info!(admin = %user.username, user_id = id, action = %form.action, "user changed");
    Ok(match change {
        admins::Change::Disable => super::done_redirect_id("/admin", "disabled", id),
        admins::Change::Enable => done("enabled"),
        admins::Change::Role(_) => done("changed"),
    })
}

#[derive(Deserialize)]
struct CreateToken {
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
}

async fn create_token(
    Posted { user, form, .. }: Posted<CreateToken, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let name = form.name.trim();
    if name.is_empty() || name.len() > 100 {
        return render(
            &user,
            &state,
            None,
            Some("give the token a name (up to 100 characters)".into()),
            None,
        )
        .await;
    }
    let Some(role) = Role::parse(&form.role) else {
        return render(
            &user,
            &state,
            None,
            Some("choose viewer, operator or admin".into()),
            None,
        )
        .await;
    };
    let (id, token) = tokens::create(&state.pool, name, role).await?;
    tokens::set_creator(&state.pool, id, user.id).await?;
    tracing::info!(admin = %user.username, token_id = id, %role, "API token created");
    // Shown in this response only; never stored or shown again.
    render(
        &user,
        &state,
        Some(format!(
            "Token “{name}” created. Copy it now: it is shown only once."
        )),
        None,
        Some(token),
    )
    .await
}

async fn revoke_token(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    tokens::revoke(&state.pool, id).await?;
    tracing::info!(admin = %user.username, token_id = id, "API token revoked");
    Ok(done("revoked"))
}

crate::routes::pages::guard::csrf_forms!(AddUser, ChangeUser, CreateToken);
