//! Registering a WhatsApp number at Twilio (Senders API), for the onboarding wizard and the
//! JSON API alike: the number step, the profile sent with the sender's webhooks set to
//! wadash's own `/wa` and `/sts`, the verification code (and a new one), and the status
//! until the sender is online. Bad input is refused before anything reaches Twilio; a
//! registration is kept from its first step so it can be resumed when Twilio was unreachable,
//! and one number has one open registration, so of two admins onboarding it, one wins.

use sqlx::PgPool;

use super::input::{self, Invalid, NumberInput, ProfileInput, RegisterInput};
use crate::storage::sender_registrations::{
    self as store, Accepted, NewRegistration, Registration,
};
use crate::storage::senders as sender_store;
use crate::twilio::client::TwilioError;
use crate::twilio::messaging::{
    MessagingClient, NewSender, SenderConfiguration, SenderUpdate, Webhook,
};

/// Where the first sender of an account is registered (Self Sign-up, in Twilio's Console).
pub const SELF_SIGNUP_URL: &str =
    "https://console.twilio.com/us1/develop/sms/senders/whatsapp-senders";

/// Why a registration step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Refused before anything was sent to Twilio.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The number has an open registration (someone else's, or being submitted right now).
    #[error("{number} is already being registered (registration {id}); resume or cancel that one")]
    Taken { number: String, id: i64 },
    /// The number is a sender at Twilio already.
    #[error("{number} is already a WhatsApp sender at Twilio (sender {sender_id})")]
    Registered { number: String, sender_id: i64 },
    #[error("{0}")]
    NotFound(String),
    /// The step does not fit where the registration is.
    #[error("{0}")]
    WrongStep(String),
    /// Twilio answered that the account's first WhatsApp sender must be registered in its
    /// Console by Self Sign-up.
    #[error(
        "Twilio refused: the first WhatsApp sender of a Twilio account must be registered in the Twilio Console by Self Sign-up ({SELF_SIGNUP_URL}); later numbers can be registered here. Twilio said: {0}"
    )]
    SelfSignup(TwilioError),
    /// Twilio refused (a wrong or expired code, a number already registered, a display name
    /// rejected…): its words and code.
    #[error("{0}")]
    Refused(TwilioError),
    /// Twilio could not be reached or failed: the registration is kept, to be resumed.
    #[error("{source}; the registration is kept and can be resumed where it stopped")]
    Unreachable {
        id: Option<i64>,
        source: TwilioError,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl RegisterError {
    /// Twilio's error code, when it gave one.
    pub fn twilio_code(&self) -> Option<i64> {
        match self {
            Self::SelfSignup(e) | Self::Refused(e) | Self::Unreachable { source: e, .. } => {
                e.code()
            }
            _ => None,
        }
    }
}

/// What a registration needs besides its input.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub pool: &'a PgPool,
    pub messaging: &'a MessagingClient,
    /// `WADASH_PUBLIC_URL` (no trailing slash): the webhooks go to its `/wa` and `/sts`.
    pub public_url: &'a str,
    /// Messages per second given to the new sender.
    pub mps: f64,
    /// Who registers (`admin alice`, `api token #3`).
    pub by: &'a str,
}

/// A sender at Twilio as the wizard and API report it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The sender's id in wadash.
    pub id: i64,
    pub registration_id: i64,
    pub twilio_sid: String,
    pub twilio_status: String,
    /// `pending` until Twilio says online, then `active`.
    pub sender_status: String,
}

/// Whether Twilio's refusal says the first sender must come through Self Sign-up (Twilio
/// words it in several ways: Self Sign-up, Embedded Signup, a WABA it cannot find).
pub fn is_self_signup(e: &TwilioError) -> bool {
    let TwilioError::Api {
        status, message, ..
    } = e
    else {
        return false;
    };
    let m = message.to_ascii_lowercase();
    (400..500).contains(status)
        && (m.contains("sign-up")
            || m.contains("signup")
            || m.contains("sign up")
            || (m.contains("waba") && m.contains("not found")))
}

/// Whether the request may not have reached Twilio or Twilio failed (worth resuming), as
/// opposed to Twilio refusing it.
fn unreachable(e: &TwilioError) -> bool {
    match e {
        TwilioError::Api { status, .. } => *status >= 500 || *status == 429,
        TwilioError::Timeout(_) | TwilioError::Transport(_) | TwilioError::Decode(_) => true,
        TwilioError::Invalid(_) => false,
    }
}

