//! `/reminders`: the list of reminders and the operator's form for a new one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::{Fields, PostedReminder, ReminderItem, back_to, item, refused};
use crate::reminders::ReminderError;
use crate::reminders::form::ReminderForm;
use crate::reminders::manage;
use crate::routes::pages::Posted;
use crate::routes::pages::{Chrome, CurrentUser, PageError};
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::reminders as store;

/// How many reminders the list shows (the API lists as many).
const LIST_LIMIT: i64 = 500;

#[derive(Template)]
#[template(path = "reminders.html")]
struct ListPage {
    chrome: Chrome,
    items: Vec<ReminderItem>,
    form: Fields,
    tags: Vec<(String, i64)>,
    error: Option<String>,
    /// The template picker's choices.
    templates: Vec<crate::routes::pages::template_choices::TemplateChoice>,
}

async fn render_list(
    user: &CurrentUser,
    state: &AppState,
    f: ReminderForm,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, PageError> {
    let (rows, tags) = tokio::try_join!(
        store::list(&state.pool, LIST_LIMIT),
        crate::storage::contacts::tags(&state.pool)
    )?;
    let (status, error) = match refused {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let templates = crate::routes::pages::template_choices::load(state).await?;
    crate::routes::pages::html_with(
        &ListPage {
            templates,
            chrome: Chrome::for_user(user, state, "reminders"),
            items: rows.iter().map(|r| item(r, user.tz)).collect(),
            form: Fields::new(f),
            tags,
            error,
        },
        status,
    )
}

pub(super) async fn list(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    render_list(&user, &state, ReminderForm::blank(), None).await
}

pub(super) async fn create(
    Posted { user, form, .. }: Posted<PostedReminder, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let f = form.form;
    let created = match f.input(None) {
        Ok(input) => manage::create(&state.pool, &input, &user.username, Utc::now()).await,
        Err(e) => Err(ReminderError::Invalid(e)),
    };
    match created {
        Ok(row) => {
            tracing::info!(reminder = row.id, username = %user.username, "reminder created from the dashboard");
            Ok(back_to(row.id, "created"))
        }
        Err(e) => render_list(&user, &state, f, Some(refused(e)?)).await,
    }
}
