//! Reminders: one-off or recurring WhatsApp messages sent at a local time in a time zone.

pub mod schedule;
