//! The Content API client (`TWILIO_CONTENT_BASE`, default `https://content.twilio.com`):
//! WhatsApp templates and their approvals.
//!
//! The catalogue sync reads v1's whole list; v2's filtered list (`search`) answers narrow
//! questions straight from Twilio, such as whether a name is already taken.
//!
//! It shares the REST client's transport (connections, credentials, timeout, retries: reads
//! and deletes on 429/5xx, creates only on 429), so rotating credentials reaches both. Lists
//! follow `meta.next_page_url` on the configured base only (see `client::paging`).

mod resources;

use reqwest::Method;

use crate::twilio::client::TwilioError;
use crate::twilio::client::paging::Listing;
use crate::twilio::client::transport::{Body, Transport, checked_base};

use resources::ApprovalFetch;
pub use resources::{Approval, NewTemplate, Search, Submission, Template};

/// Where the Content API lives.
pub const CONTENT_API: &str = "https://content.twilio.com";

#[derive(Clone, Debug)]
pub struct ContentClient {
    transport: Transport,
    base: String,
}

impl ContentClient {
    pub(crate) fn new(base: &str, transport: Transport) -> Result<Self, TwilioError> {
        Ok(Self {
            transport,
            base: checked_base(base, "Content API")?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The whole catalogue with WhatsApp's approvals (`GET /v1/ContentAndApprovals`, every page).
    #[tracing::instrument(name = "twilio.content.list", skip_all)]
    pub async fn list_with_approvals(&self) -> Result<Vec<Template>, TwilioError> {
        self.listing(
            format!("{}/v1/ContentAndApprovals?PageSize=500", self.base),
            usize::MAX,
        )
        .read()
        .await
    }

    /// Templates with their approvals that match `filter` (`GET /v2/ContentAndApprovals`,
    /// at most `limit` of them, following pages). v2 filters on Twilio's side: `ContentName`
    /// is a regular expression over the friendly name, `Language` and `ContentType` repeat.
    #[tracing::instrument(name = "twilio.content.search", skip_all)]
    pub async fn search(
        &self,
        filter: &Search,
        limit: usize,
    ) -> Result<Vec<Template>, TwilioError> {
        let mut url = reqwest::Url::parse(&format!("{}/v2/ContentAndApprovals", self.base))
            .map_err(|e| TwilioError::Invalid(e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("PageSize", &limit.clamp(1, 500).to_string());
            if let Some(name) = &filter.content_name {
                q.append_pair("ContentName", name);
            }
            for l in &filter.languages {
                q.append_pair("Language", l);
            }
            for t in &filter.content_types {
                q.append_pair("ContentType", t);
            }
        }
        self.listing(url.to_string(), limit).read().await
    }

    fn listing(&self, first: String, limit: usize) -> Listing<'_> {
        Listing {
            transport: &self.transport,
            base: &self.base,
            first,
            key: "contents",
            prefixes: &["/v1/", "/v2/"],
            limit,
        }
    }

    /// One template (`GET /v1/Content/{Sid}`), without its approval.
    #[tracing::instrument(name = "twilio.content.fetch", skip(self))]
    pub async fn fetch(&self, sid: &str) -> Result<Template, TwilioError> {
        check_sid(sid)?;
        self.get(&format!("{}/v1/Content/{sid}", self.base)).await
    }

    /// WhatsApp's approval of one template (`GET /v1/Content/{Sid}/ApprovalRequests`).
    #[tracing::instrument(name = "twilio.content.approval", skip(self))]
    pub async fn approval(&self, sid: &str) -> Result<Option<Approval>, TwilioError> {
        check_sid(sid)?;
        let a: ApprovalFetch = self
            .get(&format!("{}/v1/Content/{sid}/ApprovalRequests", self.base))
            .await?;
        Ok(a.whatsapp)
    }

    /// Creates a template (`POST /v1/Content`). Not retried after a 5xx or a timeout: Twilio
    /// has no idempotency key here and a retry could create it twice.
    #[tracing::instrument(name = "twilio.content.create", skip_all)]
    pub async fn create(&self, t: &NewTemplate) -> Result<Template, TwilioError> {
        let body = serde_json::to_value(t).map_err(|e| TwilioError::Invalid(e.to_string()))?;
        self.transport
            .json(
                Method::POST,
                &format!("{}/v1/Content", self.base),
                Body::Json(&body),
                &[],
            )
            .await
    }

    /// Submits a template to WhatsApp (`POST /v1/Content/{Sid}/ApprovalRequests/whatsapp`).
    #[tracing::instrument(name = "twilio.content.submit", skip(self, s))]
    pub async fn submit(&self, sid: &str, s: &Submission) -> Result<Approval, TwilioError> {
        check_sid(sid)?;
        let body = serde_json::to_value(s).map_err(|e| TwilioError::Invalid(e.to_string()))?;
        self.transport
            .json(
                Method::POST,
                &format!("{}/v1/Content/{sid}/ApprovalRequests/whatsapp", self.base),
                Body::Json(&body),
                &[],
            )
            .await
    }

    /// Deletes a template (`DELETE /v1/Content/{Sid}`).
    #[tracing::instrument(name = "twilio.content.delete", skip(self))]
    pub async fn delete(&self, sid: &str) -> Result<(), TwilioError> {
        check_sid(sid)?;
        self.transport
            .send(
                Method::DELETE,
                &format!("{}/v1/Content/{sid}", self.base),
                Body::None,
                &[],
            )
            .await
            .map(drop)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TwilioError> {
        self.transport.json(Method::GET, url, Body::None, &[]).await
    }
}

/// A Content SID is `HX` and 32 hex digits; checking it keeps anything else out of the path.
fn check_sid(sid: &str) -> Result<(), TwilioError> {
    let ok =
        sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(TwilioError::Invalid(format!(
            "{sid:?} is not a Content SID"
        )))
    }
}

#[cfg(test)]
mod tests;
