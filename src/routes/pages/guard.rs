//! What a page handler checks before it runs: the login, the form token of a posted form,
//! and the least role, as extractors (`Posted<Form, Admin>`, `Allowed<Operator>`).

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::{CsrfOnly, CurrentUser};
use crate::routes::roles::{Least, Viewer};

/// A form that carries the session's form token in a field named `csrf`.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfForm`] for form structs with a `csrf: String` field.
macro_rules! csrf_forms {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::routes::pages::guard::CsrfForm for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_forms;

csrf_forms!(CsrfOnly);

/// A form posted by a logged-in person whose role is at least `R`. Checked in this order,
/// before the handler runs: the session (else to the login page), the form's body (400), its
/// form token (403), the role (403).
pub struct Posted<T, R = Viewer> {
    pub user: CurrentUser,
    pub form: T,
    least: PhantomData<R>,
}

impl<T, R> FromRequest for Posted<T, R>
where
    T: DeserializeOwned + CsrfForm + 'static,
    R: Least + 'static,
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            let form = form.await?.into_inner();
            user.check_csrf(form.csrf())?;
            user.require(R::ROLE)?;
            Ok(Posted {
                user,
                form,
                least: PhantomData,
            })
        })
    }
}

/// A logged-in person whose role is at least `R` (for pages only some roles may see).
pub struct Allowed<R>(CurrentUser, PhantomData<R>);

impl<R> Deref for Allowed<R> {
    type Target = CurrentUser;

    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<R: Least + 'static> FromRequest for Allowed<R> {
    type Error = super::PageError;
    type Future = LocalBoxFuture<'static, Result<Self, super::PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            user.require(R::ROLE)?;
            Ok(Allowed(user, PhantomData))
        })
    }
}
