//! `/admin/senders/new` (admin): the onboarding wizard that registers a WhatsApp number at
//! Twilio — number, WABA id and verification method → profile → code (with a new code on
//! demand) → status until online → done. Server-rendered forms that work without scripts;
//! each step is a registration's state (`crate::onboarding::register`), so the wizard resumes
//! where it stopped.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError};
use crate::onboarding::input::{self, Invalid, NumberInput, ProfileInput};
use crate::onboarding::register::{self, Context, RegisterError, SELF_SIGNUP_URL};
use crate::routes::pages::{Allowed, CsrfOnly, DoneQuery, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::sender_registrations::{self as store, Registration};

/// Registered before `senders::configure`, whose `/admin/senders/{id}` would take `new`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/senders/new", web::get().to(first_step))
        .route("/admin/senders/new", web::post().to(start))
        .route("/admin/senders/new/{reg}", web::get().to(step))
        .route("/admin/senders/new/{reg}/profile", web::post().to(profile))
        .route("/admin/senders/new/{reg}/verify", web::post().to(verify))
        .route("/admin/senders/new/{reg}/resend", web::post().to(resend))
        .route("/admin/senders/new/{reg}/check", web::post().to(check))
        .route("/admin/senders/new/{reg}/cancel", web::post().to(cancel));
}

/// The profile form's fields as typed.
#[derive(Debug, Clone, Default, Deserialize)]
struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    about: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    logo_url: String,
    #[serde(default)]
    vertical: String,
    #[serde(default)]
    website_1: String,
    #[serde(default)]
    website_2: String,
    #[serde(default)]
    email: String,
}

impl ProfileForm {
    fn input(&self) -> ProfileInput {
        ProfileInput {
            name: self.name.clone(),
            about: self.about.clone(),
            address: self.address.clone(),
            description: self.description.clone(),
            logo_url: self.logo_url.clone(),
            vertical: self.vertical.clone(),
            websites: vec![self.website_1.clone(), self.website_2.clone()],
            emails: vec![self.email.clone()],
        }
    }

