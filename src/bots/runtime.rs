//! The bots at run time, one per instance: connected clients (reused until the bot is
//! changed), the circuit breaker, and asking a bot for a routed message within its timeout
//! and storing what came of it (a late answer, or one with choices, is then sent through the
//! REST client by `crate::replies::deliver`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::breaker::{Breaker, Permit, Transition};
use super::connections::{self, InputError};
use super::demo::DemoBot;
use super::route::{self, Asked, BotCall};
use super::{Bot, BotAnswer, BotError, BotTurn};
use crate::config::BotSettings;
use crate::domain::bot::{BotConfig, BotKind, BotSignal};
use crate::domain::destination::AllowList;
use crate::domain::secret_key::SecretKey;
use crate::metrics::Metrics;
use crate::storage::auto_replies::{self, NewReply, ReplyRow};
use crate::storage::bots::{self as store, BotRow, TurnResult};

/// The alert raised while a bot is paused by the circuit breaker (subject: the bot's id).
pub const ALERT_KIND: &str = "bot_failing";

/// A connected bot and the version (`updated_at`) of its connection it was made for.
type Connected = (DateTime<Utc>, Arc<dyn Bot>);

pub struct Bots {
    pool: PgPool,
    pub settings: BotSettings,
    key: Option<SecretKey>,
    /// Hosts an endpoint override may name although they are private.
    pub allow: AllowList,
    /// For the demo bot's picture.
    public_url: String,
    metrics: Arc<Metrics>,
    channels: crate::alerts::channels::ChannelStore,
    /// Connected bots by id, with the `updated_at` they were connected for.
    connected: Mutex<HashMap<i64, Connected>>,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for Bots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bots")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A bot's answer to the test form, or why there was none.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Tested {
    Answer(BotAnswer),
    Error { error: String, message: String },
}

impl Bots {
    pub fn new(
        pool: PgPool,
        settings: BotSettings,
        key: Option<SecretKey>,
        allow: AllowList,
        public_url: &str,
        metrics: Arc<Metrics>,
        channels: crate::alerts::channels::ChannelStore,
    ) -> Self {
        let breaker = Breaker::new(settings.breaker_failures, settings.breaker_pause);
        Self {
            pool,
            settings,
            key,
            allow,
            public_url: public_url.to_owned(),
            metrics,
            channels,
            connected: Mutex::new(HashMap::new()),
            breaker: Mutex::new(breaker),
        }
    }

    pub fn secret_key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    /// Forgets a changed or deleted bot's client and breaker state.
    pub fn forget(&self, id: i64) {
        self.connected.lock().expect("bots lock").remove(&id);
        self.breaker.lock().expect("breaker lock").forget(id);
    }

    /// The client for `row`, connected once per version of the bot.
    async fn client(&self, row: &BotRow) -> Result<Arc<dyn Bot>, BotError> {
        if let Some((at, bot)) = self.connected.lock().expect("bots lock").get(&row.id)
            && *at == row.updated_at
        {
            return Ok(bot.clone());
        }
        let config = connections::config_of(row, self.key.as_ref()).map_err(|e| match e {
            InputError::NoSecretKey | InputError::Sealed(_) => BotError::Auth(e.to_string()),
            InputError::Invalid(m) => BotError::Failed(m),
        })?;
        let bot: Arc<dyn Bot> = match &config {
            BotConfig::Demo => Arc::new(DemoBot::new(Some(&self.public_url))),
            cloud => super::cloud::connect(cloud, row.endpoint.as_deref()).await?,
        };
        self.connected
            .lock()
            .expect("bots lock")
            .insert(row.id, (row.updated_at, bot.clone()));
        Ok(bot)
    }

    /// Asks `row`'s bot one turn within its timeout.
    async fn ask(&self, row: &BotRow, turn: &BotTurn) -> Result<BotAnswer, BotError> {
        let bot = self.client(row).await?;
        let limit = Duration::from_millis(row.timeout_ms.max(1) as u64);
        ask_within(bot.as_ref(), turn, limit).await.0
    }

    /// The test form and `POST /api/v1/bots/{id}/test`: one turn in a session of its own,
    /// nothing stored or sent, the breaker not consulted.
    pub async fn test(&self, row: &BotRow, text: &str) -> Tested {
        let turn = BotTurn {
            session_id: format!("test-{}", route::new_session_id()),
            text: text.to_owned(),
        };
        match self.ask(row, &turn).await {
            Ok(a) => Tested::Answer(a),
            Err(e) => Tested::Error {
                error: e.outcome().to_owned(),
                message: e.to_string(),
            },
        }
    }

