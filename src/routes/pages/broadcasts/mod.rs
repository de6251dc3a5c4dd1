//! `/broadcasts`: one message to many people from the dashboard, in four pages: the list
//! ([`list`]), the form ([`form`]: text, media, template, sender, audience, start time), the
//! preview of who is left out and why and what it costs ([`preview`]), whose confirmation
//! queues it, and the broadcast's own page ([`detail`]: its funnel live, the current send
//! rate, every recipient's fate, the results as CSV, and the operator's pause / resume /
//! cancel / retry). Everything goes through `crate::broadcasts`, so the pages and the API
//! validate and act alike.

mod detail;
mod form;
mod list;
mod preview;

use actix_web::web;

use super::{PageError, format};
use crate::broadcasts::audience::Excluded;
use crate::broadcasts::lifecycle::{self, LifecycleError};
use crate::domain::BroadcastStatus;
use crate::state::AppState;
use crate::storage::broadcasts::BroadcastRow;

/// A pasted audience of `audience::MAX_RECIPIENTS` numbers (or a CSV with a few variables per
/// row) fits; the default form limit (16 KiB) would refuse all but the smallest.
const FORM_LIMIT: usize = 16 * 1024 * 1024;
/// How many exclusions a page lists; the rest are counted (the CSV has every recipient).
const EXCLUDED_SHOWN: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let form = || web::FormConfig::default().limit(FORM_LIMIT);
    // The fixed paths first: `/broadcasts/{id}` would otherwise take them.
    cfg.service(
        web::resource("/broadcasts")
            .app_data(form())
            .route(web::get().to(list::list))
            .route(web::post().to(form::confirm)),
    )
    .service(
        web::resource("/broadcasts/new")
            .app_data(form())
            .route(web::get().to(form::new_form))
            .route(web::post().to(form::back_to_edit)),
    )
    .service(
        web::resource("/broadcasts/preview")
            // A file of numbers, or the same pasted, and the form's other fields.
            .app_data(super::upload::Limit(FORM_LIMIT))
            .route(web::post().to(preview::preview)),
    )
    .route("/broadcasts/{id}", web::get().to(detail::one))
    .route(
        "/broadcasts/{id}/results.csv",
        web::get().to(detail::results),
    )
    .route("/broadcasts/{id}/{action}", web::post().to(detail::act));
}

/// Why a recipient was left out, in words (the stored reasons are codes; see
/// [`Excluded`]).
pub fn explain_reason(reason: &str) -> String {
    match reason {
        "recipient_opted_out" => "opted out: they asked to get no more messages".into(),
        "recipient_deauthorized" => "de-authorized: the business blocked this contact".into(),
        "recipient_number_changed" => "number changed: the contact moved to another number".into(),
        "outside_service_window" => {
            "outside the 24-hour window for free-form text: use a template".into()
        }
        "invalid" => "invalid: the message could not be made for this number".into(),
        r => {
            if let Some(rest) = r.strip_prefix("invalid") {
                format!("invalid number{rest}")
            } else if let Some(line) = r.strip_prefix("duplicate of line ") {
                format!("duplicate: already listed on line {line}")
            } else {
                r.to_owned()
            }
        }
    }
}

/// A status as the pages show it.
fn status_label(status: BroadcastStatus) -> &'static str {
    match status {
        BroadcastStatus::Scheduled => "scheduled",
        BroadcastStatus::Running => "sending",
        BroadcastStatus::Paused => "paused",
        // Why (the credit reserve, or its template) is shown beside it.
        BroadcastStatus::Held => "held",
        BroadcastStatus::Canceled => "canceled",
        BroadcastStatus::Completed => "completed",
    }
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// (share done 0–100, "12 of 40 done · 30.0 %").
fn progress(recipients: i64, pending: i64) -> (i64, String) {
    let done = recipients - pending;
    let share = if recipients > 0 {
        done * 100 / recipients
    } else {
        0
    };
    (
        share,
        format!(
            "{} of {} done · {}",
            format::count(done),
            format::count(recipients),
            format::percent(done, recipients)
        ),
    )
}

struct ExcludedItem {
    number: String,
    reason: String,
}

fn excluded_items(excluded: &[Excluded]) -> Vec<ExcludedItem> {
    excluded
        .iter()
        .take(EXCLUDED_SHOWN)
        .map(|e| ExcludedItem {
            number: e.number.clone(),
            reason: explain_reason(&e.reason),
        })
        .collect()
}

/// A rate in messages per second, without needless decimals.
fn rate(mps: f64) -> String {
    if (mps - mps.round()).abs() < 1e-9 {
        format!("{mps:.0}")
    } else {
        format!("{mps:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

fn path_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::NotFound(format!("no broadcast {raw:?}")))
}

async fn find(state: &AppState, id: i64) -> Result<BroadcastRow, PageError> {
    Ok(lifecycle::get(&state.pool, id).await?)
}

/// The broadcast service's errors as pages answer them. An action the broadcast's state
/// refuses is shown on the broadcast's page with a 409 instead (see `detail::act`).
impl From<LifecycleError> for PageError {
    fn from(e: LifecycleError) -> Self {
        match e {
            e @ (LifecycleError::NotFound(_) | LifecycleError::UnknownAction(_)) => {
                PageError::NotFound(e.to_string())
            }
            e @ LifecycleError::InvalidState { .. } => PageError::BadRequest(e.to_string()),
            LifecycleError::Database(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exclusion_reason_reads_as_words() {
        for (code, words) in [
            ("recipient_opted_out", "opted out"),
            ("recipient_deauthorized", "de-authorized"),
            ("recipient_number_changed", "number changed"),
            ("outside_service_window", "use a template"),
            (
                "invalid (line 2): not E.164",
                "invalid number (line 2): not E.164",
            ),
            ("duplicate of line 1", "already listed on line 1"),
        ] {
            assert!(
                explain_reason(code).contains(words),
                "{code}: {}",
                explain_reason(code)
            );
        }
        assert_eq!(explain_reason("something new"), "something new");
    }

    #[test]
    fn rates_and_progress_read_naturally() {
        assert_eq!(rate(50.0), "50");
        assert_eq!(rate(1.0 / 3.0), "0.33");
        assert_eq!(rate(2.5), "2.5");
        assert_eq!(progress(40, 10), (75, "30 of 40 done · 75.0 %".into()));
        assert_eq!(progress(40, 0), (100, "40 of 40 done · 100 %".into()));
        assert_eq!(progress(0, 0).0, 0);
    }
}
