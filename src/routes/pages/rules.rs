//! `/admin/rules` (admin): automatic-reply rules in the order they are tried. Add, edit,
//! delete, enable or disable a rule, and move it up or down among the rules of its group
//! (keyword and regular-expression rules; image-echo rules always come after them, and `any`
//! rules last). A rule answers itself or hands the message to a bot (`/admin/bots`). Each
//! rule shows how many inbound messages it answered; a sample message (`?try_body=`, and
//! `?try_payload=` for a tapped button whose payload `button` rules match) shows
//! which rule would answer it, and with what, without sending anything. Validation is `crate::replies::rules::validate`, as for `/api/v1/rules`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError, format};
use crate::replies::rules::{self, MAX_MEDIA, RuleInput};
use crate::replies::{Sample, Trial, try_sample};
use crate::routes::pages::{Allowed, CsrfOnly, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;
use crate::storage::reply_rules::{self as store, NewRule, RuleRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/rules", web::get().to(page))
        .route("/admin/rules", web::post().to(add))
        // Before `/admin/rules/{id}`, which would take it.
        .route("/admin/rules/restore", web::post().to(restore))
        .route("/admin/rules/{id}", web::post().to(change))
        .route("/admin/rules/{id}/toggle", web::post().to(toggle))
        .route("/admin/rules/{id}/move", web::post().to(move_rule))
        .route("/admin/rules/{id}/delete", web::post().to(delete));
}

const KINDS: &[(&str, &str)] = &[
    ("keyword", "keyword"),
    ("regex", "regular expression"),
    ("image_echo", "image echo"),
    ("button", "button payload"),
    ("any", "any other text"),
];

/// A rule's fields as the forms show them.
#[derive(Debug, Clone)]
struct RuleFields {
    name: String,
    kind: String,
    pattern: String,
    sender: String,
    reply_body: String,
    /// One URL per line.
    reply_media: String,
    /// The bot's id, or empty for a fixed reply.
    bot: String,
    enabled: bool,
}

impl Default for RuleFields {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: "keyword".into(),
            pattern: String::new(),
            sender: String::new(),
            reply_body: String::new(),
            reply_media: String::new(),
            bot: String::new(),
            enabled: true,
        }
    }
}

fn fields_of(r: &RuleRow) -> RuleFields {
    RuleFields {
        name: r.name.clone(),
        kind: r.kind.clone(),
        pattern: r.pattern.clone(),
        sender: r.sender.clone().unwrap_or_default(),
        reply_body: r.reply_body.clone().unwrap_or_default(),
        reply_media: r.reply_media.join("\n"),
        bot: r.bot_id.map(|b| b.to_string()).unwrap_or_default(),
        enabled: r.enabled,
    }
}

struct RuleItem {
    id: i64,
    /// 1-based place in the evaluation order.
    place: usize,
    name: String,
    kind_label: &'static str,
    pattern: String,
    sender: String,
    reply_body: String,
    reply_media: Vec<String>,
    /// The bot that answers, by name.
    bot_name: Option<String>,
    enabled: bool,
    /// Inbound messages it answered, and when it last did.
    hits: String,
    last_hit: Option<format::Relative>,
    can_up: bool,
    can_down: bool,
    fields: RuleFields,
    open: bool,
}

fn kind_label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("unknown", |(_, l)| l)
}

/// Rules move only within their group: image echo is always tried after the text rules, and
/// `any` rules last.
fn group(r: &RuleRow) -> u8 {
    match r.kind.as_str() {
        "image_echo" => 1,
        "any" => 2,
        _ => 0,
    }
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    chrome: Chrome,
    rules: Vec<RuleItem>,
    new: RuleFields,
    kinds: &'static [(&'static str, &'static str)],
    /// The bots a rule may name: (id, name).
    bots: Vec<(String, String)>,
    opt_out_keywords: String,
    opt_in_keywords: String,
    max_media: usize,
    notice: Option<String>,
    /// A rule just deleted, to put back (undo): its fields and position.
    deleted: Option<(RuleFields, i32)>,
    error: Option<String>,
    /// The "try a message" form as typed, and what would answer it.
    trial: TrialView,
}

/// The "try a message" form and its outcome.
#[derive(Debug, Default)]
struct TrialView {
    body: String,
    to: String,
    /// A tapped button's payload (or a chosen list item's id).
    payload: String,
    image: bool,
    /// What would answer, once tried.
    outcome: Option<Outcome>,
    /// Why the sample could not be tried.
    error: Option<String>,
}

