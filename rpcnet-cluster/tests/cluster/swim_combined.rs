//! Faults together, over the QUIC network model (loss is retransmission): loss plus a
//! partition, restarts during loss, and one-way link failures during churn. In each, no
//! member that stays healthy is ever reported failed, the event log keeps its order rules,
//! and at the end every node holds every other as `Alive`.

use std::time::Duration;

use crate::sim::{self, Kind, Sim};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rpcnet_cluster::ClusterConfig;

/// `NodeFailed` events logged since `from` about members not in `faulty`.
fn failures_of_healthy(sim: &Sim, from: Duration, faulty: impl Fn(usize) -> bool) -> Vec<String> {
    sim.log
        .iter()
        .filter(|e| e.kind == Kind::Failed && e.at >= from && !faulty(e.member))
        .map(|e| format!("{e:?}"))
        .collect()
}

fn assert_all_alive(sim: &Sim, what: &str) {
    let n = sim.len();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            assert!(
                sim.sees_alive(i, j),
                "{what}: node {i} holds {j} as {:?}",
                sim.state(i, j).map(|m| m.state())
            );
        }
    }
}

#[test]
fn a_partition_at_10_percent_loss_fails_only_the_other_side_and_heals_within_three_push_pull_intervals(
) {
    for seed in 0..2 {
        let n = 60;
        let config = ClusterConfig::lan();
        let interval = config.push_pull_interval();
        let mut sim = Sim::settled_quic(seed, n, config, 0.1);
        let from = sim.now();
        sim.partition((0..n).map(|i| (i % 2) as u32).collect());
        sim.run_for(Duration::from_secs(120));
        // Failures only across the split.
        let same_side: Vec<_> = sim
            .log
            .iter()
            .filter(|e| e.kind == Kind::Failed && e.at >= from && e.observer % 2 == e.member % 2)
            .collect();
        assert!(same_side.is_empty(), "seed {seed}: {same_side:?}");
        assert!(sim.sees_dead(0, 1), "seed {seed}: the split was detected");
        sim.heal();
        let took = sim.run_until_true(Duration::from_millis(250), interval * 3, |s| {
            (0..n).all(|i| (0..n).all(|j| i == j || s.sees_alive(i, j)))
        });
        assert!(
            took.is_some(),
            "seed {seed}: not healed within {:?}",
            interval * 3
        );
        sim::check_event_order(&sim.log).expect("events in order");
        assert_eq!(sim.rejected, 0);
    }
}

#[test]
fn restarts_during_10_percent_loss_leave_every_node_alive_and_no_healthy_node_failed() {
    for seed in 0..2 {
        let n = 100;
        let mut sim = Sim::settled_quic(seed, n, ClusterConfig::lan(), 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e57a7);
        let from = sim.now();
        // Every fifth node crashes at a random time in the first 30 s and restarts 0–20 s
        // later (some before they are detected, some after).
        let restarting: Vec<usize> = (0..n).filter(|i| i % 5 == 4).collect();
        let mut plan: Vec<(Duration, bool, usize)> = Vec::new();
        for &i in &restarting {
            let crash = from + Duration::from_millis(rng.gen_range(0..30_000));
            let back = crash + Duration::from_millis(rng.gen_range(0..20_000));
            plan.push((crash, false, i));
            plan.push((back, true, i));
        }
        plan.sort();
        for (at, start, i) in plan {
            sim.run_until(at);
            if start {
                sim.start(i, &[0, 1, 2]);
            } else {
                sim.crash(i);
            }
        }
        sim.run_for(Duration::from_secs(60));
        let config = sim.config.clone();
        // Then without loss until every suspicion has resolved.
        sim.net.loss = 0.0;
        sim.run_for(config.suspicion_timeout_max(n) + config.health_check_interval() * 5);
        let healthy = failures_of_healthy(&sim, from, |m| restarting.contains(&m));
        assert!(healthy.is_empty(), "seed {seed}: {healthy:?}");
        sim::check_event_order(&sim.log).expect("events in order");
        assert_all_alive(&sim, &format!("seed {seed}"));
        assert_eq!(sim.rejected, 0);
    }
}

#[test]
fn one_way_link_failures_during_churn_get_no_healthy_node_declared_failed() {
    for seed in 0..2 {
        let n = 50;
        let mut sim = Sim::settled_quic(seed, n, ClusterConfig::lan(), 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc4a7);
        let from = sim.now();
        // Node 0 cannot reach nodes 1–10, and node 20 cannot reach node 0.
        for to in 1..=10 {
            sim.block(0, to);
        }
        sim.block(20, 0);
        // Meanwhile nodes 40–49 churn: each crashes and restarts, or leaves and rejoins,
        // twice over 120 s.
        let mut plan: Vec<(Duration, u8, usize)> = Vec::new();
        for i in 40..n {
            for round in 0..2u64 {
                let at = from
                    + Duration::from_secs(60 * round)
                    + Duration::from_millis(rng.gen_range(0..30_000));
                let back = at + Duration::from_millis(rng.gen_range(1_000..20_000));
                plan.push((at, if rng.gen_bool(0.5) { 0 } else { 1 }, i));
                plan.push((back, 2, i));
            }
        }
        plan.sort();
        for (at, what, i) in plan {
            sim.run_until(at);
            match what {
                0 => sim.crash(i),
                1 => sim.leave(i),
                _ => {
                    if sim.is_up(i) {
                        // A node that left stops before it starts again.
                        sim.crash(i);
                    }
                    sim.start(i, &[0, 1, 2]);
                }
            }
        }
        sim.run_for(Duration::from_secs(120));
        let healthy = failures_of_healthy(&sim, from, |m| m >= 40);
        assert!(healthy.is_empty(), "seed {seed}: {healthy:?}");
        sim::check_event_order(&sim.log).expect("events in order");
        assert_all_alive(&sim, &format!("seed {seed}"));
    }
}
