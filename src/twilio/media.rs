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

/// Whether a media download may follow a redirect to `next`: only over HTTPS to Twilio's
/// media hosts, or to the origin the request was sent to (`base`: Twilio itself, or the
/// simulator or test double that stands in for it). reqwest drops the `Authorization` header
/// whenever a redirect changes host, port or scheme, so the credentials go to `base` alone.
pub fn redirect_allowed(next: &Url, base: &Url) -> bool {
    let same_origin = next.scheme() == base.scheme()
        && next.host_str() == base.host_str()
        && next.port_or_known_default() == base.port_or_known_default();
    if same_origin {
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