#[derive(Debug)]
struct Outcome {
    /// What answers, in words.
    headline: String,
    /// The rule that answers, by id (its row on the page).
    rule_id: Option<i64>,
    reply_body: String,
    reply_media: Vec<String>,
}

/// The longest sample text: WhatsApp's limit for a message body.
const SAMPLE_MAX_CHARS: usize = 1600;

async fn trial(state: &AppState, q: &RulesQuery) -> Result<TrialView, PageError> {
    let mut view = TrialView {
        body: q.try_body.clone().unwrap_or_default(),
        to: q.try_to.clone().unwrap_or_default(),
        payload: q.try_payload.clone().unwrap_or_default(),
        image: q.try_image.is_some(),
        outcome: None,
        error: None,
    };
    if q.try_body.is_none() && q.try_image.is_none() && q.try_payload.is_none() {
        return Ok(view);
    }
    if view.body.chars().count() > SAMPLE_MAX_CHARS {
        view.error = Some(format!(
            "the sample is longer than {SAMPLE_MAX_CHARS} characters, WhatsApp's limit"
        ));
        return Ok(view);
    }
    if view.payload.len() > crate::domain::interactive::MAX_VALUE_BYTES {
        view.error = Some(format!(
            "the payload is longer than {} bytes",
            crate::domain::interactive::MAX_VALUE_BYTES
        ));
        return Ok(view);
    }
    let to = match view.to.trim() {
        "" => None,
        t => match crate::domain::WhatsAppAddress::parse(t) {
            Ok(a) => Some(a.as_str().to_owned()),
            Err(e) => {
                view.error = Some(format!("sent to: {e}"));
                return Ok(view);
            }
        },
    };
    let sample = Sample {
        body: view.body.clone(),
        to,
        image: view.image,
        payload: Some(view.payload.trim().to_owned()).filter(|p| !p.is_empty()),
    };
    let found = try_sample(&state.pool, &state.replies, &state.reply_patterns, &sample).await?;
    view.outcome = Some(match found {
        Trial::Keyword { opt_out, reply } => Outcome {
            headline: format!(
                "An opt-{} keyword: it changes the contact's consent and {}; no rule is tried.",
                if opt_out { "out" } else { "in" },
                if reply.is_some() {
                    "gets the confirmation"
                } else {
                    "gets no confirmation (none is configured)"
                }
            ),
            rule_id: None,
            reply_body: reply.unwrap_or_default(),
            reply_media: Vec::new(),
        },
        Trial::Rule(r) if r.bot_id.is_some() => Outcome {
            headline: format!(
                "Rule “{}” ({}) hands the message to a bot (try it on the bots page).",
                r.name,
                kind_label(&r.kind)
            ),
            rule_id: Some(r.id),
            reply_body: String::new(),
            reply_media: Vec::new(),
        },
        Trial::Rule(r) => Outcome {
            headline: format!("Rule “{}” ({}) answers.", r.name, kind_label(&r.kind)),
            rule_id: Some(r.id),
            reply_body: r.reply_body.unwrap_or_default(),
            reply_media: r.reply_media,
        },
        Trial::Nothing => Outcome {
            headline: "No rule answers: the message gets no automatic reply.".into(),
            rule_id: None,
            reply_body: String::new(),
            reply_media: Vec::new(),
        },
    });
    Ok(view)
}

enum Refused {
    Add(RuleFields),
    Change(i64, RuleFields),
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Refused)>,
    trial: TrialView,
) -> Result<HttpResponse, PageError> {
    render_with_undo(user, state, notice, refused, None, trial).await
}

