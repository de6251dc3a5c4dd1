//! Black-box tests: the real server over HTTP against a fresh PostgreSQL database per test.
//! One test binary (faster to link) with a module per area.

mod accessibility;
mod alert_browser;
mod alert_pages;
mod alerts;
mod balance;
mod balance_pages;
mod broadcast_pages;
mod broadcasts;
mod browser;
mod cli;
mod contacts_pages;
mod content_contract;
mod conversations;
mod costs;
mod credentials;
mod dashboard;
mod formats;
mod forms;
mod forms_browser;
mod health;
mod helpers;
mod ingest_concurrency;
mod ingest_durability;
mod ingest_properties;
mod layout_browser;
mod live;
mod live_tabs;
mod messages_api;
mod prices;
mod prices_page;
mod private_pg;
mod reconcile;
mod reminders;
mod rollup;
mod security;
mod sending;
mod simulate;
#[cfg(target_os = "linux")]
mod tcp_nodelay;
mod templates;
mod time_zones;
mod twilio_contract;
mod twiml;
mod two_way;
mod webhooks;
