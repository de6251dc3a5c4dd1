//! `/reminders/{id}`: one reminder with its runs, and its edit form.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::{
    Due, Fields, PostedReminder, ReminderItem, back_to, due, find, item, path_id, refused,
};
use crate::reminders::form::ReminderForm;
use crate::reminders::{Action, ReminderError, lifecycle, manage, schedule};
use crate::routes::pages::Posted;
use crate::routes::pages::{Chrome, CurrentUser, PageError, format};
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::reminders::{self as store, ReminderRow};

const RUNS_SHOWN: i64 = 50;

struct RunItem {
    due: Due,
    outcome: String,
    note: String,
    broadcast_id: Option<i64>,
    sid: String,
    message_status: String,
}

#[derive(Template)]
#[template(path = "reminder.html")]
struct ReminderPage {
    chrome: Chrome,
    r: ReminderItem,
    first: Due,
    media: Vec<String>,
    content_sid: String,
    sender: String,
    created_by: String,
    created: format::Stamp,
    runs: Vec<RunItem>,
    /// Open for changes (active or paused).
    editable: bool,
    form: Fields,
    tags: Vec<(String, i64)>,
    notice: Option<String>,
    error: Option<String>,
    /// The template picker's choices (for the edit form).
    templates: Vec<crate::routes::pages::template_choices::TemplateChoice>,
}

/// The reminder's page; with `refused`, the status and message of a refused change and the
/// form as typed (None: the reminder's own settings).
pub(super) async fn render_one(
    user: &CurrentUser,
    state: &AppState,
    r: ReminderRow,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Option<ReminderForm>)>,
) -> Result<HttpResponse, PageError> {
    let (runs, tags) = tokio::try_join!(
        store::runs(&state.pool, r.id, RUNS_SHOWN),
        crate::storage::contacts::tags(&state.pool)
    )?;
    let tz = schedule::parse_tz(&r.timezone).ok();
    let first = due(r.first_at, tz, user.tz);
    let (status, error, typed) = match refused {
        Some((s, e, typed)) => (s, Some(e), typed),
        None => (StatusCode::OK, None, None),
    };
    let form = Fields::new(typed.unwrap_or_else(|| ReminderForm::of(&r)));
    let runs = runs
        .into_iter()
        .map(|run| RunItem {
            due: due(run.due_at, tz, user.tz),
            outcome: run.outcome,
            note: run.note.unwrap_or_default(),
            broadcast_id: run.broadcast_id,
            sid: run.message_sid.unwrap_or_default(),
            message_status: run.message_status.unwrap_or_default(),
        })
        .collect();
    let templates = match lifecycle::is_open(r.status) {
        true => crate::routes::pages::template_choices::load(state).await?,
        false => Vec::new(),
    };
    crate::routes::pages::html_with(
        &ReminderPage {
            templates,
            chrome: Chrome::for_user(user, state, "reminders"),
            r: item(&r, user.tz),
            first,
            media: r.media.clone(),
            content_sid: r.content_sid.clone().unwrap_or_default(),
            sender: r.sender.clone().unwrap_or_default(),
            created_by: r.created_by.clone().unwrap_or_default(),
            created: format::Stamp::new(r.created_at, user.tz),
            runs,
            editable: lifecycle::is_open(r.status),
            form,
            tags,
            notice,
            error,
        },
        status,
    )
}

pub(super) async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<crate::routes::pages::DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let r = find(&state, path_id(&path)?).await?;
    let notice = q.notice(&[
        ("created", "Reminder created."),
        ("saved", "Changes saved."),
        ("pause", "Paused: nothing is sent until it is resumed."),
        ("resume", "Resumed: the next time is counted from now."),
        ("cancel", "Canceled: nothing more is sent."),
    ]);
    render_one(&user, &state, r, notice, None).await
}

pub(super) async fn edit(
    Posted { user, form, .. }: Posted<PostedReminder, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let existing = find(&state, path_id(&path)?).await?;
    let f = form.form;
    // A closed reminder is refused before the form is read.
    let saved = match manage::allow(&existing, Action::Edit) {
        Err(e) => Err(e),
        Ok(_) => match f.input(Some(&existing)) {
            Ok(input) => {
                manage::edit(&state.pool, &existing, &input, &user.username, Utc::now()).await
            }
            Err(e) => Err(ReminderError::Invalid(e)),
        },
    };
    match saved {
        Ok(row) => {
            tracing::info!(reminder = row.id, username = %user.username, "reminder changed from the dashboard");
            Ok(back_to(row.id, "saved"))
        }
        Err(e) => {
            // What was typed is shown again when it was the problem.
            let typed = matches!(e, ReminderError::Invalid(_)).then_some(f);
            let (status, message) = refused(e)?;
            render_one(
                &user,
                &state,
                existing,
                None,
                Some((status, message, typed)),
            )
            .await
        }
    }
}
