//! Load: messages per node per second do not grow with the cluster.

use std::time::Duration;

use crate::sim::{Net, Sim};
use rpcnet_cluster::ClusterConfig;

/// Messages sent per node per second by a settled cluster of `n` over `span`.
fn rate(seed: u64, n: usize, span: Duration) -> f64 {
    let mut sim = Sim::bootstrap(
        seed,
        n,
        ClusterConfig::lan(),
        Net::lan(),
        Duration::from_millis(10),
        // Long enough for the joins' updates to finish their retransmissions at 1,000 nodes.
        Duration::from_secs(150),
    );
    sim.reset_counters();
    sim.run_for(span);
    let total: u64 = sim.sent.iter().sum();
    total as f64 / n as f64 / span.as_secs_f64()
}

fn assert_flat(small: usize, large: usize, span: Duration) -> (f64, f64) {
    let a = rate(1, small, span);
    let b = rate(1, large, span);
    #[allow(clippy::print_stderr)] // the closing note reports these numbers
    {
        eprintln!("load: {a:.3} messages/node/s at {small} nodes, {b:.3} at {large}");
    }
    assert!(
        (b - a).abs() <= 0.1 * a,
        "{a:.3} at {small} vs {b:.3} at {large}"
    );
    (a, b)
}

#[test]
fn messages_per_node_per_second_stay_within_10_percent_from_50_to_300_nodes() {
    assert_flat(50, 300, Duration::from_secs(120));
}

#[test]
#[ignore = "1,000 nodes; run with --release -- --ignored"]
fn messages_per_node_per_second_stay_within_10_percent_from_100_to_1000_nodes() {
    assert_flat(100, 1000, Duration::from_secs(300));
}
