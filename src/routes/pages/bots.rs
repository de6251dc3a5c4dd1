//! `/admin/bots` (admin): bot connections (AWS Lex V2, Dialogflow CX / ES, the built-in demo
//! bot). Add, change, delete (two steps), and try a phrase on a bot to see its answer and
//! intent. Secrets are write-only: the form never shows them, and a change that leaves a
//! secret empty keeps the stored one. Validation is `crate::bots::connections::validate`, as
//! for `/api/v1/bots`. Rules hand messages to a bot on `/admin/rules`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError};
use crate::bots::connections::{self, BotInput, BotView, InputError};
use crate::bots::runtime::Tested;
use crate::domain::bot::{BotKind, BotMessage};
use crate::routes::pages::{Allowed, CsrfOnly, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::bots as store;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/bots", web::get().to(page))
        .route("/admin/bots", web::post().to(add))
        .route("/admin/bots/{id}", web::post().to(change))
        .route("/admin/bots/{id}/delete", web::post().to(delete))
        .route("/admin/bots/{id}/test", web::post().to(test));
}

const KINDS: &[(&str, &str)] = &[
    ("demo", "demo bot (built in, no cloud)"),
    ("lex_v2", "AWS Lex V2"),
    ("dialogflow_cx", "Google Dialogflow CX"),
    ("dialogflow_es", "Google Dialogflow ES"),
];

/// The configuration fields the form shows, (name, label, secret).
const FIELDS: &[(&str, &str, bool)] = &[
    ("bot_id", "Lex: bot id", false),
    ("bot_alias_id", "Lex: bot alias id", false),
    ("locale_id", "Lex: locale (en_US)", false),
    ("region", "Lex: AWS region", false),
    (
        "access_key_id",
        "Lex: access key id (empty: the standard AWS credential chain)",
        false,
    ),
    ("secret_access_key", "Lex: secret access key", true),
    ("project", "Dialogflow: project", false),
    ("location", "Dialogflow CX: location", false),
    ("agent", "Dialogflow CX: agent id", false),
    ("environment", "Dialogflow: environment (optional)", false),
    ("language", "Dialogflow: language (en)", false),
    (
        "service_account_json",
        "Dialogflow: service-account JSON key (empty: application-default credentials)",
        true,
    ),
];

/// The bot form's fields as typed (secrets never filled in).
#[derive(Debug, Clone, Default, Deserialize)]
struct BotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    bot_id: String,
    #[serde(default)]
    bot_alias_id: String,
    #[serde(default)]
    locale_id: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    service_account_json: String,
}

#[derive(Debug, Deserialize)]
struct TestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

crate::routes::pages::guard::csrf_forms!(BotForm, TestForm);

impl BotForm {
    fn value(&self, field: &str) -> &str {
        match field {
            "bot_id" => &self.bot_id,
            "bot_alias_id" => &self.bot_alias_id,
            "locale_id" => &self.locale_id,
            "region" => &self.region,
            "access_key_id" => &self.access_key_id,
            "secret_access_key" => &self.secret_access_key,
            "project" => &self.project,
            "location" => &self.location,
            "agent" => &self.agent,
            "environment" => &self.environment,
            "language" => &self.language,
            "service_account_json" => &self.service_account_json,
            _ => "",
        }
    }

    /// The API's input: the kind's fields that were filled in (an empty secret keeps the
    /// stored one).
    fn input(&self) -> Result<BotInput, String> {
        let kind = BotKind::parse(self.kind.trim());
        let mut config = serde_json::Map::new();
        if let Some(kind) = kind {
            for field in connections::fields_of(kind) {
                let v = self.value(field).trim();
                if !v.is_empty() {
                    config.insert((*field).to_owned(), v.into());
                }
            }
        }
        let timeout_ms = match self.timeout_ms.trim() {
            "" => None,
            t => Some(
                t.parse()
                    .map_err(|_| format!("timeout: {t:?} is not a number of milliseconds"))?,
            ),
        };
        Ok(BotInput {
            name: Some(self.name.clone()),
            kind: Some(self.kind.clone()),
            config: Some(serde_json::Value::Object(config)),
            endpoint: Some(self.endpoint.clone()),
            timeout_ms,
        })
    }

    fn of(v: &BotView) -> Self {
        let text = |k: &str| {
            v.config
                .get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            csrf: String::new(),
            name: v.name.clone(),
            kind: v.kind.clone(),
            endpoint: v.endpoint.clone().unwrap_or_default(),
            timeout_ms: v.timeout_ms.to_string(),
            bot_id: text("bot_id"),
            bot_alias_id: text("bot_alias_id"),
            locale_id: text("locale_id"),
            region: text("region"),
            access_key_id: text("access_key_id"),
            secret_access_key: String::new(),
            project: text("project"),
            location: text("location"),
            agent: text("agent"),
            environment: text("environment"),
            language: text("language"),
            service_account_json: String::new(),
        }
    }
}

