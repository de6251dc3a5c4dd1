//! `/send` (operator): send one WhatsApp message from a form — text, media links, or an
//! approved template — through the same path as `POST /api/v1/messages`. On success the
//! message's page opens and follows its delivery live.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use std::collections::HashMap;

use super::variables::{self, VarRow};
use super::{Chrome, PageError, html};
use crate::routes::pages::{Allowed, Posted};
use crate::routes::roles::Operator;
use crate::sending::{self, SendError, SendRequest};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/send", web::get().to(form))
        .route("/send", web::post().to(submit));
}

#[derive(Template)]
#[template(path = "send.html")]
struct SendPage {
    chrome: Chrome,
    default_sender: String,
    to: String,
    body: String,
    media: String,
    from: String,
    content_sid: String,
    template_category: String,
    /// The template variables as rows of fields.
    vars: Vec<VarRow>,
    /// The template picker's choices.
    templates: Vec<super::template_choices::TemplateChoice>,
    error: Option<String>,
    /// Active senders other than the default: (address, label).
    senders: Vec<(String, String)>,
}

/// The default sender's address and the other active senders, for the form.
pub(super) async fn sender_choices(
    state: &AppState,
) -> Result<(String, Vec<(String, String)>), PageError> {
    let default = sending::current_default(&state.pool, &state.default_sender)
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    let default = sender_text(&default);
    let others = crate::storage::senders::all(&state.pool)
        .await?
        .into_iter()
        .filter(|s| s.status == crate::domain::SenderStatus::Active && s.address != default)
        .map(|s| (s.address, s.label))
        .collect();
    Ok((default, others))
}

fn sender_text(s: &crate::twilio::client::Sender) -> String {
    match s {
        crate::twilio::client::Sender::From(a) => a.as_str().to_owned(),
        crate::twilio::client::Sender::MessagingService(mg) => mg.clone(),
    }
}

/// `/send?from=whatsapp:+…`: the form with that sender chosen (the sender wizard links here).
#[derive(Deserialize)]
struct FormQuery {
    #[serde(default)]
    from: String,
}

async fn form(
    user: Allowed<Operator>,
    query: web::Query<FormQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (default_sender, senders) = sender_choices(&state).await?;
    let templates = super::template_choices::load(&state).await?;
    html(&SendPage {
        templates,
        chrome: Chrome::for_user(&user, &state, "send"),
        default_sender,
        senders,
        to: String::new(),
        body: String::new(),
        media: String::new(),
        from: query.into_inner().from,
        content_sid: String::new(),
        template_category: String::new(),
        vars: variables::rows(""),
        error: None,
    })
}

#[derive(Deserialize)]
struct SendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    body: String,
    /// One URL per line.
    #[serde(default)]
    media: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    content_sid: String,
    /// Empty, or a template category for the cost estimate.
    #[serde(default)]
    template_category: String,
    /// The variables as JSON text (a script's way; the page sends rows).
    #[serde(default)]
    content_variables: String,
    /// The "send outside the 24-hour window" checkbox.
    force: Option<String>,
    /// The variable rows (`var_name_0`, `var_value_0`, …).
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

async fn submit(
    Posted { user, form, .. }: Posted<SendForm, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut f = form;
    let assembled = variables::assemble(&f.rest, &f.content_variables);
    f.content_variables = match &assembled {
        Ok(v) => v.clone().unwrap_or_default(),
        Err(_) => f.content_variables.clone(),
    };
    let request = SendRequest {
        to: f.to.clone(),
        body: opt(&f.body),
        media_urls: f
            .media
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        content_sid: opt(&f.content_sid),
        content_variables: opt(&f.content_variables),
        from: opt(&f.from),
    };
    let opts = sending::SendOptions {
        force: f.force.is_some(),
        category: crate::pricing::Category::parse(f.template_category.trim()).ok(),
        pacing: state.pacing,
        ..Default::default()
    };
    let outcome = match assembled {
        Ok(_) => state.send(&request, opts).await,
        Err(e) => Err(SendError::Invalid(e)),
    };
    let status = match &outcome {
        Err(SendError::Refused(_)) => actix_web::http::StatusCode::CONFLICT,
        Err(SendError::Busy { .. }) => actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        _ => actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
    };
    let error = match outcome {
        Ok(sent) => {
            tracing::info!(username = %user.username, sid = %sent.sid, "message sent from the dashboard");
            return Ok(HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    super::with_warnings(&format!("/messages/{}", sent.sid), &sent.warnings),
                ))
                .finish());
        }
        Err(SendError::NotRecorded { sid, .. }) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/messages/{sid}")))
                .finish());
        }
        Err(e) => e.to_string(),
    };
    let (default_sender, senders) = sender_choices(&state).await?;
    let templates = super::template_choices::load(&state).await?;
    crate::routes::pages::html_with(
        &SendPage {
            templates,
            chrome: Chrome::for_user(&user, &state, "send"),
            default_sender,
            senders,
            to: f.to,
            body: f.body,
            media: f.media,
            from: f.from,
            content_sid: f.content_sid,
            template_category: f.template_category,
            vars: variables::rows(&f.content_variables),
            error: Some(error),
        },
        status,
    )
}

crate::routes::pages::guard::csrf_forms!(SendForm);
