//! Twilio's webhook form bodies (`/wa` inbound messages, `/sts` status callbacks) turned into
//! domain records. Field names: https://www.twilio.com/docs/messaging/guides/webhook-request
//! and https://www.twilio.com/docs/messaging/guides/track-outbound-message-status.

use chrono::{DateTime, Utc};

use crate::domain::interactive::RawInteractive;
use crate::domain::record::{EventRecord, Media, MessageFacts};
use crate::domain::status::StatusReport;
use crate::domain::{Direction, EventSource, MessageSid, MessageStatus};

/// Twilio sends at most 10 media items; we read a few more in case that ever grows.
const MAX_MEDIA: usize = 20;

/// Which webhook a body arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    Inbound,
    Status,
}

impl Webhook {
    pub fn route(self) -> &'static str {
        match self {
            Webhook::Inbound => "/wa",
            Webhook::Status => "/sts",
        }
    }
}

/// Why a form body cannot be turned into a record (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing MessageSid (or SmsSid): Twilio always sends one")]
    MissingSid,
    #[error("invalid MessageSid: {0}")]
    BadSid(String),
    #[error("missing MessageStatus (or SmsStatus) in a status callback")]
    MissingStatus,
    #[error("ErrorCode must be a number, got {0:?}")]
    BadErrorCode(String),
}

/// The fields wadash reads, collected in one pass over the parameters (first non-empty value
/// of each name wins; `MediaUrlN`/`MediaContentTypeN` by index).
#[derive(Default)]
struct Fields<'a> {
    message_sid: Option<&'a str>,
    sms_message_sid: Option<&'a str>,
    sms_sid: Option<&'a str>,
    message_status: Option<&'a str>,
    sms_status: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
    account_sid: Option<&'a str>,
    messaging_service_sid: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    body: Option<&'a str>,
    num_media: Option<&'a str>,
    profile_name: Option<&'a str>,
    wa_id: Option<&'a str>,
    interactive: RawInteractive<'a>,
    media_urls: Vec<(usize, &'a str)>,
    media_types: Vec<(usize, &'a str)>,
}

impl<'a> Fields<'a> {
    fn collect(params: &'a [(String, String)]) -> Self {
        let mut f = Fields::default();
        for (k, v) in params {
            let v = v.as_str();
            // `Body` may legitimately be empty; every other field counts only when non-empty.
            if k == "Body" {
                f.body.get_or_insert(v);
                continue;
            }
            if v.is_empty() {
                continue;
            }
            let slot = match k.as_str() {
                "MessageSid" => &mut f.message_sid,
                "SmsMessageSid" => &mut f.sms_message_sid,
                "SmsSid" => &mut f.sms_sid,
                "MessageStatus" => &mut f.message_status,
                "SmsStatus" => &mut f.sms_status,
                "ErrorCode" => &mut f.error_code,
                "ErrorMessage" => &mut f.error_message,
                "AccountSid" => &mut f.account_sid,
                "MessagingServiceSid" => &mut f.messaging_service_sid,
                "From" => &mut f.from,
                "To" => &mut f.to,
                "NumMedia" => &mut f.num_media,
                "ProfileName" => &mut f.profile_name,
                "WaId" => &mut f.wa_id,
                "ButtonPayload" => &mut f.interactive.button_payload,
                "ButtonText" => &mut f.interactive.button_text,
                "ListId" => &mut f.interactive.list_id,
                "ListTitle" => &mut f.interactive.list_title,
                "ListDescription" => &mut f.interactive.list_description,
                "MessageType" => &mut f.interactive.message_type,
                "OriginalRepliedMessageSid" => &mut f.interactive.replied_to_sid,
                "OriginalRepliedMessageSender" => &mut f.interactive.replied_to_sender,
                other => {
                    if let Some(i) = other
                        .strip_prefix("MediaUrl")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        f.media_urls.push((i, v));
                    } else if let Some(i) = other
                        .strip_prefix("MediaContentType")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        f.media_types.push((i, v));
                    }
                    continue;
                }
            };
            slot.get_or_insert(v);
        }
        f
    }
}

