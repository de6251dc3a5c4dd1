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
//! 4. a conversation with a live bot session goes on with its bot; then `any` rules;
//! 5. otherwise no reply.
//!
//! A rule may name a bot instead of a fixed reply: then the message is handed to the bot
//! ([`crate::bots::route`]): the routing transaction decides the session and records a
//! pending turn, and the caller asks the bot after the commit ([`Routed::bot`]). A
//! conversation waiting for a human gets no bot answer, and the hand-off keyword in a bot
//! conversation puts it in the "needs a human" queue.
//!
//! Contacts who opted out or were de-authorized get no automatic replies (except the
//! opt-out confirmation), and neither do messages to a sender that is not active. Each reply
//! is stored in `auto_replies` before it is given, so a webhook Twilio delivers twice gets
//! the same answer and changes nothing twice. Replies go back as TwiML; Twilio creates the
//! reply message and reports its status to `/sts?reply=<id>`, which links the two. A bot's
//! late answer, and one with choices (sent with a Content SID, which TwiML cannot carry), go
//! through the REST client instead ([`deliver`]). A tap on one of a bot's choices reaches the
//! bot as the option it names.

pub mod deliver;
pub mod rules;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::bots::route::{self as bot_route, BotCall, Target};
use crate::domain::PhoneNumber;
use crate::domain::consent::{self, Consent, KeywordKind};
use crate::storage::auto_replies::{self, NewReply, ReplyRow};
use crate::storage::contacts::{self, ChangeBy, InboundContact};
use crate::storage::{bots as bots_store, reply_rules, senders};
use crate::twilio::twiml::ReplyMessage;

pub use crate::config::{BotSettings, DEFAULT_OPT_IN_REPLY, DEFAULT_OPT_OUT_REPLY, ReplySettings};

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
    /// The message whose button was tapped (`OriginalRepliedMessageSid`).
    pub replied_to: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A reply decided on, before it is stored.
struct Planned {
    reason: &'static str,
    rule_id: Option<i64>,
    body: Option<String>,
    media: Vec<String>,
}

/// What routing decided: the replies to give now, and a bot to ask after the commit.
#[derive(Debug, Default)]
pub struct Routed {
    pub rows: Vec<ReplyRow>,
    pub bot: Option<BotCall>,
}

