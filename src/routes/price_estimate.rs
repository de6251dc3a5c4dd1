//! The estimate of one message by the stored price table, shared by the API
//! (`POST /api/v1/prices/estimate`) and the admin prices page's form: one way from a
//! destination number and a date to the fees and the rows behind them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{Direction, PhoneNumber};
use crate::pricing::{self, Breakdown, Category, EstimateError, Message, Price};
use crate::storage::prices as store;

/// One message to price, parsed at the edge (JSON or form).
#[derive(Debug, Clone)]
pub struct EstimateRequest {
    pub to: PhoneNumber,
    /// `None`: a free-form (service) message.
    pub template: Option<Category>,
    pub in_window: bool,
    pub direction: Direction,
    pub failed: bool,
    /// Before 2025-07-01 only: a conversation of the template's category is already open.
    pub conversation_open: bool,
    pub at: DateTime<Utc>,
}

/// The fees and the rows used (owned: they were read for this estimate alone).
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The country the number is priced as, or `*`.
    pub country: &'static str,
    pub breakdown: Breakdown,
    pub twilio_row: Price,
    pub meta_row: Option<Price>,
}

#[derive(Debug, thiserror::Error)]
pub enum EstimateFailure {
    /// The table cannot price this message: the client's to fix (by uploading a table).
    #[error(transparent)]
    NoPrice(#[from] EstimateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Prices `r` by the stored table. Only the rows that can apply (the destination's country
/// and `*`, started by the day) are read, so an estimate stays cheap on a 100,000-row table.
pub async fn estimate(pool: &PgPool, r: &EstimateRequest) -> Result<Estimate, EstimateFailure> {
    let country = pricing::country::of(&r.to);
    let message = Message {
        direction: r.direction,
        failed: r.failed,
        template: r.template,
        country: country.to_owned(),
        in_window: r.in_window,
        conversation_open: r.conversation_open,
        at: r.at,
    };
    let rows = store::applicable(pool, country, r.at.date_naive()).await?;
    let q = pricing::quote(&rows, &message)?;
    Ok(Estimate {
        country,
        breakdown: q.breakdown,
        twilio_row: q.twilio_row.clone(),
        meta_row: q.meta_row.cloned(),
    })
}
