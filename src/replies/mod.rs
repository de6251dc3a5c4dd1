//! Two-way routing: what wadash does with an inbound message once it is stored.
//!
//! In one transaction per message: the contact is created or updated (profile name, WhatsApp
//! ID, the 24-hour window), consent keywords change consent (with history), and the first
//! step that has something to say answers:
//!
//! 1. consent keywords: the opt-out or opt-in confirmation (configurable text);
//! 2. for a tapped button or a chosen list item, `button` rules by its payload; then keyword
//!    and regular-expression rules, in the admins' order;
//! 3. image-echo rules (an inbound image is answered with a configured image);
//! 4. a bot (AWS Lex or Google Dialogflow: the hand-off goes where the rules found nothing,
//!    and its answer, produced after the webhook returned, goes out through the REST client);
//! 5. otherwise no reply.
//!
//! Contacts who opted out or were de-authorized get no automatic replies (except the
//! opt-out confirmation), and neither do messages to a sender that is not active. Each reply
//! is stored in `auto_replies` before it is given, so a webhook Twilio delivers twice gets
//! the same answer and changes nothing twice. Replies go back as TwiML; Twilio creates the
//! reply message and reports its status to `/sts?reply=<id>`, which links the two.

pub mod rules;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::PhoneNumber;
use crate::domain::consent::{self, Consent, KeywordKind};
use crate::storage::auto_replies::{self, NewReply, ReplyRow};
use crate::storage::contacts::{self, ChangeBy, InboundContact};
use crate::storage::{reply_rules, senders};
use crate::twilio::twiml::ReplyMessage;

pub use crate::config::{DEFAULT_OPT_IN_REPLY, DEFAULT_OPT_OUT_REPLY, ReplySettings};

/// What routing needs to know about an inbound message.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub sid: String,
    /// `whatsapp:+…`
    pub from: String,
    /// The sender it was sent to, `whatsapp:+…`.
    pub to: String,
    pub body: String,
    pub media_types: Vec<Option<String>>,
    pub profile_name: Option<String>,
    pub wa_id: Option<String>,
    /// The payload of a tapped button (or the id of a chosen list item).
    pub payload: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A reply decided on, before it is stored.
struct Planned {
    reason: &'static str,
    rule_id: Option<i64>,
    body: Option<String>,
    media: Vec<String>,
}

