//! The Content a bot's question with choices is sent with: looked up in wadash's cache
//! (`bot_choice_contents`), else created at Twilio through the Content API client — once per
//! account and question, also with several instances (the key is claimed first; the others
//! wait for the SID). Any failure leaves the question to go as numbered text.

use std::time::Duration;

use sqlx::PgPool;

use super::choices::{self, Shape};
use crate::domain::bot::ChoiceSet;
use crate::storage::choice_contents::{self as store, Claim};
use crate::twilio::client::TwilioError;
use crate::twilio::content::{ContentClient, NewTemplate, Search};

/// How long a caller waits for another instance creating the same Content.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(10);
/// How often it looks.
const POLL: Duration = Duration::from_millis(100);
/// A claim unfilled for this long belongs to an instance that died: it is taken over.
const STALE_CLAIM_SECS: f64 = 60.0;

/// How a question with choices goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// With this Content (a quick reply or list picker).
    Content { sid: String, shape: Shape },
    /// As numbered text: the choices do not fit WhatsApp's interactive shapes.
    Text,
}

/// The Content `set` is sent with for `account`, created at Twilio the first time. Err: why
/// it could not be had (the caller sends the numbered text and records it).
pub async fn prepare(
    content: &ContentClient,
    pool: &PgPool,
    account: &str,
    set: &ChoiceSet,
) -> Result<Prepared, String> {
    let shape = choices::shape_of(set);
    let Some(c) = choices::content(account, shape, set) else {
        return Ok(Prepared::Text);
    };
    let types = serde_json::Value::Object(c.types.clone());
    let until = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    loop {
        let claim = store::claim(
            pool,
            &c.key,
            account,
            shape.as_str(),
            &types,
            STALE_CLAIM_SECS,
        )
        .await
        .map_err(|e| format!("the Content cache could not be read: {e}"))?;
        match claim {
            Claim::Ready(sid) => return Ok(Prepared::Content { sid, shape }),
            Claim::Mine { taken_over } => {
                let created = match taken_over {
                    true => match find(content, &c).await {
                        Some(sid) => Ok(sid),
                        None => create(content, &c).await,
                    },
                    false => create(content, &c).await,
                };
                let stored = match &created {
                    Ok(sid) => store::fill(pool, &c.key, sid).await,
                    Err(_) => store::release(pool, &c.key).await,
                };
                if let Err(e) = stored {
                    tracing::warn!(key = %c.key, error = %e, "the Content cache was not updated");
                }
                return created.map(|sid| Prepared::Content { sid, shape });
            }
            Claim::Busy if tokio::time::Instant::now() >= until => {
                return Err(format!(
                    "another instance was still creating the Content after {} s",
                    WAIT_FOR_OTHER.as_secs()
                ));
            }
            Claim::Busy => tokio::time::sleep(POLL).await,
        }
    }
}

/// The Content named for `c` if Twilio has it (created by an instance that died before it
/// noted the SID).
async fn find(content: &ContentClient, c: &choices::ChoiceContent) -> Option<String> {
    let found = content
        .search(&Search::exact_name(&c.friendly_name, choices::LANGUAGE), 1)
        .await
        .ok()?;
    found.into_iter().next().map(|t| t.sid)
}

/// Creates the Content at Twilio. After an answer that leaves open whether Twilio created it
/// (a timeout, a 5xx), Twilio is asked for it by name before giving up, so that a retry does
/// not create a second one.
async fn create(content: &ContentClient, c: &choices::ChoiceContent) -> Result<String, String> {
    let new = NewTemplate {
        friendly_name: c.friendly_name.clone(),
        language: choices::LANGUAGE.to_owned(),
        variables: Default::default(),
        types: c.types.clone(),
    };
    match content.create(&new).await {
        Ok(t) => Ok(t.sid),
        Err(e) => {
            let refused = matches!(&e, TwilioError::Api { status, .. } if *status < 500)
                || matches!(e, TwilioError::Invalid(_));
            if !refused && let Some(sid) = find(content, c).await {
                return Ok(sid);
            }
            Err(format!("Twilio did not create the Content: {e}"))
        }
    }
}
