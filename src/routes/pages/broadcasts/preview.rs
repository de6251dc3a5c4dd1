//! The preview of a broadcast before it is queued: who gets it, who is left out and why, what
//! it costs and how long it takes.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::super::{Chrome, CurrentUser, PageError, format, html};
use super::form::{BroadcastForm, invalid, refusal, render_form};
use super::{ExcludedItem, excluded_items, nonempty, rate};
use crate::broadcasts::{self, BroadcastError, Preview};
use crate::reminders::schedule;
use crate::routes::pages::upload::Uploaded;
use crate::routes::roles::Operator;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "broadcast_preview.html")]
struct PreviewPage<'a> {
    chrome: Chrome,
    name: String,
    body: String,
    media: Vec<String>,
    content_sid: String,
    hidden: Vec<(&'static str, &'a str)>,
    sender: String,
    mps: String,
    recipients: String,
    excluded_count: usize,
    excluded: Vec<ExcludedItem>,
    cost: format::Money,
    duration: String,
    /// None when it starts at once.
    start: Option<format::Stamp>,
    /// The start in the form's zone, when that is not the reader's.
    start_local: String,
}

/// How long sending takes, in words.
fn duration_words(secs: f64) -> String {
    if secs < 1.0 {
        "under a second".into()
    } else {
        format::duration_secs(secs)
    }
}

fn render_preview(
    user: &CurrentUser,
    state: &AppState,
    f: &BroadcastForm,
    p: &Preview,
    now: DateTime<Utc>,
) -> Result<HttpResponse, PageError> {
    let later = p.start_at > now + chrono::TimeDelta::seconds(5);
    let start_local = match (later, schedule::parse_tz(&f.timezone)) {
        (true, Ok(tz)) if tz != user.tz => format::local(&p.start_at, tz),
        _ => String::new(),
    };
    html(&PreviewPage {
        chrome: Chrome::for_user(user, state, "broadcasts"),
        name: nonempty(&f.name).unwrap_or_else(|| "Untitled broadcast".into()),
        body: f.body.clone(),
        media: f.media_urls(),
        content_sid: f.content_sid.trim().to_owned(),
        hidden: f.hidden(),
        sender: p.sender.clone(),
        mps: rate(p.mps),
        recipients: format::count(p.recipient_count as i64),
        excluded_count: p.excluded.len(),
        excluded: excluded_items(&p.excluded),
        cost: format::Money::new(p.estimated_cost, &p.cost_currency),
        duration: duration_words(p.estimated_seconds),
        start: later.then(|| format::Stamp::new(p.start_at, user.tz)),
        start_local,
    })
}

pub(super) async fn preview(
    Uploaded {
        user,
        form: mut f,
        file,
        ..
    }: Uploaded<BroadcastForm, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    // The variable rows and an uploaded file of numbers become what the preview carries.
    if let Err(m) = f
        .settle_variables()
        .and_then(|()| f.take_file(file.as_ref()))
    {
        return invalid(&user, &state, f, m).await;
    }
    // A fresh key for each preview: its "Confirm" queues at most one broadcast.
    let mut key = [0u8; 16];
    rand::fill(&mut key);
    f.request_key = crate::domain::hex(&key);
    let req = match f.request(&user.username) {
        Ok(r) => r,
        Err(m) => return invalid(&user, &state, f, m).await,
    };
    let now = Utc::now();
    match broadcasts::preview(&state.pool, &state.default_sender, &req, now).await {
        // Nothing could be confirmed: the form again, with who was left out.
        Ok(p) if p.recipients.is_empty() => {
            let refused = refusal(BroadcastError::NoRecipients(p.excluded))?;
            render_form(&user, &state, f, Some(refused)).await
        }
        Ok(p) => render_preview(&user, &state, &f, &p, now),
        Err(e) => {
            let refused = refusal(e)?;
            render_form(&user, &state, f, Some(refused)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(0.4), "under a second");
        assert_eq!(duration_words(90.0), "1 min 30 s");
    }
}
