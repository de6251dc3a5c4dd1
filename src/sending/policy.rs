//! Who may be sent what: consent, de-authorization, changed numbers, the 24-hour window and
//! the sender's status, decided before anything reaches Twilio (docs/api.md).

use chrono::{DateTime, Utc};

use crate::domain::SenderStatus;
use crate::domain::consent::Consent;
use crate::domain::window::Window;
use crate::storage::contacts::Recipient;
use crate::storage::senders::SenderRow;

/// Why a send is refused. Each has a stable code for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    OptedOut {
        number: String,
    },
    Deauthorized {
        number: String,
    },
    NumberChanged {
        number: String,
        new_number: String,
    },
    OutsideWindow {
        number: String,
        closed_at: DateTime<Utc>,
    },
    SenderDisabled {
        sender: String,
    },
    SenderPending {
        sender: String,
    },
    UnknownSender {
        sender: String,
    },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::OptedOut { .. } => "recipient_opted_out",
            Refusal::Deauthorized { .. } => "recipient_deauthorized",
            Refusal::NumberChanged { .. } => "recipient_number_changed",
            Refusal::OutsideWindow { .. } => "outside_service_window",
            Refusal::SenderDisabled { .. } => "sender_disabled",
            Refusal::SenderPending { .. } => "sender_not_approved",
            Refusal::UnknownSender { .. } => "unknown_sender",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OptedOut { number } => write!(
                f,
                "{number} opted out of messages; they can opt in again by sending START"
            ),
            Refusal::Deauthorized { number } => write!(
                f,
                "{number} is de-authorized: nothing is sent to it until an operator authorizes it again"
            ),
            Refusal::NumberChanged { number, new_number } => write!(
                f,
                "{number} is no longer this contact's number: it changed to {new_number}"
            ),
            Refusal::OutsideWindow { number, closed_at } => write!(
                f,
                "{number}'s 24-hour customer service window closed at {} (their last message was 24 h before); \
                 outside it WhatsApp accepts only approved templates and Twilio would fail this message with \
                 error 63016. Send a template (content SID), or force it",
                closed_at.format("%Y-%m-%d %H:%M UTC")
            ),
            Refusal::SenderDisabled { sender } => write!(
                f,
                "the sender {sender} is disabled (de-authorized); choose another sender"
            ),
            Refusal::SenderPending { sender } => write!(
                f,
                "the sender {sender} is waiting for approval; nothing can be sent from it yet"
            ),
            Refusal::UnknownSender { sender } => write!(
                f,
                "{sender} is not one of this business's senders; add it on the senders page first"
            ),
        }
    }
}

