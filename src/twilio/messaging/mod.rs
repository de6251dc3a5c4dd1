//! The Messaging API client (`TWILIO_MESSAGING_BASE`, default `https://messaging.twilio.com`):
//! WhatsApp senders (`/v2/Channels/Senders`) and Messaging Services with their channel
//! senders (`/v1/Services`).
//!
//! It shares the REST client's transport (credentials, timeout, retries: reads and deletes on
//! 429/5xx, writes only on 429), so rotating credentials reaches every Twilio API at once.
//! Senders are created and updated with JSON; a Service's channel senders take a form, as
//! Twilio's specs say.

mod resources;

use reqwest::Method;

use crate::twilio::client::TwilioError;
use crate::twilio::client::paging::Listing;
use crate::twilio::client::transport::{Body, Transport, checked_base};

pub use resources::{
    ChannelSender, NewSender, OfflineReason, Profile, Sender, SenderConfiguration,
    SenderProperties, SenderUpdate, Service, Webhook,
};

/// Where the Messaging API lives.
pub const MESSAGING_API: &str = "https://messaging.twilio.com";

#[derive(Clone, Debug)]
pub struct MessagingClient {
    transport: Transport,
    base: String,
}

impl MessagingClient {
    pub(crate) fn new(base: &str, transport: Transport) -> Result<Self, TwilioError> {
        Ok(Self {
            transport,
            base: checked_base(base, "Messaging API")?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every WhatsApp sender of the account (`GET /v2/Channels/Senders?Channel=whatsapp`).
    #[tracing::instrument(name = "twilio.senders.list", skip_all)]
    pub async fn list_senders(&self) -> Result<Vec<Sender>, TwilioError> {
        self.listing(
            format!(
                "{}/v2/Channels/Senders?Channel=whatsapp&PageSize=100",
                self.base
            ),
            "senders",
        )
        .read()
        .await
    }

    /// One sender (`GET /v2/Channels/Senders/{Sid}`).
    #[tracing::instrument(name = "twilio.senders.fetch", skip(self))]
    pub async fn fetch_sender(&self, sid: &str) -> Result<Sender, TwilioError> {
        check_sid(sid, "XE")?;
        self.get(&format!("{}/v2/Channels/Senders/{sid}", self.base))
            .await
    }

    /// Registers a WhatsApp sender (`POST /v2/Channels/Senders`, answered 202 while Twilio
    /// creates it). Not retried after a 5xx or a timeout: a retry could register it twice.
    #[tracing::instrument(name = "twilio.senders.create", skip_all)]
    pub async fn create_sender(&self, s: &NewSender) -> Result<Sender, TwilioError> {
        self.post_json(&format!("{}/v2/Channels/Senders", self.base), s)
            .await
    }

    /// Updates a sender (`POST /v2/Channels/Senders/{Sid}`): its webhooks, profile, or the
    /// verification code in `configuration.verification_code`.
    #[tracing::instrument(name = "twilio.senders.update", skip(self, u))]
    pub async fn update_sender(&self, sid: &str, u: &SenderUpdate) -> Result<Sender, TwilioError> {
        check_sid(sid, "XE")?;
        self.post_json(&format!("{}/v2/Channels/Senders/{sid}", self.base), u)
            .await
    }

    /// Removes a sender at Twilio (`DELETE /v2/Channels/Senders/{Sid}`).
    #[tracing::instrument(name = "twilio.senders.delete", skip(self))]
    pub async fn delete_sender(&self, sid: &str) -> Result<(), TwilioError> {
        check_sid(sid, "XE")?;
        self.delete(&format!("{}/v2/Channels/Senders/{sid}", self.base))
            .await
    }

    /// The account's Messaging Services (`GET /v1/Services`).
    #[tracing::instrument(name = "twilio.services.list", skip_all)]
    pub async fn list_services(&self) -> Result<Vec<Service>, TwilioError> {
        self.listing(
            format!("{}/v1/Services?PageSize=100", self.base),
            "services",
        )
        .read()
        .await
    }

    /// The channel senders (WhatsApp senders) in Messaging Service `service`
    /// (`GET /v1/Services/{MG}/ChannelSenders`).
    #[tracing::instrument(name = "twilio.services.senders", skip(self))]
    pub async fn list_channel_senders(
        &self,
        service: &str,
    ) -> Result<Vec<ChannelSender>, TwilioError> {
        check_sid(service, "MG")?;
        self.listing(
            format!(
                "{}/v1/Services/{service}/ChannelSenders?PageSize=100",
                self.base
            ),
            "senders",
        )
        .read()
        .await
    }

    /// Adds sender `sender` (`XE…`) to Messaging Service `service`.
    #[tracing::instrument(name = "twilio.services.attach", skip(self))]
    pub async fn attach_sender(
        &self,
        service: &str,
        sender: &str,
    ) -> Result<ChannelSender, TwilioError> {
        check_sid(service, "MG")?;
        check_sid(sender, "XE")?;
        let form = [("Sid", sender.to_owned())];
        self.transport
            .json(
                Method::POST,
                &format!("{}/v1/Services/{service}/ChannelSenders", self.base),
                Body::Form(&form),
                &[],
            )
            .await
    }

    /// Takes sender `sender` out of Messaging Service `service`.
    #[tracing::instrument(name = "twilio.services.detach", skip(self))]
    pub async fn detach_sender(&self, service: &str, sender: &str) -> Result<(), TwilioError> {
        check_sid(service, "MG")?;
        check_sid(sender, "XE")?;
        self.delete(&format!(
            "{}/v1/Services/{service}/ChannelSenders/{sender}",
            self.base
        ))
        .await
    }

    fn listing<'a>(&'a self, first: String, key: &'a str) -> Listing<'a> {
        Listing {
            transport: &self.transport,
            base: &self.base,
            first,
            key,
            prefixes: &["/v1/", "/v2/"],
            limit: usize::MAX,
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TwilioError> {
        self.transport.json(Method::GET, url, Body::None, &[]).await
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, TwilioError> {
        let body = serde_json::to_value(body).map_err(|e| TwilioError::Invalid(e.to_string()))?;
        self.transport
            .json(Method::POST, url, Body::Json(&body), &[])
            .await
    }

    async fn delete(&self, url: &str) -> Result<(), TwilioError> {
        self.transport
            .send(Method::DELETE, url, Body::None, &[])
            .await
            .map(drop)
    }
}

/// A Twilio SID of kind `prefix` (`XE` sender, `MG` service) and 32 hex digits: checking it
/// keeps anything else out of the path.
fn check_sid(sid: &str, prefix: &str) -> Result<(), TwilioError> {
    let ok = sid.len() == 34
        && sid.starts_with(prefix)
        && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(TwilioError::Invalid(format!(
            "{sid:?} is not a {prefix} SID"
        )))
    }
}

#[cfg(test)]
mod tests;