/// Parses a webhook body received at `received_at`.
pub fn parse(
    hook: Webhook,
    params: &[(String, String)],
    received_at: DateTime<Utc>,
) -> Result<EventRecord, WebhookError> {
    let f = Fields::collect(params);
    let owned = |v: Option<&str>| v.map(str::to_owned);

    let sid_raw = f
        .message_sid
        .or(f.sms_message_sid)
        .or(f.sms_sid)
        .ok_or(WebhookError::MissingSid)?;
    let sid = MessageSid::parse(sid_raw).map_err(WebhookError::BadSid)?;

    let status = match (hook, f.message_status.or(f.sms_status)) {
        (_, Some(s)) => MessageStatus::parse(s),
        (Webhook::Inbound, None) => MessageStatus::Received,
        (Webhook::Status, None) => return Err(WebhookError::MissingStatus),
    };
    let error_code = match f.error_code {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<i32>()
                .map_err(|_| WebhookError::BadErrorCode(raw.to_owned()))?,
        )
        // Some callbacks carry ErrorCode=0 for "no error".
        .filter(|c| *c != 0),
    };
    let error_message = owned(f.error_message).or_else(|| {
        error_code
            .and_then(crate::domain::error_codes::lookup)
            .map(|e| e.meaning.to_owned())
    });

    let mut urls = f.media_urls;
    urls.sort_unstable_by_key(|(i, _)| *i);
    urls.dedup_by_key(|(i, _)| *i);
    urls.truncate(MAX_MEDIA);
    let media: Vec<Media> = urls
        .into_iter()
        .map(|(i, url)| Media {
            url: url.to_owned(),
            content_type: f
                .media_types
                .iter()
                .find(|(j, _)| *j == i)
                .map(|(_, t)| (*t).to_owned()),
        })
        .collect();
    let num_media = f
        .num_media
        .and_then(|n| n.trim().parse::<i32>().ok())
        .unwrap_or(media.len() as i32);

    let (direction, source) = match hook {
        Webhook::Inbound => (Direction::Inbound, EventSource::Inbound),
        Webhook::Status => (Direction::Outbound, EventSource::StatusCallback),
    };
    let facts = MessageFacts {
        account_sid: owned(f.account_sid),
        messaging_service_sid: owned(f.messaging_service_sid),
        from: owned(f.from),
        to: owned(f.to),
        // A status callback has no Body; an inbound message may have an empty one.
        body: match hook {
            Webhook::Inbound => Some(f.body.unwrap_or_default().to_owned()),
            Webhook::Status => owned(f.body.filter(|b| !b.is_empty())),
        },
        num_media,
        media,
        profile_name: owned(f.profile_name),
        wa_id: owned(f.wa_id),
        // Taps and selections come only on `/wa`.
        interactive: match hook {
            Webhook::Inbound => f.interactive.reply(),
            Webhook::Status => None,
        },
    };
    let report = StatusReport {
        status,
        error_code,
        error_message,
        at: received_at,
    };
    Ok(EventRecord::new(
        sid,
        direction,
        facts,
        report,
        source,
        params,
        received_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<(String, String)> {
        let path = format!("{}/../shared/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_urlencoded::from_str(std::fs::read_to_string(path).unwrap().trim()).unwrap()
    }

    #[test]
    fn inbound_seed_becomes_an_inbound_received_message() {
        let rec = parse(Webhook::Inbound, &fixture("inbound-seed.form"), Utc::now()).unwrap();
        assert_eq!(rec.sid.as_str(), "SM45e9b726c0314a5524c3f3cb4ZZZZZ");
        assert_eq!(rec.direction, Direction::Inbound);
        assert_eq!(rec.report.status, MessageStatus::Received);
        assert_eq!(rec.facts.profile_name.as_deref(), Some("Ranjit Sankar"));
        assert_eq!(rec.facts.wa_id.as_deref(), Some("91990000000"));
        assert_eq!(rec.facts.body.as_deref(), Some("hey"));
        assert_eq!(rec.facts.from.as_deref(), Some("whatsapp:+919900000000"));
        let raw: serde_json::Value = serde_json::from_str(&rec.params).unwrap();
        assert_eq!(raw["ReferralNumMedia"], "0");
    }

    #[test]
    fn status_seed_becomes_a_sent_report_with_every_field_kept() {
        let params = fixture("status-seed.form");
        let rec = parse(Webhook::Status, &params, Utc::now()).unwrap();
        assert_eq!(rec.report.status, MessageStatus::Sent);
        assert_eq!(rec.direction, Direction::Outbound);
        let raw: serde_json::Value = serde_json::from_str(&rec.params).unwrap();
        assert_eq!(raw["ChannelInstallSid"], "XEcc20d939f803ee381f2442185EEEEE");
        assert_eq!(raw.as_object().unwrap().len(), params.len());
    }

    #[test]
    fn media_are_collected_in_order() {
        let params: Vec<(String, String)> = [
            ("MessageSid", "MM1234"),
            ("NumMedia", "2"),
            ("MediaUrl1", "https://m/1"),
            ("MediaContentType1", "image/png"),
            ("MediaUrl0", "https://m/0"),
            ("MediaContentType0", "image/jpeg"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let rec = parse(Webhook::Inbound, &params, Utc::now()).unwrap();
        assert_eq!(rec.facts.media.len(), 2);
        assert_eq!(rec.facts.media[0].url, "https://m/0");
        assert_eq!(
            rec.facts.media[1].content_type.as_deref(),
            Some("image/png")
        );
    }

    #[test]
    fn a_button_tap_is_read_from_an_inbound_webhook_only() {
        let params: Vec<(String, String)> = [
            ("MessageSid", "SM0000000000000000000000000000tap1"),
            ("From", "whatsapp:+919900000000"),
            ("To", "whatsapp:+14155238886"),
            ("Body", "Yes, I'll come"),
            ("MessageType", "button"),
            ("ButtonText", "Yes, I'll come"),
            ("ButtonPayload", "confirm"),
            (
                "OriginalRepliedMessageSid",
                "SM0000000000000000000000000000orig",
            ),
            ("OriginalRepliedMessageSender", "whatsapp:+14155238886"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let rec = parse(Webhook::Inbound, &params, Utc::now()).unwrap();
        let tap = rec.facts.interactive.unwrap();
        assert_eq!(
            tap.kind,
            crate::domain::interactive::InteractiveKind::Button
        );
        assert_eq!(tap.payload.as_deref(), Some("confirm"));
        assert_eq!(tap.title.as_deref(), Some("Yes, I'll come"));
        assert_eq!(
            tap.replied_to_sid.as_deref(),
            Some("SM0000000000000000000000000000orig")
        );
        assert_eq!(rec.facts.body.as_deref(), Some("Yes, I'll come"));
        let mut status = params.clone();
        status.push(("MessageStatus".into(), "sent".into()));
        let rec = parse(Webhook::Status, &status, Utc::now()).unwrap();
        assert_eq!(rec.facts.interactive, None);
    }

    #[test]
    fn a_list_selection_is_read_with_its_description() {
        let params: Vec<(String, String)> = [
            ("MessageSid", "SM0000000000000000000000000000lst1"),
            ("MessageType", "interactive"),
            ("ListId", "slot_tue"),
            ("ListTitle", "Tuesday"),
            ("ListDescription", "10:00-12:00"),
            ("ListId", "ignored second value"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
        let rec = parse(Webhook::Inbound, &params, Utc::now()).unwrap();
        let pick = rec.facts.interactive.unwrap();
        assert_eq!(pick.kind, crate::domain::interactive::InteractiveKind::List);
        assert_eq!(pick.payload.as_deref(), Some("slot_tue"));
        assert_eq!(pick.description.as_deref(), Some("10:00-12:00"));
        assert_eq!(pick.message_type.as_deref(), Some("interactive"));
    }

    #[test]
    fn errors_are_explained() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let now = Utc::now();
        assert_eq!(
            parse(Webhook::Status, &p(&[("MessageStatus", "sent")]), now).unwrap_err(),
            WebhookError::MissingSid
        );
        assert_eq!(
            parse(Webhook::Status, &p(&[("MessageSid", "SM1234")]), now).unwrap_err(),
            WebhookError::MissingStatus
        );
        assert!(matches!(
            parse(Webhook::Status, &p(&[("MessageSid", "x'; drop")]), now),
            Err(WebhookError::BadSid(_))
        ));
        assert!(matches!(
            parse(
                Webhook::Status,
                &p(&[
                    ("MessageSid", "SM1234"),
                    ("MessageStatus", "failed"),
                    ("ErrorCode", "abc")
                ]),
                now
            ),
            Err(WebhookError::BadErrorCode(_))
        ));
        let rec = parse(
            Webhook::Status,
            &p(&[
                ("MessageSid", "SM1234"),
                ("MessageStatus", "failed"),
                ("ErrorCode", "63016"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(rec.report.error_code, Some(63016));
        assert!(rec.report.error_message.unwrap().contains("24-hour"));
    }
}
