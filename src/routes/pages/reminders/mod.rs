//! `/reminders`: one-off and recurring reminders from the dashboard. The list (who, what, how
//! often in words, the next time in the reminder's zone and in UTC) with the operator's form
//! for a new one; one reminder with its runs, and the forms to edit, pause, resume and cancel
//! it. Input goes through `reminders::validate`, as the API's does.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{Chrome, CurrentUser, PageError, format, html};
use crate::domain::Role;
use crate::reminders::schedule::{self, Recurrence};
use crate::reminders::{self, ReminderInput};
use crate::state::AppState;
use crate::storage::reminders::{self as store, ReminderRow};

/// How many reminders the list shows (the API lists as many).
const LIST_LIMIT: i64 = 500;
const RUNS_SHOWN: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reminders", web::get().to(list))
        .route("/reminders", web::post().to(create))
        .route("/reminders/{id}", web::get().to(one))
        .route("/reminders/{id}/edit", web::post().to(edit))
        .route("/reminders/{id}/{action}", web::post().to(act));
}

/// Monday first, as the form lists them: (form value, name in words).
const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "Monday"),
    (Weekday::Tue, "tue", "Tuesday"),
    (Weekday::Wed, "wed", "Wednesday"),
    (Weekday::Thu, "thu", "Thursday"),
    (Weekday::Fri, "fri", "Friday"),
    (Weekday::Sat, "sat", "Saturday"),
    (Weekday::Sun, "sun", "Sunday"),
];

fn day_name(d: Weekday) -> &'static str {
    DAYS[d.num_days_from_monday() as usize].2
}

