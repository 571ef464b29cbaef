//! Determinism: one seed, one event log.

use std::time::Duration;

use crate::sim::{self, LogEntry, Net, Sim};
use rpcnet_cluster::ClusterConfig;

/// A busy scenario: loss, a crash, a restart, a partition, a one-way block, stalls, a leave
/// and tag changes.
fn scenario(seed: u64) -> Vec<LogEntry> {
    let n = 60;
    let mut sim = Sim::bootstrap(
        seed,
        n,
        ClusterConfig::lan(),
        Net::lan().with_loss(0.1),
        Duration::from_millis(10),
        Duration::from_secs(10),
    );
    sim.crash(7);
    sim.stall(11, Duration::from_secs(3));
    sim.stall_receive(12, Duration::from_secs(4));
    sim.block(3, 4);
    sim.run_for(Duration::from_secs(40));
    sim.start(7, &[0]);
    let tags = rpcnet_cluster::Tags::new()
        .with("zone", "b")
        .expect("small tags");
    sim.set_tags(5, tags);
    sim.partition((0..n).map(|i| u32::from(i < 20)).collect());
    sim.run_for(Duration::from_secs(40));
    sim.heal();
    sim.leave(9);
    sim.run_for(Duration::from_secs(60));
    sim::check_event_order(&sim.log).expect("events in order");
    sim.log
}

#[test]
fn two_runs_with_one_seed_give_identical_event_logs() {
    let first = scenario(42);
    let second = scenario(42);
    assert!(
        first.len() > 1000,
        "the scenario produces events: {}",
        first.len()
    );
    assert_eq!(first, second);
}

#[test]
fn different_seeds_give_different_event_logs() {
    assert_ne!(scenario(1), scenario(2));
}
