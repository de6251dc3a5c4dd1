//! Errors of the dashboard pages, shown as pages (or a redirect to the login form).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::domain::Role;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not logged in: redirect to the login form, then back to `next`.
    #[error("please log in")]
    LoginRequired { next: Option<String> },
    #[error("this needs the {0} role")]
    Forbidden(Role),
    #[error("the form has expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    /// The address exists but does not take this method (a form's action opened as a link).
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// Too much work of one kind at once (password checks); try again in a few seconds.
    #[error("{0}")]
    Busy(String),
    /// Twilio did not answer as needed.
    #[error("{0}")]
    Upstream(String),
    #[error("something went wrong on our side")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_transient(&e) {
            PageError::Unavailable
        } else {
            PageError::Internal(e.into())
        }
    }
}

impl From<crate::accounts::password::HashError> for PageError {
    fn from(e: crate::accounts::password::HashError) -> Self {
        use crate::accounts::password::HashError;
        match e {
            HashError::Busy => PageError::Busy(e.to_string()),
            HashError::Failed(_) => PageError::Internal(e.into()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: super::Chrome,
    status: u16,
    title: &'a str,
    message: String,
}

impl PageError {
    fn title(&self) -> &'static str {
        match self {
            PageError::LoginRequired { .. } => "Log in",
            PageError::Forbidden(_) => "Not allowed",
            PageError::Csrf => "Form expired",
            PageError::NotFound(_) => "Not found",
            PageError::MethodNotAllowed(_) => "Not allowed here",
            PageError::BadRequest(_) => "Cannot do that",
            PageError::Unavailable => "Unavailable",
            PageError::Busy(_) => "Busy",
            PageError::Upstream(_) => "Twilio did not answer",
            PageError::Internal(_) => "Error",
        }
    }

    /// The error page with the frame of the site (the simulator banner included).
    pub fn page(&self, simulator: bool) -> HttpResponse {
        self.page_with(super::Chrome::anonymous(simulator))
    }

    /// Whether the page is worth a session lookup to show it with the navigation: not when
    /// the database is the trouble, nor for a redirect to the login form.
    pub fn shows_navigation(&self) -> bool {
        !matches!(
            self,
            PageError::LoginRequired { .. }
                | PageError::Unavailable
                | PageError::Busy(_)
                | PageError::Internal(_)
        )
    }

    /// The error page in `chrome`: the navigation of whoever is logged in, or none.
    pub fn page_with(&self, chrome: super::Chrome) -> HttpResponse {
        if let PageError::LoginRequired { next } = self {
            let target = match next {
                Some(n) => format!(
                    "/login?next={}",
                    serde_urlencoded::to_string([("", n)])
                        .unwrap_or_default()
                        .trim_start_matches('=')
                ),
                None => "/login".to_owned(),
            };
            return HttpResponse::SeeOther()
                .insert_header(("Location", target))
                .insert_header(("Cache-Control", "no-store"))
                .finish();
        }
        if let PageError::Internal(e) = self {
            tracing::error!(error = ?e, "page failed");
        }
        let page = ErrorPage {
            chrome,
            status: self.status_code().as_u16(),
            title: self.title(),
            message: self.to_string(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title>Error".into());
        let mut resp = HttpResponse::build(self.status_code());
        resp.content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"));
        match self {
            PageError::Unavailable => {
                resp.insert_header(("Retry-After", "1"));
            }
            PageError::Busy(_) => {
                resp.insert_header(("Retry-After", "5"));
            }
            _ => {}
        }
        resp.body(body)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Unavailable | PageError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Upstream(_) => StatusCode::BAD_GATEWAY,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Without the request at hand the mode is unknown; [`with_frame`] re-renders page
    /// errors with the simulator banner where it applies.
    fn error_response(&self) -> HttpResponse {
        self.page(false)
    }
}

/// Middleware: re-renders a [`PageError`] with the site's frame, so that error pages also
/// carry the simulator banner. Successful responses pass through untouched.
pub async fn with_frame(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<
        actix_web::body::EitherBody<impl actix_web::body::MessageBody + 'static>,
    >,
    actix_web::Error,
> {
    let simulator = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .is_some_and(|s| s.simulator_mode);
    let res = next.call(req).await?;
    if !simulator || res.status().is_success() {
        return Ok(res.map_into_left_body());
    }
    let page = res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>())
        .map(|e| e.page(true));
    Ok(match page {
        Some(p) => res.into_response(p).map_into_right_body(),
        None => res.map_into_left_body(),
    })
}