/// Routes `msg` and returns the replies to give, in order (possibly none), and the bot call
/// to make, if any.
pub async fn route(
    pool: &PgPool,
    settings: &ReplySettings,
    bot_settings: &BotSettings,
    cache: &rules::RegexCache,
    msg: &InboundMessage,
) -> sqlx::Result<Routed> {
    // Messages from something other than a phone number (another channel) have no contact.
    let Ok(number) = PhoneNumber::parse(&msg.from) else {
        return Ok(Routed::default());
    };
    let mut tx = pool.begin().await?;
    let mut given = auto_replies::for_inbound(&mut tx, &msg.sid).await?;
    // A message given to a bot is answered once: by the first delivery of its webhook (as
    // TwiML), or through the REST client when the bot was late.
    if let Some(late) = bots_store::turn_late(&mut tx, &msg.sid).await? {
        if late {
            given.retain(|r| r.reason != "bot" && r.reason != "handoff");
        }
        tx.commit().await?;
        return Ok(Routed {
            rows: given,
            bot: None,
        });
    }
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
        return Ok(Routed {
            rows: given,
            bot: None,
        });
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
    let mut bot = None;
    let mut bot_rule = None;
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
        let hit = rules::first_match(&rules, &view, cache);
        let conv = bots_store::lock_conversation(&mut tx, number.as_str(), &msg.to).await?;
        let session_bot = conv.as_ref().and_then(|c| {
            bot_route::live_session_bot(
                c.bot_id,
                c.last_turn_at,
                c.handoff_since.is_some(),
                msg.received_at,
                bot_settings.session_idle,
            )
        });
        match bot_route::choose(hit.map(|r| (r.kind.as_str(), r.bot_id)), session_bot) {
            Target::Nothing => {}
            Target::Rule => replies.extend(hit.map(rule_reply)),
            Target::Bot { bot_id, rule } => {
                // The rule counts a hit when the bot is asked or the keyword hands off.
                let rule_id = hit.filter(|_| rule).map(|r| r.id);
                let handed_off = conv.as_ref().is_some_and(|c| c.handoff_since.is_some());
                if handed_off || msg.body.trim().is_empty() {
                    // A human has the conversation, or there is no text for a bot.
                } else if bot_route::is_handoff_keyword(&msg.body, bot_settings) {
                    bots_store::hand_off(&mut tx, number.as_str(), &msg.to, "keyword").await?;
                    bot_rule = rule_id;
                    tracing::info!(sid = %msg.sid, "conversation handed to a human by its keyword");
                    replies.extend(bot_settings.handoff_reply.as_ref().map(|t| Planned {
                        reason: "handoff",
                        rule_id: None,
                        body: Some(t.clone()),
                        media: Vec::new(),
                    }));
                } else if let Some(b) = bots_store::get_in(&mut tx, bot_id).await? {
                    let stored = conv.as_ref().and_then(|c| {
                        c.session_id
                            .as_deref()
                            .map(|s| (s, c.bot_id, c.last_turn_at))
                    });
                    let (session_id, new) = bot_route::session_for(
                        stored,
                        bot_id,
                        msg.received_at,
                        bot_settings.session_idle,
                        bot_route::new_session_id,
                    );
                    bots_store::record_turn_start(
                        &mut tx,
                        number.as_str(),
                        &msg.to,
                        bot_id,
                        &session_id,
                        new,
                        msg.received_at,
                    )
                    .await?;
                    bots_store::insert_turn(
                        &mut tx,
                        &bots_store::NewTurn {
                            inbound_sid: &msg.sid,
                            bot_id,
                            bot_name: &b.name,
                            number: number.as_str(),
                            sender: &msg.to,
                            session_id: &session_id,
                        },
                    )
                    .await?;
                    bot_rule = rule_id;
                    let text = utterance(&mut tx, msg).await?;
                    bot = Some(BotCall {
                        inbound_sid: msg.sid.clone(),
                        bot_id,
                        session_id,
                        text,
                        number: number.as_str().to_owned(),
                        contact: msg.from.clone(),
                        sender: msg.to.clone(),
                        fallbacks: if new {
                            0
                        } else {
                            conv.as_ref().map_or(0, |c| c.fallbacks)
                        },
                    });
                }
            }
        }
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
                    choices: None,
                },
            )
            .await?,
        );
    }
    // Last before the commit: the rule's row is locked from here until then.
    for id in replies.iter().filter_map(|p| p.rule_id).chain(bot_rule) {
        reply_rules::record_hit(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(Routed { rows, bot })
}

/// What the bot is sent for `msg`: for a tap on one of a bot's choices (its payload names the
/// option), that option's value or title; else what the contact wrote (for a tap on anything
/// else, the button's text, which Twilio puts in `Body`).
async fn utterance(tx: &mut sqlx::PgConnection, msg: &InboundMessage) -> sqlx::Result<String> {
    let Some(payload) = msg
        .payload
        .as_deref()
        .filter(|p| crate::bots::choices::option_index(p).is_some())
    else {
        return Ok(msg.body.clone());
    };
    let set =
        auto_replies::choices_answered(tx, &msg.from, &msg.to, msg.replied_to.as_deref()).await?;
    Ok(set
        .as_ref()
        .and_then(|s| crate::bots::choices::picked(s, payload))
        .map_or_else(|| msg.body.clone(), |o| o.utterance().to_owned()))
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

/// A stored reply as the message to create: its body and media, from its sender to the
/// contact; None when an address is not a WhatsApp address.
pub fn create_message(r: &ReplyRow) -> Option<crate::twilio::client::CreateMessage> {
    use crate::domain::WhatsAppAddress;
    use crate::twilio::client::{CreateMessage, Sender};
    let to = WhatsAppAddress::parse(&r.to_addr).ok()?;
    let from = WhatsAppAddress::parse(&r.from_addr).ok()?;
    Some(CreateMessage {
        to,
        sender: Sender::From(from),
        body: r.body.clone(),
        media_urls: r.media.clone(),
        content_sid: None,
        content_variables: None,
    })
}

/// In simulator mode, does what Twilio does with a TwiML answer: creates each reply message
/// (at the built-in simulator) with the reply's status callback URL, in the background.
pub fn simulate_twiml_replies(
    client: crate::twilio::client::TwilioClient,
    public_url: &str,
    rows: Vec<ReplyRow>,
) {
    let public_url = public_url.to_owned();
    tokio::spawn(async move {
        for r in rows {
            let Some(msg) = create_message(&r) else {
                continue;
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
