//! A WhatsApp sender as Twilio's Senders API sees it — its status (verbatim, since Twilio adds
//! values), why it is offline, WhatsApp's quality rating and messaging limit, and whether its
//! webhooks point at this wadash — and what changed between two syncs: the sender's history
//! and its alerts are made from these changes.

/// What Twilio says of one sender.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SenderRecord {
    /// `XE…`.
    pub twilio_sid: String,
    /// `whatsapp:+E164`.
    pub address: String,
    /// `ONLINE`, `OFFLINE`, `PENDING_VERIFICATION`, … verbatim.
    pub status: String,
    pub offline_reasons: Vec<OfflineReason>,
    pub quality_rating: Option<String>,
    pub messaging_limit: Option<String>,
    pub callback_url: Option<String>,
    pub status_callback_url: Option<String>,
    pub waba_id: Option<String>,
    /// The WhatsApp display name.
    pub display_name: Option<String>,
    /// The profile as Twilio answered it.
    pub profile: serde_json::Value,
    /// The Messaging Service it is in (`MG…`), when the sync read the services.
    pub messaging_service_sid: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OfflineReason {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub more_info: String,
}

/// Whether WhatsApp delivers from a sender in `status`.
pub fn is_online(status: &str) -> bool {
    matches!(status, "ONLINE" | "ONLINE:UPDATING")
}

/// Why Twilio's account of a sender stops sends from it — removed from Twilio (`gone`), or a
/// known status other than online — as the status to report. None when nothing Twilio says
/// stops them: the sandbox (kind `sandbox`, which Twilio's Senders API does not list), a
/// sender Twilio never listed (no status), or one online.
pub fn stopped_status(kind: &str, status: Option<&str>, gone: bool) -> Option<String> {
    if kind == "sandbox" {
        return None;
    }
    if gone {
        return Some(GONE.to_owned());
    }
    status.filter(|s| !is_online(s)).map(str::to_owned)
}

/// The status [`stopped_status`] reports for a sender removed from Twilio.
pub const GONE: &str = "gone from Twilio";

