//! Where wadash may send requests that users configure (alert and top-up webhooks): the
//! literal-host check of a URL, and which addresses count as public. The connect-time check
//! of resolved names is `outbound::Guard`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use reqwest::Url;

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an http(s) URL, such as https://hooks.example.com/wadash")]
    NotHttp,
    #[error(
        "{0} is a local, private or link-local address; wadash does not send there unless the host is listed in WADASH_OUTBOUND_ALLOW_HOSTS"
    )]
    Private(String),
}

/// Hosts an admin allowed although they are private (lower case; names or IP addresses).
#[derive(Debug, Clone, Default)]
pub struct AllowList(Arc<[String]>);

impl AllowList {
    pub fn new(hosts: &[String]) -> Self {
        Self(
            hosts
                .iter()
                .map(|h| {
                    h.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    pub fn allows_name(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|h| h.parse::<IpAddr>().is_ok_and(|a| a == ip))
    }
}

/// Whether `ip` is an address on the public internet (not this machine, a private network,
/// link-local — where cloud metadata services live — or another special-purpose range).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address reach that address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64, well-known (64:ff9b::/96) and local-use (64:ff9b:1::/48), and SIIT
            // (::ffff:0:a.b.c.d): the last 32 bits are an IPv4 address.
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1);
            let siit = s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0;
            if nat64 || siit {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return is_public_v4(v4);
            }
            if s[0] == 0x2002 {
                // 6to4 (2002::/16): the next 32 bits are an IPv4 address.
                let v4 =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return is_public_v4(v4);
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // Site-local (fec0::/10, deprecated but still routed by some stacks).
                || (s[0] & 0xffc0) == 0xfec0
                // IPv4-compatible (::a.b.c.d, deprecated).
                || (s[..6] == [0; 6])
                // Teredo (2001::/32): tunnels to an IPv4 address of the server's choosing.
                || (s[0] == 0x2001 && s[1] == 0)
                // Documentation (2001:db8::/32).
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_unspecified()
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        // "This network" (0.0.0.0/8), shared address space (100.64.0.0/10), IETF protocol
        // assignments (192.0.0.0/24), benchmarking (198.18.0.0/15), reserved (240.0.0.0/4).
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && v4.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        // 6to4 relay anycast (192.88.99.0/24).
        || (a == 192 && b == 88 && v4.octets()[2] == 99)
        // Azure's host endpoint (WireServer), reachable from every VM like a metadata service.
        || v4 == Ipv4Addr::new(168, 63, 129, 16)
        || a >= 240)
}

/// Checks a URL by its literal host: an http(s) URL whose host is a public address or a name
/// other than `localhost`, or a host in the allow list. Names are checked again, by the
/// addresses they resolve to, when a request is made ([`Guard`]).
pub fn check_url(raw: &str, allow: &AllowList) -> Result<Url, Refused> {
    let url = Url::parse(raw.trim()).map_err(|_| Refused::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Refused::NotHttp);
    }
    // The parser has normalised the host: IPv4 in dotted decimal whatever its spelling,
    // IPv6 in brackets, names in lower case.
    let name = url.host_str().ok_or(Refused::NotHttp)?.to_owned();
    if allow.allows_name(&name) {
        return Ok(url);
    }
    let refused = match name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => !is_public(ip),
        Err(_) => {
            let d = name.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost") || !d.contains('.')
        }
    };
    if refused {
        return Err(Refused::Private(name));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(u: &str) -> bool {
        matches!(
            check_url(u, &AllowList::default()),
            Err(Refused::Private(_))
        )
    }

    #[test]
    fn local_private_and_metadata_destinations_are_refused_however_written() {
        for u in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://localhost:8080/hook",
            "http://LOCALHOST./hook",
            "http://api.localhost/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://192.88.99.1/",
            "http://168.63.129.16/machine",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::]/",
            "http://0.0.0.0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://metadata/computeMetadata/v1/",
        ] {
            assert!(refused(u), "{u}");
        }
    }

    #[test]
    fn public_destinations_pass_and_other_schemes_do_not() {
        for u in [
            "https://hooks.example.com/wadash",
            "http://93.184.215.14:8080/x",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
        ] {
            assert!(check_url(u, &AllowList::default()).is_ok(), "{u}");
        }
        for u in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x.example/",
            "https://user@hooks.example.com/",
            "not a url",
        ] {
            assert_eq!(
                check_url(u, &AllowList::default()),
                Err(Refused::NotHttp),
                "{u}"
            );
        }
    }

    #[test]
    fn allowed_hosts_are_exempt() {
        let allow = AllowList::new(&["127.0.0.1".into(), "Alerts.Internal".into(), "[::1]".into()]);
        assert!(check_url("http://127.0.0.1:9000/hook", &allow).is_ok());
        assert!(check_url("http://alerts.internal/hook", &allow).is_ok());
        assert!(check_url("http://[::1]:9000/", &allow).is_ok());
        assert!(check_url("http://127.0.0.2/", &allow).is_err());
        assert!(allow.allows_ip("127.0.0.1".parse().unwrap()));
    }
}
