//! `/admin/alerts` (admin): every setting of the alert rules, and the channels (webhook,
//! WhatsApp ops numbers, top-up hook). Each form is checked field by field and nothing is
//! saved while anything is wrong; the errors are shown next to their fields. Secrets are
//! write-only: the page says whether one is set, a blank field keeps it, "clear" removes it.
//! A test alert goes through the real delivery path, so its deliveries show on `/alerts`.
//! Validation is `Rules::problems` and `ChannelStore::save`, as for the API.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError};
use crate::alerts::channels::{Change, Effective, SaveError, Secret, Source};
use crate::alerts::rules::{self, Rules};
use crate::routes::pages::{Allowed, CsrfOnly, Posted};
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/alerts", web::get().to(page))
        .route("/admin/alerts/rules", web::post().to(save_rules))
        .route("/admin/alerts/channels", web::post().to(save_channels))
        .route(
            "/admin/alerts/channels/reset",
            web::post().to(reset_channels),
        )
        .route("/admin/alerts/test", web::post().to(send_test));
}

/// What is wrong, per form field.
#[derive(Debug, Clone, Default)]
struct Errors(HashMap<&'static str, String>);

impl Errors {
    fn of(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// Keeps the first error of a field: it is the one to fix first.
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The rules form's fields, as shown (typed values when they were refused).
#[derive(Debug, Clone, Deserialize)]
struct RulesForm {
    #[serde(default)]
    csrf: String,
    /// Checkboxes: present when ticked.
    fr_enabled: Option<String>,
    #[serde(default)]
    fr_window: String,
    /// Percent.
    #[serde(default)]
    fr_threshold: String,
    #[serde(default)]
    fr_min: String,
    ec_enabled: Option<String>,
    /// Comma- or space-separated.
    #[serde(default)]
    ec_codes: String,
    #[serde(default)]
    ec_count: String,
    #[serde(default)]
    ec_window: String,
    cs_enabled: Option<String>,
    #[serde(default)]
    cs_minutes: String,
    #[serde(default)]
    cs_min: String,
    lc_enabled: Option<String>,
    #[serde(default)]
    lc_window: String,
}

/// 0.2 → "20", 0.125 → "12.5".
fn percent(share: f64) -> String {
    let p = (share * 100.0 * 1e4).round() / 1e4;
    format!("{p}")
}

impl RulesForm {
    fn of(r: &Rules) -> Self {
        let on = |b: bool| b.then(|| "1".to_owned());
        Self {
            csrf: String::new(),
            fr_enabled: on(r.failure_rate.enabled),
            fr_window: r.failure_rate.window_minutes.to_string(),
            fr_threshold: percent(r.failure_rate.threshold),
            fr_min: r.failure_rate.min_messages.to_string(),
            ec_enabled: on(r.error_codes.enabled),
            ec_codes: r
                .error_codes
                .codes
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            ec_count: r.error_codes.count.to_string(),
            ec_window: r.error_codes.window_minutes.to_string(),
            cs_enabled: on(r.callbacks_stalled.enabled),
            cs_minutes: r.callbacks_stalled.minutes.to_string(),
            cs_min: r.callbacks_stalled.min_messages.to_string(),
            lc_enabled: on(r.lost_callbacks.enabled),
            lc_window: r.lost_callbacks.window_minutes.to_string(),
        }
    }

    /// The rules the form asks for, or every field that is wrong.
    fn parse(&self) -> Result<Rules, Errors> {
        let mut errors = Errors::default();
        let mut whole = |field: &'static str, raw: &str| {
            raw.trim().parse::<u32>().unwrap_or_else(|_| {
                errors.add(field, "must be a whole number, 0 or more");
                0
            })
        };
        let mut r = Rules::default();
        r.failure_rate.enabled = self.fr_enabled.is_some();
        r.failure_rate.window_minutes = whole("fr_window", &self.fr_window);
        r.failure_rate.min_messages = whole("fr_min", &self.fr_min);
        r.error_codes.enabled = self.ec_enabled.is_some();
        r.error_codes.count = whole("ec_count", &self.ec_count);
        r.error_codes.window_minutes = whole("ec_window", &self.ec_window);
        r.callbacks_stalled.enabled = self.cs_enabled.is_some();
        r.callbacks_stalled.minutes = whole("cs_minutes", &self.cs_minutes);
        r.callbacks_stalled.min_messages = whole("cs_min", &self.cs_min);
        r.lost_callbacks.enabled = self.lc_enabled.is_some();
        r.lost_callbacks.window_minutes = whole("lc_window", &self.lc_window);
        match self
            .fr_threshold
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
        {
            Ok(p) if p.is_finite() => r.failure_rate.threshold = p / 100.0,
            _ => errors.add("fr_threshold", "must be a percentage, such as 20"),
        }
        r.error_codes.codes = Vec::new();
        for code in self
            .ec_codes
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|c| !c.is_empty())
        {
            match code.parse::<i32>() {
                Ok(n) => r.error_codes.codes.push(n),
                Err(_) => errors.add(
                    "ec_codes",
                    format!("{code:?} is not an error code (a number such as 63016)"),
                ),
            }
        }
        for (path, problem) in r.problems() {
            let (field, problem) = match path {
                "failure_rate.threshold" => {
                    ("fr_threshold", "must be above 0 % and at most 100 %".into())
                }
                "failure_rate.window_minutes" => ("fr_window", problem),
                "error_codes.codes" => ("ec_codes", problem),
                "error_codes.count" => ("ec_count", problem),
                "error_codes.window_minutes" => ("ec_window", problem),
                "callbacks_stalled.minutes" => ("cs_minutes", problem),
                "lost_callbacks.window_minutes" => ("lc_window", problem),
                _ => ("rules", format!("{path} {problem}")),
            };
            errors.add(field, problem);
        }
        if errors.is_empty() {
            Ok(r)
        } else {
            Err(errors)
        }
    }
}

/// The channels form's fields. Secrets are never shown back, so they have no field here.
#[derive(Debug, Clone)]
struct ChannelFields {
    webhook_url: String,
    /// One number per line.
    whatsapp: String,
    topup_url: String,
}

impl ChannelFields {
    fn of(e: &Effective) -> Self {
        let c = &e.channels;
        Self {
            webhook_url: c.webhook_url.clone().unwrap_or_default(),
            whatsapp: c.whatsapp.join("\n"),
            topup_url: c.topup_url.clone().unwrap_or_default(),
        }
    }
}

/// Where each channel setting comes from and which secrets are set.
#[derive(Debug)]
struct ChannelStatus {
    webhook_url: &'static str,
    webhook_secret: &'static str,
    whatsapp: &'static str,
    topup_url: &'static str,
    topup_secret: &'static str,
    webhook_secret_set: bool,
    topup_secret_set: bool,
    any_saved: bool,
    problem: Option<String>,
    secret_key_configured: bool,
    /// The channels a test alert goes to.
    names: Vec<String>,
    topup_configured: bool,
}

impl ChannelStatus {
    fn of(e: &Effective, secret_key_configured: bool) -> Self {
        let s = &e.sources;
        Self {
            webhook_url: s.webhook_url.label(),
            webhook_secret: s.webhook_secret.label(),
            whatsapp: s.whatsapp.label(),
            topup_url: s.topup_url.label(),
            topup_secret: s.topup_secret.label(),
            webhook_secret_set: e.channels.webhook_secret.is_some(),
            topup_secret_set: e.channels.topup_secret.is_some(),
            any_saved: [
                s.webhook_url,
                s.webhook_secret,
                s.whatsapp,
                s.topup_url,
                s.topup_secret,
            ]
            .contains(&Source::Stored),
            problem: e.problem.clone(),
            secret_key_configured,
            names: e.channels.names(),
            topup_configured: e.channels.topup_url.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "alert_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    rules: RulesForm,
    rule_errors: Errors,
    channels: ChannelFields,
    channel_errors: Errors,
    status: ChannelStatus,
    notice: Option<String>,
    error: Option<String>,
}

/// What a refused submission shows back.
#[derive(Default)]
struct Refused {
    rules: Option<(RulesForm, Errors)>,
    channels: Option<(ChannelFields, Errors)>,
    error: Option<String>,
}

async fn render(
    user: &CurrentUser,
    state: &AppState,
    notice: Option<String>,
    refused: Refused,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let saved = rules::load(&state.pool).await?;
    let effective = state.alert_channels.reload().await?;
    let (rules, rule_errors) = refused
        .rules
        .unwrap_or_else(|| (RulesForm::of(&saved), Errors::default()));
    let (channels, channel_errors) = refused
        .channels
        .unwrap_or_else(|| (ChannelFields::of(&effective), Errors::default()));
    crate::routes::pages::html_with(
        &SettingsPage {
            chrome: Chrome::for_user(user, state, "alert-settings"),
            rules,
            rule_errors,
            channels,
            channel_errors,
            status: ChannelStatus::of(&effective, state.alert_channels.secret_key_configured()),
            notice,
            error: refused.error,
        },
        status,
    )
}

async fn page(
    user: Allowed<Admin>,
    q: web::Query<super::DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let notice = q.notice(&[
        ("rules", "Alert rules saved: the next check uses them."),
        (
            "channels",
            "Channels saved: every instance uses them within a few seconds.",
        ),
        (
            "reset",
            "Saved channels removed: the environment's channels apply again.",
        ),
        (
            "test",
            "Test alert queued to every channel: its deliveries show on the Alerts page.",
        ),
    ]);
    render(&user, &state, notice, Refused::default(), StatusCode::OK).await
}

fn done(what: &str) -> HttpResponse {
    super::done_redirect("/admin/alerts", what)
}

async fn save_rules(
    Posted { user, form, .. }: Posted<RulesForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let rules = match form.parse() {
        Ok(r) => r,
        Err(errors) => {
            let refused = Refused {
                rules: Some((form, errors)),
                ..Default::default()
            };
            return render(&user, &state, None, refused, StatusCode::BAD_REQUEST).await;
        }
    };
    rules::save(&state.pool, &rules).await?;
    tracing::info!(admin = %user.username, "alert rules changed");
    Ok(done("rules"))
}

#[derive(Deserialize)]
struct ChannelsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
    webhook_secret_clear: Option<String>,
    /// One number per line (or comma-separated).
    #[serde(default)]
    whatsapp: String,
    #[serde(default)]
    topup_url: String,
    #[serde(default)]
    topup_secret: String,
    topup_secret_clear: Option<String>,
}

/// Blank keeps, "clear" removes, anything else replaces; both at once is a mistake.
fn secret_change(field: &'static str, typed: &str, clear: bool, errors: &mut Errors) -> Secret {
    match (typed.trim().is_empty(), clear) {
        (true, false) => Secret::Keep,
        (true, true) => Secret::Clear,
        (false, false) => Secret::Set(SecretString::from(typed.to_owned())),
        (false, true) => {
            errors.add(field, "type a new secret or tick \"clear\", not both");
            Secret::Keep
        }
    }
}

async fn save_channels(
    Posted { user, form, .. }: Posted<ChannelsForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let typed = ChannelFields {
        webhook_url: form.webhook_url.clone(),
        whatsapp: form.whatsapp.clone(),
        topup_url: form.topup_url.clone(),
    };
    let mut errors = Errors::default();
    let change = Change {
        webhook_url: Some(form.webhook_url.clone()),
        webhook_secret: secret_change(
            "webhook_secret",
            &form.webhook_secret,
            form.webhook_secret_clear.is_some(),
            &mut errors,
        ),
        whatsapp: Some(
            form.whatsapp
                .split(['\n', ','])
                .map(str::to_owned)
                .collect(),
        ),
        topup_url: Some(form.topup_url.clone()),
        topup_secret: secret_change(
            "topup_secret",
            &form.topup_secret,
            form.topup_secret_clear.is_some(),
            &mut errors,
        ),
    };
    let setting = |s: &Secret| matches!(s, Secret::Set(_));
    let secrets_set = [
        ("webhook_secret", setting(&change.webhook_secret)),
        ("topup_secret", setting(&change.topup_secret)),
    ];
    if errors.is_empty() {
        match state.alert_channels.save(change).await {
            Ok(_) => {
                tracing::info!(admin = %user.username, "alert channels changed");
                return Ok(done("channels"));
            }
            Err(SaveError::Invalid(list)) => {
                for (field, message) in list {
                    errors.add(field, message);
                }
            }
            Err(e @ SaveError::NoSecretKey) => {
                for (field, set) in secrets_set {
                    if set {
                        errors.add(field, e.to_string());
                    }
                }
            }
            Err(SaveError::Database(e)) => return Err(e.into()),
        }
    }
    let refused = Refused {
        channels: Some((typed, errors)),
        ..Default::default()
    };
    render(&user, &state, None, refused, StatusCode::BAD_REQUEST).await
}

async fn reset_channels(
    Posted { user, .. }: Posted<CsrfOnly, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    state.alert_channels.reset().await?;
    tracing::info!(admin = %user.username, "saved alert channels removed; the environment's apply");
    Ok(done("reset"))
}

#[derive(Deserialize)]
struct TestForm {
    #[serde(default)]
    csrf: String,
    include_topup: Option<String>,
}

async fn send_test(
    Posted { user, form, .. }: Posted<TestForm, Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let channels = state.alert_channels.current().await;
    match crate::alerts::send_test(
        &state.pool,
        &channels.channels,
        &user.username,
        form.include_topup.is_some(),
    )
    .await
    {
        Ok(a) => {
            tracing::info!(admin = %user.username, alert = a.id, "test alert queued");
            Ok(done("test"))
        }
        Err(e @ crate::alerts::TestError::NoChannel) => {
            let refused = Refused {
                error: Some(e.to_string()),
                ..Default::default()
            };
            render(&user, &state, None, refused, StatusCode::BAD_REQUEST).await
        }
        Err(crate::alerts::TestError::Database(e)) => Err(e.into()),
    }
}

crate::routes::pages::guard::csrf_forms!(ChannelsForm, RulesForm, TestForm);

#[cfg(test)]
mod tests {
    use super::*;

    fn form(r: &Rules) -> RulesForm {
        RulesForm::of(r)
    }

    #[test]
    fn the_form_round_trips_the_rules_and_names_each_bad_field() {
        let mut r = Rules::default();
        r.failure_rate.threshold = 0.125;
        r.callbacks_stalled.enabled = false;
        let f = form(&r);
        assert_eq!(f.fr_threshold, "12.5");
        assert_eq!(f.ec_codes, "63016, 63015, 30008");
        assert_eq!(f.parse().unwrap(), r);

        let mut bad = form(&r);
        bad.fr_threshold = "150".into();
        bad.fr_window = "0".into();
        bad.ec_codes = "63016 abc".into();
        bad.cs_min = "-1".into();
        let errors = bad.parse().unwrap_err();
        assert_eq!(
            errors.of("fr_threshold"),
            Some("must be above 0 % and at most 100 %")
        );
        assert!(
            errors
                .of("fr_window")
                .unwrap()
                .contains("between 1 and 10080")
        );
        assert!(errors.of("ec_codes").unwrap().contains("\"abc\""));
        assert!(errors.of("cs_min").is_some());
        assert_eq!(errors.of("lc_window"), None);
    }
}
