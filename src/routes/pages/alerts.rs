//! `/alerts` (every role): the open alerts, then the recent resolved ones, each with its
//! deliveries per channel; operators acknowledge firing alerts. Also the banner of open
//! alerts that every logged-in page carries, and `/alerts/banner`, the banner alone, which
//! live pages fetch when an `alerts` event arrives.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::format;
use super::{Chrome, CurrentUser, PageError, html};
use crate::alerts::open::Snapshot;
use crate::domain::alert_state::AlertState;
use crate::routes::pages::{CsrfOnly, Posted};
use crate::routes::roles::Operator;
use crate::state::AppState;
use crate::storage::alerts::{self, AlertRow, DeliveryRow};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/alerts", web::get().to(page))
        .route("/alerts/banner", web::get().to(banner))
        .route("/alerts/{id}/acknowledge", web::post().to(acknowledge));
}

/// Open alerts a banner lists before it says "and N more".
const BANNER_MAX: usize = 5;
/// Resolved alerts the page lists (newest first, through the `fired_at` index).
const RESOLVED_MAX: i64 = 50;
/// Open alerts the page lists.
const OPEN_MAX: i64 = 200;

/// A time as every page shows it (see [`format::Stamp`]).
pub type When = format::Stamp;

/// The banner's view of the open alerts.
#[derive(Debug, Clone, Default)]
pub struct Banner {
    pub items: Vec<BannerItem>,
    /// Open alerts not listed.
    pub more: usize,
    /// Open alerts: firing and acknowledged.
    pub open: usize,
    pub firing: usize,
    /// The most severe open alert's severity ("critical" before "warning" before the rest).
    pub worst: String,
    /// The kinds of the open alerts, as people read them, each once, most severe first.
    pub kinds: Vec<&'static str>,
    /// See [`Snapshot::version`].
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct BannerItem {
    pub id: i64,
    pub severity: String,
    pub state: String,
    pub firing: bool,
    pub message: String,
    pub since: When,
    pub acknowledged_by: Option<String>,
}

impl Banner {
    /// The banner for a reader in `tz`.
    pub fn of(s: &Snapshot, tz: chrono_tz::Tz) -> Self {
        Self {
            items: s
                .alerts
                .iter()
                .take(BANNER_MAX)
                .map(|a| BannerItem {
                    id: a.id,
                    severity: a.severity.clone(),
                    state: a.state.to_string(),
                    firing: a.state == AlertState::Firing,
                    message: a.message.clone(),
                    since: When::new(a.fired_at, tz),
                    acknowledged_by: a.acknowledged_by.clone(),
                })
                .collect(),
            more: s.alerts.len().saturating_sub(BANNER_MAX),
            open: s.alerts.len(),
            worst: s
                .alerts
                .iter()
                .map(|a| a.severity.as_str())
                .min_by_key(|sev| severity_rank(sev))
                .unwrap_or_default()
                .to_owned(),
            kinds: {
                let mut by_severity: Vec<_> = s.alerts.iter().collect();
                by_severity.sort_by_key(|a| severity_rank(&a.severity));
                let mut kinds: Vec<&'static str> = Vec::new();
                for a in by_severity {
                    let k = kind_label(&a.kind);
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                kinds
            },
            firing: s
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .count(),
            version: s.version.clone(),
        }
    }
}

/// Most severe first.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "credit_low" => "Credit low",
        "credit_critical" => "Credit critically low",
        "failure_rate" => "Failure rate",
        "error_code" => "Error code",
        "callbacks_stalled" => "Callbacks stalled",
        "lost_callbacks" => "Lost callbacks",
        "test" => "Test",
        "template_blocked" => "Template blocked",
        "template_category" => "Template category changed",
        "template_deleted" => "Template deleted",
        "template_sync" => "Templates not synced",
        "sender_offline" => "Sender offline",
        "sender_quality" => "Sender quality dropped",
        "sender_limit" => "Sender limit changed",
        "sender_webhooks" => "Sender webhooks elsewhere",
        "sender_gone" => "Sender gone from Twilio",
        "sender_sync" => "Senders not synced",
        _ => "Other",
    }
}

#[derive(Debug)]
struct DeliveryItem {
    channel: String,
    event: String,
    state: String,
    detail: String,
    sent: Option<When>,
}

#[derive(Debug)]
struct AlertItem {
    id: i64,
    kind: String,
    kind_label: &'static str,
    subject: String,
    severity: String,
    state: String,
    message: String,
    fired: When,
    acknowledged: Option<When>,
    acknowledged_by: Option<String>,
    resolved: Option<When>,
    deliveries: Vec<DeliveryItem>,
}

fn delivery_item(d: &DeliveryRow, tz: chrono_tz::Tz) -> DeliveryItem {
    let tries = format::plural(i64::from(d.attempts), "try", "tries");
    let detail = match (d.state.as_str(), &d.last_error) {
        ("sent", _) => String::new(),
        ("pending", None) => "waiting".into(),
        (_, Some(e)) => format!("{tries}: {e}"),
        (_, None) => tries,
    };
    DeliveryItem {
        channel: d.channel.clone(),
        event: d.event.clone(),
        state: d.state.clone(),
        detail,
        sent: When::of(d.sent_at, tz),
    }
}

