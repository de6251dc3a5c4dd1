//! WhatsApp senders at Twilio (the Senders API): registering a number (the onboarding
//! wizard's and the API's service, with its input checks), the sync that imports them and
//! keeps their health with its history and alerts, and Messaging Services with the senders in
//! each.

pub mod input;
pub mod register;
pub mod services;
pub mod sync;
