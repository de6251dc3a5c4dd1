//! The logged-in person behind a page request, found from the session cookie.
//!
//! The cookie holds a random 256-bit token (HttpOnly, SameSite=Lax, Secure when the public URL
//! is https); the database holds only its SHA-256. A new token is issued at every login.
//! Pages accept only the cookie and the API only bearer tokens, so neither can be used for
//! the other.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::PageError;
use crate::domain::Role;
use crate::state::AppState;
use crate::storage::sessions;

pub const SESSION_COOKIE: &str = "wadash_session";

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The session's form token.
    pub csrf: String,
    /// The zone the person reads times in (UTC unless chosen on the account page).
    pub tz: chrono_tz::Tz,
}

impl CurrentUser {
    pub fn require(&self, role: Role) -> Result<(), PageError> {
        if self.role.allows(role) {
            Ok(())
        } else {
            Err(PageError::Forbidden(role))
        }
    }

    /// Checks a submitted form token against the session's, in constant time.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where to come back to after logging in: the page asked for, if it was a page (a GET).
fn next_of(req: &HttpRequest) -> Option<String> {
    (req.method() == actix_web::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
        .flatten()
        .filter(|p| p != "/")
}

impl FromRequest for CurrentUser {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let next = next_of(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| PageError::Internal(anyhow::anyhow!("no state")))?;
            let Some(token) = token.filter(|t| t.len() == 64) else {
                return Err(PageError::LoginRequired { next });
            };
            let Some(s) = sessions::find(&state.pool, &token).await? else {
                return Err(PageError::LoginRequired { next });
            };
            // A write per request would be wasteful; once a minute keeps the idle timeout.
            if s.last_seen_at < chrono::Utc::now() - chrono::Duration::seconds(60) {
                sessions::touch(&state.pool, &token).await?;
            }
            Ok(CurrentUser {
                id: s.user_id,
                username: s.username,
                role: Role::parse(&s.role).unwrap_or(Role::Viewer),
                csrf: s.csrf_token,
                // A name that no longer parses (chrono-tz dropped it) reads UTC.
                tz: s
                    .time_zone
                    .as_deref()
                    .and_then(|z| crate::domain::time_zone::parse_tz(z).ok())
                    .unwrap_or(chrono_tz::UTC),
            })
        })
    }
}

/// Whether cookies must be `Secure` (the public URL is https).
pub fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

pub fn expired_session_cookie(secure: bool) -> Cookie<'static> {
    let mut c = session_cookie(String::new(), secure);
    c.make_removal();
    c
}

/// The client's address for throttling: the TCP peer. (Behind a reverse proxy every client
/// shares the proxy's address; the per-account limit still applies.)
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}