/// Routes `msg` and returns the replies to give, in order (possibly none).
pub async fn route(
    pool: &PgPool,
    settings: &ReplySettings,
    cache: &rules::RegexCache,
    msg: &InboundMessage,
) -> sqlx::Result<Vec<ReplyRow>> {
    // Messages from something other than a phone number (another channel) have no contact.
    let Ok(number) = PhoneNumber::parse(&msg.from) else {
        return Ok(Vec::new());
    };
    let mut tx = pool.begin().await?;
    let given = auto_replies::for_inbound(&mut tx, &msg.sid).await?;
    let contact = contacts::upsert_inbound(
        &mut tx,
        &InboundContact {
            number: number.as_str(),
            wa_id: msg.wa_id.as_deref(),
            profile_name: msg.profile_name.as_deref(),
            at: msg.received_at,
        },
    )
    .await?;
    if !given.is_empty() {
        tx.commit().await?;
        return Ok(given);
    }

    let keyword = settings.keywords.classify(&msg.body);
    let join =
        msg.to == crate::senders::SANDBOX_NUMBER && consent::sandbox_join_code(&msg.body).is_some();
    let mut consent = contact.consent();
    if let Some((change, source)) = consent::on_inbound(consent, keyword, join) {
        let detail: String = msg.body.trim().chars().take(100).collect();
        contacts::apply_change(
            &mut tx,
            contact.id,
            change,
            ChangeBy {
                source,
                actor: None,
                detail: Some(&detail),
                message_sid: Some(&msg.sid),
            },
        )
        .await?;
        consent = match change {
            consent::ConsentChange::OptedOut => Consent::OptedOut,
            consent::ConsentChange::OptedIn => Consent::OptedIn,
            _ => consent,
        };
        tracing::info!(sid = %msg.sid, change = change.as_str(), source = source.as_str(), "consent changed by an inbound message");
    }

    let sender_active = match senders::by_address(pool, &msg.to).await? {
        Some(s) => s.status == crate::domain::SenderStatus::Active,
        None => true,
    };
    let mut replies: Vec<Planned> = Vec::new();
    if contact.is_deauthorized() || !sender_active || join {
        // No automatic messages: the business blocked the contact or the sender, or the
        // sandbox answers `join` itself.
    } else if let Some(kind) = keyword {
        replies.extend(keyword_reply(settings, kind));
    } else if consent != Consent::OptedOut {
        let rules = reply_rules::for_sender(&mut tx, &msg.to).await?;
        let view = rules::Inbound {
            body: &msg.body,
            media_types: &msg.media_types,
            payload: msg.payload.as_deref(),
        };
        replies.extend(rules::first_match(&rules, &view, cache).map(rule_reply));
        // Bot hand-off goes here, when no rule answered.
    }

    let mut rows = Vec::with_capacity(replies.len());
    for (position, p) in replies.iter().enumerate() {
        rows.push(
            auto_replies::insert(
                &mut tx,
                &NewReply {
                    inbound_sid: &msg.sid,
                    position: position as i16,
                    reason: p.reason,
                    rule_id: p.rule_id,
                    from_addr: &msg.to,
                    to_addr: &msg.from,
                    body: p.body.as_deref(),
                    media: &p.media,
                },
            )
            .await?,
        );
    }
    // Last before the commit: the rule's row is locked from here until then.
    for id in replies.iter().filter_map(|p| p.rule_id) {
        reply_rules::record_hit(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// The confirmation a consent keyword gets, if one is configured.
fn keyword_reply(settings: &ReplySettings, kind: KeywordKind) -> Option<Planned> {
    let (text, reason) = match kind {
        KeywordKind::OptOut => (&settings.opt_out_reply, "opt_out"),
        KeywordKind::OptIn => (&settings.opt_in_reply, "opt_in"),
    };
    text.as_ref().map(|text| Planned {
        reason,
        rule_id: None,
        body: Some(text.clone()),
        media: Vec::new(),
    })
}

/// The reply of the rule that matched.
fn rule_reply(rule: &reply_rules::RuleRow) -> Planned {
    Planned {
        reason: if rule.kind == "image_echo" {
            "image_echo"
        } else {
            "rule"
        },
        rule_id: Some(rule.id),
        body: rule.reply_body.clone(),
        media: rule.reply_media.clone(),
    }
}

/// A sample message to try the rules with: nothing is stored or sent.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub body: String,
    /// The sender it is sent to (`whatsapp:+…`); None: a sender no rule names.
    pub to: Option<String>,
    /// With an image attached.
    pub image: bool,
    /// As a tap on the button with this payload (or the list item with this id).
    pub payload: Option<String>,
}

/// What would answer a [`Sample`] from a contact who may get automatic replies.
#[derive(Debug, Clone)]
pub enum Trial {
    /// A consent keyword: it changes consent and gets its confirmation (None: none is
    /// configured); the rules are not tried.
    Keyword {
        opt_out: bool,
        reply: Option<String>,
    },
    /// The first rule that matches.
    Rule(reply_rules::RuleRow),
    /// Nothing answers.
    Nothing,
}

/// Tries `sample` against the consent keywords and the enabled rules, in the order
/// [`route`] does, without storing, counting or sending anything.
pub async fn try_sample(
    pool: &PgPool,
    settings: &ReplySettings,
    cache: &rules::RegexCache,
    sample: &Sample,
) -> sqlx::Result<Trial> {
    if let Some(kind) = settings.keywords.classify(&sample.body) {
        return Ok(Trial::Keyword {
            opt_out: kind == KeywordKind::OptOut,
            reply: keyword_reply(settings, kind).and_then(|p| p.body),
        });
    }
    let mut conn = pool.acquire().await?;
    let rules = reply_rules::for_sender(&mut conn, sample.to.as_deref().unwrap_or("")).await?;
    let media_types = if sample.image {
        vec![Some("image/jpeg".to_owned())]
    } else {
        Vec::new()
    };
    let view = rules::Inbound {
        body: &sample.body,
        media_types: &media_types,
        payload: sample.payload.as_deref(),
    };
    Ok(rules::first_match(&rules, &view, cache)
        .cloned()
        .map_or(Trial::Nothing, Trial::Rule))
}

/// The TwiML `<Message>`s for stored replies; each reports its status to
/// `{public_url}/sts?reply=<id>`.
pub fn twiml_messages(rows: &[ReplyRow], public_url: &str) -> Vec<ReplyMessage> {
    rows.iter()
        .map(|r| ReplyMessage {
            body: r.body.clone(),
            media: r.media.clone(),
            to: None,
            from: None,
            status_callback: Some(reply_callback_url(public_url, r.id)),
        })
        .collect()
}

/// In simulator mode, does what Twilio does with a TwiML answer: creates each reply message
/// (at the built-in simulator) with the reply's status callback URL, in the background.
pub fn simulate_twiml_replies(
    client: crate::twilio::client::TwilioClient,
    public_url: &str,
    rows: Vec<ReplyRow>,
) {
    use crate::domain::WhatsAppAddress;
    use crate::twilio::client::{CreateMessage, Sender};
    let public_url = public_url.to_owned();
    tokio::spawn(async move {
        for r in rows {
            let (Ok(to), Ok(from)) = (
                WhatsAppAddress::parse(&r.to_addr),
                WhatsAppAddress::parse(&r.from_addr),
            ) else {
                continue;
            };
            let msg = CreateMessage {
                to,
                sender: Sender::From(from),
                body: r.body.clone(),
                media_urls: r.media.clone(),
                content_sid: None,
                content_variables: None,
            };
            let callback = reply_callback_url(&public_url, r.id);
            if let Err(e) = client
                .create_message_with_callback(&msg, Some(&callback))
                .await
            {
                tracing::warn!(reply = r.id, error = %e, "the simulator did not take an automatic reply");
            }
        }
    });
}

pub fn reply_callback_url(public_url: &str, reply_id: i64) -> String {
    format!("{public_url}/sts?reply={reply_id}")
}

/// The reply id of a `/sts?reply=<id>` status callback.
pub fn reply_id_of(query: &str) -> Option<i64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "reply")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ids_come_from_the_callback_query() {
        assert_eq!(reply_id_of("reply=42"), Some(42));
        assert_eq!(reply_id_of("a=1&reply=7"), Some(7));
        assert_eq!(reply_id_of("reply=x"), None);
        assert_eq!(reply_id_of("reply=-1"), None);
        assert_eq!(reply_id_of(""), None);
        assert_eq!(
            reply_callback_url("https://ops.example.com", 9),
            "https://ops.example.com/sts?reply=9"
        );
    }
}
