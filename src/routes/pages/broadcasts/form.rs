//! The form of a new broadcast: what the operator typed, carried to the preview and back, the
//! refusals shown on it, and the confirmation that queues the broadcast.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use std::collections::HashMap;

use super::super::variables::{self, VarRow};
use super::super::{Chrome, CurrentUser, PageError, upload};
use super::{ExcludedItem, excluded_items, nonempty};
use crate::broadcasts::{self, Audience, BroadcastError, BroadcastRequest};
use crate::broadcasts::{audience, mapping};
use crate::reminders::{parse_at, schedule};
use crate::routes::pages::{Allowed, Posted};
use crate::routes::roles::Operator;
use crate::state::AppState;

/// What the operator typed, carried from the form to the preview and back.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct BroadcastForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) body: String,
    /// One URL per line.
    #[serde(default)]
    pub(super) media: String,
    #[serde(default)]
    pub(super) content_sid: String,
    /// Empty, or the template's category for the cost estimate.
    #[serde(default)]
    pub(super) template_category: String,
    /// A JSON object.
    #[serde(default)]
    pub(super) content_variables: String,
    #[serde(default)]
    pub(super) sender: String,
    /// `paste`, `tag` or `all`.
    #[serde(default)]
    pub(super) audience: String,
    /// Numbers, or CSV text with a `number` column.
    #[serde(default)]
    pub(super) numbers: String,
    #[serde(default)]
    pub(super) tag: String,
    /// `datetime-local`: a wall time in `timezone`.
    #[serde(default)]
    pub(super) start_local: String,
    #[serde(default)]
    pub(super) timezone: String,
    /// Which CSV column (or value for everyone) fills each placeholder, as JSON
    /// (`broadcasts::mapping::Mapping`); chosen on the preview, carried to "Confirm".
    #[serde(default)]
    pub(super) mapping: String,
    /// Made for each preview and carried to "Confirm": confirming twice (a double click, a
    /// resubmitted form) finds the first broadcast instead of queuing another.
    #[serde(default)]
    pub(super) request_key: String,
    /// The template variable rows (`var_name_0`, `var_value_0`, …), gathered into
    /// `content_variables` by [`BroadcastForm::settle_variables`].
    #[serde(flatten)]
    pub(super) rest: HashMap<String, String>,
}

impl BroadcastForm {
    fn blank(default_sender: String) -> Self {
        Self {
            sender: default_sender,
            audience: "paste".into(),
            timezone: "UTC".into(),
            ..Self::default()
        }
    }

    /// The mapping chosen in the preview's selects (`map_1` = `column:<name>`, `value` or
    /// empty; `value_1` the value for everyone), in place of the carried `mapping` when the
    /// selects were posted. Call before [`Self::settle_variables`], which clears the rest.
    pub(super) fn settle_mapping(&mut self) {
        let mut m = mapping::Mapping::new();
        let mut posted = false;
        for (key, choice) in &self.rest {
            let Some(p) = key.strip_prefix("map_") else {
                continue;
            };
            posted = true;
            if let Some(column) = choice.strip_prefix("column:") {
                m.insert(p.to_owned(), mapping::Source::Column(column.to_owned()));
            } else if choice == "value" {
                let v = self.rest.get(&format!("value_{p}")).cloned();
                m.insert(p.to_owned(), mapping::Source::Value(v.unwrap_or_default()));
            }
        }
        if posted {
            self.mapping = serde_json::to_string(&m).unwrap_or_default();
        }
    }

    /// Gathers the variable rows into `content_variables` (the JSON the preview carries and
    /// the service reads), or says what is wrong with them.
    pub(super) fn settle_variables(&mut self) -> Result<(), String> {
        let assembled = variables::assemble(&self.rest, &self.content_variables)?;
        self.content_variables = assembled.unwrap_or_default();
        self.rest.clear();
        Ok(())
    }