/// One field of the form as the template shows it.
struct FieldView {
    name: &'static str,
    label: &'static str,
    secret: bool,
    value: String,
    /// For a secret: whether one is stored.
    stored: bool,
}

struct FormView {
    /// `new` or the bot's id: ids in the markup.
    prefix: String,
    name: String,
    kind: String,
    endpoint: String,
    timeout_ms: String,
    fields: Vec<FieldView>,
}

fn form_view(prefix: String, f: &BotForm, stored_secrets: &[String]) -> FormView {
    FormView {
        prefix,
        name: f.name.clone(),
        kind: f.kind.clone(),
        endpoint: f.endpoint.clone(),
        timeout_ms: f.timeout_ms.clone(),
        fields: FIELDS
            .iter()
            .map(|(name, label, secret)| FieldView {
                name,
                label,
                secret: *secret,
                // Secrets are never sent back to the browser.
                value: if *secret {
                    String::new()
                } else {
                    f.value(name).to_owned()
                },
                stored: stored_secrets.iter().any(|s| s == name),
            })
            .collect(),
    }
}

struct BotItem {
    id: i64,
    name: String,
    kind_label: &'static str,
    summary: String,
    /// Where its credentials come from (empty for the demo bot).
    credentials: &'static str,
    endpoint: String,
    timeout_ms: i32,
    used_by: Vec<String>,
    form: FormView,
    open: bool,
    /// The test phrase and what the bot said, when this bot was just tried.
    tested: Option<TestView>,
}

struct TestView {
    text: String,
    error: Option<String>,
    lines: Vec<String>,
    intent: String,
    confidence: String,
    parameters: String,
    signal: String,
}

fn kind_label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("unknown", |(_, l)| l)
}

#[derive(Template)]
#[template(path = "bots.html")]
struct BotsPage {
    chrome: Chrome,
    bots: Vec<BotItem>,
    new: FormView,
    new_open: bool,
    kinds: &'static [(&'static str, &'static str)],
    notice: Option<String>,
    error: Option<String>,
    secret_key_configured: bool,
    handoff_keyword: String,
}

enum Refused {
    Add(BotForm),
    Change(i64, BotForm),
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Refused)>,
    tested: Option<(i64, TestView)>,
) -> Result<HttpResponse, PageError> {
    let rows = store::all(&state.pool).await?;
    let rules = crate::storage::reply_rules::all(&state.pool).await?;
    let key = state.bots.secret_key();
    let (status, error, refused) = match refused {
        Some((s, e, r)) => (s, Some(e), Some(r)),
        None => (StatusCode::OK, None, None),
    };
    let mut tested = tested;
    let bots = rows
        .iter()
        .map(|r| {
            let v = connections::view(r, key);
            let (typed, open) = match &refused {
                Some(Refused::Change(id, f)) if *id == r.id => (f.clone(), true),
                _ => (BotForm::of(&v), false),
            };
            let summary = v
                .config
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, x)| format!("{k}: {}", x.as_str().unwrap_or_default()))
                        .chain(v.secrets_set.iter().map(|s| format!("{s}: (stored)")))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .unwrap_or_default();
            BotItem {
                id: r.id,
                name: r.name.clone(),
                kind_label: kind_label(&r.kind),
                summary,
                credentials: v.credentials.unwrap_or_default(),
                endpoint: r.endpoint.clone().unwrap_or_default(),
                timeout_ms: r.timeout_ms,
                used_by: rules
                    .iter()
                    .filter(|x| x.bot_id == Some(r.id))
                    .map(|x| x.name.clone())
                    .collect(),
                form: form_view(r.id.to_string(), &typed, &v.secrets_set),
                open,
                tested: tested.take_if(|(id, _)| *id == r.id).map(|(_, t)| t),
            }
        })
        .collect();
    let (new, new_open) = match refused {
        Some(Refused::Add(f)) => (f, true),
        _ => (
            BotForm {
                kind: "demo".into(),
                ..Default::default()
            },
            false,
        ),
    };
    crate::routes::pages::html_with(
        &BotsPage {
            chrome: Chrome::for_user(user, state, "rules"),
            bots,
            new: form_view("new".into(), &new, &[]),
            new_open,
            kinds: KINDS,
            notice,
            error,
            secret_key_configured: key.is_some(),
            handoff_keyword: state.bots.settings.handoff_keyword.clone(),
        },
        status,
    )
}

async fn page(
    user: Allowed<Admin>,
    q: web::Query<super::DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let notice = q.notice(&[
        (
            "added",
            "Bot added. Hand it messages with a rule on the rules page.",
        ),
        ("changed", "Bot saved."),
        ("deleted", "Bot deleted."),
    ]);
    render(&user, &state, notice, None, None).await
}

