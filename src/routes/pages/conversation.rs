//! A conversation with one number (`/conversations/{number}`): the thread of inbound and
//! outbound messages with their statuses, images shown through the media proxy, other media
//! as links, shared locations with a map link; the contact's consent and 24-hour window; and
//! a reply box for operators that goes through the same send policy as every other send.
//! Media are shown as `pages::media` decides (received images through its proxy); a tapped
//! button or chosen list item as `pages::tap` words it.
//!
//! When bots talk in the conversation (src/bots), the page shows each conversation's bot
//! state (the bot answering, or waiting for a human since when and why) with "Hand to a
//! human" / "Give back to the bot" buttons for operators, and under each inbound message the
//! bot that answered it, the intent, confidence and parameters (or why it gave no answer).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::format;
use super::messages::FragmentQuery;
use super::{Chrome, CurrentUser, PageError, html};
use crate::domain::PhoneNumber;
use crate::domain::consent::Consent;
use crate::domain::window::{self, Window};
use crate::routes::pages::Posted;
use crate::routes::roles::Operator;
use crate::sending::{self, SendError, SendRequest};
use crate::state::AppState;
use crate::storage::messages::{self, Cursor, MessageFilter, MessageRow};

const PAGE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/conversations/{number}", web::get().to(page))
        .route("/conversations/{number}/reply", web::post().to(reply))
        .route("/conversations/{number}/handoff", web::post().to(take))
        .route(
            "/conversations/{number}/give-back",
            web::post().to(give_back),
        );
}

pub struct Bubble {
    pub sid: String,
    pub direction: &'static str,
    pub text: String,
    pub status: String,
    pub when: format::Stamp,
    /// Proxy URLs of images to show.
    pub images: Vec<String>,
    /// Other media: (label, URL).
    pub files: Vec<(String, String)>,
    /// Stored media that are not web links, shown as text.
    pub unlinked: Vec<String>,
    pub location: Option<Location>,
    /// A button tapped or a list item chosen.
    pub tap: Option<super::tap::TapView>,
    /// The bot turn this inbound message was, if a bot was asked.
    pub bot: Option<BotTurnView>,
}

/// What a bot made of an inbound message.
pub struct BotTurnView {
    pub bot: String,
    /// `answered`, or why not (`timeout`, `throttled`, `paused`, …; `pending` while asked).
    pub outcome: String,
    pub intent: String,
    pub confidence: String,
    /// `name: value` of each slot or parameter.
    pub parameters: Vec<String>,
    pub signal: String,
    pub late: bool,
    pub error: String,
}

impl BotTurnView {
    pub fn of(t: crate::storage::bots::TurnRow) -> Self {
        let parameters = t
            .parameters
            .and_then(|p| p.0.as_object().cloned())
            .map(|o| {
                o.iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}: {s}"),
                        serde_json::Value::Null => format!("{k}: (not filled)"),
                        other => format!("{k}: {other}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            bot: t.bot_name,
            outcome: t.outcome,
            intent: t.intent.unwrap_or_default(),
            confidence: t.confidence.map(|c| format!("{c:.2}")).unwrap_or_default(),
            parameters,
            signal: t.signal.unwrap_or_default(),
            late: t.late,
            error: t.error.unwrap_or_default(),
        }
    }
}

/// One conversation's bot state (per sender the number wrote to).
pub struct BotState {
    pub sender: String,
    pub bot: String,
    /// Waiting for a human: since when, and why.
    pub waiting: Option<(format::Relative, String)>,
    pub session: String,
}

pub struct Location {
    pub lat: String,
    pub lon: String,
    pub label: String,
    pub map_url: String,
}

/// What the page says about the contact.
pub struct ContactInfo {
    pub consent: &'static str,
    pub consent_label: &'static str,
    pub window: &'static str,
    pub time_left: String,
}

#[derive(Template)]
#[template(path = "conversation.html", blocks = ["live"])]
struct ConversationPage {
    chrome: Chrome,
    live: bool,
    number: String,
    profile: String,
    contact: ContactInfo,
    previous_numbers: Vec<String>,
    new_number: Option<String>,
    bubbles: Vec<Bubble>,
    older: Option<String>,
    /// Why the reply box is closed, if it is.
    blocked: Option<String>,
    window_closed: bool,
    body: String,
    media_url: String,
    content_sid: String,
    error: Option<String>,
    warnings: Vec<String>,
    /// The template picker's choices, offered when the window is closed.
    templates: Vec<super::template_choices::TemplateChoice>,
    /// Bot state per sender; empty when no bot ever talked here.
    bot_states: Vec<BotState>,
    /// Whether a conversation of this number waits for a human.
    waiting: bool,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    cursor: Option<String>,
}

/// Inbound location messages carry their coordinates only in the raw parameters.
async fn locations(
    pool: &sqlx::PgPool,
    sids: &[String],
) -> sqlx::Result<HashMap<String, Location>> {
    let rows = messages::inbound_locations(pool, sids).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (sid, label) = (r.sid, r.label);
            let (lat, lon) = (r.latitude?, r.longitude?);
            let (la, lo) = (lat.parse::<f64>().ok()?, lon.parse::<f64>().ok()?);
            if !((-90.0..=90.0).contains(&la) && (-180.0..=180.0).contains(&lo)) {
                return None;
            }
            let map_url =
                format!("https://www.openstreetmap.org/?mlat={la}&mlon={lo}#map=16/{la}/{lo}");
            Some((
                sid,
                Location {
                    lat: la.to_string(),
                    lon: lo.to_string(),
                    label: label.unwrap_or_default(),
                    map_url,
                },
            ))
        })
        .collect())
}

