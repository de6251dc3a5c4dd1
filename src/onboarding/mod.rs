//! WhatsApp senders at Twilio (the Senders API): registering a number (the onboarding
//! wizard's and the API's service, with its input checks), and the sync that imports them and
//! keeps their health with its history and alerts.

pub mod input;
pub mod register;
pub mod sync;
