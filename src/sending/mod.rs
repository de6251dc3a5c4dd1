//! One-way sending (the prototype's `wa-cli-send`): validate the request, create the message
//! at Twilio, and record what Twilio answered through the state machine.
//!
//! Twilio sends no status callback for the status in its create response (`queued`,
//! `accepted`, `scheduled`), so it is stored at once as an event of source `api`. A callback
//! for the same sid may arrive before the create call returns; because the state machine
//! keeps the highest-ranked status, recording `queued` afterwards never demotes it.
//!
//! Every send passes [`policy`] first: consent, de-authorization, changed numbers, the
//! 24-hour window and the sender's status. The API, the CLI, the dashboard and broadcasts all
//! send through [`send`], so none can skip it.

pub mod pacing;
pub mod policy;

use chrono::Utc;

use crate::costs::CostFacts;
use crate::pricing::Category;
use crate::pricing::book::PriceBook;

use crate::domain::record::{EventRecord, Media, MessageFacts};
use crate::domain::{Direction, EventSource, MessageSid, PhoneNumber, WhatsAppAddress};
use crate::twilio::client::{CreateMessage, MessageResource, Sender, TwilioClient, TwilioError};

/// What to send. `from` overrides the configured default sender.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub to: String,
    pub body: Option<String>,
    pub media_urls: Vec<String>,
    pub content_sid: Option<String>,
    /// A JSON object as text, e.g. `{"1":"Ada"}`.
    pub content_variables: Option<String>,
    pub from: Option<String>,
}

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub sid: String,
    pub status: String,
    pub warnings: Vec<String>,
    /// The sender's send slot the message left at (see [`pacing`]).
    pub slot_at: chrono::DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request itself is wrong; nothing was sent.
    #[error("{0}")]
    Invalid(String),
    /// Twilio refused or could not be reached.
    #[error(transparent)]
    Twilio(#[from] TwilioError),
    /// Twilio accepted the message but wadash could not record it (it will be reconciled
    /// from its status callbacks).
    #[error("the message {sid} was sent but could not be recorded: {source}")]
    NotRecorded { sid: String, source: sqlx::Error },
    /// The policy refuses it; nothing was sent.
    #[error("{0}")]
    Refused(policy::Refusal),
    /// The database could not be asked; nothing was sent.
    #[error("the database is unavailable, nothing was sent: {0}")]
    Database(#[source] sqlx::Error),
    /// The sender's send slots are taken further ahead than a send may wait; nothing was sent.
    #[error(
        "{sender} is sending as fast as its limit allows; nothing was sent, try again in {} s",
        retry_after.as_secs()
    )]
    Busy {
        sender: String,
        retry_after: std::time::Duration,
    },
}

/// How a send may bend the rules, and what pricing should know of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Send free-form text outside a known-closed 24-hour window anyway.
    pub force: bool,
    /// The template's category, for the cost estimate (a template is priced as marketing
    /// when this is not given).
    pub category: Option<Category>,
    /// The broadcast this message belongs to.
    pub broadcast_id: Option<i64>,
    /// How the send takes its sender's slot (broadcasts take theirs in the runner).
    pub pacing: pacing::SendPacing,
    /// A Content built for this conversation and sent inside its session (a bot's quick
    /// replies), not a template: priced as the service message it is.
    pub session_message: bool,
}

/// A send the policy allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorized {
    /// To show with the result.
    pub warnings: Vec<String>,
    /// Whether the recipient's 24-hour window is open as wadash knows it (for pricing).
    pub in_window: bool,
    /// The sender's address (`whatsapp:+…` or `MG…`) and its limit in messages per second.
    pub sender: String,
    pub mps: f64,
    /// The template's category as WhatsApp set it (the catalogue's), which prices the send
    /// before any category the caller declared.
    pub template_category: Option<Category>,
}

/// The sender used when a request names none.
pub fn default_sender(
    default_from: &str,
    messaging_service_sid: Option<&str>,
) -> Result<Sender, String> {
    match messaging_service_sid {
        Some(mg) => Ok(Sender::MessagingService(mg.to_owned())),
        None => WhatsAppAddress::parse(default_from).map(Sender::From),
    }
}

