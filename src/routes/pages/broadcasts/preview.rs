//! The preview of a broadcast before it is queued: who gets it, who is left out and why, what
//! it costs and how long it takes; with a catalogued template, which CSV column fills each
//! placeholder (re-posted to refresh, without JavaScript) and the first recipients' messages
//! as they will read. The mapping itself is `crate::broadcasts::mapping`'s.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::super::{Chrome, CurrentUser, PageError, format};
use super::form::{BroadcastForm, invalid, refusal, render_form};
use super::{ExcludedItem, excluded_items, nonempty, rate};
use crate::broadcasts::{self, Audience, BroadcastError, Preview, mapping};
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
    /// What will happen; None while the template's variables are not settled (nothing can
    /// be confirmed yet).
    summary: Option<Summary>,
    /// The catalogued template and the mapping of the CSV's columns to its placeholders.
    template: Option<TemplateSection>,
    /// Why it cannot be confirmed yet (a 400).
    error: Option<String>,
}

struct Summary {
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

/// The template, its placeholders' mapping and the first recipients' messages.
struct TemplateSection {
    sid: String,
    name: String,
    status: String,
    category: String,
    /// The CSV's columns (empty: nothing to map).
    columns: Vec<String>,
    rows: Vec<MapRow>,
    problems: Vec<String>,
    samples: Vec<SampleRow>,
    /// Its quick-reply buttons' (or list items') titles, shown under every message.
    buttons: Vec<String>,
}

/// One placeholder's select.
struct MapRow {
    placeholder: String,
    /// `{{1}}`.
    label: String,
    /// The template's sample value, as a hint.
    hint: String,
    /// (value, label, selected): nothing yet, each column (`column:<name>`), or `value`.
    options: Vec<(String, String, bool)>,
    value: String,
}

struct SampleRow {
    line: u64,
    number: String,
    pieces: Vec<PieceView>,
    missing: String,
}

/// A piece of a rendered message: `text`, `value` or `missing`.
struct PieceView {
    kind: &'static str,
    text: String,
}

impl TemplateSection {
    fn new(t: &mapping::TemplateInfo, plan: &mapping::Plan) -> Self {
        let rows = if plan.columns.is_empty() {
            Vec::new()
        } else {
            t.placeholders
                .iter()
                .map(|p| {
                    let (choice, value) = match plan.mapping.get(p) {
                        Some(mapping::Source::Column(c)) => (format!("column:{c}"), String::new()),
                        Some(mapping::Source::Value(v)) => ("value".to_owned(), v.clone()),
                        None => (String::new(), String::new()),
                    };
                    let mut options = vec![(
                        String::new(),
                        "choose a column…".to_owned(),
                        choice.is_empty(),
                    )];
                    for c in &plan.columns {
                        let v = format!("column:{c}");
                        let selected = v == choice;
                        options.push((v, format!("column {c}"), selected));
                    }
                    options.push((
                        "value".to_owned(),
                        "the same value for everyone".to_owned(),
                        choice == "value",
                    ));
                    MapRow {
                        placeholder: p.clone(),
                        label: format!("{{{{{p}}}}}"),
                        hint: t.samples.get(p).cloned().unwrap_or_default(),
                        options,
                        value,
                    }
                })
                .collect()
        };
        Self {
            sid: t.sid.clone(),
            name: t.name.clone(),
            status: t.status.clone(),
            category: t.category.clone().unwrap_or_else(|| "none yet".into()),
            columns: plan.columns.clone(),
            rows,
            problems: plan.problems.clone(),
            buttons: t.buttons.clone(),
            samples: plan
                .samples
                .iter()
                .map(|x| SampleRow {
                    line: x.line,
                    number: x.number.clone(),
                    pieces: x
                        .pieces
                        .iter()
                        .map(|p| match p {
                            mapping::Piece::Text(t) => PieceView {
                                kind: "text",
                                text: t.clone(),
                            },
                            mapping::Piece::Value(v) => PieceView {
                                kind: "value",
                                text: v.clone(),
                            },
                            mapping::Piece::Missing(n) => PieceView {
                                kind: "missing",
                                text: format!("{{{{{n}}}}} missing"),
                            },
                        })
                        .collect(),
                    missing: x
                        .missing
                        .iter()
                        .map(|n| format!("{{{{{n}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
        }
    }
}

/// How long sending takes, in words.
fn duration_words(secs: f64) -> String {
    if secs < 1.0 {
        "under a second".into()
    } else {
        format::duration_secs(secs)
    }
}

fn summary(user: &CurrentUser, f: &BroadcastForm, p: &Preview, now: DateTime<Utc>) -> Summary {
    let later = p.start_at > now + chrono::TimeDelta::seconds(5);
    let start_local = match (later, schedule::parse_tz(&f.timezone)) {
        (true, Ok(tz)) if tz != user.tz => format::local(&p.start_at, tz),
        _ => String::new(),
    };
    Summary {
        sender: p.sender.clone(),
        mps: rate(p.mps),
        recipients: format::count(p.recipient_count as i64),
        excluded_count: p.excluded.len(),
        excluded: excluded_items(&p.excluded),
        cost: format::Money::new(p.estimated_cost, &p.cost_currency),
        duration: duration_words(p.estimated_seconds),
        start: later.then(|| format::Stamp::new(p.start_at, user.tz)),
        start_local,
    }
}

fn render_preview(
    user: &CurrentUser,
    state: &AppState,
    f: &BroadcastForm,
    summary: Option<Summary>,
    template: Option<TemplateSection>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    crate::routes::pages::html_with(
        &PreviewPage {
            chrome: Chrome::for_user(user, state, "broadcasts"),
            name: nonempty(&f.name).unwrap_or_else(|| "Untitled broadcast".into()),
            body: f.body.clone(),
            media: f.media_urls(),
            content_sid: f.content_sid.trim().to_owned(),
            hidden: f.hidden(),
            summary,
            template,
            error,
        },
        status,
    )
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
    // The variable rows, the mapping's selects and an uploaded file of numbers become what
    // the preview carries.
    f.settle_mapping();
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
    let mut req = match f.request(&user.username) {
        Ok(r) => r,
        Err(m) => return invalid(&user, &state, f, m).await,
    };
    // A catalogued template and a list of numbers: the CSV's columns are mapped to its
    // placeholders and the first recipients' messages shown.
    // Another audience: the template's status and category alone.
    let mut section = None;
    let template = match req.content_sid.as_deref() {
        Some(sid) => broadcasts::mapping_template(&state.pool, sid).await?,
        None => None,
    };
    if let Some(t) = &template
        && !matches!(req.audience, Audience::Listed(_))
    {
        section = Some(TemplateSection::new(t, &mapping::plan(t, &[], None, None)));
    }
    if let (Some(t), Audience::Listed(listed)) = (template, &req.audience) {
        let shared = req.content_variables.as_ref().and_then(|v| v.as_object());
        let plan = mapping::plan(&t, listed, shared, req.mapping.as_ref());
        if plan.columns.is_empty() {
            req.mapping = None;
            f.mapping.clear();
        } else {
            f.mapping = serde_json::to_string(&plan.mapping).unwrap_or_default();
            req.mapping = Some(plan.mapping.clone());
        }
        if !plan.problems.is_empty() {
            let error = format!(
                "map every placeholder of the template before confirming: {}",
                plan.problems.join("; ")
            );
            let section = TemplateSection::new(&t, &plan);
            return render_preview(&user, &state, &f, None, Some(section), Some(error));
        }
        section = Some(TemplateSection::new(&t, &plan));
    }
    let now = Utc::now();
    match broadcasts::preview(&state.pool, &state.default_sender, &req, now).await {
        // Nothing could be confirmed: the form again, with who was left out.
        Ok(p) if p.recipients.is_empty() => {
            let refused = refusal(BroadcastError::NoRecipients(p.excluded))?;
            render_form(&user, &state, f, Some(refused)).await
        }
        Ok(p) => {
            let summary = summary(&user, &f, &p, now);
            render_preview(&user, &state, &f, Some(summary), section, None)
        }
        // With a mapping to fix, the refusal (a row with an empty cell, say) is shown beside
        // it; otherwise on the form.
        Err(BroadcastError::Invalid(m)) if section.as_ref().is_some_and(|s| !s.rows.is_empty()) => {
            render_preview(&user, &state, &f, None, section, Some(m))
        }
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