fn bubble(
    m: &MessageRow,
    location: Option<Location>,
    tap: Option<super::tap::TapView>,
    account_sid: &str,
    tz: chrono_tz::Tz,
) -> Bubble {
    let media = super::media::links(m, account_sid);
    Bubble {
        sid: m.sid.clone(),
        direction: if m.direction == "inbound" {
            "inbound"
        } else {
            "outbound"
        },
        text: m.body.clone().unwrap_or_default(),
        status: m.status.clone().unwrap_or_else(|| "unknown".into()),
        when: format::Stamp::new(m.created_at, tz),
        images: media.images,
        files: media.files,
        unlinked: media.unlinked,
        location,
        tap,
        bot: None,
    }
}

struct Draft {
    body: String,
    media_url: String,
    content_sid: String,
    error: Option<String>,
    warnings: Vec<String>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    number: &PhoneNumber,
    cursor: Option<Cursor>,
    draft: Draft,
) -> Result<ConversationPage, PageError> {
    let filter = MessageFilter {
        number: Some(number.as_str().to_owned()),
        ..MessageFilter::default()
    };
    let (mut rows, next) = messages::list(&state.pool, &filter, cursor.as_ref(), PAGE).await?;
    rows.reverse();
    let sids: Vec<String> = rows
        .iter()
        .filter(|m| m.direction == "inbound")
        .map(|m| m.sid.clone())
        .collect();
    let mut places = locations(&state.pool, &sids).await?;
    let mut taps = crate::storage::interactive::for_messages(&state.pool, &sids).await?;
    let mut turns: HashMap<String, BotTurnView> =
        crate::storage::bots::turns_for(&state.pool, &sids)
            .await?
            .into_iter()
            .map(|t| (t.inbound_sid.clone(), BotTurnView::of(t)))
            .collect();
    let bot_states: Vec<BotState> =
        crate::storage::bots::conversations_of_number(&state.pool, number.as_str())
            .await?
            .into_iter()
            .map(|(c, name)| BotState {
                sender: c.sender,
                bot: name.unwrap_or_default(),
                waiting: c.handoff_since.map(|at| {
                    (
                        format::Stamp::new(at, user.tz).ago(Utc::now()),
                        c.handoff_reason.unwrap_or_default(),
                    )
                }),
                session: c.session_id.unwrap_or_default(),
            })
            .collect();
    let waiting = bot_states.iter().any(|b| b.waiting.is_some());
    let recipient = crate::storage::contacts::recipient(&state.pool, number.as_str()).await?;
    let now = Utc::now();
    let (contact, previous_numbers, profile) = match &recipient.contact {
        Some(c) => {
            let w = Window::at(c.last_inbound_at, now);
            let previous = crate::storage::contacts::retired_of(&state.pool, c.id)
                .await?
                .into_iter()
                .map(|r| r.number)
                .collect();
            let consent = if c.is_deauthorized() {
                "deauthorized"
            } else {
                c.consent().as_str()
            };
            (
                ContactInfo {
                    consent,
                    consent_label: consent_label(consent),
                    window: window_name(w),
                    time_left: window::time_left(w, now),
                },
                previous,
                c.profile_name.clone().unwrap_or_default(),
            )
        }
        None => (
            ContactInfo {
                consent: "unknown",
                consent_label: consent_label("unknown"),
                window: "unknown",
                time_left: window::time_left(Window::Unknown, now),
            },
            Vec::new(),
            String::new(),
        ),
    };
    let blocked = match (&recipient.contact, &recipient.retired) {
        (Some(c), _) if c.is_deauthorized() => {
            Some("This contact is de-authorized: nothing can be sent to them.".to_owned())
        }
        (Some(c), _) if c.consent() == Consent::OptedOut => {
            Some("This contact opted out: nothing can be sent until they send START.".to_owned())
        }
        (None, Some(r)) => Some(format!(
            "This number was replaced by {}: write to the new number.",
            r.replaced_by
        )),
        _ => None,
    };
    let window_closed = contact.window == "closed";
    let templates = match window_closed && blocked.is_none() {
        true => super::template_choices::load(state).await?,
        false => Vec::new(),
    };
    Ok(ConversationPage {
        templates,
        live: cursor.is_none(),
        chrome: Chrome::for_user(user, state, "contacts"),
        number: number.as_str().to_owned(),
        profile,
        contact,
        previous_numbers,
        new_number: recipient.retired.map(|r| r.replaced_by),
        bubbles: rows
            .iter()
            .map(|m| Bubble {
                bot: turns.remove(&m.sid),
                ..bubble(
                    m,
                    places.remove(&m.sid),
                    taps.remove(&m.sid).map(super::tap::TapView::from),
                    state.twilio.account_sid(),
                    user.tz,
                )
            })
            .collect(),
        bot_states,
        waiting,
        older: next.map(|c| c.encode()),
        blocked,
        window_closed,
        body: draft.body,
        media_url: draft.media_url,
        content_sid: draft.content_sid,
        error: draft.error,
        warnings: draft.warnings,
    })
}

