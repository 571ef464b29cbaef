//! [`LoadBalancingStrategy`]: how a call picks one worker among those its filter allows.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

/// How the registry chooses among the workers that match a call's filter.
///
/// Every strategy is O(1) per pick except [`LeastConnections`](Self::LeastConnections),
/// which looks at every candidate (unless it finds an idle one of unknown latency first). The default is
/// [`PowerOfTwoChoices`](Self::PowerOfTwoChoices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LoadBalancingStrategy {
    /// Each worker in turn. Spreads calls evenly by count, blind to how long they take.
    RoundRobin,
    /// A uniformly random worker.
    Random,
    /// The least loaded of all candidates, where a worker's load is its calls in flight
    /// from this registry (plus the one to come), each weighted by the recent latency of
    /// its calls (a moving average) once the latencies are known; ties go to the next
    /// worker in turn, so an idle pool is used round robin. Among equally fast workers it
    /// is plain least connections, keeping their counts within one of each other, which
    /// suits long calls (streams) of similar cost; a worker ten times slower counts as ten
    /// times as loaded per call, so it gets a call only when the others are that busy.
    LeastConnections,
    /// The less loaded of two workers drawn at random ("power of two choices"), where a
    /// worker's load is its calls in flight (plus the one to come) times the recent latency
    /// of its calls (a moving average), so a slow worker counts as loaded even with few
    /// calls. Constant cost per pick; falls back to calls in flight while a worker's
    /// latency is unknown.
    ///
    /// The default: with one of five workers ten times slower, it keeps p99 latency near
    /// the all-fast p99, as least connections does, where round robin and random stay at
    /// the slow worker's latency, 3.3× to 4.6× the all-fast p99 (`slow_worker` in
    /// `PERFORMANCE.md`); and it picks in constant time, where least connections looks at
    /// every candidate.
    #[default]
    PowerOfTwoChoices,
}

/// What a strategy knows about a candidate's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Load {
    /// Calls in flight from this registry.
    pub(crate) in_flight: usize,
    /// Recent latency of its calls (an exponentially weighted moving average), in
    /// microseconds; 0 while unknown.
    pub(crate) latency_us: u64,
}

impl Load {
    /// Whether `self` is less loaded than `other`: by expected wait, calls in flight (plus
    /// the one to come) times recent latency, when both latencies are known; otherwise by
    /// calls in flight.
    fn lighter_than(self, other: Load) -> bool {
        if self.latency_us > 0 && other.latency_us > 0 {
            let cost = |l: Load| (l.in_flight as u128 + 1) * u128::from(l.latency_us);
            cost(self) < cost(other)
        } else {
            self.in_flight < other.in_flight
        }
    }
}

impl LoadBalancingStrategy {
    /// The index of the chosen candidate among `count` (`None` when `count` is 0).
    /// `load(i)` is candidate `i`'s load; `cursor` is the turn counter that round robin and
    /// least-connections' tie-breaking advance; `rng` draws for the random strategies.
    pub(crate) fn pick(
        self,
        count: usize,
        load: impl Fn(usize) -> Load,
        cursor: &AtomicUsize,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        if count <= 1 {
            return (count == 1).then_some(0);
        }
        let chosen = match self {
            LoadBalancingStrategy::RoundRobin => cursor.fetch_add(1, Ordering::Relaxed) % count,
            LoadBalancingStrategy::Random => rng.gen_range(0..count),
            LoadBalancingStrategy::LeastConnections => {
                let start = cursor.fetch_add(1, Ordering::Relaxed) % count;
                let mut best = start;
                let mut best_load = load(start);
                for step in 1..count {
                    // Nothing beats an idle worker of unknown latency: it is tried at once.
                    if best_load == Load::default() {
                        break;
                    }
                    let i = (start + step) % count;
                    let l = load(i);
                    if l.lighter_than(best_load) {
                        best = i;
                        best_load = l;
                    }
                }
                best
            }
            LoadBalancingStrategy::PowerOfTwoChoices => {
                let a = rng.gen_range(0..count);
                let b = (a + rng.gen_range(1..count)) % count;
                if load(b).lighter_than(load(a)) {
                    b
                } else {
                    a
                }
            }
        };
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const ALL: [LoadBalancingStrategy; 4] = [
        LoadBalancingStrategy::RoundRobin,
        LoadBalancingStrategy::Random,
        LoadBalancingStrategy::LeastConnections,
        LoadBalancingStrategy::PowerOfTwoChoices,
    ];

    fn busy(in_flight: usize) -> Load {
        Load {
            in_flight,
            latency_us: 0,
        }
    }

    #[test]
    fn power_of_two_choices_weighs_calls_in_flight_by_latency() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(9);
        // The slow worker has fewer calls in flight but a tenfold latency.
        let loads = [
            Load {
                in_flight: 1,
                latency_us: 10_000,
            },
            Load {
                in_flight: 4,
                latency_us: 1_000,
            },
        ];
        for _ in 0..100 {
            let pick =
                LoadBalancingStrategy::PowerOfTwoChoices.pick(2, |i| loads[i], &cursor, &mut rng);
            assert_eq!(pick, Some(1));
        }
    }

