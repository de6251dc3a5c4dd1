//! The circuit breaker: a bot that failed N times in a row is not asked for M seconds, so a
//! broken or throttling bot costs each inbound message nothing instead of a full timeout.
//!
//! Pure logic over an explicit clock (`Instant`s passed in), one state per bot id. The state
//! lives in memory per instance: with several instances each counts its own failures, so a
//! failing bot is paused on each after N failures seen there (documented in docs/bots.md).
//! After the pause one call is let through (half-open); its failure pauses the bot again at
//! once, its success closes the breaker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether a bot may be asked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Ask,
    /// Paused until this instant: give the fallback reply at once.
    Paused {
        until: Instant,
    },
}

/// What a recorded result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// The bot just reached the failure threshold (or failed its trial call): paused.
    Opened,
    /// The bot answered after having been paused: closed again.
    Recovered,
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// Opened at least once since the last success (an alert may be open).
    tripped: bool,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    pause: Duration,
    bots: HashMap<i64, State>,
}

impl Breaker {
    pub fn new(threshold: u32, pause: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            pause,
            bots: HashMap::new(),
        }
    }

    pub fn permit(&self, bot: i64, now: Instant) -> Permit {
        match self.bots.get(&bot).and_then(|s| s.open_until) {
            Some(until) if now < until => Permit::Paused { until },
            _ => Permit::Ask,
        }
    }

    /// Records the result of a call made with [`Permit::Ask`].
    pub fn record(&mut self, bot: i64, ok: bool, now: Instant) -> Transition {
        let s = self.bots.entry(bot).or_default();
        if ok {
            let was = s.tripped;
            *s = State::default();
            return if was {
                Transition::Recovered
            } else {
                Transition::None
            };
        }
        s.failures = s.failures.saturating_add(1);
        if s.failures >= self.threshold {
            s.open_until = Some(now + self.pause);
            let first = !s.tripped;
            s.tripped = true;
            // A failed trial call after a pause re-opens without a new alert.
            if first {
                return Transition::Opened;
            }
        }
        Transition::None
    }

    /// Failures in a row recorded for `bot`.
    pub fn failures(&self, bot: i64) -> u32 {
        self.bots.get(&bot).map_or(0, |s| s.failures)
    }

    /// Forgets a bot (deleted or reconfigured).
    pub fn forget(&mut self, bot: i64) {
        self.bots.remove(&bot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_secs(60);

    #[test]
    fn n_failures_in_a_row_pause_the_bot_for_the_pause() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, PAUSE);
        assert_eq!(b.record(1, false, t0), Transition::None);
        assert_eq!(b.record(1, false, t0), Transition::None);
        assert_eq!(b.permit(1, t0), Permit::Ask, "two failures do not pause");
        assert_eq!(b.record(1, false, t0), Transition::Opened);
        assert_eq!(
            b.permit(1, t0 + Duration::from_secs(59)),
            Permit::Paused { until: t0 + PAUSE }
        );
        assert_eq!(b.permit(2, t0), Permit::Ask, "other bots are not paused");
        assert_eq!(
            b.permit(1, t0 + PAUSE),
            Permit::Ask,
            "after the pause one call goes"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, PAUSE);
        b.record(1, false, t0);
        b.record(1, false, t0);
        assert_eq!(b.record(1, true, t0), Transition::None);
        assert_eq!(b.failures(1), 0);
        b.record(1, false, t0);
        b.record(1, false, t0);
        assert_eq!(b.permit(1, t0), Permit::Ask);
    }

    #[test]
    fn a_failed_trial_pauses_again_at_once_and_a_good_one_recovers() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, PAUSE);
        b.record(1, false, t0);
        assert_eq!(b.record(1, false, t0), Transition::Opened);
        let t1 = t0 + PAUSE;
        assert_eq!(b.permit(1, t1), Permit::Ask);
        assert_eq!(b.record(1, false, t1), Transition::None, "no second alert");
        assert_eq!(b.permit(1, t1), Permit::Paused { until: t1 + PAUSE });
        let t2 = t1 + PAUSE;
        assert_eq!(b.record(1, true, t2), Transition::Recovered);
        assert_eq!(b.permit(1, t2), Permit::Ask);
        assert_eq!(b.record(1, true, t2), Transition::None);
    }

    #[test]
    fn a_threshold_of_zero_means_one() {
        let t0 = Instant::now();
        let mut b = Breaker::new(0, PAUSE);
        assert_eq!(b.record(7, false, t0), Transition::Opened);
        b.forget(7);
        assert_eq!(b.permit(7, t0), Permit::Ask);
    }
}
