//! The alert rules and their settings, with the defaults an ops team would want. Stored as
//! one JSON document (`instance_settings` key `alert_rules`), edited through
//! `PUT /api/v1/alert-rules`; missing fields take their defaults.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    pub failure_rate: FailureRate,
    pub error_codes: ErrorCodes,
    pub callbacks_stalled: CallbacksStalled,
    pub lost_callbacks: LostCallbacks,
}

/// Failed and undelivered messages over a window, per sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureRate {
    pub enabled: bool,
    pub window_minutes: u32,
    /// Share of the window's settled outbound messages, 0–1.
    pub threshold: f64,
    /// Fewer messages than this in the window say nothing.
    pub min_messages: u32,
}

/// A specific error code seen `count` times within the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorCodes {
    pub enabled: bool,
    pub codes: Vec<i32>,
    pub count: u32,
    pub window_minutes: u32,
}

/// Messages sent `minutes` to twice that ago that have not had a single status callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksStalled {
    pub enabled: bool,
    pub minutes: u32,
    pub min_messages: u32,
}

/// Reconciliation settled messages whose callbacks never came, within the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LostCallbacks {
    pub enabled: bool,
    pub window_minutes: u32,
}

impl Default for FailureRate {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 15,
            threshold: 0.2,
            min_messages: 20,
        }
    }
}

impl Default for ErrorCodes {
    fn default() -> Self {
        Self {
            enabled: true,
            // Outside the 24-hour window, the sandbox not joined, unknown error.
            codes: vec![63016, 63015, 30008],
            count: 5,
            window_minutes: 60,
        }
    }
}

impl Default for CallbacksStalled {
    fn default() -> Self {
        Self {
            enabled: true,
            minutes: 10,
            min_messages: 5,
        }
    }
}

impl Default for LostCallbacks {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 60,
        }
    }
}

impl Rules {
    /// Every value out of range, as (field path, what is wrong), in the order of the fields.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let f = &self.failure_rate;
        if !(0.0..=1.0).contains(&f.threshold) || f.threshold == 0.0 {
            out.push((
                "failure_rate.threshold",
                "must be above 0 and at most 1".into(),
            ));
        }
        for (name, minutes) in [
            ("failure_rate.window_minutes", f.window_minutes),
            (
                "error_codes.window_minutes",
                self.error_codes.window_minutes,
            ),
            ("callbacks_stalled.minutes", self.callbacks_stalled.minutes),
            (
                "lost_callbacks.window_minutes",
                self.lost_callbacks.window_minutes,
            ),
        ] {
            if !(1..=10_080).contains(&minutes) {
                out.push((name, "must be between 1 and 10080 (a week)".into()));
            }
        }
        if self.error_codes.count == 0 {
            out.push(("error_codes.count", "must be at least 1".into()));
        }
        if self.error_codes.codes.len() > 50 {
            out.push(("error_codes.codes", "holds at most 50 codes".into()));
        }
        if self.error_codes.codes.iter().any(|c| *c <= 0) {
            out.push(("error_codes.codes", "holds positive numbers only".into()));
        }
        out.sort_by_key(|(field, _)| FIELDS.iter().position(|f| f == field));
        out
    }

    /// The first problem, as one sentence naming its field.
    pub fn validate(&self) -> Result<(), String> {
        match self.problems().into_iter().next() {
            Some((field, problem)) => Err(format!("{field} {problem}")),
            None => Ok(()),
        }
    }
}

/// The fields that can be wrong, in the order a form shows them.
const FIELDS: &[&str] = &[
    "failure_rate.window_minutes",
    "failure_rate.threshold",
    "error_codes.codes",
    "error_codes.count",
    "error_codes.window_minutes",
    "callbacks_stalled.minutes",
    "lost_callbacks.window_minutes",
];

pub const KEY: &str = "alert_rules";

pub async fn load(pool: &sqlx::PgPool) -> sqlx::Result<Rules> {
    Ok(crate::storage::instance_settings::get(pool, KEY)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

pub async fn save(pool: &sqlx::PgPool, rules: &Rules) -> sqlx::Result<()> {
    let text = serde_json::to_string(rules).expect("rules serialize");
    crate::storage::instance_settings::put(pool, KEY, &text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults_and_bad_values_are_refused() {
        let r: Rules = serde_json::from_str(r#"{"failure_rate": {"threshold": 0.5}}"#).unwrap();
        assert_eq!(r.failure_rate.threshold, 0.5);
        assert_eq!(r.failure_rate.window_minutes, 15);
        assert_eq!(r.error_codes, ErrorCodes::default());
        assert!(r.validate().is_ok());
        let bad: Rules = serde_json::from_str(r#"{"failure_rate": {"threshold": 1.5}}"#).unwrap();
        assert_eq!(
            bad.validate(),
            Err("failure_rate.threshold must be above 0 and at most 1".into())
        );
        let mut many = Rules::default();
        many.lost_callbacks.window_minutes = 0;
        many.error_codes.codes = vec![-1];
        many.failure_rate.threshold = 0.0;
        let fields: Vec<_> = many.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "failure_rate.threshold",
                "error_codes.codes",
                "lost_callbacks.window_minutes"
            ],
            "every problem, in form order"
        );
        assert!(
            serde_json::from_str::<Rules>(r#"{"failure_rat": {}}"#).is_err(),
            "typos are errors"
        );
    }
}
