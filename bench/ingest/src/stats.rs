//! Latency figures and the open-loop verdict: nearest-rank percentiles, how many requests may
//! be slow while the p99 stays below a limit, and whether an offered rate was sustained.

/// 1-based nearest rank of percentile `p` among `n` values (`n > 0`).
fn rank(p: f64, n: usize) -> usize {
    // `p * n` first: exact for whole percentiles, so 99 % of 1000 is rank 990, not 991.
    let r = (p * n as f64 / 100.0 - 1e-9).ceil();
    (r.max(1.0) as usize).min(n)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[rank(p, sorted.len()) - 1]
}

/// How many of `n` values may be at or above a limit while the p99 stays below it.
pub fn late_allowance(n: usize) -> usize {
    if n == 0 { 0 } else { n - rank(99.0, n) }
}

/// Percentiles of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: u64,
}

impl Summary {
    /// Sorts `values` and summarizes them.
    pub fn of(values: &mut [u64]) -> Self {
        values.sort_unstable();
        let mean = if values.is_empty() {
            0
        } else {
            values.iter().sum::<u64>() / values.len() as u64
        };
        Self {
            p50: percentile(values, 50.0),
            p90: percentile(values, 90.0),
            p99: percentile(values, 99.0),
            p999: percentile(values, 99.9),
            max: values.last().copied().unwrap_or(0),
            mean,
        }
    }
}

/// What counts as sustaining a rate.
#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    /// The p99 (from due time) must be below this.
    pub p99_limit_us: u64,
    /// Achieved rate over offered rate must be at least this (the schedule was kept).
    pub min_share: f64,
}

/// What an open-loop run measured, for the verdict.
#[derive(Debug, Clone)]
pub struct Observed {
    pub offered: f64,
    /// Acknowledged timed requests per second of the timed phase.
    pub achieved: f64,
    /// Over all answered timed requests, from due time.
    pub p99_us: u64,
    /// Timed requests without a 2xx answer (an HTTP error or no answer at all).
    pub failed: usize,
    /// Timed requests in the schedule, and how many of them got any answer.
    pub timed: usize,
    pub timed_answered: usize,
    /// Why the run stopped before the end of the schedule, if it did.
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub sustained: bool,
    /// Why not (empty when sustained).
    pub reasons: Vec<String>,
}

pub fn verdict(c: &Criteria, o: &Observed) -> Verdict {
    let mut reasons = Vec::new();
    if let Some(why) = &o.stopped {
        // The figures of a run cut short describe only its beginning: the reason is the
        // verdict.
        reasons.push(format!("stopped early: {why}"));
        return Verdict {
            sustained: false,
            reasons,
        };
    }
    if o.timed_answered < o.timed {
        reasons.push(format!(
            "only {} of {} timed requests were answered",
            o.timed_answered, o.timed
        ));
    }
    if o.failed > 0 {
        reasons.push(format!("{} timed requests without a 2xx answer", o.failed));
    }
    if o.p99_us >= c.p99_limit_us {
        reasons.push(format!(
            "p99 {:.2} ms is not below {:.2} ms",
            o.p99_us as f64 / 1000.0,
            c.p99_limit_us as f64 / 1000.0
        ));
    }
    if o.offered > 0.0 && o.achieved < c.min_share * o.offered {
        reasons.push(format!(
            "achieved {:.0}/s is {:.1} % of the offered {:.0}/s (needs {:.0} %)",
            o.achieved,
            o.achieved / o.offered * 100.0,
            o.offered,
            c.min_share * 100.0
        ));
    }
    if o.timed == 0 {
        reasons.push("no timed requests".to_owned());
    }
    Verdict {
        sustained: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
    }

    #[test]
    fn late_allowance_matches_the_p99() {
        assert_eq!(late_allowance(0), 0);
        assert_eq!(late_allowance(99), 0);
        assert_eq!(late_allowance(100), 1);
        assert_eq!(late_allowance(1000), 10);
        assert_eq!(late_allowance(1_200_000), 12_000);
        // With exactly `late_allowance(n)` values at the limit the p99 is still below it; one
        // more and it is not.
        for n in [1, 57, 100, 101, 199, 200, 1234, 10_000] {
            let limit = 1000;
            let a = late_allowance(n);
            let mut v = vec![1u64; n];
            v[n - a..].fill(limit);
            assert!(percentile(&v, 99.0) < limit, "n {n}");
            if a < n {
                v[n - a - 1] = limit;
                assert!(percentile(&v, 99.0) >= limit, "n {n}");
            }
        }
    }

    #[test]
    fn summary_of_latencies() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = Summary::of(&mut v);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p999, s.max),
            (500, 900, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500);
        assert_eq!(Summary::of(&mut []), Summary::default());
    }

    fn good() -> Observed {
        Observed {
            offered: 10_000.0,
            achieved: 9_950.0,
            p99_us: 12_000,
            failed: 0,
            timed: 600_000,
            timed_answered: 600_000,
            stopped: None,
        }
    }

    const CRITERIA: Criteria = Criteria {
        p99_limit_us: 25_000,
        min_share: 0.99,
    };

    #[test]
    fn verdict_sustained() {
        let v = verdict(&CRITERIA, &good());
        assert!(v.sustained, "{:?}", v.reasons);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn verdict_fails_on_each_criterion() {
        let slow = Observed {
            p99_us: 25_000,
            ..good()
        };
        assert!(!verdict(&CRITERIA, &slow).sustained);
        let errors = Observed {
            failed: 1,
            ..good()
        };
        assert!(!verdict(&CRITERIA, &errors).sustained);
        let behind = Observed {
            achieved: 9_850.0,
            ..good()
        };
        let v = verdict(&CRITERIA, &behind);
        assert!(!v.sustained);
        assert!(v.reasons[0].contains("98.5 %"), "{:?}", v.reasons);
        let stopped = Observed {
            stopped: Some("too slow".into()),
            timed_answered: 10,
            achieved: 10.0,
            p99_us: 90_000,
            ..good()
        };
        let v = verdict(&CRITERIA, &stopped);
        assert!(!v.sustained);
        assert_eq!(v.reasons, vec!["stopped early: too slow".to_owned()]);
        let unanswered = Observed {
            timed_answered: 599_999,
            ..good()
        };
        assert!(!verdict(&CRITERIA, &unanswered).sustained);
        let several = Observed {
            failed: 3,
            p99_us: 40_000,
            achieved: 5_000.0,
            ..good()
        };
        assert_eq!(verdict(&CRITERIA, &several).reasons.len(), 3);
    }
}
