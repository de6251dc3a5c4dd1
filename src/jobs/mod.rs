//! Background work that runs inside `wadash serve`. Each job is claimed through the database,
//! so any number of instances can run side by side without doing the same work twice.

pub mod balance;
pub mod broadcasts;
pub mod prices;
pub mod reconcile;
pub mod reminders;
pub mod rollup;
pub mod senders;
pub mod templates;

pub use crate::tasks::{every, paced};