fn done(what: &str) -> HttpResponse {
    super::done_redirect("/admin/bots", what)
}

fn reason(e: InputError) -> String {
    e.to_string()
}

async fn add(
    Posted { user, form, .. }: Posted<BotForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let validated = form.input().and_then(|i| {
        connections::validate(&i, None, state.bots.secret_key(), &state.bots.allow).map_err(reason)
    });
    let refuse = |why: String, form: BotForm| (StatusCode::BAD_REQUEST, why, Refused::Add(form));
    let new = match validated {
        Ok(n) => n,
        Err(why) => return render(&user, &state, None, Some(refuse(why, form)), None).await,
    };
    match store::insert(&state.pool, &new).await {
        Ok(row) => {
            tracing::info!(admin = %user.username, bot = row.id, kind = %row.kind, "bot added");
            Ok(done("added"))
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            let why = "another bot has this name".to_owned();
            render(&user, &state, None, Some(refuse(why, form)), None).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn find(state: &AppState, id: i64) -> Result<store::BotRow, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no bot {id}")))
}

async fn change(
    Posted { user, form, .. }: Posted<BotForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let existing = find(&state, *path).await?;
    let validated = form.input().and_then(|i| {
        connections::validate(
            &i,
            Some(&existing),
            state.bots.secret_key(),
            &state.bots.allow,
        )
        .map_err(reason)
    });
    let refuse = |why: String, form: BotForm| {
        (
            StatusCode::BAD_REQUEST,
            why,
            Refused::Change(existing.id, form),
        )
    };
    let new = match validated {
        Ok(n) => n,
        Err(why) => return render(&user, &state, None, Some(refuse(why, form)), None).await,
    };
    match store::update(&state.pool, existing.id, &new).await {
        Ok(_) => {
            state.bots.forget(existing.id);
            tracing::info!(admin = %user.username, bot = existing.id, "bot changed");
            Ok(done("changed"))
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            let why = "another bot has this name".to_owned();
            render(&user, &state, None, Some(refuse(why, form)), None).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = find(&state, *path).await?;
    let rules = store::rules_using(&state.pool, row.id).await?;
    if !rules.is_empty() {
        let why = format!(
            "“{}” is not deleted: rules hand messages to it ({}). Change or delete them first.",
            row.name,
            rules.join(", ")
        );
        let status = Some((
            StatusCode::CONFLICT,
            why,
            Refused::Change(
                row.id,
                BotForm::of(&connections::view(&row, state.bots.secret_key())),
            ),
        ));
        return render(&user, &state, None, status, None).await;
    }
    store::delete(&state.pool, row.id).await?;
    state.bots.forget(row.id);
    tracing::info!(admin = %user.username, bot = row.id, "bot deleted");
    Ok(done("deleted"))
}

async fn test(
    Posted { user, form, .. }: Posted<TestForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let row = find(&state, *path).await?;
    let text = form.text.trim().to_owned();
    let mut view = TestView {
        text: text.clone(),
        error: None,
        lines: Vec::new(),
        intent: String::new(),
        confidence: String::new(),
        parameters: String::new(),
        signal: String::new(),
    };
    if text.is_empty() || text.chars().count() > 1600 {
        view.error = Some("type a phrase (at most 1600 characters)".into());
    } else {
        match state.bots.test(&row, &text).await {
            Tested::Answer(a) => {
                view.lines = a
                    .messages
                    .iter()
                    .map(|m| match m {
                        BotMessage::Text { body } => body.clone(),
                        BotMessage::Media { url, caption } => {
                            format!("[media {url}] {}", caption.as_deref().unwrap_or_default())
                        }
                        BotMessage::Choices { body, options } => {
                            let options: Vec<String> = options
                                .iter()
                                .map(|o| match &o.value {
                                    Some(v) => format!("{} → {v}", o.title),
                                    None => o.title.clone(),
                                })
                                .collect();
                            format!("{body} [choices: {}]", options.join(" | "))
                        }
                    })
                    .collect();
                view.intent = a.intent.unwrap_or_else(|| "none".into());
                view.confidence = a
                    .confidence
                    .map_or_else(|| "not reported".into(), |c| format!("{c:.2}"));
                view.parameters = a.parameters.to_string();
                view.signal = match a.signal {
                    crate::domain::bot::BotSignal::Continue => "continue".into(),
                    crate::domain::bot::BotSignal::Fallback => "fallback (not understood)".into(),
                    crate::domain::bot::BotSignal::Handoff(r) => format!("hand-off ({r})"),
                };
            }
            Tested::Error { error, message } => {
                view.error = Some(format!("{error}: {message}"));
            }
        }
    }
    render(&user, &state, None, None, Some((row.id, view))).await
}
