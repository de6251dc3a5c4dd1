//! `GET /api/v1/messages/{sid}` and `GET /api/v1/messages`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use crate::domain::MessageSid;
use crate::error::ApiError;
use crate::routes::message_query::Parsed;
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::interactive::{self, InteractiveRow};
use crate::storage::messages::{self, EventRow, MessageRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages", web::get().to(list))
        .route("/messages", web::post().to(create))
        .route("/messages/{sid}", web::get().to(get));
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// A message as the API shows it (docs/api.md): the row's fields under the API's names (the
/// contact's profile name and WhatsApp ID left out), with its events and cost for one message.
#[derive(Debug)]
pub struct MessageView {
    row: MessageRow,
    events: Option<Vec<EventView>>,
    /// For one message sent through wadash: its estimated cost and what Twilio charged.
    cost: Option<crate::storage::costs::MessageCost>,
    /// A button tapped or a list item chosen (`interactive`, null for other messages).
    interactive: Option<InteractiveView>,
    /// For one inbound message given to a bot: what came of it (`bot`).
    bot: Option<crate::storage::bots::TurnRow>,
}

/// `interactive` of a message (docs/api.md): what the contact tapped or chose, and on which
/// message.
#[derive(Debug, Serialize)]
pub struct InteractiveView {
    /// `button` or `list`.
    kind: String,
    /// `ButtonPayload` or `ListId`, as sent.
    payload: Option<String>,
    /// `ButtonText` or `ListTitle`.
    text: Option<String>,
    /// `ListDescription`.
    description: Option<String>,
    /// `MessageType`.
    message_type: Option<String>,
    /// `OriginalRepliedMessageSid`: the message that carried the buttons.
    replied_to: Option<String>,
    /// `OriginalRepliedMessageSender`.
    replied_to_sender: Option<String>,
    /// A value was longer than 1000 bytes and was cut (the events keep it whole).
    truncated: bool,
}

impl From<InteractiveRow> for InteractiveView {
    fn from(r: InteractiveRow) -> Self {
        Self {
            kind: r.kind,
            payload: r.payload,
            text: r.title,
            description: r.description,
            message_type: r.message_type,
            replied_to: r.replied_to_sid,
            replied_to_sender: r.replied_to_sender,
            truncated: r.truncated,
        }
    }
}

impl Serialize for MessageView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let r = &self.row;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("sid", &r.sid)?;
        m.serialize_entry("direction", &r.direction)?;
        m.serialize_entry("from", &r.from_addr)?;
        m.serialize_entry("to", &r.to_addr)?;
        m.serialize_entry("body", &r.body)?;
        m.serialize_entry("media", &r.media)?;
        m.serialize_entry("status", &r.status)?;
        m.serialize_entry("error_code", &r.error_code)?;
        m.serialize_entry("error_message", &r.error_message)?;
        m.serialize_entry("price", &r.price)?;
        m.serialize_entry("price_unit", &r.price_unit)?;
        m.serialize_entry("created_at", &r.created_at)?;
        m.serialize_entry("updated_at", &r.updated_at)?;
        m.serialize_entry("sent_at", &r.sent_at)?;
        m.serialize_entry("delivered_at", &r.delivered_at)?;
        m.serialize_entry("read_at", &r.read_at)?;
        m.serialize_entry("failed_at", &r.failed_at)?;
        m.serialize_entry("interactive", &self.interactive)?;
        if let Some(events) = &self.events {
            m.serialize_entry("events", events)?;
        }
        if let Some(cost) = &self.cost {
            m.serialize_entry("cost", cost)?;
        }
        if let Some(bot) = &self.bot {
            m.serialize_entry("bot", bot)?;
        }
        m.end()
    }
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub status: String,
    pub error_code: Option<i32>,
    pub received_at: DateTime<Utc>,
}

impl From<MessageRow> for MessageView {
    fn from(row: MessageRow) -> Self {
        Self {
            row,
            events: None,
            cost: None,
            interactive: None,
            bot: None,
        }
    }
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        Self {
            status: e.status,
            error_code: e.error_code,
            received_at: e.received_at,
        }
    }
}