/// Refuses a number that is a sender at Twilio already (unless it is still being registered),
/// after closing the registrations Twilio finished with (online, or gone so the number may
/// come back).
async fn not_registered(pool: &PgPool, n: &input::Number) -> Result<(), RegisterError> {
    store::close_finished(pool, n.number.as_str()).await?;
    if store::open_for(pool, n.number.as_str()).await?.is_some() {
        // Still being registered: opening another is refused with a link to that one.
        return Ok(());
    }
    match store::registered_sender(pool, n.address().as_str()).await? {
        Some(sender_id) => Err(RegisterError::Registered {
            number: n.number.as_str().to_owned(),
            sender_id,
        }),
        None => Ok(()),
    }
}

/// The first step: opens a draft registration of the number, or 409 when it has an open one.
pub async fn start(
    pool: &PgPool,
    i: &NumberInput,
    by: &str,
) -> Result<Registration, RegisterError> {
    let n = input::check_number(i)?;
    not_registered(pool, &n).await?;
    let new = NewRegistration {
        number: n.number.as_str(),
        waba_id: &n.waba_id,
        verification_method: n.verification_method,
        profile: None,
        created_by: by,
    };
    let id = match store::insert(pool, &new, false).await {
        Ok(id) => id,
        Err(e) if store::is_taken(&e) => return Err(taken(pool, n.number.as_str()).await?),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(by, number = %n.number, registration = id, "sender registration started");
    registration(pool, id).await
}

async fn taken(pool: &PgPool, number: &str) -> Result<RegisterError, sqlx::Error> {
    Ok(RegisterError::Taken {
        number: number.to_owned(),
        id: store::open_for(pool, number).await?.map_or(0, |r| r.id),
    })
}

pub async fn registration(pool: &PgPool, id: i64) -> Result<Registration, RegisterError> {
    store::get(pool, id)
        .await?
        .ok_or_else(|| RegisterError::NotFound(format!("no sender registration {id}")))
}

/// The profile step: keeps the profile as typed (so a refusal loses nothing), then creates the
/// sender at Twilio.
pub async fn submit(
    ctx: &Context<'_>,
    id: i64,
    profile: &ProfileInput,
) -> Result<Status, RegisterError> {
    let r = registration(ctx.pool, id).await?;
    let typed = serde_json::to_value(profile).unwrap_or_default();
    if r.step == "draft" {
        store::save_profile(ctx.pool, id, &typed).await?;
    }
    let checked = input::check_profile(profile)?;
    let number = input::check_number(&NumberInput {
        number: r.number.clone(),
        waba_id: r.waba_id.clone(),
        verification_method: r.verification_method.clone(),
    })?;
    let new = NewRegistration {
        number: number.number.as_str(),
        waba_id: &number.waba_id,
        verification_method: number.verification_method,
        profile: Some(typed),
        created_by: ctx.by,
    };
    if !store::claim(ctx.pool, id, &new).await? {
        return Err(not_a_draft(&r));
    }
    create_at_twilio(ctx, id, &number, checked).await
}

fn not_a_draft(r: &Registration) -> RegisterError {
    match r.step.as_str() {
        "submitting" | "submitted" => RegisterError::Taken {
            number: r.number.clone(),
            id: r.id,
        },
        other => {
            RegisterError::WrongStep(format!("registration {} is {other}; start a new one", r.id))
        }
    }
}

/// The whole registration at once (the API): checked whole before anything is stored or
/// sent, then created at Twilio. A number whose registration stopped before Twilio accepted
/// it (a draft) is resumed with this input; one with a registration under way or at Twilio
/// is a conflict.
pub async fn register(ctx: &Context<'_>, i: &RegisterInput) -> Result<Status, RegisterError> {
    let number = input::check_number(&i.number_input())?;
    let profile = input::check_profile(&i.profile)?;
    not_registered(ctx.pool, &number).await?;
    let new = NewRegistration {
        number: number.number.as_str(),
        waba_id: &number.waba_id,
        verification_method: number.verification_method,
        profile: Some(serde_json::to_value(&i.profile).unwrap_or_default()),
        created_by: ctx.by,
    };
    let id = match store::insert(ctx.pool, &new, true).await {
        Ok(id) => id,
        Err(e) if store::is_taken(&e) => {
            let open = store::open_for(ctx.pool, number.number.as_str()).await?;
            match open {
                Some(r) if store::claim(ctx.pool, r.id, &new).await? => {
                    tracing::info!(
                        by = ctx.by,
                        registration = r.id,
                        "sender registration resumed"
                    );
                    r.id
                }
                _ => return Err(taken(ctx.pool, number.number.as_str()).await?),
            }
        }
        Err(e) => return Err(e.into()),
    };
    create_at_twilio(ctx, id, &number, profile).await
}

/// Creates the claimed registration `id` at Twilio. When Twilio says the number is already
/// registered and it is this account's sender (a create whose answer was lost, resumed),
/// that sender is taken over rather than refused.
async fn create_at_twilio(
    ctx: &Context<'_>,
    id: i64,
    number: &input::Number,
    profile: crate::twilio::messaging::Profile,
) -> Result<Status, RegisterError> {
    let address = number.address();
    let callback_url = format!("{}/wa", ctx.public_url);
    let status_callback_url = format!("{}/sts", ctx.public_url);
    let label = profile.name.clone();
    let new = NewSender {
        sender_id: address.as_str().to_owned(),
        configuration: SenderConfiguration {
            waba_id: Some(number.waba_id.clone()),
            verification_method: Some(number.verification_method.to_owned()),
            verification_code: None,
        },
        webhook: Webhook {
            callback_url: Some(callback_url.clone()),
            callback_method: Some("POST".into()),
            status_callback_url: Some(status_callback_url.clone()),
            status_callback_method: Some("POST".into()),
            ..Webhook::default()
        },
        profile,
    };
    let created = match ctx.messaging.create_sender(&new).await {
        Ok(s) => Ok(s),
        Err(e @ TwilioError::Api { status: 409, .. }) => match ctx.messaging.list_senders().await {
            Ok(all) => all
                .into_iter()
                .find(|s| s.sender_id == address.as_str())
                .ok_or(e),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    };
    let sender = match created {
        Ok(s) => s,
        Err(e) => {
            let signup = is_self_signup(&e);
            store::stopped(ctx.pool, id, &e.to_string(), e.code(), signup).await?;
            tracing::warn!(registration = id, error = %e, "Twilio did not create the sender");
            return Err(if signup {
                RegisterError::SelfSignup(e)
            } else if unreachable(&e) {
                RegisterError::Unreachable {
                    id: Some(id),
                    source: e,
                }
            } else {
                RegisterError::Refused(e)
            });
        }
    };
    let status = if sender.status.is_empty() {
        "CREATING".to_owned()
    } else {
        sender.status.clone()
    };
    let sender_id = store::submitted(
        ctx.pool,
        id,
        &Accepted {
            address: address.as_str(),
            label: &label,
            mps: ctx.mps,
            twilio_sid: &sender.sid,
            twilio_status: &status,
            waba_id: &number.waba_id,
            callback_url: &callback_url,
            status_callback_url: &status_callback_url,
            profile: sender.profile.clone(),
        },
    )
    .await?;
    tracing::info!(by = ctx.by, registration = id, sender = %address, sid = %sender.sid, %status, "WhatsApp sender created at Twilio");
    Ok(Status {
        id: sender_id,
        registration_id: id,
        twilio_sid: sender.sid,
        twilio_status: status,
        sender_status: "pending".into(),
    })
}

/// The sender `sender_id` registered through wadash, with its registration.
async fn at_twilio(pool: &PgPool, sender_id: i64) -> Result<(String, Registration), RegisterError> {
    let sender = sender_store::get(pool, sender_id)
        .await?
        .ok_or_else(|| RegisterError::NotFound(format!("no sender {sender_id}")))?;
    let reg = store::of_sender(pool, sender_id).await?.ok_or_else(|| {
        RegisterError::WrongStep(format!(
            "sender {sender_id} was not registered through wadash; verify it in the Twilio Console"
        ))
    })?;
    let sid = sender
        .twilio
        .twilio_sid
        .ok_or_else(|| RegisterError::WrongStep(format!("sender {sender_id} is not at Twilio")))?;
    Ok((sid, reg))
}

/// Twilio's refusal or failure of a call about an existing sender.
fn twilio_failed(e: TwilioError) -> RegisterError {
    if unreachable(&e) {
        RegisterError::Unreachable {
            id: None,
            source: e,
        }
    } else {
        RegisterError::Refused(e)
    }
}

/// Sends the code WhatsApp sent (six digits, checked before anything reaches Twilio). Twilio's
/// refusal of a wrong or expired code comes back in its words, with its code.
pub async fn verify(
    pool: &PgPool,
    messaging: &MessagingClient,
    sender_id: i64,
    code: &str,
) -> Result<Status, RegisterError> {
    let code = input::check_code(code)?;
    let (sid, reg) = at_twilio(pool, sender_id).await?;
    let update = SenderUpdate {
        configuration: Some(SenderConfiguration {
            verification_code: Some(code),
            ..SenderConfiguration::default()
        }),
        ..SenderUpdate::default()
    };
    let s = messaging
        .update_sender(&sid, &update)
        .await
        .map_err(twilio_failed)?;
    tracing::info!(sender = sender_id, %sid, status = %s.status, "verification code accepted by Twilio");
    apply(pool, sender_id, reg.id, &sid, &s.status).await
}

/// Asks Twilio for a new code. Twilio's Senders API has no resend operation; this updates the
/// sender with its `configuration.verification_method` again, which asks WhatsApp to send a
/// code by that method (an assumption documented in docs/messaging.md).
pub async fn resend(
    pool: &PgPool,
    messaging: &MessagingClient,
    sender_id: i64,
) -> Result<Status, RegisterError> {
    let (sid, reg) = at_twilio(pool, sender_id).await?;
    let update = SenderUpdate {
        configuration: Some(SenderConfiguration {
            verification_method: Some(reg.verification_method.clone()),
            ..SenderConfiguration::default()
        }),
        ..SenderUpdate::default()
    };
    let s = messaging
        .update_sender(&sid, &update)
        .await
        .map_err(twilio_failed)?;
    tracing::info!(sender = sender_id, %sid, method = %reg.verification_method, "new verification code asked for");
    apply(pool, sender_id, reg.id, &sid, &s.status).await
}

/// Reads the sender's status at Twilio now and records it (online, it becomes active).
pub async fn check(
    pool: &PgPool,
    messaging: &MessagingClient,
    sender_id: i64,
) -> Result<Status, RegisterError> {
    let (sid, reg) = at_twilio(pool, sender_id).await?;
    let s = messaging.fetch_sender(&sid).await.map_err(twilio_failed)?;
    apply(pool, sender_id, reg.id, &sid, &s.status).await
}

/// The statuses a registration goes through; others (offline, in review…) are the sync's to
/// record, with their alerts.
const REGISTERING: [&str; 4] = ["CREATING", "PENDING_VERIFICATION", "VERIFYING", "ONLINE"];

async fn apply(
    pool: &PgPool,
    sender_id: i64,
    registration_id: i64,
    sid: &str,
    status: &str,
) -> Result<Status, RegisterError> {
    if REGISTERING.contains(&status) {
        store::record_status(pool, sender_id, status).await?;
    }
    let sender = sender_store::get(pool, sender_id)
        .await?
        .ok_or_else(|| RegisterError::NotFound(format!("no sender {sender_id}")))?;
    Ok(Status {
        id: sender_id,
        registration_id,
        twilio_sid: sid.to_owned(),
        twilio_status: status.to_owned(),
        sender_status: sender.status.as_str().to_owned(),
    })
}

/// Gives up an unfinished registration so the number can be registered again (nothing is
/// changed at Twilio).
pub async fn cancel(pool: &PgPool, id: i64, by: &str) -> Result<(), RegisterError> {
    let r = registration(pool, id).await?;
    if !store::cancel(pool, id).await? {
        return Err(RegisterError::WrongStep(format!(
            "registration {id} is {}; it cannot be cancelled now",
            r.step
        )));
    }
    tracing::info!(by, registration = id, number = %r.number, "sender registration cancelled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> TwilioError {
        TwilioError::Api {
            status,
            code: Some(63100),
            message: message.into(),
            more_info: None,
        }
    }

    #[test]
    fn the_self_signup_refusal_is_told_apart_from_other_refusals() {
        for m in [
            "The first WhatsApp sender must be registered through Self Sign-up",
            "Use Embedded Signup for your first sender",
            "WABA not found for this account",
        ] {
            assert!(is_self_signup(&api(400, m)), "{m}");
        }
        assert!(!is_self_signup(&api(
            409,
            "This phone number is already registered"
        )));
        assert!(!is_self_signup(&api(500, "sign-up service down")));
        assert!(!is_self_signup(&TwilioError::Transport("signup".into())));
    }

    #[test]
    fn only_failures_that_may_not_have_reached_twilio_are_resumable() {
        assert!(unreachable(&TwilioError::Transport("refused".into())));
        assert!(unreachable(&TwilioError::Timeout(
            std::time::Duration::from_secs(1)
        )));
        assert!(unreachable(&api(503, "unavailable")));
        assert!(!unreachable(&api(400, "The display name was rejected")));
    }
}
