//! Broadcasts held for a reason that may clear: when its turn to send comes, a broadcast whose
//! template cannot be delivered ([`super::template_hold`]) or whose sender Twilio has offline
//! or no longer lists (`sending::policy::SenderOffline`) is held with the reason — the
//! recipient about to be sent goes back to the queue, and nothing more is claimed — and
//! records what it waits on. The runner looks at every such hold each turn and resumes the
//! broadcast by itself once a sync finds the template approved, or the sender online, again.
//! A sender disabled here (de-authorized) never clears its holds: an admin moves its
//! broadcasts to another sender ("Change number") or cancels them.

use sqlx::PgPool;

use crate::domain::sender_health;
use crate::sending::policy::{self, Refusal};
use crate::storage::broadcasts as store;

/// What a held broadcast waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Its template (content SID), deleted at Twilio or not approved.
    Template(String),
    /// Its sender (address), not online at Twilio or gone from it.
    Sender(String),
}

impl Hold {
    /// The stored kind (`broadcasts.held_for`).
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::Template(_) => "template",
            Hold::Sender(_) => "sender",
        }
    }

    /// What it waits on (`broadcasts.held_on`).
    pub fn on(&self) -> &str {
        match self {
            Hold::Template(s) | Hold::Sender(s) => s,
        }
    }

    /// A stored hold; None for a kind this version does not know.
    pub fn parse(kind: &str, on: &str) -> Option<Self> {
        match kind {
            "template" => Some(Hold::Template(on.to_owned())),
            "sender" => Some(Hold::Sender(on.to_owned())),
            _ => None,
        }
    }
}

/// Holds running (or scheduled) broadcast `id` until `hold` clears, with `reason` for its page;
/// the caller has put the recipient it was about to send back in the queue. True when this
/// call held it.
pub async fn hold(pool: &PgPool, id: i64, hold: &Hold, reason: &str) -> sqlx::Result<bool> {
    let held = store::hold_until(pool, id, hold.kind(), hold.on(), reason).await?;
    if held {
        tracing::warn!(
            broadcast = id,
            held_for = hold.kind(),
            on = hold.on(),
            reason,
            "broadcast held"
        );
    }
    Ok(held)
}

/// Why a broadcast is held for its sender (a [`Refusal::SenderOffline`]), for its page.
pub fn sender_reason(refusal: &Refusal) -> String {
    let Refusal::SenderOffline {
        sender,
        status,
        reasons,
    } = refusal
    else {
        return format!("held: {refusal}");
    };
    let why = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", sender_health::reasons_text(reasons))
    };
    if status == sender_health::GONE {
        format!(
            "held: the sender {sender} is no longer among Twilio's WhatsApp senders{why}, so \
             nothing can be sent from it; the broadcast resumes by itself if a sync finds it \
             online at Twilio again, else cancel it"
        )
    } else {
        format!(
            "held: the sender {sender} is {status} at Twilio{why}, and WhatsApp delivers nothing \
             from it; the broadcast resumes by itself once a sync finds the sender online again"
        )
    }
}

/// Why a broadcast is held because its sender was de-authorized (disabled here), for its page.
pub fn deauthorized_reason(sender: &str) -> String {
    format!(
        "held: the sender {sender} was de-authorized, so nothing can be sent from it; move its \
         work to another sender (\"Change number\" on the sender's page) or cancel the broadcast"
    )
}

/// The hold, and its reason, for a sender that cannot send: offline at Twilio (or no longer
/// listed there), or de-authorized here. None for any other refusal.
pub fn for_sender(refusal: &Refusal) -> Option<(Hold, String)> {
    match refusal {
        Refusal::SenderOffline { sender, .. } => {
            Some((Hold::Sender(sender.clone()), sender_reason(refusal)))
        }
        Refusal::SenderDisabled { sender } => {
            Some((Hold::Sender(sender.clone()), deauthorized_reason(sender)))
        }
        _ => None,
    }
}

