//! The dashboard's reminder form: what its fields hold, filled from a stored reminder, and
//! read back into the [`ReminderInput`] that `validate` checks (the repeat choice becomes
//! the recurrence text: `weekly` and the ticked days become `weekly:mon,thu`).

use chrono::{DateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::ReminderInput;
use super::schedule::{self, Recurrence};
use super::words::DAYS;
use crate::storage::reminders::ReminderRow;

/// The value a `datetime-local` input shows for an instant in a zone.
pub fn local_input(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.second() == 0 {
        local.format("%Y-%m-%dT%H:%M").to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// What the form holds: the operator's input, or a reminder's settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReminderForm {
    /// `number` or `tag`.
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub body: String,
    /// One URL per line.
    #[serde(default)]
    pub media: String,
    #[serde(default)]
    pub content_sid: String,
    /// `datetime-local`: a wall time in `timezone`.
    #[serde(default)]
    pub at: String,
    /// What `at` showed when the edit form was opened: unchanged, the stored instant stays
    /// (a time given with an offset through the API is not re-read as a wall time).
    #[serde(default)]
    pub at_was: String,
    #[serde(default)]
    pub timezone: String,
    /// `once`, `daily`, `weekly`, `monthly` or `cron`.
    #[serde(default)]
    pub every: String,
    pub day_mon: Option<String>,
    pub day_tue: Option<String>,
    pub day_wed: Option<String>,
    pub day_thu: Option<String>,
    pub day_fri: Option<String>,
    pub day_sat: Option<String>,
    pub day_sun: Option<String>,
    #[serde(default)]
    pub month_day: String,
    #[serde(default)]
    pub cron: String,
}

impl ReminderForm {
    pub fn blank() -> Self {
        Self {
            target: "number".into(),
            timezone: "UTC".into(),
            every: "once".into(),
            ..Self::default()
        }
    }

    pub fn of(r: &ReminderRow) -> Self {
        let tz = schedule::parse_tz(&r.timezone).unwrap_or(chrono_tz::UTC);
        let at = local_input(r.first_at, tz);
        let mut f = Self {
            target: if r.to_tag.is_some() { "tag" } else { "number" }.into(),
            to: r.to_number.clone().unwrap_or_default(),
            tag: r.to_tag.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
            media: r.media.join("\n"),
            content_sid: r.content_sid.clone().unwrap_or_default(),
            at_was: at.clone(),
            at,
            timezone: r.timezone.clone(),
            ..Self::default()
        };
        match Recurrence::parse(&r.recurrence) {
            Ok(Recurrence::Once) | Err(_) => f.every = "once".into(),
            Ok(Recurrence::Daily) => f.every = "daily".into(),
            Ok(Recurrence::Weekly(days)) => {
                f.every = "weekly".into();
                for d in days {
                    *f.day_mut(d) = Some("on".into());
                }
            }
            Ok(Recurrence::Monthly(day)) => {
                f.every = "monthly".into();
                f.month_day = day.to_string();
            }
            Ok(Recurrence::Cron(expr)) => {
                f.every = "cron".into();
                f.cron = expr.to_string();
            }
        }
        f
    }

    fn day_mut(&mut self, d: Weekday) -> &mut Option<String> {
        match d {
            Weekday::Mon => &mut self.day_mon,
            Weekday::Tue => &mut self.day_tue,
            Weekday::Wed => &mut self.day_wed,
            Weekday::Thu => &mut self.day_thu,
            Weekday::Fri => &mut self.day_fri,
            Weekday::Sat => &mut self.day_sat,
            Weekday::Sun => &mut self.day_sun,
        }
    }

    pub fn day(&self, d: Weekday) -> bool {
        match d {
            Weekday::Mon => &self.day_mon,
            Weekday::Tue => &self.day_tue,
            Weekday::Wed => &self.day_wed,
            Weekday::Thu => &self.day_thu,
            Weekday::Fri => &self.day_fri,
            Weekday::Sat => &self.day_sat,
            Weekday::Sun => &self.day_sun,
        }
        .is_some()
    }

    /// The recurrence text `reminders::validate` reads.
    pub fn recurrence(&self) -> Result<String, String> {
        match self.every.as_str() {
            "" | "once" => Ok("once".into()),
            "daily" => Ok("daily".into()),
            "weekly" => {
                let days: Vec<&str> = DAYS
                    .iter()
                    .filter(|(d, _, _)| self.day(*d))
                    .map(|(_, v, _)| *v)
                    .collect();
                if days.is_empty() {
                    return Err("choose at least one day of the week for a weekly reminder".into());
                }
                Ok(format!("weekly:{}", days.join(",")))
            }
            "monthly" => {
                let day = self.month_day.trim();
                if day.is_empty() {
                    return Err(
                        "enter the day of the month (1 to 31) for a monthly reminder".into(),
                    );
                }
                Ok(format!("monthly:{day}"))
            }
            "cron" => {
                let expr = self.cron.trim();
                if expr.is_empty() {
                    return Err(
                        "enter a cron expression (minute hour day month weekday), such as 0 9 * * 1-5"
                            .into(),
                    );
                }
                Ok(format!("cron:{expr}"))
            }
            other => Err(format!(
                "unknown repetition {other:?}: choose once, daily, weekly, monthly or cron"
            )),
        }
    }

    /// The input for `reminders::validate`; `existing` when editing.
    pub fn input(&self, existing: Option<&ReminderRow>) -> Result<ReminderInput, String> {
        let (to, tag) = if self.target == "tag" {
            if self.tag.trim().is_empty() {
                return Err("enter the tag whose contacts get the reminder".into());
            }
            (None, Some(self.tag.trim().to_owned()))
        } else {
            if self.to.trim().is_empty() {
                return Err(
                    "enter the number to remind, in E.164 form such as +919900000001".into(),
                );
            }
            (Some(self.to.trim().to_owned()), None)
        };
        let timezone = Some(self.timezone.trim())
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC")
            .to_owned();
        let at = match existing {
            Some(e) if self.at.trim() == self.at_was.trim() && timezone == e.timezone => None,
            _ => {
                if self.at.trim().is_empty() {
                    return Err("choose the date and time of the (first) reminder".into());
                }
                Some(self.at.trim().to_owned())
            }
        };
        let media: Vec<serde_json::Value> = self
            .media
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::Value::String(l.to_owned()))
            .collect();
        Ok(ReminderInput {
            to,
            tag,
            body: Some(self.body.clone()),
            media_url: Some(serde_json::Value::Array(media)),
            content_sid: Some(self.content_sid.clone()),
            sender: None,
            at,
            every: Some(self.recurrence()?),
            timezone: Some(timezone),
            status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_builds_the_recurrence_text() {
        let mut f = ReminderForm::blank();
        assert_eq!(f.recurrence().unwrap(), "once");
        f.every = "weekly".into();
        assert!(f.recurrence().unwrap_err().contains("at least one day"));
        f.day_thu = Some("on".into());
        f.day_mon = Some("on".into());
        assert_eq!(f.recurrence().unwrap(), "weekly:mon,thu");
        f.every = "monthly".into();
        f.month_day = "15".into();
        assert_eq!(f.recurrence().unwrap(), "monthly:15");
        f.every = "cron".into();
        f.cron = " 0 9 * * 1-5 ".into();
        assert_eq!(f.recurrence().unwrap(), "cron:0 9 * * 1-5");
        f.every = "hourly".into();
        assert!(f.recurrence().is_err());
    }

    #[test]
    fn the_form_shows_a_time_as_the_zone_reads_it() {
        let ny = schedule::parse_tz("America/New_York").unwrap();
        let at = DateTime::parse_from_rfc3339("2030-03-11T13:00:30Z")
            .unwrap()
            .to_utc();
        assert_eq!(local_input(at, ny), "2030-03-11T09:00:30");
    }
}