async fn get(
    _: ApiCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sid = MessageSid::parse(&path)
        .map_err(|_| ApiError::NotFound(format!("no message {:?}", path.as_str())))?;
    let row = messages::get(&state.pool, sid.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no message {sid}")))?;
    let events = messages::events(&state.pool, sid.as_str()).await?;
    let mut view = MessageView::from(row);
    view.events = Some(events.into_iter().map(EventView::from).collect());
    view.cost = crate::storage::costs::of_message(&state.pool, sid.as_str()).await?;
    view.interactive = interactive::for_messages(&state.pool, &[sid.as_str().to_owned()])
        .await?
        .remove(sid.as_str())
        .map(InteractiveView::from);
    view.bot = crate::storage::bots::turn(&state.pool, sid.as_str()).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<MessageView>,
    next_cursor: Option<String>,
}

async fn list(
    _: ApiCaller,
    query: web::Query<crate::routes::message_query::ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Parsed {
        filter,
        cursor,
        limit,
    } = query
        .parse(DEFAULT_LIMIT, MAX_LIMIT)
        .map_err(ApiError::BadRequest)?;
    let (rows, next) = messages::list(&state.pool, &filter, cursor.as_ref(), limit).await?;
    let inbound: Vec<String> = rows
        .iter()
        .filter(|r| r.direction == "inbound")
        .map(|r| r.sid.clone())
        .collect();
    let mut taps = interactive::for_messages(&state.pool, &inbound).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: rows
            .into_iter()
            .map(|r| {
                let tap = taps.remove(&r.sid).map(InteractiveView::from);
                let mut view = MessageView::from(r);
                view.interactive = tap;
                view
            })
            .collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// `POST /api/v1/messages` body. `media_url` may be one URL or a list;
/// `content_variables` an object or its JSON text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    to: String,
    body: Option<String>,
    media_url: Option<serde_json::Value>,
    content_sid: Option<String>,
    content_variables: Option<serde_json::Value>,
    from: Option<String>,
    /// Send free-form text even though the contact's 24-hour window is known to be closed.
    #[serde(default)]
    force: bool,
    /// The template's Meta category, for the cost estimate (a template is priced as
    /// marketing when this is not given).
    template_category: Option<crate::pricing::Category>,
}

#[derive(Debug, Serialize)]
struct Created {
    sid: String,
    status: String,
    warnings: Vec<String>,
    /// The sender's send slot the message left at (null when it could not be recorded).
    slot_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn media_urls(v: Option<serde_json::Value>) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(s)) => Ok(vec![s]),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => Ok(s),
                other => Err(ApiError::BadRequest(format!(
                    "media_url entries must be strings, got {other}"
                ))),
            })
            .collect(),
        Some(other) => Err(ApiError::BadRequest(format!(
            "media_url must be a URL or a list of URLs, got {other}"
        ))),
    }
}

async fn create(
    _: ApiCaller<Operator>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use crate::sending::{SendError, SendRequest};
    use crate::twilio::client::TwilioError;
    use actix_web::http::StatusCode;

    let req: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let content_variables = match req.content_variables {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(v @ serde_json::Value::Object(_)) => Some(v.to_string()),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "content_variables must be an object, got {other}"
            )));
        }
    };
    let send = SendRequest {
        to: req.to,
        body: req.body,
        media_urls: media_urls(req.media_url)?,
        content_sid: req.content_sid,
        content_variables,
        from: req.from,
    };
    let opts = crate::sending::SendOptions {
        force: req.force,
        category: req.template_category,
        broadcast_id: None,
        pacing: state.pacing,
        session_message: false,
    };
    match state.send(&send, opts).await {
        Ok(sent) => Ok(HttpResponse::Created().json(Created {
            sid: sent.sid,
            status: sent.status,
            warnings: sent.warnings,
            slot_at: Some(sent.slot_at),
        })),
        Err(
            e @ (SendError::Invalid(_)
            | SendError::Refused(_)
            | SendError::Database(_)
            | SendError::Busy { .. }),
        ) => Err(send_error(e)),
        Err(SendError::NotRecorded { sid, source }) => {
            tracing::error!(%sid, error = %source, "sent but not recorded");
            Ok(HttpResponse::Created().json(Created {
                sid,
                status: "unknown".into(),
                warnings: vec!["Twilio accepted the message but wadash could not record it yet; its status callbacks will".into()],
                slot_at: None,
            }))
        }
        Err(SendError::Twilio(e @ TwilioError::Api { status, .. }))
            if (400..500).contains(&status) =>
        {
            Err(ApiError::Other(
                StatusCode::UNPROCESSABLE_ENTITY,
                "twilio_rejected",
                e.to_string(),
            ))
        }
        Err(SendError::Twilio(e @ TwilioError::Timeout(_))) => Err(ApiError::Other(
            StatusCode::GATEWAY_TIMEOUT,
            "twilio_timeout",
            e.to_string(),
        )),
        Err(SendError::Twilio(e)) => Err(ApiError::Other(
            StatusCode::BAD_GATEWAY,
            "twilio_unavailable",
            e.to_string(),
        )),
    }
}

/// The API's answer to a send that did not happen.
pub fn send_error(e: crate::sending::SendError) -> ApiError {
    use crate::sending::SendError;
    use actix_web::http::StatusCode;
    match e {
        SendError::Invalid(m) => ApiError::BadRequest(m),
        // Variables that do not fit the template are a bad request, not a refusal by policy.
        SendError::Refused(r @ crate::sending::policy::Refusal::TemplateVariables { .. }) => {
            ApiError::Other(StatusCode::BAD_REQUEST, r.code(), r.to_string())
        }
        SendError::Refused(r) => ApiError::Other(StatusCode::CONFLICT, r.code(), r.to_string()),
        SendError::Database(e) => ApiError::from(e),
        e @ SendError::Busy { retry_after, .. } => {
            ApiError::RetryLater("sender_busy", e.to_string(), retry_after.as_secs())
        }
        other => ApiError::Other(
            StatusCode::BAD_GATEWAY,
            "twilio_unavailable",
            other.to_string(),
        ),
    }
}