fn consent_label(consent: &str) -> &'static str {
    match consent {
        "opted_in" => "opted in",
        "opted_out" => "opted out",
        "deauthorized" => "de-authorized",
        _ => "consent unknown",
    }
}

fn window_name(w: Window) -> &'static str {
    match w {
        Window::Open { .. } => "open",
        Window::Closed { .. } => "closed",
        Window::Unknown => "unknown",
    }
}

async fn page(
    req: actix_web::HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    fragment: web::Query<FragmentQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = PhoneNumber::parse(&path.into_inner()).map_err(PageError::BadRequest)?;
    let q = query.into_inner();
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(Cursor::decode(c).ok_or_else(|| PageError::BadRequest("bad cursor".into()))?)
        }
        None => None,
    };
    let draft = Draft {
        body: String::new(),
        media_url: String::new(),
        content_sid: String::new(),
        error: None,
        warnings: super::warnings_of(&req),
    };
    let page = render(&user, &state, &number, cursor, draft).await?;
    if fragment.live() {
        return html(&page.as_live());
    }
    html(&page)
}

#[derive(serde::Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    media_url: String,
    #[serde(default)]
    content_sid: String,
    force: Option<String>,
}

async fn reply(
    Posted { user, form: f, .. }: Posted<ReplyForm, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = PhoneNumber::parse(&path.into_inner()).map_err(PageError::BadRequest)?;
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let request = SendRequest {
        to: number.as_str().to_owned(),
        body: opt(&f.body),
        media_urls: opt(&f.media_url).into_iter().collect(),
        content_sid: opt(&f.content_sid),
        content_variables: None,
        from: None,
    };
    let opts = sending::SendOptions {
        force: f.force.is_some(),
        pacing: state.pacing,
        ..Default::default()
    };
    let outcome = state.send(&request, opts).await;
    let status = match &outcome {
        Ok(sent) => {
            tracing::info!(username = %user.username, sid = %sent.sid, "reply sent from a conversation");
            let location = super::with_warnings(
                &format!("/conversations/{}", number.as_str()),
                &sent.warnings,
            );
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", location))
                .finish());
        }
        Err(SendError::NotRecorded { .. }) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/conversations/{}", number.as_str())))
                .finish());
        }
        Err(SendError::Refused(_)) => actix_web::http::StatusCode::CONFLICT,
        Err(SendError::Busy { .. }) => actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        Err(_) => actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
    };
    let error = outcome.err().map(|e| e.to_string());
    let draft = Draft {
        body: f.body,
        media_url: f.media_url,
        content_sid: f.content_sid,
        error,
        warnings: Vec::new(),
    };
    let page = render(&user, &state, &number, None, draft).await?;
    crate::routes::pages::html_with(&page, status)
}

crate::routes::pages::guard::csrf_forms!(ReplyForm);

/// "Hand to a human": the bot stops answering this number's conversations.
async fn take(
    Posted { user, .. }: Posted<crate::routes::pages::CsrfOnly, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = PhoneNumber::parse(&path.into_inner()).map_err(PageError::BadRequest)?;
    match crate::bots::handoff::hand_off(&state.pool, &number).await {
        Ok(_) => {}
        Err(crate::bots::handoff::HandoffError::NoConversation(n)) => {
            return Err(PageError::BadRequest(format!(
                "{n} has not written: there is no conversation to hand over"
            )));
        }
        Err(crate::bots::handoff::HandoffError::Database(e)) => return Err(e.into()),
    }
    tracing::info!(username = %user.username, number = %number.as_str(), "conversation handed to a human");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/conversations/{}", number.as_str())))
        .finish())
}

/// "Give back to the bot": out of the queue; the bot answers the next message.
async fn give_back(
    Posted { user, .. }: Posted<crate::routes::pages::CsrfOnly, Operator>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let number = PhoneNumber::parse(&path.into_inner()).map_err(PageError::BadRequest)?;
    crate::bots::handoff::give_back(&state.pool, &number)
        .await
        .map_err(|e| match e {
            crate::bots::handoff::HandoffError::Database(e) => PageError::from(e),
            other => PageError::BadRequest(other.to_string()),
        })?;
    tracing::info!(username = %user.username, number = %number.as_str(), "conversation given back to the bot");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/conversations/{}", number.as_str())))
        .finish())
}
