//! Durable ingestion of webhooks: records, and the group-commit pipeline that stores them.

pub mod batcher;
pub mod record;

pub use batcher::{IngestError, Ingestor};
pub use record::EventRecord;