    fn of(p: &ProfileInput) -> Self {
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        Self {
            csrf: String::new(),
            name: p.name.clone(),
            about: p.about.clone(),
            address: p.address.clone(),
            description: p.description.clone(),
            logo_url: p.logo_url.clone(),
            vertical: p.vertical.clone(),
            website_1: at(&p.websites, 0),
            website_2: at(&p.websites, 1),
            email: at(&p.emails, 0),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    waba_id: String,
    #[serde(default)]
    verification_method: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

crate::routes::pages::guard::csrf_forms!(ProfileForm, NumberForm, CodeForm);

#[derive(Template)]
#[template(path = "sender_wizard.html")]
struct WizardPage {
    chrome: Chrome,
    /// `number`, `profile`, `submitting`, `code`, `status`, `done` or `cancelled`.
    step: &'static str,
    reg: Option<Registration>,
    number: NumberForm,
    profile: ProfileForm,
    code: String,
    /// Errors next to their fields (`number`, `waba_id`, `name`, `websites`, `code`…).
    errors: BTreeMap<String, String>,
    /// Twilio's refusal or failure, in its words.
    error: Option<String>,
    /// Twilio said the account's first sender must come through Self Sign-up.
    self_signup: bool,
    signup_url: &'static str,
    /// The open registration that has this number already.
    taken: Option<i64>,
    /// The sender this number is at Twilio already.
    registered: Option<i64>,
    /// In simulator mode, the code the simulator "sent".
    sim_code: Option<String>,
    notice: Option<String>,
    /// Unfinished registrations, to resume.
    open: Vec<Registration>,
    verticals: &'static [&'static str],
    about_max: usize,
}

impl WizardPage {
    fn err(&self, key: &str) -> Option<&str> {
        self.errors.get(key).map(String::as_str)
    }

    fn address(&self) -> String {
        self.reg
            .as_ref()
            .map(|r| format!("whatsapp:{}", r.number))
            .unwrap_or_default()
    }
}

/// The form field an input refusal belongs next to.
fn field_key(field: &str) -> String {
    let f = field.strip_prefix("profile.").unwrap_or(field);
    if f.starts_with("websites") {
        "websites".into()
    } else if f.starts_with("emails") {
        "email".into()
    } else {
        f.to_owned()
    }
}

fn page(user: &CurrentUser, state: &AppState, step: &'static str) -> WizardPage {
    WizardPage {
        chrome: Chrome::for_user(user, state, "senders"),
        step,
        reg: None,
        number: NumberForm {
            verification_method: "sms".into(),
            ..NumberForm::default()
        },
        profile: ProfileForm::default(),
        code: String::new(),
        errors: BTreeMap::new(),
        error: None,
        self_signup: false,
        signup_url: SELF_SIGNUP_URL,
        taken: None,
        registered: None,
        sim_code: None,
        notice: None,
        open: Vec::new(),
        verticals: &input::VERTICALS,
        about_max: input::ABOUT_MAX,
    }
}

/// Shows a refusal: next to its field when it is one, else as the page's error.
fn refuse(p: &mut WizardPage, e: RegisterError) -> Result<StatusCode, PageError> {
    Ok(match e {
        RegisterError::Invalid(Invalid { field, reason }) => {
            p.errors.insert(field_key(&field), reason);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        RegisterError::Taken { id, .. } => {
            p.error = Some(e.to_string());
            p.taken = (id > 0).then_some(id);
            StatusCode::CONFLICT
        }
        RegisterError::SelfSignup(_) => {
            p.self_signup = true;
            p.error = Some(e.to_string());
            StatusCode::BAD_GATEWAY
        }
        RegisterError::NotFound(m) => return Err(PageError::NotFound(m)),
        RegisterError::Registered { sender_id, .. } => {
            p.error = Some(e.to_string());
            p.registered = Some(sender_id);
            StatusCode::CONFLICT
        }
        RegisterError::WrongStep(m) => {
            p.error = Some(m);
            StatusCode::CONFLICT
        }
        RegisterError::Refused(_) | RegisterError::Unreachable { .. } => {
            p.error = Some(e.to_string());
            StatusCode::BAD_GATEWAY
        }
        RegisterError::Database(d) => return Err(d.into()),
    })
}

async fn first_step(
    user: Allowed<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut p = page(&user, &state, "number");
    p.open = store::open(&state.pool).await?;
    super::html(&p)
}

async fn start(
    Posted { user, form, .. }: Posted<NumberForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let i = NumberInput {
        number: form.number.clone(),
        waba_id: form.waba_id.clone(),
        verification_method: form.verification_method.clone(),
    };
    match register::start(&state.pool, &i, &format!("admin {}", user.username)).await {
        Ok(r) => Ok(to_step(r.id, None)),
        Err(e) => {
            let mut p = page(&user, &state, "number");
            p.number = form;
            let status = refuse(&mut p, e)?;
            p.open = store::open(&state.pool).await?;
            super::html_with(&p, status)
        }
    }
}

fn to_step(id: i64, done: Option<&str>) -> HttpResponse {
    let path = format!("/admin/senders/new/{id}");
    match done {
        Some(d) => super::done_redirect(&path, d),
        None => HttpResponse::SeeOther()
            .insert_header(("Location", path))
            .finish(),
    }
}

/// Which step registration `r` is at.
fn step_of(r: &Registration) -> &'static str {
    match (r.step.as_str(), r.twilio_status.as_deref()) {
        ("draft", _) => "profile",
        // The call died with its instance: submit again.
        ("submitting", _) if r.stale => "profile",
        ("submitting", _) => "submitting",
        ("cancelled", _) => "cancelled",
        ("online", _) | (_, Some("ONLINE")) => "done",
        (_, Some("PENDING_VERIFICATION")) => "code",
        _ => "status",
    }
}

/// The page of registration `id` at its step; `refresh`: read the sender's status at
/// Twilio first (a failure to is shown, not fatal).
async fn render(
    user: &CurrentUser,
    state: &AppState,
    id: i64,
    refresh: bool,
) -> Result<WizardPage, PageError> {
    let mut r = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender registration {id}")))?;
    let mut error = None;
    if refresh
        && r.step == "submitted"
        && let Some(sender) = r.sender_id
    {
        if let Err(e) = register::check(&state.pool, &state.messaging, sender).await {
            error = Some(format!(
                "The status could not be read from Twilio just now: {e}"
            ));
        }
        r = store::get(&state.pool, id)
            .await?
            .ok_or_else(|| PageError::NotFound(format!("no sender registration {id}")))?;
    }
    let mut p = page(user, state, step_of(&r));
    p.number = NumberForm {
        csrf: String::new(),
        number: r.number.clone(),
        waba_id: r.waba_id.clone(),
        verification_method: r.verification_method.clone(),
    };
    if let Some(typed) = r
        .profile
        .clone()
        .and_then(|v| serde_json::from_value::<ProfileInput>(v).ok())
    {
        p.profile = ProfileForm::of(&typed);
    }
    if p.step == "profile" {
        p.error = r.last_error.clone();
        p.self_signup = r.self_signup;
    }
    if p.step == "code" && state.simulator_mode {
        p.sim_code = r
            .twilio_sid
            .as_deref()
            .map(crate::twilio::simulator::verification_code);
    }
    p.error = p.error.take().or(error);
    p.reg = Some(r);
    Ok(p)
}

async fn step(
    user: Allowed<Admin>,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut p = render(&user, &state, *path, true).await?;
    p.notice = query.notice(&[
        (
            "resent",
            "A new code was asked for: WhatsApp sends it by the method chosen.",
        ),
        ("checked", "Status read from Twilio."),
        (
            "verified",
            "Code accepted: WhatsApp is verifying the number.",
        ),
    ]);
    let mut resp = super::html(&p)?;
    if matches!(p.step, "status" | "submitting") {
        // Reloads until the number is online, without scripts.
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("refresh"),
            actix_web::http::header::HeaderValue::from_static("3"),
        );
    }
    Ok(resp)
}

async fn profile(
    Posted { user, form, .. }: Posted<ProfileForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let by = format!("admin {}", user.username);
    let ctx = Context {
        pool: &state.pool,
        messaging: &state.messaging,
        public_url: &state.public_url,
        mps: crate::senders::DEFAULT_MPS,
        by: &by,
    };
    match register::submit(&ctx, *path, &form.input()).await {
        Ok(_) => Ok(to_step(*path, None)),
        // Submitted twice (a double click, the back button): the first one goes on.
        Err(RegisterError::Taken { id, .. }) if id == *path => Ok(to_step(id, None)),
        Err(e) => {
            let mut p = render(&user, &state, *path, false).await?;
            let status = refuse(&mut p, e)?;
            p.profile = form;
            super::html_with(&p, status)
        }
    }
}

/// The registration's sender at Twilio (the code, status and resend steps).
async fn sender_of(state: &AppState, id: i64) -> Result<i64, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no sender registration {id}")))?
        .sender_id
        .ok_or_else(|| PageError::BadRequest(format!("registration {id} is not at Twilio yet")))
}

