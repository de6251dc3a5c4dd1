//! `GET /`: the delivery funnel, rates and delivery times, failures by code with what to do,
//! traffic over time and the latest messages, for a chosen window and sender.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::format::{Stamp, count, duration_secs, percent};
use super::{Chrome, CurrentUser, PageError, html};
use crate::domain::error_codes;
use crate::state::AppState;
use crate::storage::messages::{self, Funnel, MessageFilter};
use crate::storage::overview;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/wall", web::get().to(wall));
}

/// `/wall`: the overview as a wall screen, `/?wall=1` (the same query otherwise).
async fn wall(req: actix_web::HttpRequest) -> HttpResponse {
    let rest = req.query_string();
    let target = if rest.is_empty() {
        "/?wall=1".to_owned()
    } else {
        format!("/?wall=1&{rest}")
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", target))
        .finish()
}

#[derive(Debug, Deserialize, serde::Serialize, Default)]
pub struct WindowQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// `live`: only the part that live updates replace.
    #[serde(skip_serializing)]
    pub fragment: Option<String>,
    /// `1`: a wall screen (no navigation, large figures).
    #[serde(skip_serializing)]
    pub wall: Option<String>,
}

impl WindowQuery {
    /// Whether the page is shown as a wall screen (`wall=1`).
    pub fn is_wall(&self) -> bool {
        self.wall
            .as_deref()
            .is_some_and(|v| !matches!(v, "" | "0" | "false"))
    }
}

/// The period the page shows.
#[derive(Debug, Clone)]
pub struct Window {
    pub key: &'static str,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step: Duration,
    pub buckets: usize,
    pub label_format: &'static str,
}

/// Accepts RFC 3339 or the `YYYY-MM-DDTHH:MM` a `datetime-local` field sends (read as UTC).
fn parse_when(name: &str, s: &str) -> Result<DateTime<Utc>, PageError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    Err(PageError::BadRequest(format!(
        "{name} must be a date and time such as 2026-11-24T09:00, got {s:?}"
    )))
}

impl Window {
    pub fn from_query(q: &WindowQuery, now: DateTime<Utc>) -> Result<Self, PageError> {
        let fixed = |key, secs: u64, buckets: usize, label_format| {
            let step = Duration::from_secs(secs / buckets as u64);
            // Buckets end at the next whole step, so they do not shift on every reload.
            let step_s = step.as_secs() as i64;
            let end =
                DateTime::from_timestamp((now.timestamp() / step_s + 1) * step_s, 0).unwrap_or(now);
            Window {
                key,
                since: end - chrono::Duration::seconds(secs as i64),
                until: end,
                step,
                buckets,
                label_format,
            }
        };
        Ok(match q.w.as_deref().unwrap_or("24h") {
            "1h" => fixed("1h", 3600, 60, "%H:%M"),
            "7d" => fixed("7d", 7 * 86_400, 28, "%a %d %H:%M"),
            "custom" => {
                let since = parse_when("since", q.since.as_deref().unwrap_or(""))?;
                let until = match q.until.as_deref().filter(|s| !s.trim().is_empty()) {
                    Some(u) => parse_when("until", u)?,
                    None => now,
                };
                if until <= since {
                    return Err(PageError::BadRequest("until must be after since".into()));
                }
                let span = (until - since).num_seconds().max(60) as u64;
                let buckets = 30usize;
                Window {
                    key: "custom",
                    since,
                    until,
                    step: Duration::from_secs(span.div_ceil(buckets as u64)),
                    buckets,
                    label_format: if span > 2 * 86_400 {
                        "%m-%d %H:%M"
                    } else {
                        "%H:%M"
                    },
                }
            }
            _ => fixed("24h", 86_400, 24, "%H:%M"),
        })
    }
}

struct Stage {
    label: &'static str,
    value: String,
    share: String,
    width: u32,
    class: &'static str,
    filter: &'static str,
}

struct FailureRow {
    code: String,
    count: String,
    meaning: &'static str,
    action: &'static str,
    code_param: String,
}

