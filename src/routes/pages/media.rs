//! Media on the message and conversation pages: which media become links, and the proxy
//! `/media/{sid}/{n}` that fetches a received message's media from Twilio (which requires the
//! account's credentials) for logged-in users.
//!
//! Only media that wadash received from Twilio on an inbound message, at the exact path shape
//! Twilio gives (`twilio::media`), go through the proxy; the proxy looks the URL up by message
//! sid and index and never takes one from the request. Outbound media are links the sender
//! supplied and are shown as plain links; anything that is not an `http(s)` URL (for example
//! `javascript:`) is shown as text, never as a link.

use actix_web::{HttpResponse, web};

use super::{CurrentUser, PageError};
use crate::domain::MessageSid;
use crate::state::AppState;
use crate::storage::messages::{self, MessageRow};

/// WhatsApp's largest media file is 16 MB (documents 100 MB: those are shown as links and
/// fetched from Twilio by the browser's user only if they choose).
const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

/// Image types shown inline; anything else is downloaded as an attachment.
const INLINE: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/media/{sid}/{n}", web::get().to(proxy));
}

/// How the media of one message are shown.
#[derive(Debug, Default)]
pub struct MediaLinks {
    /// Proxy URLs of received images, shown inline.
    pub images: Vec<String>,
    /// Other media as (label, URL): received files through the proxy, sent media as given.
    pub files: Vec<(String, String)>,
    /// What is stored but is not a web link: shown as text.
    pub unlinked: Vec<String>,
}

/// The `n`-th media item's URL when it is the media of this inbound message of this account.
fn proxiable<'a>(m: &'a MessageRow, n: usize, account_sid: &str) -> Option<&'a str> {
    if m.direction != "inbound" {
        return None;
    }
    let url = m.media.as_array()?.get(n)?.get("url")?.as_str()?;
    crate::twilio::media::media_path(url, account_sid, &m.sid).ok()?;
    Some(url)
}

pub fn links(m: &MessageRow, account_sid: &str) -> MediaLinks {
    let mut out = MediaLinks::default();
    for (i, item) in m.media.as_array().into_iter().flatten().enumerate() {
        let url = item["url"].as_str().unwrap_or("");
        let kind = item["content_type"].as_str().unwrap_or("");
        if proxiable(m, i, account_sid).is_some() {
            let href = format!("/media/{}/{i}", m.sid);
            if kind.starts_with("image/") {
                out.images.push(href);
            } else {
                let label = if kind.is_empty() { "file" } else { kind };
                out.files.push((label.to_owned(), href));
            }
        } else if is_web_link(url) {
            out.files.push(("media link".to_owned(), url.to_owned()));
        } else if !url.is_empty() {
            out.unlinked.push(url.chars().take(200).collect());
        }
    }
    out
}

/// `http://` or `https://` (any case), with something after it.
fn is_web_link(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") && url.len() > 8)
        || (lower.starts_with("http://") && url.len() > 7)
}

async fn proxy(
    _user: CurrentUser,
    path: web::Path<(String, usize)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (sid, n) = path.into_inner();
    let sid = MessageSid::parse(&sid).map_err(|_| PageError::NotFound("no such message".into()))?;
    let m = messages::get(&state.pool, sid.as_str())
        .await?
        .ok_or_else(|| PageError::NotFound("no such message".into()))?;
    let url = proxiable(&m, n, state.twilio.account_sid()).ok_or_else(|| {
        PageError::NotFound("the message has no media received from Twilio at this index".into())
    })?;
    let file = state
        .twilio
        .fetch_media(sid.as_str(), url, MAX_MEDIA_BYTES)
        .await
        .map_err(|e| {
            tracing::warn!(%sid, n, error = %e, "media could not be fetched from Twilio");
            PageError::Upstream(format!("Twilio did not give the media file: {e}"))
        })?;
    let content_type = file
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    let inline = INLINE.contains(&content_type.as_str());
    let mut resp = HttpResponse::Ok();
    resp.insert_header(("Cache-Control", "private, max-age=3600"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if inline {
        resp.content_type(content_type);
    } else {
        resp.content_type("application/octet-stream")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{}-{n}\"", sid.as_str()),
            ));
    }
    Ok(resp.body(file.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const MM: &str = "MM0123456789abcdef0123456789abcdef";

    fn row(direction: &str, media: serde_json::Value) -> MessageRow {
        let now = chrono::Utc::now();
        MessageRow {
            sid: MM.into(),
            direction: direction.into(),
            from_addr: None,
            to_addr: None,
            body: None,
            media,
            profile_name: None,
            wa_id: None,
            status: None,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            messaging_service_sid: None,
        }
    }

    #[test]
    fn only_received_twilio_media_go_through_the_proxy() {
        let twilio = format!(
            "https://api.twilio.com/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/ME{}",
            "0".repeat(32)
        );
        let media = serde_json::json!([
            {"url": twilio, "content_type": "image/jpeg"},
            {"url": twilio, "content_type": "application/pdf"},
            {"url": format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Balance.json?/Media/"), "content_type": "image/png"},
            {"url": "javascript:alert(document.cookie)", "content_type": "image/png"},
            {"url": "https://example.com/a.png", "content_type": "image/png"},
        ]);
        let inbound = links(&row("inbound", media.clone()), AC);
        assert_eq!(inbound.images, vec![format!("/media/{MM}/0")]);
        assert_eq!(
            inbound.files,
            vec![
                ("application/pdf".to_owned(), format!("/media/{MM}/1")),
                (
                    "media link".to_owned(),
                    format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Balance.json?/Media/")
                ),
                (
                    "media link".to_owned(),
                    "https://example.com/a.png".to_owned()
                ),
            ]
        );
        assert_eq!(
            inbound.unlinked,
            vec!["javascript:alert(document.cookie)".to_owned()]
        );

        let outbound = links(&row("outbound-api", media), AC);
        assert!(outbound.images.is_empty());
        assert!(
            outbound
                .files
                .iter()
                .all(|(_, href)| !href.starts_with("/media/"))
        );
        assert!(
            proxiable(
                &row("outbound-api", serde_json::json!([{"url": twilio}])),
                0,
                AC
            )
            .is_none()
        );
        assert!(proxiable(&row("inbound", serde_json::json!([{"url": twilio}])), 0, AC).is_some());
        assert!(proxiable(&row("inbound", serde_json::json!([{"url": twilio}])), 1, AC).is_none());
    }
}
