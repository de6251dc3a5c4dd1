//! Who may be sent what: consent, de-authorization, changed numbers, the 24-hour window and
//! the sender's status, decided before anything reaches Twilio (docs/api.md).

use chrono::{DateTime, Utc};

use crate::domain::SenderStatus;
use crate::domain::consent::Consent;
use crate::domain::sender_health::{self, OfflineReason};
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
    /// Twilio has the sender in a status other than online (`OFFLINE`, `TWILIO_REVIEW`, …),
    /// or no longer lists it: WhatsApp delivers nothing from it.
    SenderOffline {
        sender: String,
        /// Twilio's status, verbatim, or [`sender_health::GONE`].
        status: String,
        reasons: Vec<OfflineReason>,
    },
    /// A template WhatsApp has not approved (or that Twilio deleted), sent where approval is
    /// needed: outside the recipient's open 24-hour window.
    TemplateNotApproved {
        sid: String,
        name: String,
        status: String,
    },
    /// A template of a kind WhatsApp allows only inside the window (a list picker, a
    /// location), sent outside it.
    TemplateSessionOnly {
        sid: String,
        name: String,
        kind: String,
    },
    /// The variables given do not fill the template's placeholders exactly.
    TemplateVariables {
        sid: String,
        name: String,
        missing: Vec<String>,
        extra: Vec<String>,
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
            Refusal::SenderOffline { .. } => "sender_offline",
            Refusal::TemplateNotApproved { .. } => "template_not_approved",
            Refusal::TemplateSessionOnly { .. } => "template_session_only",
            Refusal::TemplateVariables { .. } => "template_variables",
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
            Refusal::SenderOffline {
                sender,
                status,
                reasons,
            } => {
                if status == sender_health::GONE {
                    write!(
                        f,
                        "the sender {sender} is no longer among Twilio's WhatsApp senders (removed from the account)"
                    )?;
                } else {
                    write!(f, "the sender {sender} is {status} at Twilio")?;
                }
                if !reasons.is_empty() {
                    write!(f, " ({})", sender_health::reasons_text(reasons))?;
                }
                write!(
                    f,
                    "; WhatsApp delivers nothing from it until Twilio has it online again: choose another sender"
                )
            }
            Refusal::TemplateNotApproved { sid, name, status } => write!(
                f,
                "the template {name} ({sid}) is {status} at WhatsApp, and outside an open 24-hour window \
                 WhatsApp delivers only approved templates (Twilio would fail it with error 63027); \
                 choose an approved template, or send it once the contact has written"
            ),
            Refusal::TemplateVariables {
                sid,
                name,
                missing,
                extra,
            } => {
                let braces = |v: &[String]| {
                    v.iter()
                        .map(|n| format!("{{{{{n}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(f, "the template {name} ({sid})")?;
                if !missing.is_empty() {
                    write!(f, " needs a value for {}", braces(missing))?;
                }
                if !extra.is_empty() {
                    let and = if missing.is_empty() { "" } else { " and" };
                    write!(f, "{and} has no placeholder for {}", braces(extra))?;
                }
                write!(f, ": give exactly its variables")
            }
            Refusal::TemplateSessionOnly { sid, name, kind } => write!(
                f,
                "the template {name} ({sid}) is a {kind}, which WhatsApp allows only inside the \
                 24-hour window (Twilio would fail it with error 63016); send it after the contact writes"
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

/// What the template catalogue knows of a template, for the send policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFacts {
    pub name: String,
    /// WhatsApp's status, verbatim.
    pub status: String,
    /// Gone from Twilio's catalogue.
    pub deleted: bool,
    /// Its content types (`twilio/text`, `twilio/list-picker`, …).
    pub types: Vec<String>,
    /// The placeholders its texts hold (`1`, `2`, …).
    pub placeholders: std::collections::BTreeSet<String>,
}

/// The placeholders in every text of Twilio's `types` object.
pub fn placeholders_of(types: &serde_json::Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::String(s) => {
                out.extend(crate::domain::message_text::placeholders(s));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(types, &mut out);
    out
}

/// The variable names with a value in `vars` (not null, not blank).
pub fn filled(
    vars: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeSet<String> {
    vars.iter()
        .filter(|(_, v)| !v.is_null() && !v.as_str().is_some_and(|s| s.trim().is_empty()))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Checks that `given` (the variables with a value) fill the template's placeholders exactly.
pub fn check_variables(
    sid: &str,
    t: &TemplateFacts,
    given: &std::collections::BTreeSet<String>,
) -> Result<(), Refusal> {
    let missing: Vec<String> = t.placeholders.difference(given).cloned().collect();
    let extra: Vec<String> = given.difference(&t.placeholders).cloned().collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(Refusal::TemplateVariables {
        sid: sid.to_owned(),
        name: t.name.clone(),
        missing,
        extra,
    })
}

/// Content types WhatsApp sends only inside the window: they cannot start a conversation.
const SESSION_ONLY: &[&str] = &["twilio/list-picker", "twilio/location"];

/// Checks a template send. Inside an open window anything goes (WhatsApp takes it as a
/// session message, approved or not); elsewhere — a closed window, or one wadash cannot see —
/// the template must be approved and of a kind that can start a conversation. A template the
/// catalogue does not know (not synced yet) goes with a warning: Twilio decides.
pub fn check_template(
    sid: &str,
    template: Option<&TemplateFacts>,
    window_open: bool,
) -> Result<Vec<String>, Refusal> {
    let Some(t) = template else {
        return Ok(vec![format!(
            "the template {sid} is not in wadash's template catalogue (it is read from Twilio every few minutes); Twilio decides whether WhatsApp takes it"
        )]);
    };
    if t.deleted {
        return Err(Refusal::TemplateNotApproved {
            sid: sid.to_owned(),
            name: t.name.clone(),
            status: "deleted at Twilio".into(),
        });
    }
    if window_open {
        return Ok(Vec::new());
    }
    if let Some(kind) = t.types.iter().find(|k| SESSION_ONLY.contains(&k.as_str()))
        && t.types.len() == 1
    {
        return Err(Refusal::TemplateSessionOnly {
            sid: sid.to_owned(),
            name: t.name.clone(),
            kind: kind.clone(),
        });
    }
    if t.status != "approved" {
        return Err(Refusal::TemplateNotApproved {
            sid: sid.to_owned(),
            name: t.name.clone(),
            status: t.status.clone(),
        });
    }
    Ok(Vec::new())
}

/// Why Twilio's account of `s` stops sends from it (see
/// [`sender_health::stopped_status`]); None when it does not.
pub fn twilio_stop(s: &SenderRow) -> Option<Refusal> {
    let status = sender_health::stopped_status(
        &s.kind,
        s.twilio.twilio_status.as_deref(),
        s.twilio.twilio_gone_at.is_some(),
    )?;
    Some(Refusal::SenderOffline {
        sender: s.address.clone(),
        status,
        reasons: s.twilio.offline_reasons.0.clone(),
    })
}

/// Checks the sender (`whatsapp:+…` or `MG…`) against the registered senders: it must be
/// active here and, when Twilio lists it, online there (the sandbox is exempt).
pub fn check_sender(address: &str, sender: Option<&SenderRow>) -> Result<(), Refusal> {
    let sender_name = || address.to_owned();
    match sender.map(|s| s.status) {
        Some(SenderStatus::Active) => match sender.and_then(twilio_stop) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        },
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

    fn template(status: &str, types: &[&str], deleted: bool) -> TemplateFacts {
        TemplateFacts {
            name: "order_update".into(),
            status: status.into(),
            deleted,
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            placeholders: Default::default(),
        }
    }

    #[test]
    fn variables_must_fill_the_placeholders_exactly() {
        let types = serde_json::json!({"twilio/quick-reply": {"body": "Hi {{1}}, order {{2}}",
            "actions": [{"title": "Track {{3}}", "id": "t"}]}});
        let t = TemplateFacts {
            placeholders: placeholders_of(&types),
            ..template("approved", &["twilio/quick-reply"], false)
        };
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        assert!(check_variables("HX1", &t, &set(&["1", "2", "3"])).is_ok());
        let err = check_variables("HX1", &t, &set(&["1", "4"])).unwrap_err();
        assert_eq!(err.code(), "template_variables");
        let said = err.to_string();
        assert!(
            said.contains("{{2}}, {{3}}") && said.contains("no placeholder for {{4}}"),
            "{said}"
        );
    }

    #[test]
    fn the_template_policy_table() {
        const TEXT: &[&str] = &["twilio/text"];
        const PICKER: &[&str] = &["twilio/list-picker"];
        const REPLY: &[&str] = &["twilio/quick-reply", "twilio/text"];
        // (status, types, window open, code or None for allowed)
        let table: &[(&str, &[&str], bool, Option<&str>)] = &[
            ("approved", TEXT, false, None),
            ("approved", TEXT, true, None),
            ("pending", TEXT, false, Some("template_not_approved")),
            ("pending", TEXT, true, None),
            ("received", REPLY, false, Some("template_not_approved")),
            ("rejected", TEXT, false, Some("template_not_approved")),
            ("rejected", REPLY, true, None),
            ("paused", TEXT, false, Some("template_not_approved")),
            ("paused", TEXT, true, None),
            ("disabled", REPLY, false, Some("template_not_approved")),
            ("unsubmitted", REPLY, true, None),
            ("unsubmitted", TEXT, false, Some("template_not_approved")),
            ("in_appeal", TEXT, false, Some("template_not_approved")),
            ("approved", PICKER, false, Some("template_session_only")),
            ("unsubmitted", PICKER, true, None),
        ];
        for (status, types, open, want) in table {
            let got = check_template("HX1", Some(&template(status, types, false)), *open);
            assert_eq!(
                got.as_ref().err().map(Refusal::code),
                *want,
                "{status} {types:?} open={open}: {got:?}"
            );
        }
    }

    #[test]
    fn a_deleted_template_is_refused_anywhere_and_an_unknown_one_goes_with_a_warning() {
        let gone = check_template(
            "HX1",
            Some(&template("approved", &["twilio/text"], true)),
            true,
        );
        assert_eq!(gone.unwrap_err().code(), "template_not_approved");
        let unknown = check_template("HX9", None, false).unwrap();
        assert_eq!(unknown.len(), 1);
        assert!(unknown[0].contains("HX9"));
    }

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
            twilio: Default::default(),
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

    #[test]
    fn a_sender_twilio_has_not_online_or_gone_is_refused_and_the_sandbox_is_exempt() {
        let row = |kind: &str, status: &str, twilio: Option<&str>, gone: bool| SenderRow {
            id: 1,
            address: "whatsapp:+14155550100".into(),
            kind: kind.into(),
            label: String::new(),
            status: SenderStatus::parse(status).unwrap(),
            join_code: None,
            mps: 80.0,
            is_default: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            twilio: crate::storage::senders::AtTwilio {
                twilio_status: twilio.map(str::to_owned),
                twilio_gone_at: gone.then(Utc::now),
                offline_reasons: sqlx::types::Json(vec![OfflineReason {
                    code: "63112".into(),
                    message: "The Meta account was disabled".into(),
                    more_info: "https://www.twilio.com/docs/errors/63112".into(),
                }]),
                ..Default::default()
            },
        };
        let a = "whatsapp:+14155550100";
        // (kind, wadash status, Twilio status, gone, refusal code or None)
        type Case<'a> = (&'a str, &'a str, Option<&'a str>, bool, Option<&'a str>);
        let table: &[Case] = &[
            ("number", "active", Some("ONLINE"), false, None),
            ("number", "active", Some("ONLINE:UPDATING"), false, None),
            ("number", "active", None, false, None),
            (
                "number",
                "active",
                Some("OFFLINE"),
                false,
                Some("sender_offline"),
            ),
            (
                "number",
                "active",
                Some("TWILIO_REVIEW"),
                false,
                Some("sender_offline"),
            ),
            (
                "number",
                "active",
                Some("ONLINE"),
                true,
                Some("sender_offline"),
            ),
            (
                "number",
                "disabled",
                Some("OFFLINE"),
                false,
                Some("sender_disabled"),
            ),
            (
                "number",
                "pending",
                Some("OFFLINE"),
                false,
                Some("sender_not_approved"),
            ),
            ("sandbox", "active", Some("OFFLINE"), false, None),
            ("sandbox", "active", Some("OFFLINE"), true, None),
        ];
        for (kind, status, twilio, gone, want) in table {
            let got = check_sender(a, Some(&row(kind, status, *twilio, *gone)));
            assert_eq!(
                got.as_ref().err().map(Refusal::code),
                *want,
                "{kind} {status} {twilio:?} gone={gone}: {got:?}"
            );
        }
        let said = check_sender(a, Some(&row("number", "active", Some("OFFLINE"), false)))
            .unwrap_err()
            .to_string();
        assert!(
            said.contains("whatsapp:+14155550100 is OFFLINE at Twilio")
                && said.contains("63112: The Meta account was disabled"),
            "{said}"
        );
        let gone = check_sender(a, Some(&row("number", "active", Some("ONLINE"), true)))
            .unwrap_err()
            .to_string();
        assert!(
            gone.contains("no longer among Twilio's WhatsApp senders"),
            "{gone}"
        );
    }
}