/// Validates `req` into what the client sends; nothing leaves the process on error.
pub fn prepare(req: &SendRequest, default: &Sender) -> Result<CreateMessage, SendError> {
    let to = PhoneNumber::parse(&req.to)
        .map_err(|e| SendError::Invalid(format!("to: {e}")))?
        .whatsapp();
    let sender = match req.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => default.clone(),
        Some(f) if f.starts_with("MG") => Sender::MessagingService(f.to_owned()),
        Some(f) => Sender::From(
            WhatsAppAddress::parse(f).map_err(|e| SendError::Invalid(format!("from: {e}")))?,
        ),
    };
    if let Sender::From(from) = &sender
        && from == &to
    {
        return Err(SendError::Invalid("to and from are the same number".into()));
    }
    let msg = CreateMessage {
        to,
        sender,
        body: req.body.clone().filter(|b| !b.is_empty()),
        media_urls: req.media_urls.clone(),
        content_sid: req.content_sid.clone().filter(|c| !c.is_empty()),
        content_variables: req.content_variables.clone(),
    };
    // The client validates the rest (media count and scheme, template variables).
    crate::twilio::client::create_form(&msg, None)
        .map_err(|e| SendError::Invalid(e.to_string()))?;
    Ok(msg)
}

/// The sender for requests that name none: the default sender an admin chose, or else the
/// configured one.
pub async fn current_default(
    pool: &sqlx::PgPool,
    configured: &Sender,
) -> Result<Sender, SendError> {
    let row = crate::storage::senders::default(pool)
        .await
        .map_err(SendError::Database)?;
    Ok(match row {
        Some(r) if r.address.starts_with("MG") => Sender::MessagingService(r.address),
        Some(r) => match WhatsAppAddress::parse(&r.address) {
            Ok(a) => Sender::From(a),
            Err(_) => configured.clone(),
        },
        None => configured.clone(),
    })
}

/// Validates `req` (with the current default sender), checks it against the policy, sends and
/// records it: what the API, the dashboard's forms and the CLI do.
pub async fn send_request(
    client: &TwilioClient,
    pool: &sqlx::PgPool,
    prices: &PriceBook,
    configured_default: &Sender,
    req: &SendRequest,
    opts: SendOptions,
) -> Result<Sent, SendError> {
    let default = current_default(pool, configured_default).await?;
    let msg = prepare(req, &default)?;
    send(client, pool, prices, &msg, opts).await
}

/// Checks `msg` against the policy.
pub async fn authorize(
    pool: &sqlx::PgPool,
    msg: &CreateMessage,
    opts: SendOptions,
) -> Result<Authorized, SendError> {
    let sender_address = match &msg.sender {
        Sender::From(a) => a.as_str().to_owned(),
        Sender::MessagingService(mg) => mg.clone(),
    };
    let sender = crate::storage::senders::by_address(pool, &sender_address)
        .await
        .map_err(SendError::Database)?;
    policy::check_sender(&sender_address, sender.as_ref()).map_err(SendError::Refused)?;
    let number = msg.to.as_str().trim_start_matches("whatsapp:");
    let recipient = crate::storage::contacts::recipient(pool, number)
        .await
        .map_err(SendError::Database)?;
    let free_form = msg.content_sid.is_none();
    let now = Utc::now();
    let mut warnings = policy::check_recipient(number, &recipient, free_form, opts.force, now)
        .map_err(SendError::Refused)?;
    let last_inbound = recipient.contact.as_ref().and_then(|c| c.last_inbound_at);
    let in_window = matches!(
        crate::domain::window::Window::at(last_inbound, now),
        crate::domain::window::Window::Open { .. }
    );
    let mut template_category = None;
    if let Some(sid) = &msg.content_sid {
        let row = crate::storage::templates::get(pool, sid)
            .await
            .map_err(SendError::Database)?;
        let facts = row.as_ref().map(|t| policy::TemplateFacts {
            name: t.name.clone(),
            status: t.status.clone(),
            deleted: t.deleted_at.is_some(),
            types: t
                .types
                .0
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            placeholders: policy::placeholders_of(&t.types.0),
        });
        warnings.extend(
            policy::check_template(sid, facts.as_ref(), in_window).map_err(SendError::Refused)?,
        );
        if let Some(t) = facts.as_ref().filter(|t| !t.deleted) {
            let given = msg
                .content_variables
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok())
                .map(|m: serde_json::Map<String, serde_json::Value>| policy::filled(&m))
                .unwrap_or_default();
            policy::check_variables(sid, t, &given).map_err(SendError::Refused)?;
        }
        template_category = row
            .and_then(|t| t.category)
            .and_then(|c| Category::parse(&c).ok());
    }
    let mps = pacing::mps_of(&sender_address, sender.as_ref());
    Ok(Authorized {
        sender: sender_address,
        mps,
        warnings,
        in_window,
        template_category,
    })
}

