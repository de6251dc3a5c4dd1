//! Reminders (the prototype's `wa-reminder`): one-off or recurring WhatsApp messages to a
//! contact or to everyone with a tag, at a local time in a time zone.
//!
//! - [`schedule`]: when a reminder falls due (recurrence rules, cron, daylight saving);
//! - [`validate`]: what a person or program asks for, checked;
//! - [`lifecycle`]: the one table of which action (edit, pause, resume, cancel, …) is allowed
//!   from which state;
//! - [`manage`]: creating, editing and acting on stored reminders, with typed errors;
//! - [`form`] and [`words`]: the dashboard's form read into a reminder, and a recurrence in
//!   words;
//! - [`plan`]: what to do with the occurrences that are due at some `now`, including those
//!   missed while wadash was down;
//! - the runner in `src/jobs/reminders.rs` sends each occurrence exactly once, as a broadcast
//!   of its recipients (so it is throttled, tracked per recipient and exactly-once like any
//!   broadcast).

pub mod form;
pub mod lifecycle;
pub mod manage;
pub mod schedule;
pub mod words;

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};

use crate::domain::{PhoneNumber, ReminderStatus, WhatsAppAddress};
use crate::storage::reminders::{NewReminder, ReminderRow};
pub use lifecycle::Action;
pub use manage::ReminderError;
use schedule::{Recurrence, Schedule};

/// A reminder as asked for, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderInput {
    /// A number (`+…`); or use `tag`.
    pub to: Option<String>,
    /// Everyone with this tag at each occurrence.
    pub tag: Option<String>,
    pub body: Option<String>,
    pub media_url: Option<serde_json::Value>,
    pub content_sid: Option<String>,
    pub sender: Option<String>,
    /// RFC 3339 (`2026-12-01T09:00:00+05:30`), or a local time without offset
    /// (`2026-12-01T09:00`) read in `timezone`.
    pub at: Option<String>,
    /// `once` (default), `daily`, `weekly:mon,thu`, `monthly:15`, `cron:0 9 * * 1-5`.
    pub every: Option<String>,
    /// IANA zone (default UTC).
    pub timezone: Option<String>,
    /// `active` or `paused` (PATCH).
    pub status: Option<String>,
}

/// Reads `at` in `tz`: with an offset it is that instant; without, a local wall time.
pub fn parse_at(at: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let at = at.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(at) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(at, f).ok())
    .ok_or_else(|| {
        format!(
            "at must be a time such as 2026-12-01T09:00:00+05:30 or 2026-12-01T09:00, got {at:?}"
        )
    })?;
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(early, _) => Ok(early.with_timezone(&Utc)),
        chrono::LocalResult::None => Err(format!(
            "{at} does not exist in {tz} (the clocks jump over it); pick another time"
        )),
    }
}