fn item(a: &AlertRow, deliveries: &[DeliveryRow], tz: chrono_tz::Tz) -> AlertItem {
    AlertItem {
        id: a.id,
        kind: a.kind.clone(),
        kind_label: kind_label(&a.kind),
        subject: a.subject.clone(),
        severity: a.severity.clone(),
        state: a.state.to_string(),
        message: a.message.clone(),
        fired: When::new(a.fired_at, tz),
        acknowledged: When::of(a.acknowledged_at, tz),
        acknowledged_by: a.acknowledged_by.clone(),
        resolved: When::of(a.resolved_at, tz),
        deliveries: deliveries
            .iter()
            .filter(|d| d.alert_id == a.id)
            .map(|d| delivery_item(d, tz))
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "alerts.html", blocks = ["live"])]
struct AlertsPage {
    chrome: Chrome,
    open: Vec<AlertItem>,
    resolved: Vec<AlertItem>,
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    /// `live`: only the part live updates replace.
    fragment: Option<String>,
    done: Option<String>,
}

async fn page(
    user: CurrentUser,
    q: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (open, resolved) = tokio::try_join!(
        alerts::open(&state.pool, OPEN_MAX),
        alerts::list(&state.pool, Some(AlertState::Resolved), RESOLVED_MAX),
    )?;
    let ids: Vec<i64> = open.iter().chain(&resolved).map(|a| a.id).collect();
    let deliveries = alerts::deliveries(&state.pool, &ids).await?;
    let page = AlertsPage {
        chrome: Chrome::for_user(&user, &state, "alerts"),
        open: open.iter().map(|a| item(a, &deliveries, user.tz)).collect(),
        resolved: resolved
            .iter()
            .map(|a| item(a, &deliveries, user.tz))
            .collect(),
        notice: match q.done.as_deref() {
            Some("acknowledged") => {
                Some("Alert acknowledged: it stays open until its condition clears.")
            }
            Some("not_firing") => {
                Some("That alert was no longer firing: someone acknowledged it or it resolved.")
            }
            _ => None,
        },
    };
    if q.fragment.as_deref() == Some("live") {
        return html(&page.as_live());
    }
    html(&page)
}

#[derive(Template)]
#[template(path = "_alert_banner.html")]
struct BannerFragment {
    chrome: Chrome,
}

/// The banner alone, read from the database: a page fetches it because an alert changed,
/// possibly on another instance whose change this instance's snapshot has not seen yet.
async fn banner(user: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let fresh = state.open_alerts.refresh(&state.pool).await?;
    let mut chrome = Chrome::for_user(&user, &state, "");
    chrome.banner = Some(Banner::of(&fresh, user.tz));
    html(&BannerFragment { chrome })
}

async fn acknowledge(
    Posted { user, .. }: Posted<CsrfOnly, Operator>,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let id = *path;
    let done = match crate::alerts::acknowledge(&state.pool, id, &user.username).await? {
        Some(a) => {
            tracing::info!(by = %user.username, alert = a.id, kind = %a.kind, "alert acknowledged");
            "acknowledged"
        }
        None if alerts::get(&state.pool, id).await?.is_none() => {
            return Err(PageError::NotFound(format!("no alert {id}")));
        }
        None => "not_firing",
    };
    Ok(super::done_redirect("/alerts", done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: i64, kind: &str, severity: &str, state: AlertState) -> AlertRow {
        AlertRow {
            id,
            kind: kind.into(),
            subject: String::new(),
            severity: severity.into(),
            state,
            message: format!("alert {id}"),
            fired_at: chrono::Utc::now(),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
        }
    }

    #[test]
    fn the_banner_sums_up_count_worst_severity_and_kinds() {
        let b = Banner::of(
            &Snapshot::new(vec![
                alert(1, "failure_rate", "warning", AlertState::Firing),
                alert(2, "error_code", "warning", AlertState::Acknowledged),
                alert(3, "credit_critical", "critical", AlertState::Acknowledged),
                alert(4, "failure_rate", "warning", AlertState::Firing),
                alert(5, "test", "info", AlertState::Firing),
                alert(6, "lost_callbacks", "warning", AlertState::Firing),
            ]),
            chrono_tz::UTC,
        );
        assert_eq!((b.open, b.firing, b.more), (6, 4, 1));
        assert_eq!(b.worst, "critical");
        assert_eq!(
            b.kinds,
            vec![
                "Credit critically low",
                "Failure rate",
                "Error code",
                "Lost callbacks",
                "Test"
            ]
        );
        let none = Banner::of(&Snapshot::new(vec![]), chrono_tz::UTC);
        assert_eq!((none.open, none.worst.as_str()), (0, ""));
        assert!(none.kinds.is_empty());
    }
}
