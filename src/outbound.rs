//! Requests to URLs that users configure (alert and top-up webhooks): never to this machine,
//! its private network or a cloud metadata service, unless an admin allowed the host.
//!
//! A URL saved by an admin is a request wadash makes from inside the network, so it is
//! checked twice: when saved, by its literal host ([`check_url`]: `localhost`, loopback,
//! private, link-local, metadata and other special-purpose addresses, however written —
//! `0x7f000001` and `[::ffff:169.254.169.254]` included, as the URL parser normalises them);
//! and when sent, by every address its name resolves to ([`Guard`] is the HTTP client's DNS
//! resolver, so the address checked is the address connected to, and a name cannot resolve
//! to a public address when saved and a private one when used). Redirects are not followed
//! and no proxy from the environment is used, so nothing steers the request elsewhere.
//! Hosts in `WADASH_OUTBOUND_ALLOW_HOSTS` are exempt (an internal alert receiver, tests).

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::domain::destination::{AllowList, Refused, check_url, is_public};

/// The DNS resolver of [`client`]: resolves with the system's resolver and refuses a name if
/// any of its addresses is not public (unless the name or address is allowed).
#[derive(Debug, Clone)]
pub struct Guard {
    allow: AllowList,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow.allows_name(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            if let Some(bad) = addrs
                .iter()
                .find(|a| !is_public(a.ip()) && !allow.allows_ip(a.ip()))
            {
                return Err(Box::new(Refused::Private(format!("{host} ({})", bad.ip())))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A checked outbound request: the literal host is checked first (IP literals never reach
/// the resolver), then the client connects only to addresses its [`Guard`] accepted.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    allow: AllowList,
}

impl Client {
    pub fn new(allow: AllowList, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Guard {
                allow: allow.clone(),
            })
            .user_agent(concat!("wadash/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, allow })
    }

    /// A POST to `url` once it passes [`check_url`]; send it with `.send()`.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Refused> {
        let url = check_url(url, &self.allow)?;
        Ok(self.http.post(url))
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_connect_time() {
        use reqwest::dns::Resolve as _;
        let guard = Guard {
            allow: AllowList::default(),
        };
        let err = guard.resolve("localhost".parse().unwrap()).await.err();
        assert!(err.is_some_and(|e| e.to_string().contains("local, private")));
        let allowed = Guard {
            allow: AllowList::new(&["localhost".into()]),
        };
        assert!(allowed.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
