//! WhatsApp senders at Twilio (the Senders API): the sync that imports them and keeps their
//! health with its history and alerts, and Messaging Services with the senders in each.
//! Registration, verification and de-authorization through Twilio build on it.

pub mod services;
pub mod sync;
