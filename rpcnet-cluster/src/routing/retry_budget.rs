//! [`RetryBudget`]: how many retries the recent traffic allows, so retries cannot multiply
//! the load on a degraded cluster.

use std::time::{Duration, Instant};

/// How many buckets the window is divided into.
const BUCKETS: usize = 10;

/// A bound on retries: over the last `window`, at most `ratio` × the calls made plus
/// `min_per_second` × the window's seconds. Each retry of a call spends one; a call that
/// finds the budget spent fails with the error of its last attempt.
///
/// The default allows 20 % of recent calls as retries plus 10 retries a second, over a
/// 10 s window (the floor lets a quiet client retry a failure at all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    window: Duration,
    min_per_second: u32,
    ratio: f64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl RetryBudget {
    /// Retries allowed over the last `window` (at least 1 s): `ratio` (0 to 1000) of the
    /// calls made in it, plus `min_per_second` a second.
    pub fn new(window: Duration, min_per_second: u32, ratio: f64) -> Self {
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        RetryBudget {
            window: window.max(Duration::from_secs(1)),
            min_per_second,
            ratio,
        }
    }

    /// No retries at all.
    pub fn none() -> Self {
        RetryBudget::new(Duration::from_secs(1), 0, 0.0)
    }

    /// The window over which calls and retries are counted.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket period this count belongs to (periods since the ledger's start).
    period: u64,
    calls: u64,
    retries: u64,
}

/// The counts a [`RetryBudget`] is checked against: calls and retries in the buckets of the
/// window. Takes `now` as an argument.
#[derive(Debug)]
pub(crate) struct RetryLedger {
    budget: RetryBudget,
    start: Instant,
    buckets: [Bucket; BUCKETS],
}

impl RetryLedger {
    pub(crate) fn new(budget: RetryBudget, now: Instant) -> Self {
        RetryLedger {
            budget,
            start: now,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// Counts a call (its first attempt).
    pub(crate) fn record_call(&mut self, now: Instant) {
        self.bucket(now).calls += 1;
    }

    /// Spends one retry if the budget allows it.
    pub(crate) fn try_retry(&mut self, now: Instant) -> bool {
        let period = self.period(now);
        let (mut calls, mut retries) = (0u64, 0u64);
        for bucket in &self.buckets {
            if period.saturating_sub(bucket.period) < BUCKETS as u64 {
                calls += bucket.calls;
                retries += bucket.retries;
            }
        }
        let floor = u64::from(self.budget.min_per_second) * self.budget.window.as_secs().max(1);
        // Rounded down: a fraction of a retry is not a retry.
        let allowed = floor + (self.budget.ratio * calls as f64) as u64;
        if retries >= allowed {
            return false;
        }
        self.bucket(now).retries += 1;
        true
    }

    fn period(&self, now: Instant) -> u64 {
        let width = self.budget.window.as_nanos() / BUCKETS as u128;
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / width.max(1)).unwrap_or(u64::MAX)
    }

    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let period = self.period(now);
        let bucket = &mut self.buckets[(period % BUCKETS as u64) as usize];
        if bucket.period != period {
            *bucket = Bucket {
                period,
                ..Bucket::default()
            };
        }
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_allows_retries_without_traffic() {
        let now = Instant::now();
        let mut ledger = RetryLedger::new(RetryBudget::new(Duration::from_secs(10), 2, 0.0), now);
        let granted = (0..100).filter(|_| ledger.try_retry(now)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn retries_are_a_bounded_fraction_of_calls() {
        let now = Instant::now();
        let mut ledger = RetryLedger::new(RetryBudget::new(Duration::from_secs(10), 0, 0.1), now);
        for _ in 0..1000 {
            ledger.record_call(now);
        }
        let granted = (0..1000).filter(|_| ledger.try_retry(now)).count();
        assert_eq!(granted, 100);
    }

    #[test]
    fn the_budget_refills_as_the_window_moves_on() {
        let start = Instant::now();
        let mut ledger = RetryLedger::new(RetryBudget::new(Duration::from_secs(10), 1, 0.0), start);
        assert_eq!((0..50).filter(|_| ledger.try_retry(start)).count(), 10);
        let later = start + Duration::from_secs(11);
        assert_eq!((0..50).filter(|_| ledger.try_retry(later)).count(), 10);
    }

    #[test]
    fn no_budget_means_no_retry() {
        let now = Instant::now();
        let mut ledger = RetryLedger::new(RetryBudget::none(), now);
        ledger.record_call(now);
        assert!(!ledger.try_retry(now));
    }
}