/// Twilio's offline reasons in words: `63112: The Meta account was disabled; …`.
pub fn reasons_text(reasons: &[OfflineReason]) -> String {
    reasons
        .iter()
        .map(|r| {
            if r.code.is_empty() {
                r.message.clone()
            } else {
                format!("{}: {}", r.code, r.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a sender's webhooks are this wadash's: inbound messages to `{public}/wa` and status
/// callbacks to `{public}/sts` (trailing slashes and the host's case do not matter).
pub fn webhooks_ok(
    public_url: &str,
    callback: Option<&str>,
    status_callback: Option<&str>,
) -> bool {
    let norm = |u: &str| -> Option<String> {
        let url = reqwest::Url::parse(u.trim()).ok()?;
        Some(
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str()?.to_ascii_lowercase(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + url.path().trim_end_matches('/'),
        )
    };
    let base = public_url.trim().trim_end_matches('/');
    let want = |path: &str| norm(&format!("{base}{path}"));
    let is = |got: Option<&str>, path: &str| match (got.and_then(norm), want(path)) {
        (Some(g), Some(w)) => g == w,
        _ => false,
    };
    is(callback, "/wa") && is(status_callback, "/sts")
}

/// WhatsApp's quality ratings from best to worst; anything else (`UNKNOWN`, a value Twilio
/// adds) has no rank, and a move to or from it is recorded but never alerts.
fn quality_rank(q: &str) -> Option<u8> {
    match q.to_ascii_uppercase().as_str() {
        "HIGH" | "GREEN" => Some(3),
        "MEDIUM" | "YELLOW" => Some(2),
        "LOW" | "RED" => Some(1),
        _ => None,
    }
}

/// A sender's stored Twilio state, for comparison with a fresh read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub status: Option<String>,
    pub quality_rating: Option<String>,
    pub messaging_limit: Option<String>,
    pub webhooks_ok: Option<bool>,
    /// Gone from Twilio's list.
    pub gone: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeField {
    Status,
    QualityRating,
    MessagingLimit,
    /// `wadash` or `elsewhere`.
    Webhooks,
    /// `gone` from Twilio's list, or `present` again.
    Presence,
}

impl ChangeField {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeField::Status => "status",
            ChangeField::QualityRating => "quality_rating",
            ChangeField::MessagingLimit => "messaging_limit",
            ChangeField::Webhooks => "webhooks",
            ChangeField::Presence => "presence",
        }
    }
}

/// One change in a sender's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `whatsapp:+E164`.
    pub address: String,
    pub field: ChangeField,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Change {
    /// Whether an ops team must hear of it: a sender going `OFFLINE`, its quality rating
    /// dropping, its messaging limit changing (a first value is not a change), its webhooks
    /// pointing elsewhere, or the sender gone from Twilio.
    pub fn alerts(&self) -> bool {
        let (from, to) = (self.from.as_deref(), self.to.as_deref());
        match self.field {
            ChangeField::Status => to == Some("OFFLINE"),
            ChangeField::QualityRating => {
                matches!((from.and_then(quality_rank), to.and_then(quality_rank)), (Some(a), Some(b)) if b < a)
            }
            ChangeField::MessagingLimit => from.is_some() && to.is_some(),
            ChangeField::Webhooks => to == Some("elsewhere"),
            ChangeField::Presence => to == Some("gone"),
        }
    }

    /// Whether it ends a problem an earlier change raised (online again, quality back up,
    /// webhooks back to wadash, back at Twilio).
    pub fn recovers(&self) -> bool {
        let (from, to) = (self.from.as_deref(), self.to.as_deref());
        match self.field {
            ChangeField::Status => from == Some("OFFLINE") && to.is_some_and(is_online),
            ChangeField::QualityRating => {
                matches!((from.and_then(quality_rank), to.and_then(quality_rank)), (Some(a), Some(b)) if b > a)
            }
            ChangeField::MessagingLimit => false,
            ChangeField::Webhooks => to == Some("wadash"),
            ChangeField::Presence => to == Some("present"),
        }
    }
}

fn word(ok: bool) -> &'static str {
    if ok { "wadash" } else { "elsewhere" }
}

/// The changes of sender `address` from `before` (what was stored; `None` or a never-synced
/// state for a sender seen the first time) to `after`. A first sight records the status, and
/// webhooks that point elsewhere, so every history starts where the sender stood.
pub fn between(address: &str, before: Option<&Known>, after: &Known) -> Vec<Change> {
    let change = |field, from: Option<&str>, to: Option<&str>| Change {
        address: address.to_owned(),
        field,
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    };
    let before = before.filter(|k| k.status.is_some() || k.gone);
    let Some(k) = before else {
        let mut out = vec![change(ChangeField::Status, None, after.status.as_deref())];
        if after.webhooks_ok == Some(false) {
            out.push(change(ChangeField::Webhooks, None, Some(word(false))));
        }
        return out;
    };
    let mut out = Vec::new();
    if k.gone != after.gone {
        let w = |g: bool| if g { "gone" } else { "present" };
        out.push(change(
            ChangeField::Presence,
            Some(w(k.gone)),
            Some(w(after.gone)),
        ));
    }
    if after.gone {
        return out;
    }
    if k.status != after.status {
        out.push(change(
            ChangeField::Status,
            k.status.as_deref(),
            after.status.as_deref(),
        ));
    }
    if k.quality_rating != after.quality_rating {
        out.push(change(
            ChangeField::QualityRating,
            k.quality_rating.as_deref(),
            after.quality_rating.as_deref(),
        ));
    }
    if k.messaging_limit != after.messaging_limit {
        out.push(change(
            ChangeField::MessagingLimit,
            k.messaging_limit.as_deref(),
            after.messaging_limit.as_deref(),
        ));
    }
    if let (Some(was), Some(now)) = (k.webhooks_ok, after.webhooks_ok)
        && was != now
    {
        out.push(change(
            ChangeField::Webhooks,
            Some(word(was)),
            Some(word(now)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(status: &str, quality: Option<&str>, limit: Option<&str>, hooks: bool) -> Known {
        Known {
            status: Some(status.into()),
            quality_rating: quality.map(Into::into),
            messaging_limit: limit.map(Into::into),
            webhooks_ok: Some(hooks),
            gone: false,
        }
    }

    fn fields(c: &[Change]) -> Vec<(&str, Option<&str>, bool)> {
        c.iter()
            .map(|c| (c.field.as_str(), c.to.as_deref(), c.alerts()))
            .collect()
    }

    #[test]
    fn only_a_listed_sender_not_online_or_gone_is_stopped_and_the_sandbox_never() {
        // (kind, status, gone, stopped status)
        let table: &[(&str, Option<&str>, bool, Option<&str>)] = &[
            ("number", Some("ONLINE"), false, None),
            ("number", Some("ONLINE:UPDATING"), false, None),
            ("number", None, false, None),
            ("number", Some("OFFLINE"), false, Some("OFFLINE")),
            (
                "number",
                Some("TWILIO_REVIEW"),
                false,
                Some("TWILIO_REVIEW"),
            ),
            (
                "number",
                Some("SOMETHING_NEW"),
                false,
                Some("SOMETHING_NEW"),
            ),
            ("number", Some("ONLINE"), true, Some(GONE)),
            ("sandbox", Some("OFFLINE"), false, None),
            ("sandbox", Some("OFFLINE"), true, None),
            ("messaging_service", None, false, None),
        ];
        for (kind, status, gone, want) in table {
            assert_eq!(
                stopped_status(kind, *status, *gone).as_deref(),
                *want,
                "{kind} {status:?} gone={gone}"
            );
        }
        let reasons = [
            OfflineReason {
                code: "63112".into(),
                message: "The Meta account was disabled".into(),
                more_info: String::new(),
            },
            OfflineReason {
                code: String::new(),
                message: "Display name rejected".into(),
                more_info: String::new(),
            },
        ];
        assert_eq!(
            reasons_text(&reasons),
            "63112: The Meta account was disabled; Display name rejected"
        );
    }

    #[test]
    fn webhooks_are_wadash_s_only_when_both_point_at_the_public_url() {
        let public = "https://ops.example.com/";
        assert!(webhooks_ok(
            public,
            Some("https://OPS.example.com/wa"),
            Some("https://ops.example.com/sts/")
        ));
        assert!(!webhooks_ok(
            public,
            Some("https://ops.example.com/wa"),
            None
        ));
        assert!(!webhooks_ok(
            public,
            Some("https://ops.example.com/wa"),
            Some("https://old.example.com/sts")
        ));
        assert!(
            !webhooks_ok(
                public,
                Some("http://ops.example.com/wa"),
                Some("https://ops.example.com/sts")
            ),
            "the scheme is part of what Twilio signs"
        );
        assert!(
            !webhooks_ok(
                "https://ops.example.com/console",
                Some("https://ops.example.com/wa"),
                Some("https://ops.example.com/sts")
            ),
            "a path prefix is kept"
        );
    }

    #[test]
    fn a_first_sight_records_where_the_sender_stands() {
        let after = known("ONLINE", Some("HIGH"), Some("1K Customers/24hr"), false);
        let c = between("whatsapp:+1", None, &after);
        assert_eq!(
            fields(&c),
            [
                ("status", Some("ONLINE"), false),
                ("webhooks", Some("elsewhere"), true)
            ]
        );
        let never_synced = Known::default();
        assert_eq!(between("whatsapp:+1", Some(&never_synced), &after).len(), 2);
    }

    #[test]
    fn offline_quality_drops_limit_changes_and_foreign_webhooks_alert() {
        let before = known("ONLINE", Some("HIGH"), Some("1K Customers/24hr"), true);
        let after = known("OFFLINE", Some("LOW"), Some("250 Customers/24hr"), false);
        let c = between("whatsapp:+1", Some(&before), &after);
        assert_eq!(
            fields(&c),
            [
                ("status", Some("OFFLINE"), true),
                ("quality_rating", Some("LOW"), true),
                ("messaging_limit", Some("250 Customers/24hr"), true),
                ("webhooks", Some("elsewhere"), true),
            ]
        );
        let back = between("whatsapp:+1", Some(&after), &before);
        let alerting: Vec<&str> = back
            .iter()
            .filter(|c| c.alerts())
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(
            alerting,
            ["messaging_limit"],
            "a limit change alerts either way"
        );
        let recovered: Vec<&str> = back
            .iter()
            .filter(|c| c.recovers())
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(recovered, ["status", "quality_rating", "webhooks"]);
    }

    #[test]
    fn unranked_quality_and_a_first_limit_are_recorded_without_an_alert() {
        let before = known("ONLINE", Some("UNKNOWN"), None, true);
        let after = known("ONLINE", Some("LOW"), Some("1K Customers/24hr"), true);
        let c = between("whatsapp:+1", Some(&before), &after);
        assert_eq!(
            fields(&c),
            [
                ("quality_rating", Some("LOW"), false),
                ("messaging_limit", Some("1K Customers/24hr"), false),
            ]
        );
    }

    #[test]
    fn a_sender_gone_from_twilio_records_only_that() {
        let before = known("ONLINE", Some("HIGH"), None, true);
        let gone = Known {
            gone: true,
            ..before.clone()
        };
        let c = between("whatsapp:+1", Some(&before), &gone);
        assert_eq!(fields(&c), [("presence", Some("gone"), true)]);
        assert!(between("whatsapp:+1", Some(&gone), &before)[0].recovers());
        assert!(is_online("ONLINE:UPDATING") && !is_online("OFFLINE") && !is_online("online"));
    }
}