async fn render_with_undo(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Refused)>,
    deleted: Option<(RuleFields, i32)>,
    trial: TrialView,
) -> Result<HttpResponse, PageError> {
    let rows = store::all(&state.pool).await?;
    let bots: Vec<(String, String)> = crate::storage::bots::all(&state.pool)
        .await?
        .into_iter()
        .map(|b| (b.id.to_string(), b.name))
        .collect();
    let now = chrono::Utc::now();
    let (status, error, refused) = match refused {
        Some((s, e, r)) => (s, Some(e), Some(r)),
        None if trial.error.is_some() => (StatusCode::BAD_REQUEST, None, None),
        None => (StatusCode::OK, None, None),
    };
    let rules = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (fields, open) = match &refused {
                Some(Refused::Change(id, typed)) if *id == r.id => (typed.clone(), true),
                _ => (fields_of(r), false),
            };
            let before = i.checked_sub(1).and_then(|j| rows.get(j));
            let after = rows.get(i + 1);
            RuleItem {
                id: r.id,
                place: i + 1,
                name: r.name.clone(),
                kind_label: kind_label(&r.kind),
                pattern: r.pattern.clone(),
                sender: r.sender.clone().unwrap_or_default(),
                reply_body: r.reply_body.clone().unwrap_or_default(),
                reply_media: r.reply_media.clone(),
                bot_name: r.bot_id.map(|id| {
                    bots.iter()
                        .find(|(b, _)| *b == id.to_string())
                        .map_or_else(|| format!("bot {id}"), |(_, n)| n.clone())
                }),
                enabled: r.enabled,
                hits: format::count(r.hits),
                last_hit: format::Stamp::of(r.last_hit_at, user.tz).map(|s| s.ago(now)),
                can_up: before.is_some_and(|b| group(b) == group(r)),
                can_down: after.is_some_and(|a| group(a) == group(r)),
                fields,
                open,
            }
        })
        .collect();
    let new = match refused {
        Some(Refused::Add(typed)) => typed,
        _ => RuleFields::default(),
    };
    let keywords = &state.replies.keywords;
    crate::routes::pages::html_with(
        &RulesPage {
            chrome: Chrome::for_user(user, state, "rules"),
            rules,
            new,
            kinds: KINDS,
            bots,
            opt_out_keywords: keywords.opt_out().join(", "),
            opt_in_keywords: keywords.opt_in().join(", "),
            max_media: MAX_MEDIA,
            notice,
            deleted,
            error,
            trial,
        },
        status,
    )
}

/// The page's query: the notice after an action, and a sample message to try.
#[derive(Debug, Default, Deserialize)]
struct RulesQuery {
    done: Option<String>,
    try_body: Option<String>,
    /// The sender the sample is sent to.
    try_to: Option<String>,
    /// The checkbox: an image attached.
    try_image: Option<String>,
    /// As a tap on the button with this payload.
    try_payload: Option<String>,
}

async fn page(
    user: Allowed<Admin>,
    q: web::Query<RulesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    let trial = trial(&state, &q).await?;
    let done = super::DoneQuery {
        done: q.done,
        id: None,
    };
    let notice = done.notice(&[
        ("added", "Rule added, at the end of its group."),
        ("changed", "Rule saved."),
        ("enabled", "Rule enabled."),
        (
            "disabled",
            "Rule disabled: it is skipped until enabled again.",
        ),
        ("moved", "Rule moved."),
        ("deleted", "Rule deleted."),
        ("restored", "Rule restored where it was."),
    ]);
    render(&user, &state, notice, None, trial).await
}

fn done(what: &str) -> HttpResponse {
    super::done_redirect("/admin/rules", what)
}

#[derive(Deserialize)]
struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    reply_body: String,
    /// One URL per line.
    #[serde(default)]
    reply_media: String,
    /// The bot's id; empty for a fixed reply.
    #[serde(default)]
    bot: String,
    /// The checkbox: present when ticked.
    enabled: Option<String>,
    /// Where a restored rule goes (the undo of a delete); empty elsewhere.
    #[serde(default)]
    position: String,
}

impl RuleForm {
    fn fields(&self) -> RuleFields {
        RuleFields {
            name: self.name.clone(),
            kind: self.kind.clone(),
            pattern: self.pattern.clone(),
            sender: self.sender.clone(),
            reply_body: self.reply_body.clone(),
            reply_media: self.reply_media.clone(),
            bot: self.bot.clone(),
            enabled: self.enabled.is_some(),
        }
    }

    fn validate(&self) -> Result<NewRule, String> {
        rules::validate(&RuleInput {
            name: Some(self.name.clone()),
            kind: Some(self.kind.clone()),
            pattern: self.pattern.clone(),
            sender: Some(self.sender.clone()),
            reply_body: Some(self.reply_body.clone()),
            reply_media: self.reply_media.lines().map(str::to_owned).collect(),
            bot: match self.bot.trim() {
                "" => None,
                b => Some(b.parse().map_err(|_| format!("bot: {b:?} is not a bot"))?),
            },
            enabled: Some(self.enabled.is_some()),
        })
    }
}

