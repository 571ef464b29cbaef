//! Phi Accrual failure detection (Hayashibara et al., 2004) over probe round-trip times.
//!
//! The classic detector watches the gaps between one peer's heartbeats. SWIM probes each
//! member only once every `n` periods, far too rarely to learn one member's rhythm, so here
//! the detector learns the distribution of the round-trip times of *this node's* acknowledged
//! direct probes (the path through its network) and answers: how long may an ack take before
//! its absence is suspicious at the configured confidence? That elapsed time is the direct
//! probe timeout, after which the member gets indirect probes and then suspicion. A slower or
//! jittery network raises it by itself; `min_std_dev` and `acceptable_pause` keep a very
//! regular network from making it hair-triggered.

use std::collections::VecDeque;
use std::time::Duration;

/// Samples needed before the detector's estimate replaces the configured probe timeout.
const MIN_SAMPLES: usize = 4;

/// Phi Accrual over a sliding window of round-trip samples.
#[derive(Debug, Clone)]
pub(crate) struct PhiAccrual {
    window: VecDeque<f64>,
    capacity: usize,
    sum: f64,
    sum_sq: f64,
    threshold: f64,
    min_std_dev: f64,
    acceptable_pause: f64,
}

impl PhiAccrual {
    pub(crate) fn new(
        capacity: usize,
        threshold: f64,
        min_std_dev: Duration,
        acceptable_pause: Duration,
    ) -> Self {
        let capacity = capacity.max(MIN_SAMPLES);
        Self {
            window: VecDeque::with_capacity(capacity),
            capacity,
            sum: 0.0,
            sum_sq: 0.0,
            threshold,
            min_std_dev: min_std_dev.as_secs_f64(),
            acceptable_pause: acceptable_pause.as_secs_f64(),
        }
    }

    /// Records the round-trip time of an acknowledged probe.
    pub(crate) fn record(&mut self, rtt: Duration) {
        let x = rtt.as_secs_f64();
        if self.window.len() == self.capacity {
            if let Some(old) = self.window.pop_front() {
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        self.window.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
    }

    fn mean_and_std_dev(&self) -> Option<(f64, f64)> {
        if self.window.len() < MIN_SAMPLES {
            return None;
        }
        let n = self.window.len() as f64;
        let mean = self.sum / n;
        let variance = (self.sum_sq / n - mean * mean).max(0.0);
        Some((
            mean + self.acceptable_pause,
            variance.sqrt().max(self.min_std_dev),
        ))
    }

    // The core only needs `timeout`, phi's inverse; phi itself is the definition the tests
    // check that inverse against.
    #[cfg_attr(not(test), allow(dead_code))]
    /// Suspicion level after `elapsed` without an ack: `−log10(P(rtt > elapsed))` under a
    /// normal distribution (logistic approximation, as in Akka), or 0 without enough samples.
    pub(crate) fn phi(&self, elapsed: Duration) -> f64 {
        let Some((mean, std_dev)) = self.mean_and_std_dev() else {
            return 0.0;
        };
        phi_at((elapsed.as_secs_f64() - mean) / std_dev)
    }

    /// The elapsed time at which [`phi`](Self::phi) reaches the threshold, or `None` without
    /// enough samples.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        let (mean, std_dev) = self.mean_and_std_dev()?;
        // phi(y) is increasing in y: bisect for phi(y) = threshold on y ∈ [-10, 40].
        let target = self.threshold.max(0.0);
        let (mut lo, mut hi) = (-10.0_f64, 40.0_f64);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if phi_at(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let secs = (mean + hi * std_dev).max(0.0);
        Some(Duration::from_secs_f64(secs))
    }
}

/// Phi for a wait `y` standard deviations past the mean: `−log10(P(X > y))` for a standard
/// normal `X`, with the logistic approximation of its tail.
fn phi_at(y: f64) -> f64 {
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let p_later = if y > 0.0 {
        e / (1.0 + e)
    } else {
        1.0 - 1.0 / (1.0 + e)
    };
    -p_later.max(f64::MIN_POSITIVE).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn trained(samples: &[u64], min_std_dev: u64, pause: u64) -> PhiAccrual {
        let mut d = PhiAccrual::new(64, 8.0, ms(min_std_dev), ms(pause));
        for &s in samples {
            d.record(ms(s));
        }
        d
    }

    #[test]
    fn phi_is_zero_and_there_is_no_timeout_until_enough_samples() {
        let d = trained(&[5, 5, 5], 10, 0);
        assert_eq!(d.phi(ms(10_000)), 0.0);
        assert_eq!(d.timeout(), None);
    }

    #[test]
    fn phi_grows_with_the_time_waited() {
        let d = trained(&[10, 12, 9, 11, 10, 13], 5, 0);
        let levels: Vec<f64> = [0, 10, 20, 40, 80].iter().map(|&t| d.phi(ms(t))).collect();
        assert!(levels.windows(2).all(|w| w[0] < w[1]), "{levels:?}");
        assert!(d.phi(ms(10)) < 1.0);
        assert!(d.phi(ms(80)) > 8.0);
    }

    #[test]
    fn phi_reaches_the_threshold_exactly_at_the_timeout() {
        let d = trained(&[10, 12, 9, 11, 10, 13], 5, 0);
        let t = d.timeout().expect("enough samples");
        assert!((d.phi(t) - 8.0).abs() < 0.01, "phi at timeout {}", d.phi(t));
        assert!(t > ms(11) && t < ms(60), "timeout {t:?}");
    }

    #[test]
    fn min_std_dev_keeps_a_regular_network_from_a_hair_trigger() {
        let regular = trained(&[10; 20], 1, 0);
        let floored = trained(&[10; 20], 50, 0);
        let t_regular = regular.timeout().expect("enough samples");
        let t_floored = floored.timeout().expect("enough samples");
        assert!(
            t_floored > t_regular + ms(200),
            "{t_regular:?} vs {t_floored:?}"
        );
    }

    #[test]
    fn acceptable_pause_shifts_the_timeout_by_the_pause() {
        let strict = trained(&[10; 20], 5, 0).timeout().expect("enough samples");
        let lenient = trained(&[10; 20], 5, 300)
            .timeout()
            .expect("enough samples");
        let diff = lenient.as_secs_f64() - strict.as_secs_f64();
        assert!((diff - 0.3).abs() < 1e-6, "shift {diff}");
    }

    #[test]
    fn the_window_forgets_old_samples() {
        let mut d = PhiAccrual::new(8, 8.0, ms(1), ms(0));
        for _ in 0..8 {
            d.record(ms(500));
        }
        let slow = d.timeout().expect("enough samples");
        for _ in 0..8 {
            d.record(ms(5));
        }
        let fast = d.timeout().expect("enough samples");
        assert!(fast < ms(50) && slow > ms(450), "{slow:?} then {fast:?}");
    }
}
