//! Messaging Services at Twilio: the account's services with the WhatsApp senders in each,
//! and putting a sender wadash knows at Twilio into a service or taking it out. Read live from
//! Twilio (one list of services, then one list of senders per service): services change
//! rarely and an account has few.

use serde::Serialize;
use sqlx::PgPool;

use crate::storage::senders::{self, SenderRow};
use crate::twilio::client::TwilioError;
use crate::twilio::messaging::MessagingClient;

/// A service and its senders, as the pages and the API show them.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub sid: String,
    pub friendly_name: String,
    /// Whether wadash has the service as a sender (sends can name it).
    pub registered: bool,
    pub senders: Vec<ServiceSender>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceSender {
    /// `XE…`.
    pub sid: String,
    /// `whatsapp:+…`.
    pub address: String,
    /// wadash's sender id, when it knows the number.
    pub sender_id: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0:?} is not a Messaging Service SID (MG and 32 hex digits)")]
    BadService(String),
    #[error("no sender {0}")]
    NoSender(i64),
    #[error(
        "sender {0} is not a WhatsApp sender Twilio lists (sync the senders, or register the number first)"
    )]
    NotAtTwilio(String),
    #[error("Twilio refused: {0}")]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn check_service(sid: &str) -> Result<(), ServiceError> {
    let ok =
        sid.len() == 34 && sid.starts_with("MG") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(())
        .ok_or_else(|| ServiceError::BadService(sid.to_owned()))
}

/// Every service with its senders, each sender matched to wadash's by number.
pub async fn list(
    pool: &PgPool,
    messaging: &MessagingClient,
) -> Result<Vec<ServiceView>, ServiceError> {
    let known = senders::all(pool).await?;
    let id_of = |address: &str| known.iter().find(|s| s.address == address).map(|s| s.id);
    let mut out = Vec::new();
    for service in messaging.list_services().await? {
        let inside = messaging.list_channel_senders(&service.sid).await?;
        out.push(ServiceView {
            registered: id_of(&service.sid).is_some(),
            senders: inside
                .into_iter()
                .map(|c| ServiceSender {
                    sender_id: id_of(&c.sender),
                    sid: c.sid,
                    address: c.sender,
                })
                .collect(),
            sid: service.sid,
            friendly_name: service.friendly_name,
        });
    }
    Ok(out)
}

/// Sender `id`'s Twilio SID, if Twilio lists it.
async fn at_twilio(pool: &PgPool, id: i64) -> Result<(SenderRow, String), ServiceError> {
    let row = senders::get(pool, id)
        .await?
        .ok_or(ServiceError::NoSender(id))?;
    let sid = row
        .twilio
        .twilio_sid
        .clone()
        .filter(|_| row.twilio.twilio_gone_at.is_none())
        .ok_or_else(|| ServiceError::NotAtTwilio(row.address.clone()))?;
    Ok((row, sid))
}

/// Puts sender `id` into service `service` at Twilio.
pub async fn attach(
    pool: &PgPool,
    messaging: &MessagingClient,
    service: &str,
    id: i64,
) -> Result<ServiceSender, ServiceError> {
    check_service(service)?;
    let (row, sid) = at_twilio(pool, id).await?;
    let added = messaging.attach_sender(service, &sid).await?;
    senders::set_messaging_service(pool, id, Some(service)).await?;
    tracing::info!(service, sender = %row.address, "sender put into a Messaging Service");
    Ok(ServiceSender {
        sid: added.sid,
        address: row.address,
        sender_id: Some(id),
    })
}

/// Takes sender `id` out of service `service` at Twilio.
pub async fn detach(
    pool: &PgPool,
    messaging: &MessagingClient,
    service: &str,
    id: i64,
) -> Result<(), ServiceError> {
    check_service(service)?;
    let (row, sid) = at_twilio(pool, id).await?;
    messaging.detach_sender(service, &sid).await?;
    if row.twilio.messaging_service_sid.as_deref() == Some(service) {
        senders::set_messaging_service(pool, id, None).await?;
    } else {
        // The row is a sync behind (attached in the Console, say): a sync that read Twilio
        // before the detach must not write that service back.
        senders::changed_at_twilio(pool, id).await?;
    }
    tracing::info!(service, sender = %row.address, "sender taken out of a Messaging Service");
    Ok(())
}
