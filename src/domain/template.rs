//! WhatsApp templates as wadash keeps them: the record a catalogue sync stores, WhatsApp's
//! approval (statuses kept verbatim, since Twilio adds values), and what changed between two
//! syncs — the history and the alerts are made from these changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A template with WhatsApp's approval, as read from Twilio's catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateRecord {
    pub sid: String,
    pub name: String,
    pub language: String,
    /// Twilio's `types` object, verbatim (`{"twilio/text": {"body": …}}`).
    pub types: serde_json::Value,
    /// Variable → sample value.
    pub variables: BTreeMap<String, String>,
    /// WhatsApp's approval status, lower-case; `unsubmitted` when never submitted.
    pub status: String,
    /// `utility`, `marketing`, `authentication`, … (lower-case); `None` before WhatsApp set one.
    pub category: Option<String>,
    pub rejection_reason: Option<String>,
    /// The name it was submitted to WhatsApp under.
    pub whatsapp_name: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The status of a template never submitted to WhatsApp.
pub const UNSUBMITTED: &str = "unsubmitted";

/// Statuses under which WhatsApp will not deliver the template: an alert is raised on entering
/// one of them.
pub fn is_blocked(status: &str) -> bool {
    matches!(status, "rejected" | "paused" | "disabled")
}

/// What a template's stored state is, for comparison with a fresh read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub status: String,
    pub category: Option<String>,
    pub deleted: bool,
}

/// One change recorded in a template's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub sid: String,
    pub field: ChangeField,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeField {
    Status,
    Category,
    /// Gone from Twilio's catalogue (`to` is `deleted`), or back in it.
    Presence,
}

impl ChangeField {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeField::Status => "status",
            ChangeField::Category => "category",
            ChangeField::Presence => "presence",
        }
    }
}

impl Change {
    /// Whether an ops team must hear of it: a template entering a blocked status, Meta moving
    /// it to another category (a first category is not a change), or a template deleted at
    /// Twilio.
    pub fn alerts(&self) -> bool {
        match self.field {
            ChangeField::Status => self.to.as_deref().is_some_and(is_blocked),
            ChangeField::Category => self.from.is_some() && self.to.is_some(),
            ChangeField::Presence => self.to.as_deref() == Some("deleted"),
        }
    }
}

/// The changes from `before` (what was stored; `None` for a template seen the first time) to
/// `after` (what Twilio answers now). A new template records its first status, so every
/// template's history starts with where it stood when wadash first saw it.
pub fn changes(before: Option<&Known>, after: &TemplateRecord) -> Vec<Change> {
    let now = Known {
        status: after.status.clone(),
        category: after.category.clone(),
        deleted: false,
    };
    between(&after.sid, before, &now)
}

/// The changes of template `sid` from `before` (`None`: first seen) to `after`.
pub fn between(sid: &str, before: Option<&Known>, after: &Known) -> Vec<Change> {
    let change = |field, from: Option<&str>, to: Option<&str>| Change {
        sid: sid.to_owned(),
        field,
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    };
    let mut out = Vec::new();
    let Some(k) = before else {
        out.push(change(ChangeField::Status, None, Some(&after.status)));
        return out;
    };
    if k.deleted != after.deleted {
        let word = |d: bool| if d { "deleted" } else { "present" };
        out.push(change(
            ChangeField::Presence,
            Some(word(k.deleted)),
            Some(word(after.deleted)),
        ));
    }
    if k.status != after.status {
        out.push(change(
            ChangeField::Status,
            Some(&k.status),
            Some(&after.status),
        ));
    }
    if k.category != after.category {
        out.push(change(
            ChangeField::Category,
            k.category.as_deref(),
            after.category.as_deref(),
        ));
    }
    out
}

/// The change recorded when a stored template is no longer in Twilio's catalogue.
pub fn gone(sid: &str) -> Change {
    Change {
        sid: sid.to_owned(),
        field: ChangeField::Presence,
        from: Some("present".into()),
        to: Some("deleted".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, category: Option<&str>) -> TemplateRecord {
        TemplateRecord {
            sid: "HX1".into(),
            name: "order_update".into(),
            language: "en".into(),
            types: serde_json::json!({"twilio/text": {"body": "hi"}}),
            variables: BTreeMap::new(),
            status: status.into(),
            category: category.map(str::to_owned),
            rejection_reason: None,
            whatsapp_name: None,
            updated_at: None,
        }
    }

    fn known(status: &str, category: Option<&str>, deleted: bool) -> Known {
        Known {
            status: status.into(),
            category: category.map(str::to_owned),
            deleted,
        }
    }

    #[test]
    fn a_new_template_starts_its_history_with_its_status_and_alerts_only_if_blocked() {
        let c = changes(None, &record("approved", Some("utility")));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].to.as_deref(), Some("approved"));
        assert!(!c[0].alerts());
        assert!(changes(None, &record("rejected", None))[0].alerts());
    }

    #[test]
    fn nothing_changed_records_nothing() {
        let k = known("approved", Some("utility"), false);
        assert!(changes(Some(&k), &record("approved", Some("utility"))).is_empty());
    }

    #[test]
    fn status_and_category_changes_are_recorded_and_the_risky_ones_alert() {
        let table = [
            // (before status, after status, alerts)
            ("pending", "approved", false),
            ("approved", "paused", true),
            ("paused", "disabled", true),
            ("received", "rejected", true),
            ("paused", "approved", false),
            ("approved", "in_appeal", false),
        ];
        for (from, to, alerts) in table {
            let c = changes(Some(&known(from, None, false)), &record(to, None));
            assert_eq!(c.len(), 1, "{from}→{to}");
            assert_eq!(c[0].field, ChangeField::Status);
            assert_eq!(c[0].alerts(), alerts, "{from}→{to}");
        }
        let recat = changes(
            Some(&known("approved", Some("utility"), false)),
            &record("approved", Some("marketing")),
        );
        assert_eq!(recat.len(), 1);
        assert!(recat[0].alerts(), "Meta moved it to a dearer category");
        let first = changes(
            Some(&known("pending", None, false)),
            &record("pending", Some("utility")),
        );
        assert!(!first[0].alerts(), "a first category is not a change");
    }

    #[test]
    fn a_deleted_template_alerts_and_one_that_comes_back_is_recorded() {
        assert!(gone("HX1").alerts());
        let back = changes(
            Some(&known("approved", None, true)),
            &record("approved", None),
        );
        assert_eq!(back[0].field, ChangeField::Presence);
        assert!(!back[0].alerts());
    }
}
