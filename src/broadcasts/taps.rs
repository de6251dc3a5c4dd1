//! A broadcast's button taps: how many recipients tapped each quick-reply button (or chose
//! each list item) of its message, every button of a catalogued template listed even when
//! nobody tapped it, then any payload the template does not offer (a template changed since,
//! or one not catalogued).

use serde::Serialize;
use sqlx::PgPool;

use crate::domain::interactive::{OfferedButton, offered_buttons};
use crate::storage::broadcasts::BroadcastRow;
use crate::storage::interactive::{self, TapCount};

/// One button's tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ButtonTally {
    /// `button` or `list`.
    pub kind: String,
    /// The id a tap reports (`ButtonPayload`, `ListId`).
    pub payload: Option<String>,
    pub title: Option<String>,
    /// Recipients who tapped it, each once.
    pub recipients: i64,
    /// Whether the broadcast's catalogued template offers it.
    pub offered: bool,
}

/// The tallies of broadcast `b`.
pub async fn tallies(pool: &PgPool, b: &BroadcastRow) -> sqlx::Result<Vec<ButtonTally>> {
    let offered = match &b.content_sid {
        Some(sid) => crate::storage::templates::get(pool, sid)
            .await?
            .map(|t| offered_buttons(&t.types.0))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let counted = interactive::broadcast_taps(pool, b.id).await?;
    Ok(merge(&offered, counted))
}

/// The template's buttons in its order, with their counts, then the other payloads counted.
fn merge(offered: &[OfferedButton], mut counted: Vec<TapCount>) -> Vec<ButtonTally> {
    let mut out: Vec<ButtonTally> = offered
        .iter()
        .map(|o| {
            let at = counted.iter().position(|c| {
                c.kind == o.kind.as_str() && c.payload.as_deref() == Some(o.payload.as_str())
            });
            ButtonTally {
                kind: o.kind.as_str().to_owned(),
                payload: Some(o.payload.clone()),
                title: Some(o.title.clone()),
                recipients: at.map_or(0, |i| counted.remove(i).recipients),
                offered: true,
            }
        })
        .collect();
    out.extend(counted.into_iter().map(|c| ButtonTally {
        kind: c.kind,
        payload: c.payload,
        title: c.title,
        recipients: c.recipients,
        offered: false,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::interactive::InteractiveKind;

    fn count(payload: Option<&str>, title: &str, n: i64) -> TapCount {
        TapCount {
            kind: "button".into(),
            payload: payload.map(str::to_owned),
            title: Some(title.into()),
            recipients: n,
        }
    }

    #[test]
    fn every_offered_button_is_listed_in_order_then_the_others() {
        let offered = [
            OfferedButton {
                kind: InteractiveKind::Button,
                payload: "confirm".into(),
                title: "Yes".into(),
            },
            OfferedButton {
                kind: InteractiveKind::Button,
                payload: "reschedule".into(),
                title: "Reschedule".into(),
            },
        ];
        let tallies = merge(
            &offered,
            vec![
                count(Some("old_button"), "Old", 5),
                count(Some("confirm"), "Yes, Asha", 3),
                count(None, "no payload", 1),
            ],
        );
        let short: Vec<(Option<&str>, Option<&str>, i64, bool)> = tallies
            .iter()
            .map(|t| {
                (
                    t.payload.as_deref(),
                    t.title.as_deref(),
                    t.recipients,
                    t.offered,
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                (Some("confirm"), Some("Yes"), 3, true),
                (Some("reschedule"), Some("Reschedule"), 0, true),
                (Some("old_button"), Some("Old"), 5, false),
                (None, Some("no payload"), 1, false),
            ]
        );
        assert!(merge(&[], Vec::new()).is_empty());
    }
}
