//! Retiring a WhatsApp sender (issue 21 item 4): what uses it (the confirmation both the
//! pages and the API show), de-authorizing it (removed at Twilio, disabled in wadash with its
//! history kept, its broadcasts held and its reminders skipping runs, never dropped), and
//! "change number" (its scheduled work, reply rules and the default flag moved to another
//! usable sender in one transaction, with the contacts whose 24-hour window is open on it).

use serde::Serialize;
use sqlx::PgPool;

use crate::domain::SenderStatus;
use crate::sending::policy;
use crate::storage::pending_work::Through;
use crate::storage::sender_retire::{self as store, Moved};
use crate::storage::senders::{self, SenderRow};
use crate::twilio::client::TwilioError;
use crate::twilio::messaging::MessagingClient;

/// How far back the confirmation counts contacts whose conversations ran on a sender.
pub const CONTACT_DAYS: i32 = 90;

/// What uses a sender, as the confirmation lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub sender_id: i64,
    pub address: String,
    /// Broadcasts still to send, by id.
    pub broadcasts: Vec<i64>,
    /// Reminders still to come, by id.
    pub reminders: Vec<i64>,
    /// Reply rules scoped to it, by id.
    pub rules: Vec<i64>,
    pub is_default: bool,
    /// Contacts with a message to or from it in the last `contact_days` days.
    pub contacts: i64,
    pub contact_days: i32,
    /// Whether de-authorizing removes it at Twilio (Twilio lists it).
    pub at_twilio: bool,
}

/// What de-authorizing did.
#[derive(Debug, Clone, Serialize)]
pub struct Deauthorized {
    pub sender_id: i64,
    pub address: String,
    /// Whether Twilio removed it now (false: Twilio did not list it, or had already removed it).
    pub deleted_at_twilio: bool,
    /// Broadcasts held for it, by id.
    pub held_broadcasts: Vec<i64>,
    /// Reminders that will skip their runs (with the reason) until moved, by id.
    pub skipping_reminders: Vec<i64>,
    /// Reply rules still scoped to it (they no longer match: nothing arrives on it).
    pub rules: Vec<i64>,
}

/// What "change number" did.
#[derive(Debug, Clone, Serialize)]
pub struct Replaced {
    pub from: String,
    pub to: String,
    pub moved: Moved,
    /// Contacts whose 24-hour window is open on the old number: messages to them from the new
    /// one need a template.
    pub open_windows: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("no sender {0}")]
    NoSender(String),
    #[error(
        "{0} is the default sender: make another sender the default first (\"Change number\" moves the default)"
    )]
    DefaultSender(String),
    #[error("{0} is already de-authorized")]
    AlreadyDisabled(String),
    #[error("a sender cannot replace itself")]
    SameSender,
    #[error("{to} cannot take over from {from}: {why}")]
    NotUsable {
        from: String,
        to: String,
        why: String,
    },
    #[error("Twilio refused to remove the sender, so nothing was changed: {0}")]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl RetireError {
    /// The error code the API gives.
    pub fn code(&self) -> &'static str {
        match self {
            RetireError::NoSender(_) => "not_found",
            RetireError::DefaultSender(_) => "default_sender",
            RetireError::AlreadyDisabled(_) => "sender_disabled",
            RetireError::SameSender => "same_sender",
            RetireError::NotUsable { .. } => "replacement_not_usable",
            RetireError::Twilio(_) => "twilio_error",
            RetireError::Database(_) => "internal",
        }
    }
}

async fn find(pool: &PgPool, id: i64) -> Result<SenderRow, RetireError> {
    senders::get(pool, id)
        .await?
        .ok_or_else(|| RetireError::NoSender(id.to_string()))
}

/// The Twilio SID to delete for `s`: when Twilio lists it.
fn twilio_sid(s: &SenderRow) -> Option<&str> {
    s.twilio
        .twilio_sid
        .as_deref()
        .filter(|_| s.twilio.twilio_gone_at.is_none())
}