/// Checks, waits for the sender's next send slot, sends and records. The returned status is
/// Twilio's answer to the create call.
#[tracing::instrument(name = "send", skip_all)]
pub async fn send(
    client: &TwilioClient,
    pool: &sqlx::PgPool,
    prices: &PriceBook,
    msg: &CreateMessage,
    opts: SendOptions,
) -> Result<Sent, SendError> {
    let mut allowed = authorize(pool, msg, opts).await?;
    let asked = std::time::Instant::now();
    let slot_at = pacing::wait_for_slot(pool, &allowed.sender, allowed.mps, opts.pacing).await?;
    if asked.elapsed() > RECHECK_AFTER {
        // Consent may have changed while it waited (a STOP in the meantime).
        allowed = authorize(pool, msg, opts).await?;
    }
    let resource = match client.create_message(msg).await {
        Ok(r) => r,
        Err(e) => {
            if let TwilioError::Api {
                status: 429 | 503, ..
            } = &e
            {
                // Twilio is queueing for this sender: hold every instance's sends from it for
                // a second, as the broadcast runner does.
                if let Err(db) = crate::storage::send_slots::hold(pool, &allowed.sender, 1.0).await
                {
                    tracing::warn!(sender = %allowed.sender, error = %db, "could not hold the sender's slots after Twilio's {e}");
                }
            }
            return Err(e.into());
        }
    };
    let facts = cost_facts(msg, &opts, &allowed);
    record(pool, prices, msg, &resource, &facts).await?;
    Ok(Sent {
        sid: resource.sid,
        status: resource.status,
        warnings: allowed.warnings,
        slot_at,
    })
}

/// A send that waited longer than this for its slot is checked against the policy again.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What pricing needs to know of an allowed send: a template is priced in the category
/// WhatsApp set for it when the catalogue knows it, else in the one the caller declared.
pub fn cost_facts(msg: &CreateMessage, opts: &SendOptions, allowed: &Authorized) -> CostFacts {
    CostFacts {
        category: if opts.session_message {
            Category::Service
        } else {
            crate::costs::category_of(msg, allowed.template_category.or(opts.category))
        },
        in_window: allowed.in_window,
        broadcast_id: opts.broadcast_id,
    }
}

/// Stores Twilio's answer to a create call as the message's first event, with the message's
/// estimated cost, in one transaction (one commit per send), then notes the template's last
/// use (throttled: see [`crate::storage::templates::mark_used`]). A message the table cannot
/// price is stored without an estimate and counted as unpriced; pricing never fails a send.
pub async fn record(
    pool: &sqlx::PgPool,
    prices: &PriceBook,
    msg: &CreateMessage,
    resource: &MessageResource,
    facts: &CostFacts,
) -> Result<(), SendError> {
    let record = record_of(msg, resource)
        .map_err(|e| SendError::Invalid(format!("Twilio answered with {e}")))?;
    let cost = match prices.table().await {
        Ok(table) => Some(crate::storage::costs::NewCost {
            content_sid: msg.content_sid.clone(),
            ..crate::costs::new_cost(
                &table,
                &resource.sid,
                crate::costs::sender_of(msg),
                msg.to.as_str(),
                facts,
                Utc::now(),
            )
        }),
        Err(e) => {
            tracing::warn!(sid = %resource.sid, error = %e, "the price table could not be read; the message's cost is not stored");
            None
        }
    };
    let not_recorded = |source| SendError::NotRecorded {
        sid: resource.sid.clone(),
        source,
    };
    let mut tx = pool.begin().await.map_err(not_recorded)?;
    crate::storage::events::apply_batch(&mut *tx, std::slice::from_ref(&record))
        .await
        .map_err(not_recorded)?;
    if let Some(cost) = &cost {
        crate::storage::costs::insert(&mut tx, cost)
            .await
            .map_err(not_recorded)?;
    }
    tx.commit().await.map_err(not_recorded)?;
    if let Some(sid) = &msg.content_sid {
        // Informational (the template pages' "last use"): a failure here never fails a send
        // that Twilio accepted and wadash recorded.
        if let Err(e) = crate::storage::templates::mark_used(pool, sid).await {
            tracing::warn!(template = %sid, error = %e, "the template's last use could not be noted");
        }
    }
    Ok(())
}

