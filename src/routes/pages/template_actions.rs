//! The admin's actions on a template's page: "Submit to WhatsApp" (a WhatsApp name and a
//! category; again after a rejection) and "Delete…" (two-step, deleted at Twilio, then gone
//! from the catalogue). Through [`crate::templates::manage`]; a refusal shows the page again
//! with the error next to its field, Twilio's as a notice, nothing typed lost.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::templates::{Extras, SubmitFields, render_detail};
use super::{CsrfOnly, PageError, Posted, done_redirect};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::templates::manage::{self, ManageError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/templates/{sid}/submit", web::post().to(submit))
        .route("/templates/{sid}/delete", web::post().to(delete));
}

#[derive(Debug, Deserialize)]
struct SubmitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    category: String,
}

crate::routes::pages::guard::csrf_forms!(SubmitForm);

/// What a refused action shows: the field's error, or Twilio's (or the database's) words.
fn refusal(e: ManageError, typed: Option<SubmitFields>) -> Result<(StatusCode, Extras), PageError> {
    let mut extras = Extras {
        submit: typed,
        ..Extras::default()
    };
    let status = match e {
        ManageError::Invalid(why) => {
            match (&mut extras.submit, why.field.as_str()) {
                (Some(s), "category") => s.category_error = Some(why.reason),
                (Some(s), _) => s.name_error = Some(why.reason),
                (None, _) => extras.error = Some(why.to_string()),
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        // Only a create finds the name taken; said as it is should another action.
        e @ ManageError::Taken { .. } => {
            extras.error = Some(e.to_string());
            StatusCode::CONFLICT
        }
        ManageError::Twilio(e) => {
            extras.error = Some(format!("Twilio refused: {e}. Nothing changed here."));
            StatusCode::BAD_GATEWAY
        }
        ManageError::NotFound(sid) => {
            return Err(PageError::NotFound(format!("There is no template {sid}.")));
        }
        ManageError::Database(e) => return Err(e.into()),
    };
    Ok((status, extras))
}

async fn submit(
    Posted { user, form, .. }: Posted<SubmitForm, Admin>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sid = path.into_inner();
    let name = form.name.trim();
    match manage::submit(
        &state.pool,
        &state.content,
        &sid,
        Some(name).filter(|n| !n.is_empty()),
        &form.category,
    )
    .await
    {
        Ok(status) => {
            tracing::info!(admin = %user.username, template = %sid, %status, "template submitted to WhatsApp");
            Ok(done_redirect(&format!("/templates/{sid}"), "submitted"))
        }
        Err(e) => {
            let typed = SubmitFields {
                name: form.name.clone(),
                category: form.category.clone(),
                ..SubmitFields::default()
            };
            let (status, extras) = refusal(e, Some(typed))?;
            render_detail(&user, &state, &sid, extras, status).await
        }
    }
}

async fn delete(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let sid = path.into_inner();
    match manage::delete(&state.pool, &state.content, &sid).await {
        Ok(()) => {
            tracing::info!(admin = %user.username, template = %sid, "template deleted");
            Ok(done_redirect("/templates", "deleted"))
        }
        Err(e) => {
            let (status, extras) = refusal(e, None)?;
            render_detail(&user, &state, &sid, extras, status).await
        }
    }
}
