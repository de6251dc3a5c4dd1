//! Everything that speaks Twilio's protocols.

pub mod client;
pub mod credentials;
pub mod form;
pub mod signature;
pub mod simulator;
pub mod webhook;
