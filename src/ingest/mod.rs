//! Durable ingestion of webhooks: records, and the group-commit pipeline that stores them.

pub mod batcher;

pub use crate::domain::record::EventRecord;
pub use batcher::{IngestError, Ingestor};
