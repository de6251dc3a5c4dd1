//! Logging in and out, and changing one's own password.
//!
//! The login form is protected against cross-site submission by a double-submit token: a
//! random value in a `SameSite=Strict` cookie that must come back in the form. Failed logins
//! are throttled per account and per client (`accounts::throttle`); a login to an unknown
//! account costs as much as a real one, so timing does not reveal which accounts exist.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{
    self, CurrentUser, SESSION_COOKIE, client_ip, constant_time_eq, expired_session_cookie,
    session_cookie,
};
use super::{Chrome, PageError, html};
use crate::accounts::{normalize_username, password, throttle};
use crate::routes::pages::{CsrfOnly, Posted};
use crate::state::AppState;
use crate::storage::{sessions, users};

const LOGIN_COOKIE: &str = "wadash_login";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(form))
        .route("/login", web::post().to(submit))
        .route("/logout", web::post().to(logout))
        .route("/account", web::get().to(account))
        .route("/account/password", web::post().to(change_password))
        .route("/account/time-zone", web::post().to(change_time_zone));
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    token: String,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after logging in: only a path on this site, else `/`.
///
/// Browsers remove tabs and newlines anywhere in a URL, trim control characters and spaces
/// at its ends, and read `\` as `/`, so `/\t/evil.example` or `/\\evil.example` would lead
/// to another host. Only printable ASCII without backslashes is accepted, starting with a
/// single `/`: what is left cannot be read as anything but a path on this origin.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(LOGIN_COOKIE, token.to_owned())
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

fn new_token() -> String {
    crate::domain::random_hex(24)
}

fn login_page(
    state: &AppState,
    token: String,
    next: String,
    username: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, PageError> {
    let page = LoginPage {
        chrome: Chrome::anonymous(state.simulator_mode),
        token: token.clone(),
        next,
        username,
        error,
    };
    let mut resp = html(&page)?;
    *resp.status_mut() = status;
    resp.add_cookie(&login_cookie(&token, session::secure(state)))
        .map_err(|e| PageError::Internal(e.into()))?;
    Ok(resp)
}

async fn form(
    req: HttpRequest,
    query: web::Query<NextQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let token = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| t.len() == 48)
        .unwrap_or_else(new_token);
    login_page(
        &state,
        token,
        safe_next(query.next.as_deref()),
        String::new(),
        None,
        actix_web::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    token: String,
}

async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    use actix_web::http::StatusCode;
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let cookie = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), form.token.as_bytes())) {
        return login_page(
            &state,
            new_token(),
            next,
            form.username,
            Some("The form expired or did not come from this site. Please try again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let fail = |msg: String, status: StatusCode, username: String| {
        login_page(
            &state,
            new_token(),
            next.clone(),
            username,
            Some(msg),
            status,
        )
    };
    let Ok(username) = normalize_username(&form.username) else {
        return fail(
            "Wrong username or password.".into(),
            StatusCode::UNAUTHORIZED,
            form.username,
        );
    };
    let account_key = throttle::account_key(&username);
    let client_key = throttle::client_key(&client_ip(&req));
    // The attempt is counted before the password is checked, in the same step that checks
    // the limits, so parallel guesses cannot exceed them.
    let reservation = match throttle::reserve(&state.pool, &account_key, &client_key).await? {
        Ok(r) => r,
        Err(wait) => {
            tracing::warn!(%username, client = %client_key, "login refused: too many failed attempts");
            return fail(
                format!(
                    "Too many failed attempts. Try again in {}.",
                    super::format::duration_secs(wait.as_secs_f64().ceil())
                ),
                StatusCode::TOO_MANY_REQUESTS,
                username,
            );
        }
    };
    let user = users::by_username(&state.pool, &username).await?;
    let candidate = form.password;
    let checked = match &user {
        Some(u) if u.disabled_at.is_none() => {
            let phc = u.password_hash.clone();
            password::limited(move || password::verify(&candidate, &phc)).await
        }
        _ => {
            password::limited(move || {
                password::verify_dummy(&candidate);
                false
            })
            .await
        }
    };
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => {
            throttle::release(&state.pool, reservation).await?;
            tracing::warn!(%username, client = %client_key, error = %e, "login not checked");
            let mut resp = fail(
                "The server is checking too many logins at once. Try again in a few seconds."
                    .into(),
                StatusCode::SERVICE_UNAVAILABLE,
                username,
            )?;
            resp.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("5"),
            );
            return Ok(resp);
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        throttle::failed(&state.pool, reservation).await?;
        tracing::warn!(%username, client = %client_key, "failed login");
        return fail(
            "Wrong username or password.".into(),
            StatusCode::UNAUTHORIZED,
            username,
        );
    };
    throttle::succeeded(&state.pool, reservation, &account_key).await?;
    let previous = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let token = sessions::create(&state.pool, user.id, previous.as_deref()).await?;
    tracing::info!(%username, "logged in");
    let secure = session::secure(&state);
    let mut gone = login_cookie("", secure);
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", next))
        .cookie(session_cookie(token, secure))
        .cookie(gone)
        .finish())
}