/// Checks a reminder; `existing` holds the values that fields left out keep (PATCH).
pub fn validate(
    input: &ReminderInput,
    existing: Option<&ReminderRow>,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<NewReminder, String> {
    let timezone = input
        .timezone
        .clone()
        .or_else(|| existing.map(|e| e.timezone.clone()))
        .unwrap_or_else(|| "UTC".into());
    let tz = schedule::parse_tz(&timezone)?;
    let recurrence_text = input
        .every
        .clone()
        .or_else(|| existing.map(|e| e.recurrence.clone()))
        .unwrap_or_else(|| "once".into());
    let recurrence = Recurrence::parse(&recurrence_text)?;
    let first_at = match (&input.at, existing) {
        (Some(at), _) => parse_at(at, tz)?,
        (None, Some(e)) => e.first_at,
        (None, None) => return Err("at is required".into()),
    };
    let (to_number, to_tag) = match (&input.to, &input.tag, existing) {
        (Some(_), Some(_), _) => return Err("give to or tag, not both".into()),
        (Some(n), None, _) => (Some(PhoneNumber::parse(n)?.as_str().to_owned()), None),
        (None, Some(t), _) => {
            let t = crate::contacts::normalize_tags([t.as_str()])?;
            match t.into_iter().next() {
                Some(t) => (None, Some(t)),
                None => return Err("the tag is empty".into()),
            }
        }
        (None, None, Some(e)) => (e.to_number.clone(), e.to_tag.clone()),
        (None, None, None) => return Err("to (a number) or tag is required".into()),
    };
    let body = match &input.body {
        Some(b) => Some(b.clone()).filter(|b| !b.trim().is_empty()),
        None => existing.and_then(|e| e.body.clone()),
    };
    let media = match &input.media_url {
        None => existing.map(|e| e.media.clone()).unwrap_or_default(),
        Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s.trim().to_owned()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or("media_url entries must be strings")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("media_url must be a URL or a list of URLs".into()),
    };
    if let Some(bad) = media
        .iter()
        .find(|m| !(m.starts_with("https://") || m.starts_with("http://")))
    {
        return Err(format!("media must be http(s) URLs, got {bad:?}"));
    }
    let content_sid = match &input.content_sid {
        Some(c) => Some(c.trim().to_owned()).filter(|c| !c.is_empty()),
        None => existing.and_then(|e| e.content_sid.clone()),
    };
    if body.is_none() && media.is_empty() && content_sid.is_none() {
        return Err("a reminder needs a body, a media URL or a template (content_sid)".into());
    }
    if let Some(b) = &body {
        crate::domain::message_text::check_body("the text", b, content_sid.is_some())?;
    }
    let sender = match &input.sender {
        Some(s) if s.trim().is_empty() => None,
        Some(s) => {
            // A Messaging Service SID, or a WhatsApp address to send from.
            let s = s.trim();
            if !s.starts_with("MG") {
                WhatsAppAddress::parse(s)?;
            }
            Some(s.to_owned())
        }
        None => existing.and_then(|e| e.sender.clone()),
    };
    let status = match input.status.as_deref() {
        None => existing.map_or(ReminderStatus::Active, |e| e.status),
        Some(s) => match s.parse() {
            Ok(status @ (ReminderStatus::Active | ReminderStatus::Paused)) => status,
            _ => return Err(format!("status must be active or paused, got {s:?}")),
        },
    };
    if existing.is_some_and(|e| !lifecycle::is_open(e.status)) && input.status.is_some() {
        return Err("a canceled or finished reminder cannot be resumed; create a new one".into());
    }
    let sched = Schedule {
        first: first_at,
        recurrence,
        tz,
    };
    // The next occurrence from now on (a reminder set in the past for "once" is refused).
    let next_at = sched.next_after(now - TimeDelta::seconds(1));
    if next_at.is_none() && existing.is_none() {
        return Err(format!(
            "that time ({} UTC) has passed and the reminder does not repeat: choose a later time",
            first_at.format("%Y-%m-%d %H:%M")
        ));
    }
    Ok(NewReminder {
        to_number,
        to_tag,
        body,
        media,
        content_sid,
        sender,
        first_at,
        recurrence: sched.recurrence.to_string(),
        timezone,
        // Nothing left to send: the reminder is done.
        status: match next_at {
            None => ReminderStatus::Done,
            Some(_) => status,
        },
        next_at,
        created_by: existing
            .and_then(|e| e.created_by.clone())
            .or_else(|| Some(created_by.to_owned())),
    })
}

pub fn schedule_of(r: &ReminderRow) -> Result<Schedule, String> {
    Ok(Schedule {
        first: r.first_at,
        recurrence: Recurrence::parse(&r.recurrence)?,
        tz: schedule::parse_tz(&r.timezone)?,
    })
}

/// The occurrences of `sched` from `next` (its next one) until before `until`, at most `cap`.
pub fn occurrences_before(
    sched: &Schedule,
    next: DateTime<Utc>,
    until: DateTime<Utc>,
    cap: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut at = Some(next);
    while let Some(t) = at {
        if t >= until || out.len() >= cap {
            break;
        }
        out.push(t);
        at = sched.next_after(t);
    }
    out
}

/// What to do with one due occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Send it (late by this much, zero when on time).
    Send { late: TimeDelta },
    /// Too late, or superseded by a later occurrence that is also due.
    Skip,
}

