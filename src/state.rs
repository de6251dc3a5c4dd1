//! The state shared by every request handler, created once at start-up.

use std::sync::Arc;

use sqlx::PgPool;

use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::twilio::client::{Sender, TwilioClient};
use crate::twilio::webhook_keys::WebhookKeys;

#[derive(Clone, Debug)]
pub struct AppState {
    /// The Twilio credentials in force, reloadable while running.
    pub credentials: crate::credentials::CredentialManager,
    pub pool: PgPool,
    pub ingestor: Ingestor,
    /// Time limits on webhook requests.
    pub webhook_limits: crate::config::WebhookSettings,
    /// One slot per webhook body being received (`WebhookSettings::max_bodies`, and
    /// `max_bodies_per_peer` of them per address).
    pub webhook_bodies: crate::limits::Slots,
    pub metrics: Arc<Metrics>,
    pub webhook_keys: WebhookKeys,
    /// The URL Twilio calls (no trailing slash); webhook signatures are checked against it.
    pub public_url: Arc<str>,
    pub simulator_mode: bool,
    /// The REST client: Twilio in live mode, the built-in simulator otherwise.
    pub twilio: TwilioClient,
    /// The Content API client (templates): Twilio's, or the built-in simulator's.
    pub content: crate::twilio::content::ContentClient,
    /// The Messaging API (WhatsApp senders, Messaging Services): the simulator's in simulator
    /// mode.
    pub messaging: crate::twilio::messaging::MessagingClient,
    /// Live updates for the dashboard's browsers.
    pub live: crate::live::LiveHub,
    /// Who messages are sent from when a request names no sender and no default sender is
    /// registered.
    pub default_sender: Sender,
    /// Consent keywords and confirmation texts for inbound messages.
    pub replies: Arc<crate::replies::ReplySettings>,
    /// The low and critical credit lines.
    pub credit: crate::balance::Levels,
    /// How one-off sends take their sender's send slots.
    pub pacing: crate::config::SendPacing,
    /// Broadcasts that would take the balance below this wait for an admin.
    pub broadcast_reserve: Option<rust_decimal::Decimal>,
    /// The balance's figures, computed at most every few seconds.
    pub balance: Arc<crate::balance::status::Cache>,
    /// The price table, for pricing each message as it is sent.
    pub prices: crate::pricing::book::PriceBook,
    /// Bots: connected clients, the circuit breaker, the bot settings.
    pub bots: Arc<crate::bots::runtime::Bots>,
    /// Compiled auto-reply patterns.
    pub reply_patterns: Arc<crate::replies::rules::RegexCache>,
    /// Where alerts go: the environment's channels with what admins saved laid over them.
    pub alert_channels: crate::alerts::channels::ChannelStore,
    /// The open alerts every page's banner shows, kept in memory.
    pub open_alerts: crate::alerts::open::OpenAlerts,
    /// How often the template catalogue is synced (zero: never); the pages call it stale after
    /// three intervals without a good sync.
    pub template_sync: std::time::Duration,
}

impl AppState {
    /// Sends one message as a person or an API caller asked (the send form, a conversation's
    /// reply, `POST /api/v1/messages`): from the request's sender or the default one, priced,
    /// paced and recorded.
    pub async fn send(
        &self,
        req: &crate::sending::SendRequest,
        opts: crate::sending::SendOptions,
    ) -> Result<crate::sending::Sent, crate::sending::SendError> {
        crate::sending::send_request(
            &self.twilio,
            &self.pool,
            &self.prices,
            &self.default_sender,
            req,
            opts,
        )
        .await
    }
}
