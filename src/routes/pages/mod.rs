//! The dashboard: server-rendered pages behind a login. Each page has its template struct
//! next to its handler; `base.html` is the layout; every page shows the simulator banner when
//! no real Twilio account is connected.

pub mod admin;
pub mod alert_settings;
pub mod alerts;
pub mod assets;
pub mod balance;
pub mod bots;
pub mod broadcasts;
pub mod chart;
pub mod contacts;
pub mod conversation;
pub mod costs;
pub mod error;
pub mod fallback;
pub mod format;
pub mod guard;
pub mod handoffs;
pub mod join_qr;
pub mod login;
pub mod media;
pub mod messages;
pub mod messaging_services;
pub mod multipart;
pub mod nav;
pub mod overview;
pub mod prices;
pub mod reminders;
pub mod rules;
pub mod send;
pub mod sender_health;
pub mod sender_retire;
pub mod sender_wizard;
pub mod senders;
pub mod session;
pub mod tap;
pub mod template_actions;
pub mod template_choices;
pub mod template_form;
pub mod template_new;
pub mod template_preview;
pub mod templates;
pub mod upload;
pub mod variables;

use actix_web::web;

pub use error::PageError;
pub use guard::{Allowed, Posted};
pub use session::CurrentUser;

use crate::domain::Role;

pub fn configure(cfg: &mut web::ServiceConfig) {
    assets::configure(cfg);
    login::configure(cfg);
    overview::configure(cfg);
    balance::configure(cfg);
    costs::configure(cfg);
    messages::configure(cfg);
    conversation::configure(cfg);
    media::configure(cfg);
    send::configure(cfg);
    broadcasts::configure(cfg);
    reminders::configure(cfg);
    contacts::configure(cfg);
    admin::configure(cfg);
    join_qr::configure(cfg);
    // Before `senders`: its `/admin/senders/{id}` routes would take `/admin/senders/new`.
    sender_wizard::configure(cfg);
    // Before the senders page's `/admin/senders/{id}` forms.
    sender_health::configure(cfg);
    sender_retire::configure(cfg);
    senders::configure(cfg);
    messaging_services::configure(cfg);
    rules::configure(cfg);
    bots::configure(cfg);
    handoffs::configure(cfg);
    prices::configure(cfg);
    alerts::configure(cfg);
    alert_settings::configure(cfg);
    templates::configure(cfg);
}

/// What every page's frame needs: who is logged in, the form token, the mode, the page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub username: Option<String>,
    pub role: Option<Role>,
    pub csrf: String,
    pub simulator: bool,
    /// Which navigation entry is current.
    pub active: &'static str,
    /// The open alerts, for logged-in pages (from the in-memory snapshot: no query).
    pub banner: Option<alerts::Banner>,
    /// A wall screen (`/?wall=1`): no navigation, large figures.
    pub wall: bool,
}

impl Chrome {
    pub fn for_user(
        user: &CurrentUser,
        state: &crate::state::AppState,
        active: &'static str,
    ) -> Self {
        Self {
            username: Some(user.username.clone()),
            role: Some(user.role),
            csrf: user.csrf.clone(),
            simulator: state.simulator_mode,
            active,
            banner: Some(alerts::Banner::of(&state.open_alerts.current(), user.tz)),
            wall: false,
        }
    }

    pub fn anonymous(simulator: bool) -> Self {
        Self {
            username: None,
            role: None,
            csrf: String::new(),
            simulator,
            active: "",
            banner: None,
            wall: false,
        }
    }

    /// The navigation this person sees, the current page marked.
    pub fn nav(&self) -> Vec<nav::NavGroup> {
        self.role
            .map(|r| nav::groups(r, self.active))
            .unwrap_or_default()
    }

    pub fn can(&self, role: &str) -> bool {
        match (self.role, Role::parse(role)) {
            (Some(have), Some(need)) => have.allows(need),
            _ => false,
        }
    }
}

/// Renders a template into a 200 HTML response.
pub fn html<T: askama::Template>(t: &T) -> Result<actix_web::HttpResponse, PageError> {
    let body = t.render().map_err(|e| PageError::Internal(e.into()))?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// Renders a template into an HTML response with `status` (a form shown again with its
/// errors is a 400 or a 409, not a 200).
pub fn html_with<T: askama::Template>(
    t: &T,
    status: actix_web::http::StatusCode,
) -> Result<actix_web::HttpResponse, PageError> {
    let mut resp = html(t)?;
    *resp.status_mut() = status;
    Ok(resp)
}

/// After a form's action: back to `path`, whose page shows the notice for `what` once
/// (`?done=what`; post/redirect/get, so a reload does not repeat the action).
pub fn done_redirect(path: &str, what: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header(("Location", format!("{path}?done={what}")))
        .finish()
}

/// Like [`done_redirect`], naming the thing acted on (`?done=what&id=id`), for a notice that
/// offers to undo the action.
pub fn done_redirect_id(path: &str, what: &str, id: i64) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header(("Location", format!("{path}?done={what}&id={id}")))
        .finish()
}

/// A form that carries nothing but its CSRF token (a button: revoke, acknowledge, pause…).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// The `?done=` of a page shown after a form's action (see [`done_redirect`]).
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
    /// What the action was done to (see [`done_redirect_id`]).
    pub id: Option<i64>,
}

impl DoneQuery {
    /// The notice for `done`, from the page's `(done, notice)` pairs; "Done." for another.
    pub fn notice(&self, notices: &[(&str, &str)]) -> Option<String> {
        let done = self.done.as_deref()?;
        let text = notices
            .iter()
            .find(|(key, _)| *key == done)
            .map_or("Done.", |(_, text)| *text);
        Some(text.to_owned())
    }
}

/// `path` with a send's warnings as `warning=` query parameters, shown once by the page the
/// browser is sent to after the POST.
pub fn with_warnings(path: &str, warnings: &[String]) -> String {
    let mut url = path.to_owned();
    for (i, w) in warnings.iter().take(5).enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&serde_urlencoded::to_string([("warning", w)]).unwrap_or_default());
    }
    url
}

/// The `warning=` parameters of a page's query (see [`with_warnings`]).
pub fn warnings_of(req: &actix_web::HttpRequest) -> Vec<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == "warning")
        .map(|(_, v)| v)
        .take(5)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::DoneQuery;

    #[test]
    fn a_done_query_names_its_notice_or_says_done() {
        let q = |d: Option<&str>| DoneQuery {
            done: d.map(str::to_owned),
            id: None,
        };
        let notices = [("added", "Sender added."), ("changed", "Sender changed.")];
        assert_eq!(
            q(Some("changed")).notice(&notices).as_deref(),
            Some("Sender changed.")
        );
        assert_eq!(
            q(Some("<script>")).notice(&notices).as_deref(),
            Some("Done.")
        );
        assert_eq!(q(None).notice(&notices), None);
        let target = super::done_redirect("/admin/rules", "moved");
        assert_eq!(target.status(), actix_web::http::StatusCode::SEE_OTHER);
        assert_eq!(
            target.headers().get("location").unwrap(),
            "/admin/rules?done=moved"
        );
    }
}