pub struct RecentRow {
    pub sid: String,
    pub direction: &'static str,
    pub party: String,
    /// Our side: the number (or Messaging Service) that sent it, or that received it.
    pub sender: String,
    pub text: String,
    pub status: String,
    /// The error code and what it means in a few words, for a failed message.
    pub error: Option<(i32, String)>,
    pub when: Stamp,
    pub ago: String,
}

#[derive(Template)]
#[template(path = "overview.html", blocks = ["live"])]
struct OverviewPage {
    chrome: Chrome,
    /// The page's own query, for the live region to fetch itself again.
    query: String,
    window: &'static str,
    since_value: String,
    until_value: String,
    sender: String,
    range: (Stamp, Stamp),
    stages: Vec<Stage>,
    delivery_rate: String,
    read_rate: String,
    delivered_p50: String,
    delivered_p90: String,
    read_p50: String,
    read_p90: String,
    failures: Vec<FailureRow>,
    chart: String,
    recent: Vec<RecentRow>,
    /// The balance tile; None before the first reading.
    balance: Option<super::balance::Figures>,
    /// The "needs a human" queue and the bot / human split, when bots are in use.
    handoffs: Option<super::handoffs::QueueView>,
}

fn stages(f: &Funnel) -> Vec<Stage> {
    let width = |n: i64| {
        if f.total == 0 {
            0
        } else {
            ((n as f64 / f.total as f64) * 100.0).round() as u32
        }
    };
    vec![
        Stage {
            label: "Sent",
            value: count(f.sent),
            share: percent(f.sent, f.total),
            width: width(f.sent),
            class: "",
            filter: "sent",
        },
        Stage {
            label: "Delivered",
            value: count(f.delivered),
            share: percent(f.delivered, f.total),
            width: width(f.delivered),
            class: "ok",
            filter: "delivered",
        },
        Stage {
            label: "Read",
            value: count(f.read),
            share: percent(f.read, f.total),
            width: width(f.read),
            class: "ok",
            filter: "read",
        },
        Stage {
            label: "Failed",
            value: count(f.failed),
            share: percent(f.failed, f.total),
            width: width(f.failed),
            class: "bad",
            filter: "failed",
        },
        Stage {
            label: "Undelivered",
            value: count(f.undelivered),
            share: percent(f.undelivered, f.total),
            width: width(f.undelivered),
            class: "bad",
            filter: "undelivered",
        },
    ]
}

/// Twilio's message, or the error dictionary's, cut to a few words.
fn short_error(m: &messages::MessageRow) -> String {
    let text = error_codes::lookup(m.error_code.unwrap_or(0))
        .map(|i| i.meaning.to_owned())
        .or_else(|| m.error_message.clone())
        .unwrap_or_default();
    if text.chars().count() <= 60 {
        return text;
    }
    let cut: String = text.chars().take(59).collect();
    format!("{}…", cut.trim_end())
}

pub fn recent_row(m: &messages::MessageRow, now: DateTime<Utc>, tz: chrono_tz::Tz) -> RecentRow {
    let inbound = m.direction == "inbound";
    let party = if inbound { &m.from_addr } else { &m.to_addr };
    let ours = if inbound { &m.to_addr } else { &m.from_addr };
    let sender = ours
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(m.messaging_service_sid.as_deref())
        .unwrap_or("")
        .trim_start_matches("whatsapp:")
        .to_owned();
    let text = match (&m.body, m.media.as_array().map_or(0, |a| a.len())) {
        (Some(b), _) if !b.is_empty() => b.chars().take(120).collect(),
        (_, n) if n > 0 => format!("[{n} media]"),
        _ => String::new(),
    };
    RecentRow {
        sid: m.sid.clone(),
        direction: if inbound { "inbound" } else { "outbound" },
        party: party
            .as_deref()
            .unwrap_or("")
            .trim_start_matches("whatsapp:")
            .to_owned(),
        sender,
        text,
        status: m.status.clone().unwrap_or_else(|| "unknown".into()),
        error: m.error_code.map(|c| (c, short_error(m))),
        when: Stamp::new(m.created_at, tz),
        ago: super::format::ago(m.created_at, now),
    }
}

