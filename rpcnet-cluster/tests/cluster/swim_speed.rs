//! Simulation speed: 1,000 nodes for 10 simulated minutes (reported, not asserted).

use std::time::{Duration, Instant};

use crate::sim::{Net, Sim};
use rpcnet_cluster::ClusterConfig;

#[test]
#[ignore = "reports wall-clock speed; run with --release -- --ignored --nocapture"]
fn a_thousand_nodes_run_for_ten_simulated_minutes() {
    let started = Instant::now();
    let mut sim = Sim::bootstrap(
        7,
        1000,
        ClusterConfig::lan(),
        Net::lan().with_loss(0.01),
        Duration::from_millis(5),
        Duration::ZERO,
    );
    let end = Duration::from_secs(600);
    sim.run_until(end);
    let wall = started.elapsed();
    let total: u64 = sim.sent.iter().sum();
    #[allow(clippy::print_stderr)] // the closing note reports these numbers
    {
        eprintln!(
            "speed: 1000 nodes × {:?} simulated (joins included) in {wall:?} wall, {} steps, {total} messages",
            sim.now(),
            sim.steps
        );
    }
    assert!((0..1000).all(|i| (0..1000).all(|j| i == j || sim.sees_live(i, j))));
}
