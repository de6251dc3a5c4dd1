//! `wadash doctor`: checks a deployment as Twilio and the operators meet it — database,
//! migrations, TLS to PostgreSQL, the public URL, a signed probe sent through the public URL
//! (the proxy), Twilio's credentials, the senders' webhooks, the clock, the secret key and
//! the first admin's password — and says for each ok, warn or fail, what it found and, when
//! not ok, the fix. It reads the same settings as `wadash serve`, changes nothing (no
//! database is created, no migration applied, nothing stored) and never prints a secret:
//! every line goes through [`Redactor`] before it is shown.

mod checks;
mod redact;
mod selftest;

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::config::Settings;
use crate::credentials::Effective;
use crate::twilio::client::TwilioClient;

pub use redact::Redactor;

/// How long one connection attempt (database, public URL, Twilio) may take.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to PostgreSQL may take.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short, stable name (`database`, `webhook-self-test`, …).
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (warn and fail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in the order run.
#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed (warnings allowed).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }

    /// `{"ok": bool, "counts": {"ok", "warn", "fail"}, "checks": [{name, status, detail, fix?}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok(),
            "counts": {
                "ok": self.count(Status::Ok),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
            },
            "checks": self.checks,
        })
    }

    /// One line per check (`ok   name  detail`, and ` — fix: …` when not ok), then a summary.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{:<4} {:<width$}  {}",
                c.status.as_str(),
                c.name,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                out.push_str(" — fix: ");
                out.push_str(fix);
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "doctor: {} ok, {} warn, {} fail\n",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        ));
        out
    }
}

/// What the checks share: the settings, the database once reached, the credentials in force.
pub(crate) struct Context<'a> {
    pub settings: &'a Settings,
    /// `Some` once the database answered.
    pub pool: Option<PgPool>,
    pub effective: Effective,
    /// Why the stored credentials could not be read, if they could not.
    pub stored_error: Option<String>,
    /// Why the credentials file could not be read, if it could not.
    pub file_error: Option<String>,
    /// The REST client in live mode.
    pub twilio: Option<TwilioClient>,
    /// Plain HTTPS client for the probe and Twilio's clock: no redirects followed.
    pub http: reqwest::Client,
}

/// Runs every check and returns them with secrets removed.
pub async fn run(settings: &Settings) -> Report {
    let redactor = Redactor::of(settings);
    let mut checks = Vec::new();
    let (database, pool) = checks::database(settings).await;
    checks.push(database);
    let mut ctx = checks::context(settings, pool).await;
    let set = &ctx.effective.set;
    for secret in [&set.auth_token, &set.auth_token_secondary, &set.api_secret]
        .into_iter()
        .flatten()
    {
        redactor.add(secret);
    }
    checks.push(checks::migrations(&ctx).await);
    checks.push(checks::database_tls(&ctx).await);
    checks.push(checks::public_url(&ctx).await);
    let token = checks::signing_token(&ctx).await;
    if let Some(t) = &token {
        redactor.add(t);
    }
    checks.push(selftest::run(&ctx, token.as_ref()).await);
    checks.push(checks::twilio_credentials(&ctx).await);
    checks.push(checks::sender_webhooks(&ctx).await);
    checks.push(checks::clock(&ctx).await);
    checks.push(checks::secret_key(&ctx).await);
    checks.push(checks::admin_password(&ctx).await);
    if let Some(pool) = ctx.pool.take() {
        pool.close().await;
    }
    Report {
        checks: checks
            .into_iter()
            .map(|c| Check {
                detail: redactor.clean(&c.detail),
                fix: c.fix.map(|f| redactor.clean(&f)),
                ..c
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fail_makes_the_report_not_ok_and_warnings_do_not() {
        let mut r = Report {
            checks: vec![
                Check::ok("database", "reached"),
                Check::warn("clock", "6 s off", "run NTP"),
            ],
        };
        assert!(r.ok());
        let text = r.to_text();
        assert!(
            text.starts_with("ok   database  reached\nwarn clock     6 s off — fix: run NTP\n")
        );
        r.checks
            .push(Check::fail("public-url", "not set", "set it"));
        assert!(!r.ok());
        let json = r.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["counts"]["fail"], 1);
        assert_eq!(json["checks"][2]["status"], "fail");
        assert!(json["checks"][0].get("fix").is_none());
        assert!(r.to_text().ends_with("doctor: 1 ok, 1 warn, 1 fail\n"));
    }
}
