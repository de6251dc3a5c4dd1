//! The reminder runner: every second, in one transaction per turn, it locks the reminders
//! that are due (`FOR UPDATE SKIP LOCKED`, so each is handled by one instance), records each
//! due occurrence once in `reminder_runs` (its primary key is the reminder and the due time),
//! queues the occurrence as a broadcast of its recipients, and moves the reminder on to its
//! next occurrence. Either all of that commits or none of it, so an occurrence is sent exactly
//! once across instances and restarts; the broadcast runner then sends it like any
//! broadcast.
//!
//! An occurrence due while its sender cannot send (offline at Twilio, no longer listed, or
//! de-authorized) is not lost: its broadcast is queued held, the run recorded `held`, and it
//! goes out when the hold clears — unless that is more than `max_late` past its time, when
//! the broadcast is canceled and the run becomes `skipped` with the reason.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::broadcasts::audience::Listed;
use crate::broadcasts::{self, Audience, BroadcastRequest};
use crate::domain::ReminderStatus;
use crate::reminders::{self, Action, Run, lifecycle};
use crate::storage::reminders::{self as store, ReminderRow};
use crate::twilio::client::Sender;

#[derive(Clone)]
pub struct ReminderRunner {
    pub pool: PgPool,
    pub configured_sender: Sender,
    /// Older occurrences are skipped (recorded), not sent.
    pub max_late: Duration,
}

pub fn start(runner: ReminderRunner, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    super::every("reminders", Duration::from_secs(1), shutdown, move || {
        let runner = runner.clone();
        async move {
            runner.run_once(Utc::now()).await?;
            Ok(())
        }
    })
}

impl ReminderRunner {
    /// Handles every reminder due at `now`; returns how many occurrences were recorded.
    pub async fn run_once(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        self.settle_held(&mut tx, now).await?;
        let due = store::claim_due(&mut tx, 20).await?;
        let mut recorded = 0;
        for r in &due {
            recorded += self.handle(&mut tx, r, now).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        r: &ReminderRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let Some(due) = r.next_at else {
            return Ok(0);
        };
        let sched = match reminders::schedule_of(r) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(reminder = r.id, error = %e, "reminder has an unreadable schedule; stopping it");
                store::advance(tx, r.id, None, finished(r.status)).await?;
                return Ok(0);
            }
        };
        let max_late = TimeDelta::from_std(self.max_late).unwrap_or(TimeDelta::hours(1));
        let reminders::Plan { runs, next } = reminders::plan(&sched, due, now, max_late);
        let mut recorded = 0;
        for (at, run) in &runs {
            let (outcome, broadcast, note) = match run {
                Run::Skip => (
                    "skipped",
                    None,
                    Some(format!(
                        "not sent: due {} and found {} later (the limit is {} s), or superseded by a later occurrence",
                        at.to_rfc3339(),
                        human(now - *at),
                        max_late.num_seconds()
                    )),
                ),
                Run::Send { late } => self.queue(tx, r, *at, now, *late).await?,
            };
            if !store::record_run(tx, r.id, *at, outcome, broadcast, note.as_deref()).await? {
                anyhow::bail!("reminder {} occurrence {at} was already recorded", r.id);
            }
            recorded += 1;
            tracing::info!(reminder = r.id, due = %at, outcome, "reminder occurrence");
        }
        let status = match next {
            Some(_) => r.status,
            None => finished(r.status),
        };
        store::advance(tx, r.id, next, status).await?;
        Ok(recorded)
    }

    /// Settles occurrences that waited held for their sender: sent once their broadcast went
    /// on (a sync found the sender online, or "Change number" moved it), skipped once they
    /// waited longer than `max_late` past their time (their broadcast is canceled) or their
    /// broadcast was canceled.
    async fn settle_held(
        &self,
        tx: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let max_late = TimeDelta::from_std(self.max_late).unwrap_or(TimeDelta::hours(1));
        for s in store::settle_held_runs(tx, now - max_late, &human(max_late)).await? {
            tracing::info!(reminder = s.reminder_id, due = %s.due_at, outcome = %s.outcome, "held reminder occurrence settled");
        }
        Ok(())
    }

    /// Queues one occurrence as a broadcast; (outcome, broadcast id, note).
    async fn queue(
        &self,
        tx: &mut sqlx::PgConnection,
        r: &ReminderRow,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        late: TimeDelta,
    ) -> anyhow::Result<(&'static str, Option<i64>, Option<String>)> {
        // A template deleted at Twilio or not approved: the run is skipped with the reason,
        // rather than queued to fail for every recipient.
        if let Some(sid) = r.content_sid.as_deref()
            && let Some(t) = crate::storage::templates::get(&self.pool, sid).await?
            && let Some(why) =
                broadcasts::template_hold::blocked(sid, &broadcasts::template_hold::facts_of(&t))
        {
            return Ok(("skipped", None, Some(format!("not sent: {why}"))));
        }
        let audience = match (&r.to_number, &r.to_tag) {
            (Some(n), _) => Audience::Listed(vec![Listed {
                line: 1,
                raw: n.clone(),
                variables: None,
            }]),
            (None, Some(t)) => Audience::Tag(t.clone()),
            (None, None) => Audience::Listed(Vec::new()),
        };
        let req = BroadcastRequest {
            name: Some(format!(
                "Reminder #{} due {}",
                r.id,
                due.format("%Y-%m-%d %H:%M UTC")
            )),
            body: r.body.clone(),
            media: r.media.clone(),
            content_sid: r.content_sid.clone(),
            content_variables: None,
            sender: r.sender.clone(),
            start_at: None,
            audience,
            created_by: format!("reminder #{}", r.id),
            reminder_id: Some(r.id),
            request_key: None,
            template_category: None,
            mapping: None,
        };
        // A sender that cannot send just now does not lose the occurrence: it waits held.
        let (preview, waits) =
            match broadcasts::preview_for_reminder(&self.pool, &self.configured_sender, &req, now)
                .await
            {
                Ok(p) => p,
                Err(e) => return Ok(("skipped", None, Some(format!("not sent: {e}")))),
            };
        if preview.recipients.is_empty() {
            let why: Vec<String> = preview
                .excluded
                .iter()
                .map(|e| format!("{} ({})", e.number, e.reason))
                .collect();
            return Ok((
                "skipped",
                None,
                Some(format!("nobody to send to: {}", why.join(", "))),
            ));
        }
        let b = broadcasts::queue(tx, &req, &preview, None, now).await?;
        if let Some(refusal) = waits {
            let reason = broadcasts::holds::hold_queued(tx, b.id, &refusal)
                .await?
                .unwrap_or_else(|| refusal.to_string());
            let max_late = TimeDelta::from_std(self.max_late).unwrap_or(TimeDelta::hours(1));
            return Ok((
                "held",
                Some(b.id),
                Some(format!(
                    "{reason}; a reminder waits for its sender at most {} past its time, then it \
                     is skipped",
                    human(max_late)
                )),
            ));
        }
        let mut note = Vec::new();
        if late > TimeDelta::seconds(30) {
            note.push(format!("sent {} late", human(late)));
        }
        if !preview.excluded.is_empty() {
            note.push(format!("{} left out", preview.excluded.len()));
        }
        Ok((
            "sent",
            Some(b.id),
            (!note.is_empty()).then(|| note.join("; ")),
        ))
    }
}

fn human(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// The state of a reminder with no occurrence left: done (the runner only claims active
/// reminders, which the lifecycle table lets finish).
fn finished(status: ReminderStatus) -> ReminderStatus {
    lifecycle::next(status, Action::Finish).unwrap_or(ReminderStatus::Done)
}