    /// Asks the bot for a routed message (unless the breaker has paused it), stores the
    /// replies, the turn and any hand-off, and returns the replies to send.
    pub async fn converse(&self, call: &BotCall) -> sqlx::Result<Vec<ReplyRow>> {
        let row = store::get(&self.pool, call.bot_id).await?;
        let kind = row
            .as_ref()
            .and_then(|r| BotKind::parse(&r.kind))
            .map_or("unknown", BotKind::as_str);
        let permit = self
            .breaker
            .lock()
            .expect("breaker lock")
            .permit(call.bot_id, Instant::now());
        let (asked, took) = match (&row, permit) {
            (None, _) => (
                Asked::Failed(BotError::Failed("the bot was deleted".into())),
                None,
            ),
            (Some(_), Permit::Paused { .. }) => (Asked::Paused, None),
            (Some(r), Permit::Ask) => {
                let turn = BotTurn {
                    session_id: call.session_id.clone(),
                    text: call.text.clone(),
                };
                let (result, took) = match self.client(r).await {
                    Ok(bot) => {
                        let limit = Duration::from_millis(r.timeout_ms.max(1) as u64);
                        ask_within(bot.as_ref(), &turn, limit).await
                    }
                    Err(e) => (Err(e), Duration::ZERO),
                };
                let transition = self.breaker.lock().expect("breaker lock").record(
                    call.bot_id,
                    result.is_ok(),
                    Instant::now(),
                );
                self.on_transition(r, transition, result.as_ref().err())
                    .await;
                let asked = match result {
                    Ok(a) => Asked::Answer(a),
                    Err(e) => {
                        tracing::warn!(bot = r.id, sid = %call.inbound_sid, outcome = e.outcome(), error = %e, "the bot gave no answer: the fallback reply goes instead");
                        Asked::Failed(e)
                    }
                };
                (asked, Some(took))
            }
        };
        let plan = route::plan(&asked, call.fallbacks, &self.settings);
        self.metrics.bot_call(call.bot_id, kind, plan.outcome, took);
        self.store(call, &asked, &plan, took).await
    }

    async fn store(
        &self,
        call: &BotCall,
        asked: &Asked,
        plan: &route::Plan,
        took: Option<Duration>,
    ) -> sqlx::Result<Vec<ReplyRow>> {
        let (answer, error) = match asked {
            Asked::Answer(a) => (Some(a), None),
            Asked::Failed(e) => (None, Some(e.to_string())),
            Asked::Paused => (None, Some("paused by the circuit breaker".to_owned())),
        };
        let signal = answer.map(|a| match &a.signal {
            BotSignal::Continue => "continue".to_owned(),
            BotSignal::Fallback => "fallback".to_owned(),
            BotSignal::Handoff(r) => format!("handoff:{r}"),
        });
        let mut tx = self.pool.begin().await?;
        store::finish_turn(
            &mut tx,
            &call.inbound_sid,
            &TurnResult {
                outcome: plan.outcome,
                intent: answer.and_then(|a| a.intent.as_deref()),
                confidence: answer.and_then(|a| a.confidence),
                parameters: answer.map(|a| &a.parameters),
                signal: signal.as_deref(),
                error: error.as_deref(),
                latency_ms: took.map(|t| t.as_millis().min(i32::MAX as u128) as i32),
            },
        )
        .await?;
        let mut rows = Vec::with_capacity(plan.replies.len());
        for (position, r) in plan.replies.iter().enumerate() {
            rows.push(
                auto_replies::insert(
                    &mut tx,
                    &NewReply {
                        inbound_sid: &call.inbound_sid,
                        position: position as i16,
                        reason: r.reason,
                        rule_id: None,
                        from_addr: &call.sender,
                        to_addr: &call.contact,
                        body: r.body.as_deref(),
                        media: &r.media,
                        choices: r.choices.as_ref(),
                    },
                )
                .await?,
            );
        }
        match &plan.handoff {
            Some(reason) => {
                store::hand_off(&mut tx, &call.number, &call.sender, reason).await?;
                tracing::info!(sid = %call.inbound_sid, number = %call.number, %reason, "conversation handed to a human");
            }
            None => {
                store::set_fallbacks(&mut tx, &call.number, &call.sender, plan.fallbacks).await?
            }
        }
        tx.commit().await?;
        Ok(rows)
    }

