//! Bearer-token authentication for the API: `Authorization: Bearer <token>`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use crate::domain::Role;
use crate::error::ApiError;
use crate::routes::roles::{Least, Viewer};
use crate::state::AppState;
use crate::storage::tokens;

/// An authenticated API caller whose role is at least `R` (401 without a valid token, 403
/// with a token of a lesser role, both before the body is read).
#[derive(Debug, Clone, Copy)]
pub struct ApiCaller<R = Viewer> {
    pub token_id: i64,
    pub role: Role,
    least: PhantomData<R>,
}

impl<R> ApiCaller<R> {
    /// Fails with 403 unless the caller's role includes `required`.
    pub fn require(&self, required: Role) -> Result<(), ApiError> {
        if self.role.allows(required) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(required))
        }
    }
}

impl<R: Least + 'static> FromRequest for ApiCaller<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("state missing")))?;
            let token = header
                .as_deref()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(ApiError::Unauthorized)?;
            let Some((token_id, role)) = tokens::authenticate(&state.pool, token).await? else {
                return Err(ApiError::Unauthorized);
            };
            let caller = ApiCaller {
                token_id,
                role,
                least: PhantomData,
            };
            caller.require(R::ROLE)?;
            Ok(caller)
        })
    }
}
