//! Which media URLs wadash fetches with the account's credentials, and where a media download
//! may be redirected.
//!
//! Twilio keeps the media of a received message at
//! `https://api.twilio.com/2010-04-01/Accounts/{AC…}/Messages/{MM…|SM…}/Media/{ME…}` and, with
//! HTTP authentication enforced on media, answers that URL with a redirect to a short-lived
//! copy on its CDN (`mms.twiliocdn.com`; older media `s3-external-1.amazonaws.com/
//! media.twiliocdn.com/…`). The dashboard's media proxy sends the account's credentials, so it
//! must reach exactly one kind of resource: the media of a message of this account, at the
//! path Twilio gave on the inbound webhook. Anything else — another path under `Accounts/`, a
//! query string, dot segments (plain or percent-encoded), another account, another host — is
//! refused here, before any request is made.

use reqwest::Url;

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaUrlError {
    #[error(
        "not a Twilio media URL (https://api.twilio.com/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…)"
    )]
    Shape,
    #[error("the media belongs to another account")]
    OtherAccount,
    #[error("the media belongs to another message")]
    OtherMessage,
}

const PREFIX: &str = "https://api.twilio.com/";

/// The path (`/2010-04-01/Accounts/…/Media/ME…`) of `url` if it is the media of message
/// `message_sid` of account `account_sid`, in exactly the shape Twilio gives. The path is then
/// requested from the client's own base URL (Twilio, or the simulator), never from the host
/// in `url`.
pub fn media_path(
    url: &str,
    account_sid: &str,
    message_sid: &str,
) -> Result<String, MediaUrlError> {
    let rest = url.strip_prefix(PREFIX).ok_or(MediaUrlError::Shape)?;
    // Every byte of a valid path is a letter, a digit, '-' or '/': this refuses queries,
    // fragments, percent-encoding, backslashes, spaces and control characters at once.
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/')
    {
        return Err(MediaUrlError::Shape);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let [version, accounts, account, messages, message, media, me] = parts[..] else {
        return Err(MediaUrlError::Shape);
    };
    if version != "2010-04-01"
        || accounts != "Accounts"
        || messages != "Messages"
        || media != "Media"
        || !is_sid(account, &["AC"])
        || !is_sid(message, &["MM", "SM"])
        || !is_sid(me, &["ME"])
    {
        return Err(MediaUrlError::Shape);
    }
    if account != account_sid {
        return Err(MediaUrlError::OtherAccount);
    }
    if message != message_sid {
        return Err(MediaUrlError::OtherMessage);
    }
    Ok(format!("/{rest}"))
}

/// A Twilio sid: one of the prefixes and 32 hexadecimal digits.
fn is_sid(s: &str, prefixes: &[&str]) -> bool {
    s.len() == 34
        && prefixes.iter().any(|p| s.starts_with(p))
        && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Most redirects a media download follows.
pub const MAX_REDIRECTS: usize = 3;

/// The next request of a media download that was answered with a redirect to `location`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub url: Url,
    /// Only a request to the base URL's own origin carries the account's credentials.
    pub credentials: bool,
}

/// Where a media download goes after `current` answered a redirect to `location` (absolute
/// or relative): only over HTTPS to Twilio's media hosts, or to `base`'s origin (Twilio
/// itself, or the simulator or test double that stands in for it). Redirects are followed by
/// hand, one request at a time, so the credentials are decided anew for every hop and go to
/// `base`'s origin alone — never to a CDN, whatever chain of redirects leads there.
pub fn next_hop(current: &Url, location: &str, base: &Url) -> Result<Hop, String> {
    let url = current
        .join(location)
        .map_err(|_| "the redirect's Location is not a URL".to_owned())?;
    if !redirect_allowed(&url, base) {
        return Err(format!(
            "redirect to {:?} refused: not a Twilio media host",
            url.host_str().unwrap_or("")
        ));
    }
    let credentials = same_origin(&url, base);
    Ok(Hop { url, credentials })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether a media download may follow a redirect to `next` (see [`next_hop`]).
pub fn redirect_allowed(next: &Url, base: &Url) -> bool {
    if !next.username().is_empty() || next.password().is_some() {
        return false;
    }
    if same_origin(next, base) {
        return true;
    }
    if next.scheme() != "https" || next.port_or_known_default() != Some(443) {
        return false;
    }
    match next.host_str() {
        Some("api.twilio.com") => true,
        Some(h) if h.ends_with(".twiliocdn.com") => true,
        // Media stored before HTTP authentication was enforced: Twilio's bucket on S3.
        Some("s3-external-1.amazonaws.com") => next.path().starts_with("/media.twiliocdn.com/"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const MM: &str = "MM0123456789abcdef0123456789abcdef";
    const ME: &str = "ME00000000000000000000000000000001";

    fn good() -> String {
        format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}")
    }

    #[test]
    fn the_media_of_the_message_is_accepted() {
        let path = media_path(&good(), AC, MM).unwrap();
        assert_eq!(
            path,
            format!("/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}")
        );
        let sm = MM.replacen("MM", "SM", 1);
        let url = good().replace(MM, &sm);
        assert!(media_path(&url, AC, &sm).is_ok());
    }

    #[test]
    fn crafted_urls_are_refused() {
        let base = format!("https://api.twilio.com/2010-04-01/Accounts/{AC}");
        let crafted = [
            format!("{base}/Balance.json"),
            format!("{base}/Messages.json?x=/Media/"),
            format!("{}?Media/", good()),
            format!("{}#x", good()),
            format!("{}.json", good()),
            format!("{}/", good()),
            format!("{base}/Messages/{MM}/Media/../../../../Accounts.json"),
            format!("{base}/Messages/{MM}/Media/%2e%2e/%2e%2e/{ME}"),
            format!("{base}/Messages/{MM}/Media/.%2E/{ME}"),
            format!("{base}/Messages/{MM}/./Media/{ME}"),
            format!("{base}/Messages/{MM}/Media/{ME}\\..\\x"),
            format!("{base}/Messages/{MM}/Media/{ME}\t"),
            format!("{base}//Messages/{MM}/Media/{ME}"),
            format!("{base}/Messages/{MM}/Media"),
            format!("{base}/Messages/{MM}/Media/XX00000000000000000000000000000001"),
            format!("{base}/Calls/{MM}/Media/{ME}"),
            good().replace("https://api.twilio.com", "https://api.twilio.com:8443"),
            good().replace(
                "https://api.twilio.com",
                "https://api.twilio.com.evil.example",
            ),
            good().replace("https://api.twilio.com", "https://user@api.twilio.com"),
            good().replace("https://api.twilio.com", "http://api.twilio.com"),
            good().replace("https://api.twilio.com", "https://evil.example"),
            good().replace("https://", "HTTPS://"),
            good().replace("2010-04-01", "2010-04-02"),
            "javascript:alert(1)".to_owned(),
            String::new(),
        ];
        for url in crafted {
            assert_eq!(media_path(&url, AC, MM), Err(MediaUrlError::Shape), "{url}");
        }
    }

    #[test]
    fn other_accounts_and_messages_are_refused() {
        let other_ac = "AC".to_owned() + &"f".repeat(32);
        let other_mm = "MM".to_owned() + &"e".repeat(32);
        assert_eq!(
            media_path(&good().replace(AC, &other_ac), AC, MM),
            Err(MediaUrlError::OtherAccount)
        );
        assert_eq!(
            media_path(&good().replace(MM, &other_mm), AC, MM),
            Err(MediaUrlError::OtherMessage)
        );
    }

    #[test]
    fn credentials_go_to_the_base_origin_only_on_every_hop() {
        let twilio = Url::parse("https://api.twilio.com").unwrap();
        let first = Url::parse(&good()).unwrap();
        let cdn = next_hop(&first, "https://mms.twiliocdn.com/a?Expires=1", &twilio).unwrap();
        assert!(!cdn.credentials);
        // A second hop on the same CDN host still carries none.
        let again = next_hop(&cdn.url, "/b", &twilio).unwrap();
        assert_eq!(again.url.as_str(), "https://mms.twiliocdn.com/b");
        assert!(!again.credentials);
        let s3 = next_hop(
            &cdn.url,
            "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC/x",
            &twilio,
        )
        .unwrap();
        assert!(!s3.credentials);
        // Back on Twilio's own origin: the credentials are Twilio's to see.
        let home = next_hop(&cdn.url, "https://api.twilio.com/2010-04-01/x", &twilio).unwrap();
        assert!(home.credentials);
        assert!(next_hop(&cdn.url, "https://evil.example/x", &twilio).is_err());
        assert!(next_hop(&cdn.url, "https://user:pw@mms.twiliocdn.com/x", &twilio).is_err());
        let local = Url::parse("http://127.0.0.1:4010").unwrap();
        let here = next_hop(&local.join("/2010-04-01/m").unwrap(), "/cdn/x", &local).unwrap();
        assert!(here.credentials);
        assert_eq!(here.url.as_str(), "http://127.0.0.1:4010/cdn/x");
    }

    #[test]
    fn redirects_stay_on_twilio_media_hosts_or_the_base_origin() {
        let twilio = Url::parse("https://api.twilio.com").unwrap();
        let local = Url::parse("http://127.0.0.1:4010").unwrap();
        let ok = |u: &str, base: &Url| redirect_allowed(&Url::parse(u).unwrap(), base);
        assert!(ok("https://mms.twiliocdn.com/AC/abc?Expires=1", &twilio));
        assert!(ok("https://media.twiliocdn.com/x", &twilio));
        assert!(ok("https://api.twilio.com/2010-04-01/x", &twilio));
        assert!(ok(
            "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC/x",
            &twilio
        ));
        assert!(ok("http://127.0.0.1:4010/cdn/x", &local));
        assert!(!ok(
            "https://s3-external-1.amazonaws.com/other-bucket/x",
            &twilio
        ));
        assert!(!ok("http://mms.twiliocdn.com/x", &twilio));
        assert!(!ok("https://mms.twiliocdn.com:8443/x", &twilio));
        assert!(!ok("https://twiliocdn.com.evil.example/x", &twilio));
        assert!(!ok("https://evil.example/x", &twilio));
        assert!(!ok("http://169.254.169.254/latest/meta-data/", &twilio));
        assert!(!ok("http://127.0.0.1:4011/x", &local));
        assert!(!ok("http://localhost:4010/x", &local));
    }
}
