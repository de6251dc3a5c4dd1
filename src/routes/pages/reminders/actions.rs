//! `POST /reminders/{id}/{pause|resume|cancel}`: the buttons on a reminder's page.

use actix_web::{HttpResponse, web};
use chrono::Utc;

use super::detail::render_one;
use super::{back_to, find, path_id, refused};
use crate::reminders::{Action, manage};
use crate::routes::pages::PageError;
use crate::routes::pages::{CsrfOnly, Posted};
use crate::routes::roles::Operator;
use crate::state::AppState;

/// Pause, resume or cancel; a 409 on the reminder's page when it is not in a state the
/// action applies to.
pub(super) async fn act(
    Posted { user, .. }: Posted<CsrfOnly, Operator>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (raw, action) = path.into_inner();
    let existing = find(&state, path_id(&raw)?).await?;
    let action = match action.as_str() {
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "cancel" => Action::Cancel,
        other => {
            return Err(PageError::NotFound(format!(
                "no reminder action {other:?}; use pause, resume or cancel"
            )));
        }
    };
    if let Err(e) = manage::act(&state.pool, &existing, action, &user.username, Utc::now()).await {
        let (status, message) = refused(e)?;
        return render_one(&user, &state, existing, None, Some((status, message, None))).await;
    }
    let action = action.as_str();
    tracing::info!(reminder = existing.id, username = %user.username, action, "reminder {action}");
    Ok(back_to(existing.id, action))
}