/// The occurrences due at some moment, and the next one after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub runs: Vec<(DateTime<Utc>, Run)>,
    pub next: Option<DateTime<Utc>>,
}

/// The occurrences due at `now` starting at `due`, and the next occurrence after them.
///
/// After downtime several occurrences may be due at once: only the latest is sent, and only
/// if it is at most `max_late` old; the others are recorded as skipped, so a daily reminder
/// after three days down sends one message, not three.
pub fn plan(sched: &Schedule, due: DateTime<Utc>, now: DateTime<Utc>, max_late: TimeDelta) -> Plan {
    let mut occurrences = Vec::new();
    let mut next = Some(due);
    while let Some(d) = next {
        if d > now || occurrences.len() >= 10_000 {
            break;
        }
        occurrences.push(d);
        next = sched.next_after(d);
    }
    let last = occurrences.len().saturating_sub(1);
    let runs = occurrences
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let late = now - d;
            let run = if i == last && late <= max_late {
                Run::Send { late }
            } else {
                Run::Skip
            };
            (d, run)
        })
        .collect();
    Plan { runs, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn daily_berlin() -> Schedule {
        Schedule {
            first: t("2026-03-27T09:00:00+01:00"),
            recurrence: Recurrence::Daily,
            tz: schedule::parse_tz("Europe/Berlin").unwrap(),
        }
    }

    #[test]
    fn occurrences_before_a_moment_stop_there_and_at_the_cap() {
        let hourly = Schedule {
            first: t("2026-12-06T09:00:00Z"),
            recurrence: Recurrence::parse("cron:0 * * * *").unwrap(),
            tz: schedule::parse_tz("UTC").unwrap(),
        };
        let next = t("2026-12-06T10:00:00Z");
        let day = occurrences_before(&hourly, next, t("2026-12-07T09:30:00Z"), 1_440);
        assert_eq!(day.len(), 24);
        assert_eq!(day[0], next);
        assert_eq!(day[23], t("2026-12-07T09:00:00Z"));
        assert!(occurrences_before(&hourly, next, next, 1_440).is_empty());
        assert_eq!(
            occurrences_before(&hourly, next, t("2026-12-08T00:00:00Z"), 5).len(),
            5
        );
        let once = Schedule {
            recurrence: Recurrence::Once,
            ..hourly
        };
        assert_eq!(
            occurrences_before(&once, next, t("2026-12-08T00:00:00Z"), 1_440),
            vec![next]
        );
        // Daily across the spring change: 09:00 Berlin, 08:00Z then 07:00Z.
        assert_eq!(
            occurrences_before(
                &daily_berlin(),
                t("2026-03-28T08:00:00Z"),
                t("2026-03-30T00:00:00Z"),
                10
            ),
            vec![t("2026-03-28T08:00:00Z"), t("2026-03-29T07:00:00Z")]
        );
    }

    #[test]
    fn an_on_time_occurrence_is_sent_and_the_next_one_planned() {
        let s = daily_berlin();
        let Plan { runs, next } = plan(
            &s,
            t("2026-03-28T08:00:00Z"),
            t("2026-03-28T08:00:02Z"),
            TimeDelta::hours(1),
        );
        assert_eq!(
            runs,
            vec![(
                t("2026-03-28T08:00:00Z"),
                Run::Send {
                    late: TimeDelta::seconds(2)
                }
            )]
        );
        // Across the spring change 09:00 Berlin is 07:00Z.
        assert_eq!(next, Some(t("2026-03-29T07:00:00Z")));
    }

    #[test]
    fn after_downtime_only_the_latest_recent_occurrence_is_sent_late() {
        let s = daily_berlin();
        let now = t("2026-03-30T07:30:00Z");
        let Plan { runs, next } = plan(&s, t("2026-03-27T08:00:00Z"), now, TimeDelta::hours(1));
        assert_eq!(
            runs,
            vec![
                (t("2026-03-27T08:00:00Z"), Run::Skip),
                (t("2026-03-28T08:00:00Z"), Run::Skip),
                (t("2026-03-29T07:00:00Z"), Run::Skip),
                (
                    t("2026-03-30T07:00:00Z"),
                    Run::Send {
                        late: TimeDelta::minutes(30)
                    }
                ),
            ]
        );
        assert_eq!(next, Some(t("2026-03-31T07:00:00Z")));
        // Two hours late with a one-hour limit: skipped, recorded, not sent.
        let Plan { runs, .. } = plan(
            &s,
            t("2026-03-30T07:00:00Z"),
            t("2026-03-30T09:00:00Z"),
            TimeDelta::hours(1),
        );
        assert_eq!(runs, vec![(t("2026-03-30T07:00:00Z"), Run::Skip)]);
    }

    #[test]
    fn a_one_off_has_no_next_occurrence() {
        let s = Schedule {
            first: t("2026-12-01T09:00:00+05:30"),
            recurrence: Recurrence::Once,
            tz: schedule::parse_tz("Asia/Kolkata").unwrap(),
        };
        let Plan { runs, next } = plan(&s, s.first, t("2026-12-01T03:30:05Z"), TimeDelta::hours(1));
        assert_eq!(runs.len(), 1);
        assert_eq!(next, None);
    }

    #[test]
    fn at_is_an_instant_or_a_local_time_in_the_zone() {
        let ny = schedule::parse_tz("America/New_York").unwrap();
        assert_eq!(
            parse_at("2026-12-01T09:00:00+05:30", ny).unwrap(),
            t("2026-12-01T03:30:00Z")
        );
        assert_eq!(
            parse_at("2026-07-01T09:00", ny).unwrap(),
            t("2026-07-01T13:00:00Z")
        );
        assert_eq!(
            parse_at("2026-12-01 09:00", ny).unwrap(),
            t("2026-12-01T14:00:00Z")
        );
        assert!(
            parse_at("2026-03-08T02:30", ny)
                .unwrap_err()
                .contains("does not exist")
        );
        assert_eq!(
            parse_at("2026-11-01T01:30", ny).unwrap(),
            t("2026-11-01T05:30:00Z"),
            "the earlier of two"
        );
        assert!(parse_at("tomorrow", ny).is_err());
    }

    #[test]
    fn reminders_are_validated() {
        let now = t("2026-11-24T10:00:00Z");
        let ok = ReminderInput {
            to: Some("+91 99000 00001".into()),
            body: Some("Your appointment is tomorrow".into()),
            at: Some("2026-12-01T09:00".into()),
            every: Some("weekly:mon".into()),
            timezone: Some("Asia/Kolkata".into()),
            ..Default::default()
        };
        let r = validate(&ok, None, "ops", now).unwrap();
        assert_eq!(r.to_number.as_deref(), Some("+919900000001"));
        assert_eq!(r.recurrence, "weekly:mon");
        assert_eq!(
            r.next_at,
            Some(t("2026-12-07T03:30:00Z")),
            "2026-12-01 is a Tuesday"
        );
        let bad = |f: &dyn Fn(&mut ReminderInput)| {
            let mut i = ok.clone();
            f(&mut i);
            validate(&i, None, "ops", now).unwrap_err()
        };
        assert!(bad(&|i| i.timezone = Some("Mars/Olympus".into())).contains("Mars"));
        assert!(bad(&|i| i.every = Some("hourly".into())).contains("hourly"));
        assert!(bad(&|i| i.tag = Some("vip".into())).contains("not both"));
        assert!(bad(&|i| i.body = None).contains("body"));
        assert!(
            bad(&|i| {
                i.at = Some("2026-01-01T09:00".into());
                i.every = None;
            })
            .contains("passed")
        );
        let r = validate(
            &ReminderInput {
                tag: Some("VIP".into()),
                content_sid: Some("HX123".into()),
                at: Some("2026-12-01T09:00:00Z".into()),
                every: Some("cron:0 9 * * 1-5".into()),
                ..Default::default()
            },
            None,
            "ops",
            now,
        )
        .unwrap();
        assert_eq!(r.to_tag.as_deref(), Some("vip"));
    }
}