async fn page(
    user: CurrentUser,
    query: web::Query<WindowQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let q = query.into_inner();
    let w = Window::from_query(&q, now)?;
    let sender = q
        .sender
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match crate::domain::WhatsAppAddress::parse(s) {
            Ok(a) if !s.starts_with("MG") => a.as_str().to_owned(),
            _ => s.to_owned(),
        });
    let pool = &state.pool;
    let sender_ref = sender.as_deref();
    let everything = MessageFilter::default();
    let handoffs = match q.fragment.as_deref() {
        Some("live") => None,
        _ => super::handoffs::queue_view(&state, user.tz).await?,
    };
    let (stats, recent, balance) = tokio::try_join!(
        overview::window_stats(pool, w.since, w.until, w.step, sender_ref, now),
        messages::list(pool, &everything, None, 15),
        crate::balance::view::view(&state.pool, &state.balance, &state.credit),
    )?;
    let overview::WindowStats {
        funnel,
        timings,
        failures,
        traffic,
        estimated,
    } = stats;
    let approx = if estimated { "≈ " } else { "" };
    let secs = |v: Option<f64>| {
        v.map_or_else(
            || "–".to_owned(),
            |s| format!("{approx}{}", duration_secs(s)),
        )
    };
    let buckets = super::chart::dense(&traffic, w.since, w.step, w.buckets);
    let page = OverviewPage {
        query: serde_urlencoded::to_string(&q).unwrap_or_default(),
        chrome: Chrome {
            wall: q.is_wall(),
            ..Chrome::for_user(&user, &state, "overview")
        },
        window: w.key,
        since_value: w.since.format("%Y-%m-%dT%H:%M").to_string(),
        until_value: w.until.format("%Y-%m-%dT%H:%M").to_string(),
        sender: sender.clone().unwrap_or_default(),
        range: (Stamp::new(w.since, user.tz), Stamp::new(w.until, user.tz)),
        stages: stages(&funnel),
        delivery_rate: percent(funnel.delivered, funnel.sent),
        read_rate: percent(funnel.read, funnel.delivered),
        delivered_p50: secs(timings.delivered_p50),
        delivered_p90: secs(timings.delivered_p90),
        read_p50: secs(timings.read_p50),
        read_p90: secs(timings.read_p90),
        failures: failures
            .into_iter()
            .map(|(code, n)| {
                let info = code.and_then(error_codes::lookup);
                FailureRow {
                    code: code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                    code_param: code.map_or_else(String::new, |c| c.to_string()),
                    count: count(n),
                    meaning: info.map_or("No explanation on file for this code.", |i| i.meaning),
                    action: info.map_or("Look the code up in Twilio's error dictionary.", |i| {
                        i.action
                    }),
                }
            })
            .collect(),
        chart: super::chart::traffic_svg(&buckets, w.step, user.tz),
        recent: recent
            .0
            .iter()
            .map(|m| recent_row(m, now, user.tz))
            .collect(),
        balance: balance
            .balance
            .is_some()
            .then(|| super::balance::Figures::from_view(&balance, user.tz)),
        handoffs,
    };
    if q.fragment.as_deref() == Some("live") {
        return html(&page.as_live());
    }
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(w: &str) -> WindowQuery {
        WindowQuery {
            w: Some(w.into()),
            ..Default::default()
        }
    }

    #[test]
    fn windows_are_aligned_and_custom_ones_checked() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:17:42Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Window::from_query(&q("24h"), now).unwrap();
        assert_eq!(day.until.to_rfc3339(), "2026-11-24T11:00:00+00:00");
        assert_eq!(day.buckets, 24);
        let hour = Window::from_query(&q("1h"), now).unwrap();
        assert_eq!(hour.until.to_rfc3339(), "2026-11-24T10:18:00+00:00");
        let mut c = q("custom");
        c.since = Some("2026-11-20T00:00".into());
        c.until = Some("2026-11-21T00:00".into());
        let w = Window::from_query(&c, now).unwrap();
        assert_eq!(w.step, Duration::from_secs(2880));
        c.until = Some("2026-11-19T00:00".into());
        assert!(Window::from_query(&c, now).is_err());
        c.since = Some("yesterday".into());
        assert!(Window::from_query(&c, now).is_err());
    }
}