    /// The numbers from an uploaded file, in place of any pasted: the same parsing as pasted
    /// text (one number per line, or a CSV with a `number` column).
    pub(super) fn take_file(&mut self, file: Option<&upload::File>) -> Result<(), String> {
        let Some(file) = file else { return Ok(()) };
        let text = upload::text_of(file)?;
        if text.trim().is_empty() {
            return Err(format!("{} is empty", file.name));
        }
        self.numbers = text;
        self.audience = "paste".into();
        Ok(())
    }

    /// The form's fields as (name, value), for the preview's hidden inputs.
    pub(super) fn hidden(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("name", &self.name),
            ("body", &self.body),
            ("media", &self.media),
            ("content_sid", &self.content_sid),
            ("template_category", &self.template_category),
            ("content_variables", &self.content_variables),
            ("mapping", &self.mapping),
            ("sender", &self.sender),
            ("audience", &self.audience),
            ("numbers", &self.numbers),
            ("tag", &self.tag),
            ("start_local", &self.start_local),
            ("timezone", &self.timezone),
            ("request_key", &self.request_key),
        ]
    }

    pub(super) fn media_urls(&self) -> Vec<String> {
        self.media
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The broadcast asked for, or what is wrong with the form.
    pub(super) fn request(&self, created_by: &str) -> Result<BroadcastRequest, String> {
        let audience = match self.audience.as_str() {
            "paste" => {
                if self.numbers.trim().is_empty() {
                    return Err(
                        "paste at least one number (or a CSV), upload a file of them, or choose another audience"
                            .into(),
                    );
                }
                Audience::Listed(audience::parse_pasted(&self.numbers)?)
            }
            "tag" => {
                if self.tag.trim().is_empty() {
                    return Err("choose the tag whose contacts get the broadcast".into());
                }
                Audience::Tag(self.tag.clone())
            }
            "all" => Audience::AllOptedIn,
            _ => {
                return Err(
                    "choose the audience: numbers pasted, contacts with a tag, or all opted-in contacts"
                        .into(),
                );
            }
        };
        let content_variables = match nonempty(&self.content_variables) {
            None => None,
            Some(text) => Some(serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                format!("the template variables must be a JSON object such as {{\"1\": \"Ada\"}}: {e}")
            })?),
        };
        let mapping = match nonempty(&self.mapping) {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<mapping::Mapping>(&text)
                    .map_err(|e| format!("the variable mapping cannot be read: {e}"))?,
            ),
        };
        let start_at = match nonempty(&self.start_local) {
            None => None,
            Some(local) => {
                let zone = nonempty(&self.timezone).unwrap_or_else(|| "UTC".into());
                let tz = schedule::parse_tz(&zone).map_err(|e| format!("start time: {e}"))?;
                Some(parse_at(&local, tz).map_err(|e| format!("start time: {e}"))?)
            }
        };
        Ok(BroadcastRequest {
            name: nonempty(&self.name),
            body: nonempty(&self.body).map(|_| self.body.clone()),
            media: self.media_urls(),
            content_sid: nonempty(&self.content_sid),
            content_variables,
            sender: nonempty(&self.sender),
            start_at,
            audience,
            created_by: created_by.to_owned(),
            reminder_id: None,
            request_key: nonempty(&self.request_key).map(|k| format!("page:{k}")),
            template_category: crate::pricing::Category::parse(self.template_category.trim()).ok(),
            mapping,
        })
    }
}

#[derive(Template)]
#[template(path = "broadcast_new.html")]
struct FormPage {
    chrome: Chrome,
    f: BroadcastForm,
    /// (address, label), the default sender first.
    senders: Vec<(String, String)>,
    /// Existing tags with how many contacts have each.
    tags: Vec<(String, i64)>,
    error: Option<String>,
    /// When nobody is left: who was left out, and why.
    excluded: Vec<ExcludedItem>,
    /// The template variables as rows of fields.
    vars: Vec<VarRow>,
    /// The template picker's choices.
    templates: Vec<crate::routes::pages::template_choices::TemplateChoice>,
}

/// The senders to choose from: the current default first, then the other active ones.
async fn sender_options(state: &AppState) -> Result<Vec<(String, String)>, PageError> {
    let (default, others) = super::super::send::sender_choices(state).await?;
    let mut out = vec![(default, "default".to_owned())];
    out.extend(others);
    Ok(out)
}