crate::routes::pages::guard::csrf_forms!(PasswordForm, TimeZoneForm);

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_a_path_on_this_site_or_the_overview() {
        for ok in [
            "/",
            "/messages?status=failed&q=a%20b",
            "/conversations/+919900000000",
        ] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r\n/evil.example/",
            "/\x0b/evil.example/",
            "\t//evil.example/",
            " /x",
            "/ x",
            "/\u{a0}/evil.example",
            "/é",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

async fn logout(
    req: HttpRequest,
    Posted { user, .. }: Posted<CsrfOnly>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        sessions::delete(&state.pool, c.value()).await?;
    }
    tracing::info!(username = %user.username, "logged out");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/login"))
        .cookie(expired_session_cookie(session::secure(&state)))
        .finish())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    notice: Option<String>,
    error: Option<String>,
    /// The zone times are shown in now, and the one typed when it was refused.
    time_zone: String,
    /// Every IANA zone name, for the field's suggestions.
    zones: &'static [chrono_tz::Tz],
}

impl AccountPage {
    fn new(user: &CurrentUser, state: &AppState) -> Self {
        AccountPage {
            chrome: Chrome::for_user(user, state, "account"),
            notice: None,
            error: None,
            time_zone: user.tz.name().to_owned(),
            zones: &chrono_tz::TZ_VARIANTS,
        }
    }
}

#[derive(Deserialize)]
struct NoticeQuery {
    done: Option<String>,
}

async fn account(
    user: CurrentUser,
    query: web::Query<NoticeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.done.as_deref() {
        None => None,
        Some("zone") => Some(format!("Times are now shown in {}.", user.tz.name())),
        Some(_) => Some("Password changed. Your other sessions were logged out.".to_owned()),
    };
    html(&AccountPage {
        notice,
        ..AccountPage::new(&user, &state)
    })
}

#[derive(Deserialize)]
struct TimeZoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    time_zone: String,
}

/// Sets the zone the person reads times in; an unknown name is refused with the form again.
async fn change_time_zone(
    Posted { user, form, .. }: Posted<TimeZoneForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let tz = match crate::domain::time_zone::parse_tz(&form.time_zone) {
        Ok(tz) => tz,
        Err(e) => {
            let mut resp = html(&AccountPage {
                error: Some(e),
                time_zone: form.time_zone,
                ..AccountPage::new(&user, &state)
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    let zone = (tz != chrono_tz::UTC).then(|| tz.name());
    users::set_time_zone(&state.pool, user.id, zone).await?;
    tracing::info!(username = %user.username, time_zone = tz.name(), "time zone chosen");
    Ok(super::done_redirect("/account", "zone"))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

async fn change_password(
    req: HttpRequest,
    Posted { user, form, .. }: Posted<PasswordForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let again = |error: String| -> Result<HttpResponse, PageError> {
        let mut resp = html(&AccountPage {
            error: Some(error),
            ..AccountPage::new(&user, &state)
        })?;
        *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
        Ok(resp)
    };
    if form.new != form.confirm {
        return again("The new password and its confirmation differ.".into());
    }
    if let Err(e) = password::check_policy(&form.new) {
        return again(format!("The new password is not accepted: {e}."));
    }
    let Some(row) = users::by_username(&state.pool, &user.username).await? else {
        return Err(PageError::LoginRequired { next: None });
    };
    let (current, phc) = (form.current, row.password_hash);
    let ok = password::limited(move || password::verify(&current, &phc)).await?;
    if !ok {
        return again("The current password is wrong.".into());
    }
    let new = form.new;
    let hash = password::limited(move || password::hash(&new)).await?;
    users::set_password(&state.pool, user.id, &hash).await?;
    // Every session ended with the change; this browser gets a fresh one.
    let token = sessions::create(&state.pool, user.id, None).await?;
    let _ = req;
    tracing::info!(username = %user.username, "password changed");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/account?done=1"))
        .cookie(session_cookie(token, session::secure(&state)))
        .finish())
}
