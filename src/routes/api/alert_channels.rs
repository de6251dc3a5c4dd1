//! `GET/PUT/DELETE /api/v1/alert-channels` (admin): where alerts go, where each setting
//! comes from (the environment or saved here), and changing it at run time; and
//! `POST /api/v1/alert-channels/test`, a test alert through the real delivery path.
//! Secrets go in, never out: the answer says only whether each is set.
//!
//! In a `PUT` body a URL or `whatsapp` left out follows the environment, `null` or `""`
//! (`[]`) means none; a secret left out is kept, `null` or `""` clears it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use super::auth::ApiCaller;
use super::settings::ClassifyMessage;
use crate::alerts::channels::{Change, SaveError, Secret};
use crate::error::ApiError;
use crate::routes::roles::Admin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/alert-channels", web::get().to(show))
        .route("/alert-channels", web::put().to(replace))
        .route("/alert-channels", web::delete().to(reset))
        .route("/alert-channels/test", web::post().to(test));
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    webhook_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    whatsapp: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    topup_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    topup_secret: Option<Option<String>>,
}

fn secret(v: Option<Option<String>>) -> Secret {
    match v {
        None => Secret::Keep,
        Some(None) => Secret::Clear,
        Some(Some(s)) if s.is_empty() => Secret::Clear,
        Some(Some(s)) => Secret::Set(SecretString::from(s)),
    }
}

impl Body {
    fn change(self) -> Change {
        Change {
            webhook_url: self.webhook_url.map(Option::unwrap_or_default),
            webhook_secret: secret(self.webhook_secret),
            whatsapp: self.whatsapp.map(Option::unwrap_or_default),
            topup_url: self.topup_url.map(Option::unwrap_or_default),
            topup_secret: secret(self.topup_secret),
        }
    }
}

/// The channels the jobs of this instance use now (read at most a few seconds ago).
async fn show(_: ApiCaller<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let current = state.alert_channels.current().await;
    Ok(HttpResponse::Ok().json(state.alert_channels.view(&current)))
}

async fn replace(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // serde's message for an unknown field names the field, never a value.
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a JSON object with webhook_url, webhook_secret, whatsapp, topup_url or topup_secret ({})",
            e.classify_message()
        ))
    })?;
    let saved = state
        .alert_channels
        .save(body.change())
        .await
        .map_err(|e| match e {
            SaveError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            SaveError::NoSecretKey => {
                ApiError::Other(StatusCode::CONFLICT, "secret_key_missing", e.to_string())
            }
            SaveError::Database(e) => e.into(),
        })?;
    tracing::info!(
        token = caller.token_id,
        "alert channels changed through the API"
    );
    Ok(HttpResponse::Ok().json(state.alert_channels.view(&saved)))
}

async fn reset(
    caller: ApiCaller<Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let eff = state.alert_channels.reset().await?;
    tracing::info!(
        token = caller.token_id,
        "saved alert channels removed through the API; the environment's apply"
    );
    Ok(HttpResponse::Ok().json(state.alert_channels.view(&eff)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    #[serde(default)]
    include_topup: bool,
}

async fn test(
    caller: ApiCaller<Admin>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("expected {{\"include_topup\": bool}} ({e})"))
        })?
    };
    let channels = state.alert_channels.current().await;
    let by = format!("api token #{}", caller.token_id);
    match crate::alerts::send_test(&state.pool, &channels.channels, &by, body.include_topup).await {
        Ok(a) => Ok(HttpResponse::Created().json(a)),
        Err(e @ crate::alerts::TestError::NoChannel) => Err(ApiError::Other(
            StatusCode::CONFLICT,
            "no_channel",
            e.to_string(),
        )),
        Err(crate::alerts::TestError::Database(e)) => Err(e.into()),
    }
}
