//! The JSON API under `/api/v1`, authenticated with bearer tokens.

pub mod alert_channels;
pub mod alerts;
pub mod auth;
pub mod balance;
pub mod bots;
pub mod broadcasts;
pub mod contacts;
pub mod costs;
pub mod messages;
mod messaging_services;
pub mod prices;
pub mod reminders;
pub mod rules;
pub mod sender_register;
pub mod sender_retire;
pub mod sender_sync;
pub mod senders;
pub mod settings;
pub mod stats;
pub mod templates;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    messages::configure(cfg);
    stats::configure(cfg);
    settings::configure(cfg);
    contacts::configure(cfg);
    // Before `/senders/{id}`, which would otherwise take `/senders/register`.
    sender_register::configure(cfg);
    // Before `/senders/{id}`.
    sender_sync::configure(cfg);
    sender_retire::configure(cfg);
    senders::configure(cfg);
    messaging_services::configure(cfg);
    rules::configure(cfg);
    bots::configure(cfg);
    broadcasts::configure(cfg);
    balance::configure(cfg);
    alerts::configure(cfg);
    alert_channels::configure(cfg);
    reminders::configure(cfg);
    prices::configure(cfg);
    costs::configure(cfg);
    templates::configure(cfg);
    users::configure(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, crate::error::ApiError> {
    Err(crate::error::ApiError::NotFound(
        "no such API endpoint".into(),
    ))
}

/// Parses an RFC 3339 time from a query parameter.
pub(crate) fn parse_time(
    name: &str,
    v: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::error::ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                crate::error::ApiError::BadRequest(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-24T09:00:00Z, got {s:?}"
                ))
            }),
    }
}

/// A list's `limit`: `default` when not given; 400 outside 1..=`max`.
fn page_limit(asked: Option<i64>, default: i64, max: i64) -> Result<i64, crate::error::ApiError> {
    let limit = asked.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(crate::error::ApiError::BadRequest(format!(
            "limit must be between 1 and {max}"
        )))
    }
}
