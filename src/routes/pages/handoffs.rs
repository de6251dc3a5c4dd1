//! The "needs a human" queue: conversations a bot handed over (or an operator took), longest
//! waiting first, with how long each has waited, and the last 24 hours' share of bot and
//! human conversations. `GET /handoffs` shows it alone; the overview shows the same panel.
//! It follows `handoffs` live events (and message changes, which keep the waiting times
//! fresh).

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;

use super::format::{self, count, duration_secs, percent};
use super::messages::FragmentQuery;
use super::{Chrome, CurrentUser, PageError, html};
use crate::state::AppState;
use crate::storage::bots as store;

/// Queue entries shown at most.
const SHOWN: i64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/handoffs", web::get().to(page));
}

pub struct QueueItem {
    pub number: String,
    pub sender: String,
    pub bot: String,
    pub reason: String,
    pub since: format::Stamp,
    /// "3 min 20 s".
    pub waiting: String,
}

/// The queue panel, as the overview and `/handoffs` show it.
pub struct QueueView {
    pub items: Vec<QueueItem>,
    pub count: String,
    /// The longest wait, when any.
    pub longest: Option<String>,
    /// Last 24 hours: contacts a bot talked with, handed to a human, and the rate.
    pub bot_contacts: String,
    pub handed_off: String,
    pub handoff_rate: String,
}

/// The panel; `None` when there is no bot and nobody waits (the overview then omits it).
pub async fn queue_view(
    state: &AppState,
    tz: chrono_tz::Tz,
) -> Result<Option<QueueView>, PageError> {
    let now = Utc::now();
    let pool = &state.pool;
    let (rows, total, split, any) = tokio::try_join!(
        store::queue(pool, SHOWN),
        store::queue_len(pool),
        store::split_since(pool, now - chrono::Duration::hours(24)),
        store::any(pool),
    )?;
    if !any && total == 0 {
        return Ok(None);
    }
    let wait =
        |since: chrono::DateTime<Utc>| duration_secs((now - since).num_seconds().max(0) as f64);
    Ok(Some(QueueView {
        longest: rows.first().map(|r| wait(r.since)),
        items: rows
            .into_iter()
            .map(|r| QueueItem {
                waiting: wait(r.since),
                since: format::Stamp::new(r.since, tz),
                number: r.number,
                sender: r.sender,
                bot: r.bot_name.unwrap_or_default(),
                reason: reason_label(&r.reason),
            })
            .collect(),
        count: count(total),
        bot_contacts: count(split.bot),
        handed_off: count(split.handed_off),
        handoff_rate: percent(split.handed_off, split.bot),
    }))
}

/// Why a conversation waits, in words.
fn reason_label(reason: &str) -> String {
    match reason {
        "keyword" => "asked for a person".into(),
        "fallbacks" => "the bot did not understand, repeatedly".into(),
        "operator" => "taken by an operator".into(),
        other => match other.strip_prefix("intent:") {
            Some(intent) => format!("the bot handed over ({intent})"),
            None => format!("the bot handed over ({other})"),
        },
    }
}

#[derive(Template)]
#[template(path = "handoffs.html", blocks = ["live"])]
struct HandoffsPage {
    chrome: Chrome,
    queue: Option<QueueView>,
}

async fn page(
    user: CurrentUser,
    fragment: web::Query<FragmentQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let page = HandoffsPage {
        chrome: Chrome::for_user(&user, &state, "contacts"),
        queue: Some(queue_view(&state, user.tz).await?.unwrap_or(QueueView {
            items: Vec::new(),
            count: "0".into(),
            longest: None,
            bot_contacts: "0".into(),
            handed_off: "0".into(),
            handoff_rate: "–".into(),
        })),
    };
    if fragment.live() {
        return html(&page.as_live());
    }
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_worded_for_people() {
        assert_eq!(reason_label("keyword"), "asked for a person");
        assert_eq!(
            reason_label("intent:talk_to_human"),
            "the bot handed over (talk_to_human)"
        );
        assert_eq!(reason_label("lex_close"), "the bot handed over (lex_close)");
    }
}