/// The page again with a new rule's refusal, keeping what was typed.
async fn refuse_new(
    user: &CurrentUser,
    state: &AppState,
    form: &RuleForm,
    why: String,
) -> Result<HttpResponse, PageError> {
    let refused = Refused::Add(form.fields());
    let status = Some((StatusCode::BAD_REQUEST, why, refused));
    render(user, state, None, status, TrialView::default()).await
}

async fn add(
    Posted { user, form, .. }: Posted<RuleForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let checked = match form.validate() {
        Ok(r) => rules::check_bot(&state.pool, &r).await?.map(|()| r),
        Err(e) => Err(e),
    };
    let rule = match checked {
        Ok(r) => r,
        Err(e) => return refuse_new(&user, &state, &form, e).await,
    };
    let row = store::insert(&state.pool, &rule).await?;
    tracing::info!(admin = %user.username, rule = row.id, kind = %row.kind, "reply rule added");
    Ok(done("added"))
}

async fn find(state: &AppState, id: i64) -> Result<RuleRow, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no rule {id}")))
}

async fn change(
    Posted { user, form, .. }: Posted<RuleForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = find(&state, *path).await?.id;
    let checked = match form.validate() {
        Ok(r) => rules::check_bot(&state.pool, &r).await?.map(|()| r),
        Err(e) => Err(e),
    };
    let rule = match checked {
        Ok(r) => r,
        Err(e) => {
            let refused = Refused::Change(id, form.fields());
            return render(
                &user,
                &state,
                None,
                Some((StatusCode::BAD_REQUEST, e, refused)),
                TrialView::default(),
            )
            .await;
        }
    };
    store::update(&state.pool, id, &rule)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no rule {id}")))?;
    tracing::info!(admin = %user.username, rule = id, "reply rule changed");
    Ok(done("changed"))
}

async fn toggle(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let r = find(&state, *path).await?;
    // Only the flag changes: the rest was validated when it was saved.
    let rule = NewRule {
        enabled: !r.enabled,
        name: r.name,
        kind: r.kind,
        pattern: r.pattern,
        sender: r.sender,
        reply_body: r.reply_body,
        reply_media: r.reply_media,
        bot_id: r.bot_id,
    };
    store::update(&state.pool, r.id, &rule)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no rule {}", r.id)))?;
    tracing::info!(admin = %user.username, rule = r.id, enabled = rule.enabled, "reply rule toggled");
    Ok(done(if rule.enabled { "enabled" } else { "disabled" }))
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    csrf: String,
    /// `up` or `down`.
    #[serde(default)]
    direction: String,
}

async fn move_rule(
    Posted { form, .. }: Posted<MoveForm, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let up = match form.direction.as_str() {
        "up" => true,
        "down" => false,
        other => {
            return Err(PageError::BadRequest(format!(
                "direction must be up or down, got {other:?}"
            )));
        }
    };
    let id = find(&state, *path).await?.id;
    // At the top or bottom of its group, a move changes nothing; that is no error.
    store::move_rule(&state.pool, id, up).await?;
    Ok(done("moved"))
}

/// Deletes a rule and shows the page with a notice that offers to put it back: the page holds
/// the rule's fields in the undo form, so nothing deleted is kept on the server.
async fn delete(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let r = find(&state, *path).await?;
    if !store::delete(&state.pool, r.id).await? {
        return Err(PageError::NotFound(format!("no rule {path}")));
    }
    tracing::info!(admin = %user.username, rule = r.id, "reply rule deleted");
    let notice = format!("Rule “{}” deleted.", r.name);
    let position = r.position;
    render_with_undo(
        &user,
        &state,
        Some(notice),
        None,
        Some((fields_of(&r), position)),
        TrialView::default(),
    )
    .await
}

/// Undo of a delete: the rule again, validated as when it was added, at its former position.
async fn restore(
    Posted { user, form, .. }: Posted<RuleForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let checked = match form.validate() {
        Ok(r) => rules::check_bot(&state.pool, &r).await?.map(|()| r),
        Err(e) => Err(e),
    };
    let rule = match checked {
        Ok(r) => r,
        Err(e) => return refuse_new(&user, &state, &form, e).await,
    };
    let row = match form.position.trim().parse::<i32>() {
        Ok(p) => store::insert_at(&state.pool, &rule, p).await?,
        Err(_) => store::insert(&state.pool, &rule).await?,
    };
    tracing::info!(admin = %user.username, rule = row.id, "reply rule restored");
    Ok(done("restored"))
}

crate::routes::pages::guard::csrf_forms!(MoveForm, RuleForm);
