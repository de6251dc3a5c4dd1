//! Live updates for the dashboard: one poller per instance reads the change log in
//! PostgreSQL and fans new rows out to the browsers connected to this instance
//! ([`hub`]); `GET /events` (src/routes/live.rs) streams them as Server-Sent Events.

pub mod hub;

pub use hub::{LiveEvent, LiveHub};