/// What uses sender `id`.
pub async fn usage(pool: &PgPool, id: i64) -> Result<Usage, RetireError> {
    let s = find(pool, id).await?;
    let mut conn = pool.acquire().await?;
    let (broadcasts, reminders) =
        crate::storage::pending_work::using(&mut conn, Through::Sender, &s.address).await?;
    Ok(Usage {
        broadcasts,
        reminders,
        rules: store::rules_on(&mut conn, &s.address).await?,
        is_default: s.is_default,
        contacts: store::contacts_on(&mut conn, &s.address, CONTACT_DAYS).await?,
        contact_days: CONTACT_DAYS,
        at_twilio: twilio_sid(&s).is_some(),
        sender_id: s.id,
        address: s.address,
    })
}

/// Whether a sender in state `s` may be de-authorized.
fn may_deauthorize(s: &SenderRow) -> Result<(), RetireError> {
    if s.is_default {
        return Err(RetireError::DefaultSender(s.address.clone()));
    }
    if s.status == SenderStatus::Disabled && twilio_sid(s).is_none() {
        return Err(RetireError::AlreadyDisabled(s.address.clone()));
    }
    Ok(())
}

/// De-authorizes sender `id`: removed at Twilio first (a 404 there counts as done; any other
/// failure changes nothing here), then in one transaction disabled with its history kept and
/// marked gone from Twilio (so the number can be registered again), and its broadcasts held.
/// Its reminders skip their runs with the reason (a disabled sender is refused) until moved.
pub async fn deauthorize(
    pool: &PgPool,
    messaging: &MessagingClient,
    id: i64,
) -> Result<Deauthorized, RetireError> {
    let s = find(pool, id).await?;
    may_deauthorize(&s)?;
    let mut deleted = false;
    if let Some(sid) = twilio_sid(&s) {
        match messaging.delete_sender(sid).await {
            Ok(()) => deleted = true,
            Err(TwilioError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut tx = pool.begin().await?;
    let s = senders::lock(&mut tx, id)
        .await?
        .ok_or_else(|| RetireError::NoSender(id.to_string()))?;
    if s.is_default {
        // Made the default while Twilio was asked: it stays usable in wadash; a sync marks it
        // gone from Twilio.
        return Err(RetireError::DefaultSender(s.address));
    }
    store::mark_deauthorized(&mut tx, id).await?;
    let held = store::hold_broadcasts(
        &mut tx,
        &s.address,
        &crate::broadcasts::holds::deauthorized_reason(&s.address),
    )
    .await?;
    let (_, reminders) =
        crate::storage::pending_work::using(&mut tx, Through::Sender, &s.address).await?;
    let rules = store::rules_on(&mut tx, &s.address).await?;
    tx.commit().await?;
    tracing::warn!(
        sender = %s.address,
        deleted_at_twilio = deleted,
        held = held.len(),
        reminders = reminders.len(),
        "sender de-authorized"
    );
    Ok(Deauthorized {
        sender_id: id,
        address: s.address,
        deleted_at_twilio: deleted,
        held_broadcasts: held,
        skipping_reminders: reminders,
        rules,
    })
}

/// The sender `with` names: its id (digits) or its address (`whatsapp:+…`, or just `+…`).
async fn named(pool: &PgPool, with: &str) -> Result<SenderRow, RetireError> {
    let with = with.trim();
    let id = with
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| with.parse::<i64>().ok())
        .flatten();
    let found = match id {
        Some(id) => senders::get(pool, id).await?,
        None => match senders::by_address(pool, with).await? {
            None if with.starts_with('+') => {
                senders::by_address(pool, &format!("whatsapp:{with}")).await?
            }
            found => found,
        },
    };
    found.ok_or_else(|| RetireError::NoSender(with.to_owned()))
}

/// Whether `to` may take over the work of `from`: another sender, one that can send now
/// (active and, when Twilio lists it, online there).
fn may_replace(from: &SenderRow, to: &SenderRow) -> Result<(), RetireError> {
    if from.id == to.id {
        return Err(RetireError::SameSender);
    }
    policy::check_sender(&to.address, Some(to)).map_err(|r| RetireError::NotUsable {
        from: from.address.clone(),
        to: to.address.clone(),
        why: r.to_string(),
    })
}

/// "Change number": moves sender `id`'s scheduled work, reply rules and default flag to the
/// sender `with` names, in one transaction; the old sender and its history stay as they were.
pub async fn replace(pool: &PgPool, id: i64, with: &str) -> Result<Replaced, RetireError> {
    find(pool, id).await?;
    let to = named(pool, with).await?;
    let mut tx = pool.begin().await?;
    // Both locked, lower id first, so two changes at once cannot cross.
    let (first, second) = (id.min(to.id), id.max(to.id));
    let a = senders::lock(&mut tx, first).await?;
    let b = if first == second {
        a.clone()
    } else {
        senders::lock(&mut tx, second).await?
    };
    let (from, to) = if first == id { (a, b) } else { (b, a) };
    let from = from.ok_or_else(|| RetireError::NoSender(id.to_string()))?;
    let to = to.ok_or_else(|| RetireError::NoSender(with.to_owned()))?;
    may_replace(&from, &to)?;
    let moved = store::move_work(
        &mut tx,
        (from.id, &from.address),
        (to.id, &to.address, to.mps),
    )
    .await?;
    let open_windows = store::open_windows(&mut tx, &from.address).await?;
    tx.commit().await?;
    tracing::info!(
        from = %from.address,
        to = %to.address,
        broadcasts = moved.broadcasts.len(),
        reminders = moved.reminders.len(),
        rules = moved.rules,
        default = moved.default,
        "sender's work moved to another sender"
    );
    Ok(Replaced {
        from: from.address,
        to: to.address,
        moved,
        open_windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::senders::AtTwilio;

    fn sender(id: i64, status: SenderStatus, default: bool, twilio: Option<&str>) -> SenderRow {
        SenderRow {
            id,
            address: format!("whatsapp:+1555000000{id}"),
            kind: "number".into(),
            label: String::new(),
            status,
            join_code: None,
            mps: 80.0,
            is_default: default,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            twilio: AtTwilio {
                twilio_sid: twilio.map(str::to_owned),
                twilio_status: twilio.map(|_| "ONLINE".to_owned()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_default_and_an_already_retired_sender_cannot_be_de_authorized() {
        let sid = Some("XE0000000000000000000000000000000a");
        assert!(matches!(
            may_deauthorize(&sender(1, SenderStatus::Active, true, sid)),
            Err(RetireError::DefaultSender(_))
        ));
        assert!(may_deauthorize(&sender(1, SenderStatus::Active, false, sid)).is_ok());
        // Disabled by hand but still at Twilio: de-authorizing removes it there.
        assert!(may_deauthorize(&sender(1, SenderStatus::Disabled, false, sid)).is_ok());
        assert!(matches!(
            may_deauthorize(&sender(1, SenderStatus::Disabled, false, None)),
            Err(RetireError::AlreadyDisabled(_))
        ));
    }

    #[test]
    fn only_another_sender_that_can_send_takes_over() {
        let a = sender(1, SenderStatus::Active, true, Some("XEa"));
        assert!(matches!(may_replace(&a, &a), Err(RetireError::SameSender)));
        assert!(may_replace(&a, &sender(2, SenderStatus::Active, false, Some("XEb"))).is_ok());
        // A number Twilio never listed (added by hand) is fine while active here.
        assert!(may_replace(&a, &sender(2, SenderStatus::Active, false, None)).is_ok());
        let mut offline = sender(2, SenderStatus::Active, false, Some("XEb"));
        offline.twilio.twilio_status = Some("OFFLINE".into());
        let e = may_replace(&a, &offline).unwrap_err();
        assert_eq!(e.code(), "replacement_not_usable");
        assert!(e.to_string().contains("OFFLINE"), "{e}");
        for status in [SenderStatus::Disabled, SenderStatus::Pending] {
            assert!(matches!(
                may_replace(&a, &sender(2, status, false, None)),
                Err(RetireError::NotUsable { .. })
            ));
        }
    }
}