    #[test]
    fn no_candidate_means_no_pick_and_one_means_that_one() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(1);
        for strategy in ALL {
            assert_eq!(
                strategy.pick(0, |_| Load::default(), &cursor, &mut rng),
                None
            );
            assert_eq!(strategy.pick(1, |_| busy(7), &cursor, &mut rng), Some(0));
        }
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(1);
        let picks: Vec<_> = (0..6)
            .map(|_| {
                LoadBalancingStrategy::RoundRobin.pick(3, |_| Load::default(), &cursor, &mut rng)
            })
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    }

    #[test]
    fn least_connections_weighs_calls_in_flight_by_latency() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(3);
        // The slow worker is idle, the fast ones busy, but not ten times as busy (their
        // expected waits stay below the slow worker's 20 ms while they take 4 more calls).
        let mut loads = [
            Load {
                in_flight: 0,
                latency_us: 20_000,
            },
            Load {
                in_flight: 6,
                latency_us: 2_000,
            },
            Load {
                in_flight: 6,
                latency_us: 2_000,
            },
        ];
        for _ in 0..4 {
            let pick = LoadBalancingStrategy::LeastConnections
                .pick(3, |i| loads[i], &cursor, &mut rng)
                .expect("a pick");
            assert_ne!(pick, 0, "{loads:?}");
            loads[pick].in_flight += 1;
        }
        // Once the fast ones are more than ten times as busy, the slow one takes a call.
        loads[1].in_flight = 10;
        loads[2].in_flight = 10;
        let pick = LoadBalancingStrategy::LeastConnections.pick(3, |i| loads[i], &cursor, &mut rng);
        assert_eq!(pick, Some(0));
    }

    #[test]
    fn least_connections_keeps_counts_within_one() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut loads = [0usize; 5];
        for _ in 0..23 {
            let i = LoadBalancingStrategy::LeastConnections
                .pick(5, |i| busy(loads[i]), &cursor, &mut rng)
                .expect("a pick");
            loads[i] += 1;
        }
        let (min, max) = (loads.iter().min(), loads.iter().max());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 1),
            "{loads:?}"
        );
    }

    #[test]
    fn least_connections_avoids_the_loaded_worker() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(1);
        let loads = [9, 3, 9];
        for _ in 0..4 {
            let pick = LoadBalancingStrategy::LeastConnections.pick(
                3,
                |i| busy(loads[i]),
                &cursor,
                &mut rng,
            );
            assert_eq!(pick, Some(1));
        }
    }

    #[test]
    fn power_of_two_choices_never_picks_the_most_loaded_of_two() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(7);
        let loads = [0, 100];
        for _ in 0..100 {
            let pick = LoadBalancingStrategy::PowerOfTwoChoices.pick(
                2,
                |i| busy(loads[i]),
                &cursor,
                &mut rng,
            );
            assert_eq!(pick, Some(0));
        }
    }

    #[test]
    fn random_reaches_every_candidate() {
        let cursor = AtomicUsize::new(0);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = [false; 4];
        for _ in 0..200 {
            if let Some(i) =
                LoadBalancingStrategy::Random.pick(4, |_| Load::default(), &cursor, &mut rng)
            {
                seen[i] = true;
            }
        }
        assert_eq!(seen, [true; 4]);
    }
}