/// Holds broadcast `id`, queued in `conn`'s transaction, because its sender cannot send
/// (`refusal`); the reason given, None when `refusal` is not about the sender.
pub async fn hold_queued(
    conn: &mut sqlx::PgConnection,
    id: i64,
    refusal: &Refusal,
) -> sqlx::Result<Option<String>> {
    let Some((held, reason)) = for_sender(refusal) else {
        return Ok(None);
    };
    store::hold_until(conn, id, held.kind(), held.on(), &reason).await?;
    Ok(Some(reason))
}

/// Whether what `hold` waits on has cleared, as the template catalogue and the senders say
/// now. `sender`: the broadcast's sender now (a sender hold clears when it can send).
async fn cleared(pool: &PgPool, hold: &Hold, sender: &str) -> sqlx::Result<bool> {
    Ok(match hold {
        Hold::Template(sid) => crate::storage::templates::get(pool, sid)
            .await?
            .is_some_and(|t| t.status == "approved" && t.deleted_at.is_none()),
        // Usable again: active here (a de-authorized sender is disabled, so its holds wait
        // for an admin to move the work) and online at Twilio.
        Hold::Sender(_) => {
            let row = crate::storage::senders::by_address(pool, sender).await?;
            row.is_some() && policy::check_sender(sender, row.as_ref()).is_ok()
        }
    })
}

/// Resumes every held broadcast whose hold has cleared; their ids.
pub async fn resume_cleared(pool: &PgPool) -> sqlx::Result<Vec<i64>> {
    let mut resumed = Vec::new();
    for h in store::held_until(pool).await? {
        let Some(hold) = Hold::parse(&h.held_for, &h.held_on) else {
            continue;
        };
        if cleared(pool, &hold, &h.sender).await?
            && store::resume_held(pool, h.id, hold.kind(), hold.on()).await?
        {
            tracing::info!(
                broadcast = h.id,
                held_for = hold.kind(),
                on = hold.on(),
                "broadcast resumed: what held it has cleared"
            );
            resumed.push(h.id);
        }
    }
    Ok(resumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sender_health::OfflineReason;

    #[test]
    fn a_hold_is_stored_as_its_kind_and_what_it_waits_on() {
        for h in [
            Hold::Template("HX1".into()),
            Hold::Sender("whatsapp:+1".into()),
        ] {
            assert_eq!(Hold::parse(h.kind(), h.on()), Some(h.clone()));
        }
        assert_eq!(Hold::parse("reserve", "x"), None);
    }

    #[test]
    fn the_de_authorized_reason_names_the_sender_and_what_to_do() {
        let r = deauthorized_reason("whatsapp:+15550000001");
        assert!(
            r.contains("whatsapp:+15550000001 was de-authorized") && r.contains("Change number"),
            "{r}"
        );
    }

    #[test]
    fn the_sender_reason_names_the_sender_its_status_twilio_s_reasons_and_what_happens_next() {
        let offline = Refusal::SenderOffline {
            sender: "whatsapp:+15550000001".into(),
            status: "OFFLINE".into(),
            reasons: vec![OfflineReason {
                code: "63112".into(),
                message: "The Meta account was disabled".into(),
                more_info: String::new(),
            }],
        };
        let r = sender_reason(&offline);
        assert!(
            r.contains(
                "whatsapp:+15550000001 is OFFLINE at Twilio (63112: The Meta account was disabled)"
            ) && r.contains("resumes by itself once a sync finds the sender online again"),
            "{r}"
        );
        let gone = Refusal::SenderOffline {
            sender: "whatsapp:+15550000001".into(),
            status: sender_health::GONE.into(),
            reasons: Vec::new(),
        };
        let r = sender_reason(&gone);
        assert!(
            r.contains("no longer among Twilio's") && r.contains("cancel"),
            "{r}"
        );
    }
}
