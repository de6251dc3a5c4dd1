//! Reading a paged list of Twilio's newer APIs (Content, Messaging v1/v2): items under one
//! key, `meta.next_page_url` to the next page. The next page is followed only by its path and
//! query, always on the configured base and under an allowed prefix, so an answer can never
//! send our credentials to another host.

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::error::TwilioError;
use super::transport::{Body, Transport};

/// Most pages read in one listing, so a server that keeps answering `next_page_url` cannot
/// loop forever (at Twilio's page sizes, far above any account's templates or senders).
pub(crate) const MAX_PAGES: usize = 100;

/// One list: where it starts and how to read it.
pub(crate) struct Listing<'a> {
    pub transport: &'a Transport,
    /// The configured base (`https://content.twilio.com`), without a trailing slash.
    pub base: &'a str,
    /// The first page's full URL.
    pub first: String,
    /// The key the items are under (`contents`, `senders`, `services`…).
    pub key: &'a str,
    /// Path prefixes a next page may have (`/v1/`, `/v2/`).
    pub prefixes: &'a [&'a str],
    /// Stop after this many items.
    pub limit: usize,
}

impl Listing<'_> {
    /// Every item up to `limit`, page after page.
    pub(crate) async fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>, TwilioError> {
        let mut url = self.first.clone();
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut page: serde_json::Value = self
                .transport
                .json(Method::GET, &url, Body::None, &[])
                .await?;
            if let Some(items) = page.get_mut(self.key).map(serde_json::Value::take) {
                let items: Vec<T> = match items {
                    serde_json::Value::Null => Vec::new(),
                    items => serde_json::from_value(items)
                        .map_err(|e| TwilioError::Decode(format!("the {} list: {e}", self.key)))?,
                };
                out.extend(items);
            }
            if out.len() >= self.limit {
                out.truncate(self.limit);
                return Ok(out);
            }
            match page["meta"]["next_page_url"]
                .as_str()
                .filter(|u| !u.is_empty())
            {
                Some(next) => url = on_base(self.base, next, self.prefixes)?,
                None => return Ok(out),
            }
        }
        Err(TwilioError::Decode(format!(
            "the {} list did not end after {MAX_PAGES} pages",
            self.key
        )))
    }
}

/// `next` (absolute, or a path) moved onto `base`, if its path is under one of `prefixes`.
pub(crate) fn on_base(base: &str, next: &str, prefixes: &[&str]) -> Result<String, TwilioError> {
    let url = reqwest::Url::parse(next)
        .or_else(|_| reqwest::Url::parse(&format!("{base}{next}")))
        .map_err(|_| TwilioError::Decode(format!("unexpected next_page_url {next:?}")))?;
    if !prefixes.iter().any(|p| url.path().starts_with(p)) {
        return Err(TwilioError::Decode(format!(
            "unexpected next_page_url {next:?}"
        )));
    }
    Ok(match url.query() {
        Some(q) => format!("{base}{}?{q}", url.path()),
        None => format!("{base}{}", url.path()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_page_stays_on_our_base_and_under_the_allowed_paths() {
        let base = "http://127.0.0.1:9000";
        assert_eq!(
            on_base(
                base,
                "https://evil.example/v2/Channels/Senders?PageToken=x",
                &["/v2/"]
            )
            .unwrap(),
            "http://127.0.0.1:9000/v2/Channels/Senders?PageToken=x"
        );
        assert_eq!(
            on_base(base, "/v1/Services?Page=1", &["/v1/"]).unwrap(),
            "http://127.0.0.1:9000/v1/Services?Page=1"
        );
        assert!(
            on_base(
                base,
                "https://x.example/2010-04-01/Accounts",
                &["/v1/", "/v2/"]
            )
            .is_err()
        );
        assert!(on_base(base, "::not a url", &["/v1/"]).is_err());
    }
}
