//! Sending stored replies through the REST client rather than as TwiML: a bot's answer that
//! came after the webhook was answered, and an answer with choices (TwiML's `<Message>` cannot
//! carry a Content SID). In order, each taking its sender's send slot and passing the send
//! policy like any one-off send (a STOP meanwhile stops them), recorded and linked to its
//! reply. Choices go as a quick reply or list picker where WhatsApp allows
//! ([`crate::bots::interactive`]), else — or when their Content cannot be had or is refused —
//! as their numbered text: the answer is never lost.

use sqlx::PgPool;

use crate::bots::interactive::{self, Prepared};
use crate::pricing::book::PriceBook;
use crate::sending::{self, SendError, SendOptions, Sent};
use crate::storage::auto_replies::{self, ReplyRow};
use crate::twilio::client::{CreateMessage, TwilioClient, TwilioError};
use crate::twilio::content::ContentClient;

/// Where replies are sent: the REST client, the Content API client, the database and the
/// prices they are recorded with.
#[derive(Clone, Copy)]
pub struct Outbox<'a> {
    pub client: &'a TwilioClient,
    pub content: &'a ContentClient,
    pub pool: &'a PgPool,
    pub prices: &'a PriceBook,
}

/// Sends `rows` in order through the REST client and links each to the message it became.
pub async fn deliver(out: Outbox<'_>, rows: Vec<ReplyRow>) {
    for r in rows {
        let Some(msg) = super::create_message(&r) else {
            continue;
        };
        let sent = match r.choices.as_ref() {
            Some(set) => send_choices(out, &r, msg, &set.0).await,
            None => {
                sending::send(
                    out.client,
                    out.pool,
                    out.prices,
                    &msg,
                    SendOptions::default(),
                )
                .await
            }
        };
        match sent {
            Ok(sent) => {
                if let Err(e) = auto_replies::link(out.pool, r.id, &sent.sid).await {
                    tracing::warn!(reply = r.id, sid = %sent.sid, error = %e, "a bot answer was sent but not linked to its reply");
                }
            }
            Err(e) => {
                tracing::warn!(reply = r.id, inbound = %r.inbound_sid, error = %e, "a bot answer was not sent");
            }
        }
    }
}

/// Sends a question with choices with its Content, or as its numbered text (`msg`'s body)
/// when the choices do not fit, their Content cannot be had, or Twilio refuses it; records
/// which on the reply.
async fn send_choices(
    out: Outbox<'_>,
    r: &ReplyRow,
    text: CreateMessage,
    set: &crate::domain::bot::ChoiceSet,
) -> Result<Sent, SendError> {
    let text_opts = SendOptions::default();
    let failed = match interactive::prepare(out.content, out.pool, out.client.account_sid(), set)
        .await
    {
        Ok(Prepared::Text) => None,
        Ok(Prepared::Content { sid, shape }) => {
            let msg = CreateMessage {
                body: None,
                media_urls: Vec::new(),
                content_sid: Some(sid.clone()),
                ..text.clone()
            };
            // Built for this conversation, inside its session: priced as the service
            // message it is, not as a template.
            let opts = SendOptions {
                session_message: true,
                ..text_opts
            };
            match sending::send(out.client, out.pool, out.prices, &msg, opts).await {
                Ok(sent) => {
                    record(out.pool, r.id, Some(&sid), None).await;
                    tracing::debug!(reply = r.id, content = %sid, shape = shape.as_str(), "bot choices sent as an interactive message");
                    return Ok(sent);
                }
                // Twilio refused the message (it was not created): the text goes instead.
                Err(SendError::Twilio(e @ TwilioError::Api { status, .. }))
                    if status < 500 && status != 429 =>
                {
                    Some(format!(
                        "Twilio refused the message with Content {sid}: {e}"
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => Some(e),
    };
    if let Some(why) = &failed {
        tracing::warn!(reply = r.id, inbound = %r.inbound_sid, error = %why, "a bot's choices go as numbered text");
    }
    record(out.pool, r.id, None, failed.as_deref()).await;
    sending::send(out.client, out.pool, out.prices, &text, text_opts).await
}

async fn record(pool: &PgPool, id: i64, content_sid: Option<&str>, error: Option<&str>) {
    if let Err(e) = auto_replies::record_choices_sent(pool, id, content_sid, error).await {
        tracing::warn!(reply = id, error = %e, "how a bot's choices were sent was not recorded");
    }
}
