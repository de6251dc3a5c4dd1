//! `/reminders`: one-off and recurring reminders from the dashboard. The list (who, what, how
//! often in words, the next time in the reminder's zone and in UTC) with the operator's form
//! for a new one; one reminder with its runs, and the forms to edit, pause, resume and cancel
//! it. Input goes through the reminders service, as the API's does; this module holds what
//! the pages share and the one place that turns the service's refusals into answers.

mod actions;
mod detail;
mod list;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{PageError, format};
use crate::reminders::Action;
use crate::reminders::form::ReminderForm;
use crate::reminders::manage::{self, ReminderError};
use crate::reminders::schedule;
use crate::reminders::words::{DAYS, recurrence_words};
use crate::state::AppState;
use crate::storage::reminders::ReminderRow;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reminders", web::get().to(list::list))
        .route("/reminders", web::post().to(list::create))
        .route("/reminders/{id}", web::get().to(detail::one))
        .route("/reminders/{id}/edit", web::post().to(detail::edit))
        .route("/reminders/{id}/{action}", web::post().to(actions::act));
}

/// The reminder form as posted: the form's fields and the CSRF token.
#[derive(Deserialize)]
struct PostedReminder {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: ReminderForm,
}

crate::routes::pages::guard::csrf_forms!(PostedReminder);

/// The dashboard's answer to a reminder the service refused: the status and message the page
/// shows again with the form, or an error page.
fn refused(e: ReminderError) -> Result<(StatusCode, String), PageError> {
    match e {
        ReminderError::Invalid(e) => Ok((StatusCode::BAD_REQUEST, e)),
        ReminderError::NotAllowed {
            status,
            action: Action::Edit,
        } => Ok((
            StatusCode::CONFLICT,
            format!("this reminder is {status}: it cannot change any more; create a new one"),
        )),
        e @ (ReminderError::NotAllowed { .. } | ReminderError::Conflict(_)) => {
            Ok((StatusCode::CONFLICT, e.to_string()))
        }
        e @ ReminderError::NotFound(_) => Err(PageError::NotFound(e.to_string())),
        ReminderError::Storage(e) => Err(e.into()),
    }
}

fn path_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::NotFound(format!("no reminder {raw:?}")))
}

async fn find(state: &AppState, id: i64) -> Result<ReminderRow, PageError> {
    match manage::find(&state.pool, id).await {
        Ok(r) => Ok(r),
        // Finding fails only as not found or in storage, both error pages.
        Err(e) => Err(match refused(e) {
            Err(page) => page,
            Ok((_, message)) => PageError::BadRequest(message),
        }),
    }
}

fn back_to(id: i64, done: &str) -> HttpResponse {
    super::done_redirect(&format!("/reminders/{id}"), done)
}

/// When a reminder runs: in the reader's zone (UTC on hover), and in the reminder's own zone
/// when that is another one ("2030-03-11 09:00:00 EDT").
struct Due {
    when: format::Stamp,
    own: String,
}

fn due(t: DateTime<Utc>, own: Option<Tz>, reader: Tz) -> Due {
    Due {
        when: format::Stamp::new(t, reader),
        own: own
            .filter(|z| *z != reader)
            .map(|z| format::local(&t, z))
            .unwrap_or_default(),
    }
}

/// The form's fields for the template.
struct Fields {
    f: ReminderForm,
    /// (value, name, checked).
    days: Vec<(&'static str, &'static str, bool)>,
}

impl Fields {
    fn new(f: ReminderForm) -> Self {
        let days = DAYS
            .iter()
            .map(|(d, v, name)| (*v, *name, f.day(*d)))
            .collect();
        Self { f, days }
    }
}

struct ReminderItem {
    id: i64,
    to_number: String,
    to_tag: String,
    tag_href: String,
    text: String,
    recurrence: String,
    timezone: String,
    next: Option<Due>,
    status: String,
    status_label: &'static str,
}

fn item(r: &ReminderRow, reader: Tz) -> ReminderItem {
    let tz = schedule::parse_tz(&r.timezone).ok();
    let next = r.next_at.map(|t| due(t, tz, reader));
    let mut text = r.body.clone().unwrap_or_default();
    if text.is_empty() {
        if let Some(c) = &r.content_sid {
            text = format!("template {c}");
        } else if !r.media.is_empty() {
            text = format::plural(r.media.len() as i64, "media link", "media links");
        }
    }
    ReminderItem {
        id: r.id,
        to_number: r.to_number.clone().unwrap_or_default(),
        to_tag: r.to_tag.clone().unwrap_or_default(),
        tag_href: r
            .to_tag
            .as_deref()
            .map(|t| {
                format!(
                    "/contacts?{}",
                    serde_urlencoded::to_string([("tag", t)]).unwrap_or_default()
                )
            })
            .unwrap_or_default(),
        text,
        recurrence: recurrence_words(&r.recurrence, r.first_at, tz),
        timezone: r.timezone.clone(),
        next,
        status: r.status.as_str().to_owned(),
        status_label: r.status.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_times_show_in_the_readers_zone_and_in_the_reminders() {
        let ny = schedule::parse_tz("America/New_York").ok();
        let at = DateTime::parse_from_rfc3339("2030-03-11T13:00:00Z")
            .unwrap()
            .to_utc();
        let d = due(at, ny, chrono_tz::Europe::Berlin);
        assert_eq!(d.when.local, "2030-03-11 14:00:00 CET");
        assert_eq!(d.when.utc, "2030-03-11 13:00:00 UTC");
        assert_eq!(d.own, "2030-03-11 09:00:00 EDT");
        assert_eq!(
            due(at, ny, chrono_tz::America::New_York).own,
            "",
            "the same zone once"
        );
    }

    #[test]
    fn refusals_become_the_statuses_the_pages_answered_with() {
        use crate::domain::ReminderStatus;
        let shown = |e| refused(e).unwrap();
        assert_eq!(
            shown(ReminderError::Invalid("at is required".into())),
            (StatusCode::BAD_REQUEST, "at is required".into())
        );
        assert_eq!(
            shown(ReminderError::NotAllowed {
                status: ReminderStatus::Done,
                action: Action::Edit
            }),
            (
                StatusCode::CONFLICT,
                "this reminder is done: it cannot change any more; create a new one".into()
            )
        );
        assert_eq!(
            shown(ReminderError::NotAllowed {
                status: ReminderStatus::Paused,
                action: Action::Pause
            }),
            (
                StatusCode::CONFLICT,
                "a paused reminder cannot pause".into()
            )
        );
        assert!(matches!(
            refused(ReminderError::NotFound(7)),
            Err(PageError::NotFound(m)) if m == "no reminder 7"
        ));
    }
}