async fn verify(
    Posted { user, form, .. }: Posted<CodeForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sender = sender_of(&state, *path).await?;
    match register::verify(&state.pool, &state.messaging, sender, &form.code).await {
        Ok(_) => Ok(to_step(*path, Some("verified"))),
        Err(e) => {
            let mut p = render(&user, &state, *path, false).await?;
            p.step = "code";
            let status = match e {
                RegisterError::Refused(t) => {
                    p.errors.insert(
                        "code".into(),
                        format!("The code was refused; check it, or ask for a new one. {t}"),
                    );
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                e => refuse(&mut p, e)?,
            };
            p.code = form.code;
            super::html_with(&p, status)
        }
    }
}

async fn resend(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sender = sender_of(&state, *path).await?;
    match register::resend(&state.pool, &state.messaging, sender).await {
        Ok(_) => Ok(to_step(*path, Some("resent"))),
        Err(e) => {
            let mut p = render(&user, &state, *path, false).await?;
            let status = refuse(&mut p, e)?;
            super::html_with(&p, status)
        }
    }
}

async fn check(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sender = sender_of(&state, *path).await?;
    match register::check(&state.pool, &state.messaging, sender).await {
        Ok(_) => Ok(to_step(*path, Some("checked"))),
        Err(e) => {
            let mut p = render(&user, &state, *path, false).await?;
            let status = refuse(&mut p, e)?;
            super::html_with(&p, status)
        }
    }
}

async fn cancel(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    match register::cancel(&state.pool, *path, &format!("admin {}", user.username)).await {
        Ok(()) => Ok(to_step(*path, None)),
        Err(e) => {
            let mut p = render(&user, &state, *path, false).await?;
            let status = refuse(&mut p, e)?;
            super::html_with(&p, status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_go_next_to_their_form_fields() {
        assert_eq!(field_key("number"), "number");
        assert_eq!(field_key("profile.name"), "name");
        assert_eq!(field_key("profile.websites[1]"), "websites");
        assert_eq!(field_key("profile.emails[0]"), "email");
    }
}
