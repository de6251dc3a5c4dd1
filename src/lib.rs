//! wadash: the operations console for WhatsApp traffic through Twilio.
//!
//! Start at [`startup::Application`] for the server, [`cli`] for the command line,
//! [`domain::status`] for the state machine and [`ingest::batcher`] for the webhook hot path.

pub mod accounts;
pub mod alerts;
pub mod balance;
pub mod bots;
pub mod broadcasts;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod costs;
pub mod credentials;
pub mod database;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod ingest;
pub mod jobs;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod onboarding;
pub mod outbound;
pub mod pricing;
pub mod progress;
pub mod reminders;
pub mod replies;
pub mod request_log;
pub mod routes;
pub mod senders;
pub mod sending;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod storage;
pub mod tasks;
pub mod telemetry;
pub mod templates;
pub mod twilio;
