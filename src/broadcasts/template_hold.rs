//! A broadcast whose template cannot be delivered — deleted at Twilio, or no longer approved
//! where WhatsApp requires approval (`sending::policy::check_template`) — is held with the
//! reason instead of failing every recipient ([`super::holds`]). It resumes by itself once a
//! sync finds the template approved again; a deleted one stays held until an operator cancels
//! the broadcast.
//! Reminders apply the same rule to a run that falls due ([`blocked`]).

use sqlx::PgPool;

use crate::sending::policy::TemplateFacts;
use crate::storage::templates::TemplateRow;

/// What the send policy needs of a catalogued template.
pub fn facts_of(t: &TemplateRow) -> TemplateFacts {
    TemplateFacts {
        name: t.name.clone(),
        status: t.status.clone(),
        deleted: t.deleted_at.is_some(),
        types: t
            .types
            .0
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        placeholders: crate::sending::policy::placeholders_of(&t.types.0),
    }
}

/// Why a broadcast with template `sid` (`t`) is held, for its page.
pub fn reason(sid: &str, t: &TemplateFacts) -> String {
    if t.deleted {
        format!(
            "held: the template {} ({sid}) was deleted at Twilio, so no message can be sent with it; \
             cancel this broadcast (it stays held)",
            t.name
        )
    } else {
        format!(
            "held: the template {} ({sid}) is {} at WhatsApp, and WhatsApp delivers only approved \
             templates outside a contact's 24-hour window; the broadcast resumes by itself once \
             a sync finds the template approved again",
            t.name, t.status
        )
    }
}

/// Why a send with the catalogued template `t` cannot start now regardless of who it is for:
/// deleted, or not approved (a reminder is written to whoever it is due for, usually outside
/// the window). None when it can go.
pub fn blocked(sid: &str, t: &TemplateFacts) -> Option<String> {
    if t.deleted {
        return Some(format!(
            "the template {} ({sid}) was deleted at Twilio",
            t.name
        ));
    }
    (t.status != "approved").then(|| {
        format!(
            "the template {} ({sid}) is {} at WhatsApp, not approved",
            t.name, t.status
        )
    })
}

/// Holds running broadcast `id` because of its template `sid`; the caller has put the
/// recipient it was about to send back in the queue. True when this call held it.
pub async fn hold(pool: &PgPool, id: i64, sid: &str) -> Result<bool, sqlx::Error> {
    let Some(t) = crate::storage::templates::get(pool, sid).await? else {
        return Ok(false);
    };
    let why = reason(sid, &facts_of(&t));
    super::holds::hold(
        pool,
        id,
        &super::holds::Hold::Template(sid.to_owned()),
        &why,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: &str, deleted: bool) -> TemplateFacts {
        TemplateFacts {
            name: "appointment_reminder".into(),
            status: status.into(),
            deleted,
            types: vec!["twilio/quick-reply".into()],
            placeholders: Default::default(),
        }
    }

    #[test]
    fn the_reason_names_the_template_its_status_and_what_happens_next() {
        let r = reason("HX1", &facts("paused", false));
        assert!(
            r.contains("appointment_reminder (HX1) is paused at WhatsApp")
                && r.contains("resumes by itself"),
            "{r}"
        );
        let r = reason("HX1", &facts("approved", true));
        assert!(
            r.contains("(HX1) was deleted at Twilio") && r.contains("cancel"),
            "{r}"
        );
    }

    #[test]
    fn only_an_approved_template_that_still_exists_may_start_a_run() {
        assert_eq!(blocked("HX1", &facts("approved", false)), None);
        for status in ["paused", "disabled", "rejected", "pending", "unsubmitted"] {
            let why = blocked("HX1", &facts(status, false)).unwrap();
            assert!(why.contains(&format!("is {status} at WhatsApp")), "{why}");
        }
        assert!(
            blocked("HX1", &facts("approved", true))
                .unwrap()
                .contains("deleted")
        );
    }
}
