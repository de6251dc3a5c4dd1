//! Everything that speaks Twilio's protocols.

pub mod client;
pub mod content;
pub mod form;
pub mod media;
pub mod messaging;
pub mod signature;
pub mod simulator;
pub mod twiml;
pub mod webhook;
pub mod webhook_keys;
