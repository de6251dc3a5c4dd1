//! What a wrong address shows. An unknown URL (404) or a method an address does not take
//! (405) becomes the site's error page, and so does every page error that is not about the
//! database: with the navigation and the alert banner when someone is logged in, with a
//! link to the login form otherwise. Under `/api/` such answers are the API's JSON errors.
//! Status codes stay as they were (and a 405's `Allow` header), except that a known address
//! asked with a method it does not take is a 405, not a 404.

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::{Chrome, CurrentUser, PageError};
use crate::state::AppState;

/// Middleware: see the module's documentation. Successful responses pass untouched.
pub async fn styled(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if status.is_success() || status.is_redirection() {
        return Ok(res.map_into_left_body());
    }
    // Cloned only now: routing needs the request unshared.
    let http = res.request().clone();
    let page_error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>());
    let replacement = match page_error {
        Some(e) if e.shows_navigation() => e.page_with(chrome_for(&http).await),
        Some(_) => return Ok(res.map_into_left_body()),
        None if res.response().error().is_none() && is_bare(&res) => {
            let allow = res.headers().get(header::ALLOW).cloned();
            match bare_answer(&http, status, allow.as_ref()).await {
                Some(mut resp) => {
                    if let Some(a) = allow {
                        resp.headers_mut().insert(header::ALLOW, a);
                    }
                    resp
                }
                None => return Ok(res.map_into_left_body()),
            }
        }
        None => return Ok(res.map_into_left_body()),
    };
    Ok(res.into_response(replacement).map_into_right_body())
}

/// An empty 404 or 405: actix-web's own answer for an unknown URL or a method a route
/// does not take (a handler's deliberate answers carry a body or an error).
fn is_bare<B: MessageBody>(res: &ServiceResponse<B>) -> bool {
    matches!(
        res.status(),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) && matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    )
}

/// What an empty 404 or 405 becomes; None for another status.
async fn bare_answer(
    http: &HttpRequest,
    status: StatusCode,
    allow: Option<&header::HeaderValue>,
) -> Option<HttpResponse> {
    // A route registered for one method does not match another at all (actix-web moves
    // the method into the route's guard), so a wrong method reads as an unknown URL: the
    // route table tells the two apart.
    let status = if status == StatusCode::NOT_FOUND && http.resource_map().has_resource(http.path())
    {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        status
    };
    let path: String = http.path().chars().take(200).collect();
    let method = http.method().as_str();
    let takes = allow
        .and_then(|a| a.to_str().ok())
        .filter(|a| !a.is_empty())
        .map_or_else(String::new, |a| format!(" (it takes {a})"));
    if path.starts_with("/api/") {
        let e = match status {
            StatusCode::NOT_FOUND => {
                crate::error::ApiError::NotFound("no such API endpoint".into())
            }
            StatusCode::METHOD_NOT_ALLOWED => crate::error::ApiError::Other(
                status,
                "method_not_allowed",
                format!("{path} does not take {method}{takes}"),
            ),
            _ => return None,
        };
        return Some(e.error_response());
    }
    let e = match status {
        StatusCode::NOT_FOUND => PageError::NotFound(format!("There is no page at {path}.")),
        StatusCode::METHOD_NOT_ALLOWED => PageError::MethodNotAllowed(format!(
            "{path} does not take {method} requests{takes}: a button on a page sends the form it needs."
        )),
        _ => return None,
    };
    Some(e.page_with(chrome_for(http).await))
}

/// The frame of whoever sent the request: their navigation, or none.
async fn chrome_for(http: &HttpRequest) -> Chrome {
    let Some(state) = http.app_data::<web::Data<AppState>>() else {
        return Chrome::anonymous(false);
    };
    match CurrentUser::from_request(http, &mut Payload::None).await {
        Ok(user) => Chrome::for_user(&user, state, ""),
        Err(_) => Chrome::anonymous(state.simulator_mode),
    }
}
