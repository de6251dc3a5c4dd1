//! The least role a handler needs, as a type: `ApiCaller<Operator>`, `Posted<Form, Admin>`.
//!
//! The extractors check it before the handler runs, so a handler's signature says who may
//! call it and no handler can forget the check.

use crate::domain::Role;

/// A role named as a type, for the extractors of the API and the pages.
pub trait Least {
    const ROLE: Role;
}

/// Anyone logged in (every account has at least this role).
#[derive(Debug, Clone, Copy)]
pub struct Viewer;
/// Operators and admins: sending, broadcasts, reminders, contacts.
#[derive(Debug, Clone, Copy)]
pub struct Operator;
/// Admins only: users, tokens, senders, rules, prices, alert settings.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl Least for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Least for Operator {
    const ROLE: Role = Role::Operator;
}
impl Least for Admin {
    const ROLE: Role = Role::Admin;
}