/// "Monday", "Monday and Thursday", "Monday, Wednesday and Friday".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// 09:00, or 09:00:30 when the seconds matter.
fn clock<T: Timelike>(t: &T) -> String {
    if t.second() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

/// How often a reminder comes, in words, at its local time.
fn recurrence_words(recurrence: &str, first_at: DateTime<Utc>, tz: Option<Tz>) -> String {
    let Some(tz) = tz else {
        return recurrence.to_owned();
    };
    let local = first_at.with_timezone(&tz);
    let time = clock(&local);
    match Recurrence::parse(recurrence) {
        Ok(Recurrence::Once) => format!("once, on {} at {time}", local.format("%A %-d %B %Y")),
        Ok(Recurrence::Daily) => format!("every day at {time}"),
        Ok(Recurrence::Weekly(days)) => {
            let names: Vec<&str> = days.iter().map(|d| day_name(*d)).collect();
            format!("every {} at {time}", and_list(&names))
        }
        Ok(Recurrence::Monthly(day)) if day > 28 => {
            format!("every month on day {day} (the last day in shorter months) at {time}")
        }
        Ok(Recurrence::Monthly(day)) => format!("every month on day {day} at {time}"),
        Ok(Recurrence::Cron(expr)) => {
            format!("when the cron expression {expr} matches (minute hour day month weekday)")
        }
        Err(_) => recurrence.to_owned(),
    }
}

/// "2030-03-11 09:00 EDT", and the same instant in UTC.
fn local_and_utc(t: DateTime<Utc>, tz: Option<Tz>) -> (String, String) {
    let local = match tz {
        Some(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => String::new(),
    };
    (local, t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// The value a `datetime-local` input shows for an instant in a zone.
fn local_input(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.second() == 0 {
        local.format("%Y-%m-%dT%H:%M").to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

fn status_label(status: &str) -> &'static str {
    match status {
        "active" => "active",
        "paused" => "paused",
        "canceled" => "canceled",
        "done" => "done",
        _ => "unknown",
    }
}

/// What the form holds: the operator's input, or a reminder's settings.
#[derive(Debug, Clone, Default, Deserialize)]
struct ReminderForm {
    #[serde(default)]
    csrf: String,
    /// `number` or `tag`.
    #[serde(default)]
    target: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    body: String,
    /// One URL per line.
    #[serde(default)]
    media: String,
    #[serde(default)]
    content_sid: String,
    /// `datetime-local`: a wall time in `timezone`.
    #[serde(default)]
    at: String,
    /// What `at` showed when the edit form was opened: unchanged, the stored instant stays
    /// (a time given with an offset through the API is not re-read as a wall time).
    #[serde(default)]
    at_was: String,
    #[serde(default)]
    timezone: String,
    /// `once`, `daily`, `weekly`, `monthly` or `cron`.
    #[serde(default)]
    every: String,
    day_mon: Option<String>,
    day_tue: Option<String>,
    day_wed: Option<String>,
    day_thu: Option<String>,
    day_fri: Option<String>,
    day_sat: Option<String>,
    day_sun: Option<String>,
    #[serde(default)]
    month_day: String,
    #[serde(default)]
    cron: String,
}

impl ReminderForm {
    fn blank() -> Self {
        Self {
            target: "number".into(),
            timezone: "UTC".into(),
            every: "once".into(),
            ..Self::default()
        }
    }

    fn of(r: &ReminderRow) -> Self {
        let tz = schedule::parse_tz(&r.timezone).unwrap_or(chrono_tz::UTC);
        let at = local_input(r.first_at, tz);
        let mut f = Self {
            target: if r.to_tag.is_some() { "tag" } else { "number" }.into(),
            to: r.to_number.clone().unwrap_or_default(),
            tag: r.to_tag.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
            media: r.media.join("\n"),
            content_sid: r.content_sid.clone().unwrap_or_default(),
            at_was: at.clone(),
            at,
            timezone: r.timezone.clone(),
            ..Self::default()
        };
        match Recurrence::parse(&r.recurrence) {
            Ok(Recurrence::Once) | Err(_) => f.every = "once".into(),
            Ok(Recurrence::Daily) => f.every = "daily".into(),
            Ok(Recurrence::Weekly(days)) => {
                f.every = "weekly".into();
                for d in days {
                    *f.day_mut(d) = Some("on".into());
                }
            }
            Ok(Recurrence::Monthly(day)) => {
                f.every = "monthly".into();
                f.month_day = day.to_string();
            }
            Ok(Recurrence::Cron(expr)) => {
                f.every = "cron".into();
                f.cron = expr.to_string();
            }
        }
        f
    }

    fn day_mut(&mut self, d: Weekday) -> &mut Option<String> {
        match d {
            Weekday::Mon => &mut self.day_mon,
            Weekday::Tue => &mut self.day_tue,
            Weekday::Wed => &mut self.day_wed,
            Weekday::Thu => &mut self.day_thu,
            Weekday::Fri => &mut self.day_fri,
            Weekday::Sat => &mut self.day_sat,
            Weekday::Sun => &mut self.day_sun,
        }
    }

    fn day(&self, d: Weekday) -> bool {
        match d {
            Weekday::Mon => &self.day_mon,
            Weekday::Tue => &self.day_tue,
            Weekday::Wed => &self.day_wed,
            Weekday::Thu => &self.day_thu,
            Weekday::Fri => &self.day_fri,
            Weekday::Sat => &self.day_sat,
            Weekday::Sun => &self.day_sun,
        }
        .is_some()
    }

    /// The recurrence text `reminders::validate` reads.
    fn recurrence(&self) -> Result<String, String> {
        match self.every.as_str() {
            "" | "once" => Ok("once".into()),
            "daily" => Ok("daily".into()),
            "weekly" => {
                let days: Vec<&str> = DAYS
                    .iter()
                    .filter(|(d, _, _)| self.day(*d))
                    .map(|(_, v, _)| *v)
                    .collect();
                if days.is_empty() {
                    return Err("choose at least one day of the week for a weekly reminder".into());
                }
                Ok(format!("weekly:{}", days.join(",")))
            }
            "monthly" => {
                let day = self.month_day.trim();
                if day.is_empty() {
                    return Err(
                        "enter the day of the month (1 to 31) for a monthly reminder".into(),
                    );
                }
                Ok(format!("monthly:{day}"))
            }
            "cron" => {
                let expr = self.cron.trim();
                if expr.is_empty() {
                    return Err(
                        "enter a cron expression (minute hour day month weekday), such as 0 9 * * 1-5"
                            .into(),
                    );
                }
                Ok(format!("cron:{expr}"))
            }
            other => Err(format!(
                "unknown repetition {other:?}: choose once, daily, weekly, monthly or cron"
            )),
        }
    }

    /// The input for `reminders::validate`; `existing` when editing.
    fn input(&self, existing: Option<&ReminderRow>) -> Result<ReminderInput, String> {
        let (to, tag) = if self.target == "tag" {
            if self.tag.trim().is_empty() {
                return Err("enter the tag whose contacts get the reminder".into());
            }
            (None, Some(self.tag.trim().to_owned()))
        } else {
            if self.to.trim().is_empty() {
                return Err(
                    "enter the number to remind, in E.164 form such as +919900000001".into(),
                );
            }
            (Some(self.to.trim().to_owned()), None)
        };
        let timezone = Some(self.timezone.trim())
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC")
            .to_owned();
        let at = match existing {
            Some(e) if self.at.trim() == self.at_was.trim() && timezone == e.timezone => None,
            _ => {
                if self.at.trim().is_empty() {
                    return Err("choose the date and time of the (first) reminder".into());
                }
                Some(self.at.trim().to_owned())
            }
        };
        let media: Vec<serde_json::Value> = self
            .media
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::Value::String(l.to_owned()))
            .collect();
        Ok(ReminderInput {
            to,
            tag,
            body: Some(self.body.clone()),
            media_url: Some(serde_json::Value::Array(media)),
            content_sid: Some(self.content_sid.clone()),
            sender: None,
            at,
            every: Some(self.recurrence()?),
            timezone: Some(timezone),
            status: None,
        })
    }
}

/// The form's fields for the template.
struct Fields {
    f: ReminderForm,
    /// (value, name, checked).
    days: Vec<(&'static str, &'static str, bool)>,
}

impl Fields {
    fn new(f: ReminderForm) -> Self {
        let days = DAYS
            .iter()
            .map(|(d, v, name)| (*v, *name, f.day(*d)))
            .collect();
        Self { f, days }
    }
}

struct ReminderItem {
    id: i64,
    to_number: String,
    to_tag: String,
    tag_href: String,
    text: String,
    recurrence: String,
    timezone: String,
    next_local: String,
    next_utc: String,
    status: String,
    status_label: &'static str,
}

fn item(r: &ReminderRow) -> ReminderItem {
    let tz = schedule::parse_tz(&r.timezone).ok();
    let (next_local, next_utc) = r.next_at.map(|t| local_and_utc(t, tz)).unwrap_or_default();
    let mut text = r.body.clone().unwrap_or_default();
    if text.is_empty() {
        if let Some(c) = &r.content_sid {
            text = format!("template {c}");
        } else if !r.media.is_empty() {
            text = format!("{} media link(s)", r.media.len());
        }
    }
    ReminderItem {
        id: r.id,
        to_number: r.to_number.clone().unwrap_or_default(),
        to_tag: r.to_tag.clone().unwrap_or_default(),
        tag_href: r
            .to_tag
            .as_deref()
            .map(|t| {
                format!(
                    "/contacts?{}",
                    serde_urlencoded::to_string([("tag", t)]).unwrap_or_default()
                )
            })
            .unwrap_or_default(),
        text,
        recurrence: recurrence_words(&r.recurrence, r.first_at, tz),
        timezone: r.timezone.clone(),
        next_local,
        next_utc,
        status: r.status.clone(),
        status_label: status_label(&r.status),
    }
}

#[derive(Template)]
#[template(path = "reminders.html")]
struct ListPage {
    chrome: Chrome,
    items: Vec<ReminderItem>,
    form: Fields,
    tags: Vec<(String, i64)>,
    error: Option<String>,
}

async fn render_list(
    user: &CurrentUser,
    state: &AppState,
    f: ReminderForm,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, PageError> {
    let (rows, tags) = tokio::try_join!(
        store::list(&state.pool, LIST_LIMIT),
        crate::storage::contacts::tags(&state.pool)
    )?;
    let (status, error) = match refused {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    let mut resp = html(&ListPage {
        chrome: Chrome::for_user(user, state, "reminders"),
        items: rows.iter().map(item).collect(),
        form: Fields::new(f),
        tags,
        error,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

async fn list(user: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    render_list(&user, &state, ReminderForm::blank(), None).await
}

async fn create(
    user: CurrentUser,
    form: web::Form<ReminderForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let f = form.into_inner();
    let new = f
        .input(None)
        .and_then(|input| reminders::validate(&input, None, &user.username, Utc::now()));
    match new {
        Ok(new) => {
            let row = store::insert(&state.pool, &new).await?;
            tracing::info!(reminder = row.id, username = %user.username, "reminder created from the dashboard");
            Ok(back_to(row.id, "created"))
        }
        Err(e) => render_list(&user, &state, f, Some((StatusCode::BAD_REQUEST, e))).await,
    }
}

fn back_to(id: i64, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/reminders/{id}?done={done}")))
        .finish()
}

struct RunItem {
    due_local: String,
    due_utc: String,
    due_iso: String,
    outcome: String,
    note: String,
    broadcast_id: Option<i64>,
    sid: String,
    message_status: String,
}

#[derive(Template)]
#[template(path = "reminder.html")]
struct ReminderPage {
    chrome: Chrome,
    r: ReminderItem,
    first_local: String,
    first_utc: String,
    media: Vec<String>,
    content_sid: String,
    sender: String,
    created_by: String,
    created: String,
    created_iso: String,
    runs: Vec<RunItem>,
    /// Open for changes (active or paused).
    editable: bool,
    form: Fields,
    tags: Vec<(String, i64)>,
    notice: Option<String>,
    error: Option<String>,
}

fn path_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::NotFound(format!("no reminder {raw:?}")))
}

async fn find(state: &AppState, id: i64) -> Result<ReminderRow, PageError> {
    store::get(&state.pool, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no reminder {id}")))
}

async fn render_one(
    user: &CurrentUser,
    state: &AppState,
    r: ReminderRow,
    notice: Option<String>,
    refused: Option<(StatusCode, String, Option<ReminderForm>)>,
) -> Result<HttpResponse, PageError> {
    let (runs, tags) = tokio::try_join!(
        store::runs(&state.pool, r.id, RUNS_SHOWN),
        crate::storage::contacts::tags(&state.pool)
    )?;
    let tz = schedule::parse_tz(&r.timezone).ok();
    let (first_local, first_utc) = local_and_utc(r.first_at, tz);
    let (status, error, typed) = match refused {
        Some((s, e, typed)) => (s, Some(e), typed),
        None => (StatusCode::OK, None, None),
    };
    let form = Fields::new(typed.unwrap_or_else(|| ReminderForm::of(&r)));
    let runs = runs
        .into_iter()
        .map(|run| {
            let (due_local, due_utc) = local_and_utc(run.due_at, tz);
            RunItem {
                due_local,
                due_utc,
                due_iso: format::iso(&run.due_at),
                outcome: run.outcome,
                note: run.note.unwrap_or_default(),
                broadcast_id: run.broadcast_id,
                sid: run.message_sid.unwrap_or_default(),
                message_status: run.message_status.unwrap_or_default(),
            }
        })
        .collect();
    let mut resp = html(&ReminderPage {
        chrome: Chrome::for_user(user, state, "reminders"),
        r: item(&r),
        first_local,
        first_utc,
        media: r.media.clone(),
        content_sid: r.content_sid.clone().unwrap_or_default(),
        sender: r.sender.clone().unwrap_or_default(),
        created_by: r.created_by.clone().unwrap_or_default(),
        created: format::utc(&r.created_at),
        created_iso: format::iso(&r.created_at),
        runs,
        editable: matches!(r.status.as_str(), "active" | "paused"),
        form,
        tags,
        notice,
        error,
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn one(
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let r = find(&state, path_id(&path)?).await?;
    let notice = q.done.as_deref().map(|d| {
        match d {
            "created" => "Reminder created.",
            "saved" => "Changes saved.",
            "pause" => "Paused: nothing is sent until it is resumed.",
            "resume" => "Resumed: the next time is counted from now.",
            "cancel" => "Canceled: nothing more is sent.",
            _ => "Done.",
        }
        .to_owned()
    });
    render_one(&user, &state, r, notice, None).await
}

fn closed(r: &ReminderRow) -> String {
    format!(
        "this reminder is {}: it cannot change any more; create a new one",
        status_label(&r.status)
    )
}

async fn edit(
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<ReminderForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let existing = find(&state, path_id(&path)?).await?;
    let f = form.into_inner();
    if !matches!(existing.status.as_str(), "active" | "paused") {
        let e = closed(&existing);
        return render_one(
            &user,
            &state,
            existing,
            None,
            Some((StatusCode::CONFLICT, e, None)),
        )
        .await;
    }
    let new = f
        .input(Some(&existing))
        .and_then(|input| reminders::validate(&input, Some(&existing), &user.username, Utc::now()));
    match new {
        Ok(new) => {
            let row = store::update(&state.pool, existing.id, &new)
                .await?
                .ok_or_else(|| PageError::NotFound(format!("no reminder {}", existing.id)))?;
            tracing::info!(reminder = row.id, username = %user.username, "reminder changed from the dashboard");
            Ok(back_to(row.id, "saved"))
        }
        Err(e) => {
            render_one(
                &user,
                &state,
                existing,
                None,
                Some((StatusCode::BAD_REQUEST, e, Some(f))),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// Pause, resume or cancel; a 409 on the reminder's page when it is not in a state the
/// action applies to.
async fn act(
    user: CurrentUser,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require(Role::Operator)?;
    let (raw, action) = path.into_inner();
    let existing = find(&state, path_id(&raw)?).await?;
    let (from, to): (&[&str], Option<&str>) = match action.as_str() {
        "pause" => (&["active"], Some("paused")),
        "resume" => (&["paused"], Some("active")),
        "cancel" => (&["active", "paused"], None),
        other => {
            return Err(PageError::NotFound(format!(
                "no reminder action {other:?}; use pause, resume or cancel"
            )));
        }
    };
    if !from.contains(&existing.status.as_str()) {
        let e = format!(
            "a {} reminder cannot {action}",
            status_label(&existing.status)
        );
        return render_one(
            &user,
            &state,
            existing,
            None,
            Some((StatusCode::CONFLICT, e, None)),
        )
        .await;
    }
    match to {
        None => store::cancel(&state.pool, existing.id).await?,
        Some(status) => {
            let input = ReminderInput {
                status: Some(status.to_owned()),
                ..ReminderInput::default()
            };
            match reminders::validate(&input, Some(&existing), &user.username, Utc::now()) {
                Ok(new) => {
                    store::update(&state.pool, existing.id, &new).await?;
                }
                Err(e) => {
                    return render_one(
                        &user,
                        &state,
                        existing,
                        None,
                        Some((StatusCode::CONFLICT, e, None)),
                    )
                    .await;
                }
            }
        }
    }
    tracing::info!(reminder = existing.id, username = %user.username, action, "reminder {action}");
    Ok(back_to(existing.id, &action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn recurrences_read_as_words_at_the_local_time() {
        let ny = schedule::parse_tz("America/New_York").ok();
        let first = t("2030-03-11T13:00:00Z"); // 09:00 EDT, a Monday
        for (rule, words) in [
            ("once", "once, on Monday 11 March 2030 at 09:00"),
            ("daily", "every day at 09:00"),
            ("weekly:mon,thu", "every Monday and Thursday at 09:00"),
            (
                "weekly:mon,wed,fri",
                "every Monday, Wednesday and Friday at 09:00",
            ),
            ("monthly:15", "every month on day 15 at 09:00"),
            (
                "monthly:31",
                "every month on day 31 (the last day in shorter months) at 09:00",
            ),
            (
                "cron:0 9 * * 1-5",
                "when the cron expression 0 9 * * 1-5 matches (minute hour day month weekday)",
            ),
        ] {
            assert_eq!(recurrence_words(rule, first, ny), words);
        }
    }

    #[test]
    fn the_form_builds_the_recurrence_text() {
        let mut f = ReminderForm::blank();
        assert_eq!(f.recurrence().unwrap(), "once");
        f.every = "weekly".into();
        assert!(f.recurrence().unwrap_err().contains("at least one day"));
        f.day_thu = Some("on".into());
        f.day_mon = Some("on".into());
        assert_eq!(f.recurrence().unwrap(), "weekly:mon,thu");
        f.every = "monthly".into();
        f.month_day = "15".into();
        assert_eq!(f.recurrence().unwrap(), "monthly:15");
        f.every = "cron".into();
        f.cron = " 0 9 * * 1-5 ".into();
        assert_eq!(f.recurrence().unwrap(), "cron:0 9 * * 1-5");
        f.every = "hourly".into();
        assert!(f.recurrence().is_err());
    }

    #[test]
    fn next_times_show_in_the_zone_and_in_utc() {
        let ny = schedule::parse_tz("America/New_York").ok();
        let (local, utc) = local_and_utc(t("2030-03-11T13:00:00Z"), ny);
        assert_eq!(local, "2030-03-11 09:00 EDT");
        assert_eq!(utc, "2030-03-11 13:00 UTC");
        assert_eq!(
            local_input(t("2030-03-11T13:00:30Z"), ny.unwrap()),
            "2030-03-11T09:00:30"
        );
    }
}