    /// Raises `bot_failing` when the breaker opens, resolves it when the bot recovers.
    async fn on_transition(&self, row: &BotRow, t: Transition, error: Option<&BotError>) {
        if t == Transition::None {
            return;
        }
        let names = self.channels.current().await.channels.names_for(ALERT_KIND);
        let subject = row.id.to_string();
        let result = async {
            let mut conn = self.pool.acquire().await?;
            match t {
                Transition::Opened => {
                    let message = format!(
                        "Bot “{}” failed {} times in a row ({}): paused for {} s, contacts get the fallback reply meanwhile.",
                        row.name,
                        self.settings.breaker_failures,
                        error.map_or_else(String::new, ToString::to_string),
                        self.settings.breaker_pause.as_secs()
                    );
                    crate::storage::alerts::fire(
                        &mut conn, ALERT_KIND, &subject, "warning", &message, &names,
                    )
                    .await
                }
                Transition::Recovered => {
                    crate::storage::alerts::resolve(&mut conn, ALERT_KIND, &subject, &names).await
                }
                Transition::None => Ok(None),
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(bot = row.id, error = %e, "the bot_failing alert could not be updated");
        }
    }
}

/// Asks `bot` one turn, giving up after `limit` ([`BotError::Timeout`]); returns how long it
/// took.
pub async fn ask_within(
    bot: &dyn Bot,
    turn: &BotTurn,
    limit: Duration,
) -> (Result<BotAnswer, BotError>, Duration) {
    let started = Instant::now();
    let result = match tokio::time::timeout(limit, bot.ask(turn)).await {
        Ok(r) => r,
        Err(_) => Err(BotError::Timeout(limit)),
    };
    (result, started.elapsed())
}

/// Waits for a spawned bot conversation until `until`: its result, or the task itself when
/// it is not done by then (its answer then goes through the REST client).
pub async fn within_budget<T>(
    mut task: tokio::task::JoinHandle<T>,
    until: tokio::time::Instant,
) -> Result<Result<T, tokio::task::JoinError>, tokio::task::JoinHandle<T>> {
    match tokio::time::timeout_at(until, &mut task).await {
        Ok(done) => Ok(done),
        Err(_) => Err(task),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::future::BoxFuture;

    use super::*;

    /// A bot that answers after `delay`, or fails with `error`; counts the calls it gets.
    #[derive(Debug)]
    struct TestBot {
        delay: Duration,
        error: Option<BotError>,
        calls: AtomicUsize,
    }

    impl TestBot {
        fn new(delay: Duration, error: Option<BotError>) -> Self {
            Self {
                delay,
                error,
                calls: AtomicUsize::new(0),
            }
        }
    }

    impl Bot for TestBot {
        fn kind(&self) -> BotKind {
            BotKind::LexV2
        }

        fn ask<'a>(&'a self, turn: &'a BotTurn) -> BoxFuture<'a, Result<BotAnswer, BotError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                match &self.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(BotAnswer {
                        messages: vec![crate::domain::bot::BotMessage::Text {
                            body: format!("you said {}", turn.text),
                        }],
                        intent: Some("echo".into()),
                        confidence: Some(1.0),
                        parameters: serde_json::json!({}),
                        signal: BotSignal::Continue,
                    }),
                }
            })
        }
    }

    fn turn() -> BotTurn {
        BotTurn {
            session_id: "s".into(),
            text: "hi".into(),
        }
    }

    #[tokio::test]
    async fn a_bot_slower_than_its_timeout_is_a_timeout_and_gets_the_fallback_reply() {
        let slow = TestBot::new(Duration::from_secs(30), None);
        let (result, _) = ask_within(&slow, &turn(), Duration::from_millis(50)).await;
        assert_eq!(result, Err(BotError::Timeout(Duration::from_millis(50))));
        let plan = route::plan(
            &Asked::Failed(result.unwrap_err()),
            0,
            &BotSettings::default(),
        );
        assert_eq!(plan.outcome, "timeout");
        assert_eq!(
            plan.replies[0].body.as_deref(),
            Some(crate::config::DEFAULT_BOT_FALLBACK_REPLY)
        );
    }

    #[tokio::test]
    async fn an_answer_past_the_budget_is_handed_on_and_still_arrives() {
        let slow = Arc::new(TestBot::new(Duration::from_millis(300), None));
        let task = tokio::spawn({
            let slow = slow.clone();
            async move {
                ask_within(slow.as_ref(), &turn(), Duration::from_secs(30))
                    .await
                    .0
            }
        });
        let until = tokio::time::Instant::now() + Duration::from_millis(20);
        let late = within_budget(task, until)
            .await
            .expect_err("not within the budget");
        let answer = late.await.unwrap().unwrap();
        assert_eq!(answer.intent.as_deref(), Some("echo"));

        let fast = Arc::new(TestBot::new(Duration::ZERO, None));
        let task = tokio::spawn(async move {
            ask_within(fast.as_ref(), &turn(), Duration::from_secs(30))
                .await
                .0
        });
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        let done = within_budget(task, until).await.expect("within the budget");
        assert!(done.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_throttling_bot_is_paused_after_n_failures_and_not_asked_meanwhile() {
        let bot = TestBot::new(Duration::ZERO, Some(BotError::Throttled("429".into())));
        let mut breaker = Breaker::new(3, Duration::from_secs(60));
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            let asked = match breaker.permit(1, Instant::now()) {
                Permit::Paused { .. } => Asked::Paused,
                Permit::Ask => {
                    let (r, _) = ask_within(&bot, &turn(), Duration::from_secs(5)).await;
                    breaker.record(1, r.is_ok(), Instant::now());
                    match r {
                        Ok(a) => Asked::Answer(a),
                        Err(e) => Asked::Failed(e),
                    }
                }
            };
            outcomes.push(route::plan(&asked, 0, &BotSettings::default()).outcome);
        }
        assert_eq!(
            outcomes,
            ["throttled", "throttled", "throttled", "paused", "paused"]
        );
        assert_eq!(
            bot.calls.load(Ordering::SeqCst),
            3,
            "a paused bot is not asked"
        );
    }
}