pub(super) async fn render_form(
    user: &CurrentUser,
    state: &AppState,
    f: BroadcastForm,
    refused: Option<(StatusCode, String, Vec<ExcludedItem>)>,
) -> Result<HttpResponse, PageError> {
    let (senders, tags) = tokio::try_join!(sender_options(state), async {
        crate::storage::contacts::tags(&state.pool)
            .await
            .map_err(PageError::from)
    })?;
    let (status, error, excluded) = match refused {
        Some((s, e, x)) => (s, Some(e), x),
        None => (StatusCode::OK, None, Vec::new()),
    };
    let templates = crate::routes::pages::template_choices::load(state).await?;
    crate::routes::pages::html_with(
        &FormPage {
            templates,
            chrome: Chrome::for_user(user, state, "broadcasts"),
            vars: variables::rows(&f.content_variables),
            f,
            senders,
            tags,
            error,
            excluded,
        },
        status,
    )
}

pub(super) async fn new_form(
    user: Allowed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (default, _) = super::super::send::sender_choices(&state).await?;
    render_form(&user, &state, BroadcastForm::blank(default), None).await
}

/// "Back to edit" from the preview: the form again, as it was filled.
pub(super) async fn back_to_edit(
    Posted { user, mut form, .. }: Posted<BroadcastForm, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    form.settle_mapping();
    if let Err(e) = form.settle_variables() {
        return invalid(&user, &state, form, e).await;
    }
    render_form(&user, &state, form, None).await
}

/// The form again, with what is wrong with it (a 400).
pub(super) async fn invalid(
    user: &CurrentUser,
    state: &AppState,
    f: BroadcastForm,
    message: String,
) -> Result<HttpResponse, PageError> {
    render_form(
        user,
        state,
        f,
        Some((StatusCode::BAD_REQUEST, message, vec![])),
    )
    .await
}

/// A refusal as the API would answer it: its status, the message, and who was left out.
pub(super) fn refusal(
    e: BroadcastError,
) -> Result<(StatusCode, String, Vec<ExcludedItem>), PageError> {
    let message = e.to_string();
    Ok(match e {
        BroadcastError::Invalid(_) => (StatusCode::BAD_REQUEST, message, Vec::new()),
        BroadcastError::Refused(_) => (StatusCode::CONFLICT, message, Vec::new()),
        BroadcastError::NoRecipients(excluded) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
            excluded_items(&excluded),
        ),
        BroadcastError::Duplicate(_) => (StatusCode::CONFLICT, message, Vec::new()),
        BroadcastError::Pricing(_) => (StatusCode::UNPROCESSABLE_ENTITY, message, Vec::new()),
        BroadcastError::Database(db) => return Err(db.into()),
    })
}

/// "Confirm and send": validated again (contacts may have changed since the preview), queued.
pub(super) async fn confirm(
    Posted {
        user, form: mut f, ..
    }: Posted<BroadcastForm, Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    f.settle_mapping();
    if let Err(m) = f.settle_variables() {
        return invalid(&user, &state, f, m).await;
    }
    let req = match f.request(&user.username) {
        Ok(r) => r,
        Err(m) => return invalid(&user, &state, f, m).await,
    };
    match broadcasts::create(
        &state.pool,
        &state.default_sender,
        state.broadcast_reserve,
        &req,
        Utc::now(),
    )
    .await
    {
        // Confirmed twice: the first confirmation's broadcast.
        Err(BroadcastError::Duplicate(id)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/broadcasts/{id}")))
            .finish()),
        Ok((row, p)) => {
            tracing::info!(
                broadcast = row.id,
                recipients = p.recipient_count,
                username = %user.username,
                "broadcast queued from the dashboard"
            );
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/broadcasts/{}", row.id)))
                .finish())
        }
        Err(e) => {
            let refused = refusal(e)?;
            render_form(&user, &state, f, Some(refused)).await
        }
    }
}

crate::routes::pages::guard::csrf_forms!(BroadcastForm);