/// Checks the recipient. `free_form` is true for text or media without an approved template.
/// Returns the warnings to show with an allowed send.
pub fn check_recipient(
    number: &str,
    recipient: &Recipient,
    free_form: bool,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Refusal> {
    let Some(contact) = &recipient.contact else {
        if let Some(retired) = &recipient.retired {
            return Err(Refusal::NumberChanged {
                number: number.to_owned(),
                new_number: retired.replaced_by.clone(),
            });
        }
        return Ok(unknown_window_warning(number, free_form));
    };
    if contact.is_deauthorized() {
        return Err(Refusal::Deauthorized {
            number: number.to_owned(),
        });
    }
    if contact.consent() == Consent::OptedOut {
        return Err(Refusal::OptedOut {
            number: number.to_owned(),
        });
    }
    if !free_form {
        return Ok(Vec::new());
    }
    match Window::at(contact.last_inbound_at, now) {
        Window::Open { .. } => Ok(Vec::new()),
        Window::Unknown => Ok(unknown_window_warning(number, free_form)),
        Window::Closed { closed_at } if force => Ok(vec![format!(
            "sent outside {number}'s 24-hour window (closed {}) because it was forced; Twilio will likely fail it with error 63016",
            closed_at.format("%Y-%m-%d %H:%M UTC")
        )]),
        Window::Closed { closed_at } => Err(Refusal::OutsideWindow {
            number: number.to_owned(),
            closed_at,
        }),
    }
}

fn unknown_window_warning(number: &str, free_form: bool) -> Vec<String> {
    if free_form {
        vec![format!(
            "wadash has never received a message from {number}, so it cannot tell whether their 24-hour window is open; Twilio decides (error 63016 if it is closed)"
        )]
    } else {
        Vec::new()
    }
}

/// Checks the sender (`whatsapp:+…` or `MG…`) against the registered senders.
pub fn check_sender(address: &str, sender: Option<&SenderRow>) -> Result<(), Refusal> {
    let sender_name = || address.to_owned();
    match sender.map(|s| s.status) {
        Some(SenderStatus::Active) => Ok(()),
        Some(SenderStatus::Pending) => Err(Refusal::SenderPending {
            sender: sender_name(),
        }),
        Some(SenderStatus::Disabled) => Err(Refusal::SenderDisabled {
            sender: sender_name(),
        }),
        None => Err(Refusal::UnknownSender {
            sender: sender_name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::contacts::{ContactRow, RetiredRow};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn contact(consent: &str, last_inbound: Option<&str>) -> Recipient {
        Recipient {
            contact: Some(ContactRow {
                id: 1,
                number: "+919900000001".into(),
                wa_id: None,
                profile_name: None,
                consent: consent.into(),
                deauthorized_at: None,
                first_inbound_at: None,
                last_inbound_at: last_inbound.map(t),
                tags: Vec::new(),
                created_at: t("2026-01-01T00:00:00Z"),
                updated_at: t("2026-01-01T00:00:00Z"),
            }),
            retired: None,
        }
    }

    const N: &str = "+919900000001";

    #[test]
    fn opted_out_and_deauthorized_contacts_are_refused_even_when_forced() {
        let now = t("2026-11-20T12:00:00Z");
        let out = contact("opted_out", Some("2026-11-20T11:00:00Z"));
        assert_eq!(
            check_recipient(N, &out, true, true, now)
                .unwrap_err()
                .code(),
            "recipient_opted_out"
        );
        assert_eq!(
            check_recipient(N, &out, false, false, now)
                .unwrap_err()
                .code(),
            "recipient_opted_out",
            "templates too"
        );
        let mut blocked = contact("opted_in", Some("2026-11-20T11:00:00Z"));
        blocked.contact.as_mut().unwrap().deauthorized_at = Some(now);
        assert_eq!(
            check_recipient(N, &blocked, true, true, now)
                .unwrap_err()
                .code(),
            "recipient_deauthorized"
        );
    }

    #[test]
    fn the_window_decides_free_form_messages_only() {
        let last = "2026-11-20T10:00:00Z";
        let c = contact("opted_in", Some(last));
        let inside = t("2026-11-21T09:59:59Z");
        let boundary = t("2026-11-21T10:00:00Z");
        assert_eq!(check_recipient(N, &c, true, false, inside), Ok(Vec::new()));
        let err = check_recipient(N, &c, true, false, boundary).unwrap_err();
        assert_eq!(err.code(), "outside_service_window");
        assert!(err.to_string().contains("63016"));
        assert_eq!(
            check_recipient(N, &c, false, false, boundary),
            Ok(Vec::new()),
            "templates are allowed outside the window"
        );
        let forced = check_recipient(N, &c, true, true, boundary).unwrap();
        assert!(forced[0].contains("forced"), "{forced:?}");
    }

    #[test]
    fn strangers_get_a_warning_and_retired_numbers_a_refusal() {
        let now = t("2026-11-20T12:00:00Z");
        let never = contact("unknown", None);
        let w = check_recipient(N, &never, true, false, now).unwrap();
        assert!(w[0].contains("never received"), "{w:?}");
        assert_eq!(
            check_recipient(N, &Recipient::default(), true, false, now)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            check_recipient(N, &Recipient::default(), false, false, now).unwrap(),
            Vec::<String>::new()
        );
        let retired = Recipient {
            contact: None,
            retired: Some(RetiredRow {
                number: N.into(),
                contact_id: 1,
                replaced_by: "+919900000002".into(),
                actor: None,
                retired_at: now,
            }),
        };
        let err = check_recipient(N, &retired, false, true, now).unwrap_err();
        assert_eq!(err.code(), "recipient_number_changed");
        assert!(err.to_string().contains("+919900000002"));
    }

    #[test]
    fn only_active_registered_senders_send() {
        let row = |status: &str| SenderRow {
            id: 1,
            address: "whatsapp:+14155550100".into(),
            kind: "number".into(),
            label: String::new(),
            status: SenderStatus::parse(status).unwrap(),
            join_code: None,
            mps: 80.0,
            is_default: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let a = "whatsapp:+14155550100";
        assert_eq!(check_sender(a, Some(&row("active"))), Ok(()));
        assert_eq!(
            check_sender(a, Some(&row("disabled"))).unwrap_err().code(),
            "sender_disabled"
        );
        assert_eq!(
            check_sender(a, Some(&row("pending"))).unwrap_err().code(),
            "sender_not_approved"
        );
        assert_eq!(check_sender(a, None).unwrap_err().code(), "unknown_sender");
    }
}