/// The event that records Twilio's create response.
pub fn record_of(msg: &CreateMessage, r: &MessageResource) -> Result<EventRecord, String> {
    let sid = MessageSid::parse(&r.sid)?;
    let mut pairs: Vec<(String, String)> = vec![
        ("Sid".into(), r.sid.clone()),
        ("Status".into(), r.status.clone()),
    ];
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            pairs.push((k.to_owned(), v.clone()));
        }
    };
    push("To", &r.to);
    push("From", &r.from);
    push("Body", &r.body);
    push("MessagingServiceSid", &r.messaging_service_sid);
    push("Direction", &r.direction);
    push("DateCreated", &r.date_created);
    push("ErrorMessage", &r.error_message);
    if let Some(code) = r.error_code {
        pairs.push(("ErrorCode".into(), code.to_string()));
    }
    for url in &msg.media_urls {
        pairs.push(("MediaUrl".into(), url.clone()));
    }
    let now = Utc::now();
    let from = r.from.clone().or_else(|| match &msg.sender {
        Sender::From(f) => Some(f.as_str().to_owned()),
        Sender::MessagingService(_) => None,
    });
    let facts = MessageFacts {
        account_sid: None,
        messaging_service_sid: r
            .messaging_service_sid
            .clone()
            .or_else(|| match &msg.sender {
                Sender::MessagingService(mg) => Some(mg.clone()),
                Sender::From(_) => None,
            }),
        from,
        to: Some(msg.to.as_str().to_owned()),
        body: msg.body.clone().or_else(|| r.body.clone()),
        num_media: msg.media_urls.len() as i32,
        media: msg
            .media_urls
            .iter()
            .map(|u| Media {
                url: u.clone(),
                content_type: None,
            })
            .collect(),
        profile_name: None,
        wa_id: None,
        interactive: None,
    };
    Ok(EventRecord::new(
        sid,
        Direction::Outbound,
        facts,
        r.report(now),
        EventSource::Api,
        &pairs,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sender {
        default_sender(crate::config::SANDBOX_FROM, None).unwrap()
    }

    #[test]
    fn numbers_are_validated_and_prefixed_before_anything_is_sent() {
        let req = SendRequest {
            to: "+91 99000 00000".into(),
            body: Some("hi".into()),
            ..Default::default()
        };
        let msg = prepare(&req, &sandbox()).unwrap();
        assert_eq!(msg.to.as_str(), "whatsapp:+919900000000");
        assert_eq!(msg.sender, sandbox());
        for bad in ["9900000000", "+91abc", ""] {
            let req = SendRequest {
                to: bad.into(),
                body: Some("hi".into()),
                ..Default::default()
            };
            assert!(
                matches!(prepare(&req, &sandbox()), Err(SendError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn sender_can_be_a_number_or_a_messaging_service() {
        let mut req = SendRequest {
            to: "+919900000000".into(),
            body: Some("hi".into()),
            ..Default::default()
        };
        req.from = Some("MG0123".into());
        assert_eq!(
            prepare(&req, &sandbox()).unwrap().sender,
            Sender::MessagingService("MG0123".into())
        );
        req.from = Some("+14155550100".into());
        assert_eq!(
            prepare(&req, &sandbox()).unwrap().sender,
            Sender::From(WhatsAppAddress::parse("+14155550100").unwrap())
        );
        req.from = Some("+919900000000".into());
        assert!(
            prepare(&req, &sandbox()).is_err(),
            "to and from are the same"
        );
        assert_eq!(
            default_sender("x", Some("MGabc")).unwrap(),
            Sender::MessagingService("MGabc".into())
        );
    }

    #[test]
    fn empty_messages_and_too_many_media_are_refused() {
        let req = SendRequest {
            to: "+919900000000".into(),
            ..Default::default()
        };
        assert!(prepare(&req, &sandbox()).is_err());
        let req = SendRequest {
            to: "+919900000000".into(),
            media_urls: (0..11).map(|i| format!("https://x/{i}.png")).collect(),
            ..Default::default()
        };
        assert!(prepare(&req, &sandbox()).is_err());
    }
}
