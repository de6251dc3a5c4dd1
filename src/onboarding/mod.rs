//! WhatsApp senders at Twilio (the Senders API): registering a number (the onboarding
//! wizard's and the API's service, with its input checks), the sync that imports them and
//! keeps their health with its history and alerts, and Messaging Services with the senders in
//! each, and retiring a sender (de-authorize, change number).

pub mod input;
pub mod register;
pub mod retire;
pub mod services;
pub mod sync;
