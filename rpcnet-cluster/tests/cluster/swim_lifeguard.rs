//! Lifeguard: with 5% of nodes stalling for 1–5 s at random, Lifeguard makes false failures
//! at least 10× rarer.
//!
//! A stall here is the Lifeguard paper's anomaly: the node's receive path stalls (what
//! arrives is read only when the stall ends) while its timers keep firing, so it misses the
//! acks and refutations of healthy members and accuses them. The timers are the test preset's
//! (200 ms probe period), so a 1–5 s stall spans 5–25 periods and outlasts the minimum
//! suspicion timeout — the regime where local health awareness matters. A stalled member
//! that is itself declared failed was unresponsive for longer than the timeouts and is not
//! counted; the false failures are those of members that never stall (the paper's metric).

use std::time::Duration;

use crate::sim::{self, Kind, Sim};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rpcnet_cluster::ClusterConfig;

/// Runs `n` nodes for `span` while 5% of them (chosen by `seed`) repeatedly stall for 1–5 s,
/// with 1–10 s between stalls; returns the `NodeFailed` events about members that never
/// stall.
/// `quic_loss` runs the network as QUIC (loss is retransmission) at that loss rate.
fn false_failures(
    seed: u64,
    n: usize,
    span: Duration,
    lifeguard: bool,
    quic_loss: Option<f64>,
) -> usize {
    let config = ClusterConfig::for_tests().with_lifeguard(lifeguard);
    let mut sim = match quic_loss {
        None => Sim::settled_lan(seed, n, config),
        Some(loss) => Sim::settled_quic(seed, n, config, loss),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57a11);
    let stalling = (n / 20).max(1);
    let start = sim.now();
    let mut stalls = Vec::new();
    let mut stallers = Vec::new();
    for k in 0..stalling {
        let node = (k * n / stalling + rng.gen_range(0..n / stalling)) % n;
        stallers.push(node);
        let mut at = start + Duration::from_millis(rng.gen_range(0..5_000));
        while at < start + span {
            let length = Duration::from_millis(rng.gen_range(1_000..=5_000));
            stalls.push((at, node, length));
            at += length + Duration::from_millis(rng.gen_range(1_000..=10_000));
        }
    }
    stalls.sort();
    for (at, node, length) in stalls {
        sim.run_until(at);
        sim.stall_receive(node, length);
    }
    sim.run_until(start + span);
    sim::check_event_order(&sim.log).expect("events in order");
    sim.log
        .iter()
        .filter(|e| e.kind == Kind::Failed && e.at >= start && !stallers.contains(&e.member))
        .count()
}

fn compare(
    seeds: std::ops::Range<u64>,
    n: usize,
    span: Duration,
    quic_loss: Option<f64>,
) -> (usize, usize) {
    let (mut on, mut off) = (0, 0);
    for seed in seeds {
        on += false_failures(seed, n, span, true, quic_loss);
        off += false_failures(seed, n, span, false, quic_loss);
    }
    #[allow(clippy::print_stderr)] // the closing note reports these numbers
    {
        eprintln!(
            "lifeguard, {n} nodes, {span:?}, {}: {on} false failures with Lifeguard, {off} without",
            quic_loss.map_or("no loss".to_owned(), |l| format!(
                "{:.0}% loss as QUIC retransmission",
                l * 100.0
            ))
        );
    }
    (on, off)
}

#[test]
fn lifeguard_makes_false_failures_from_stalled_nodes_at_least_ten_times_rarer() {
    let (on, off) = compare(0..2, 100, Duration::from_secs(300), None);
    assert!(
        off >= 10,
        "the scenario must provoke false failures without Lifeguard: {off}"
    );
    assert!(on * 10 <= off, "{on} with Lifeguard vs {off} without");
}

#[test]
#[ignore = "sweep: 10 seeds × 200 nodes × 10 simulated minutes; run with --release -- --ignored"]
fn lifeguard_makes_false_failures_at_least_ten_times_rarer_over_10_seeds() {
    let (on, off) = compare(0..10, 200, Duration::from_secs(600), None);
    assert!(
        off >= 10,
        "the scenario must provoke false failures without Lifeguard: {off}"
    );
    assert!(on * 10 <= off, "{on} with Lifeguard vs {off} without");
}

#[test]
#[ignore = "2 seeds × 100 nodes × 5 simulated minutes at 10% loss as QUIC retransmission (a minute in debug); run with --release -- --ignored"]
fn lifeguard_makes_false_failures_at_least_ten_times_rarer_at_10_percent_loss_as_quic_retransmission(
) {
    let (on, off) = compare(0..2, 100, Duration::from_secs(300), Some(0.1));
    assert!(
        off >= 10,
        "the scenario must provoke false failures without Lifeguard: {off}"
    );
    assert!(on * 10 <= off, "{on} with Lifeguard vs {off} without");
}

#[test]
#[ignore = "sweep: 10 seeds × 200 nodes × 10 simulated minutes at 10% loss as QUIC retransmission; run with --release -- --ignored"]
fn lifeguard_makes_false_failures_at_least_ten_times_rarer_at_10_percent_loss_as_quic_retransmission_over_10_seeds(
) {
    let (on, off) = compare(0..10, 200, Duration::from_secs(600), Some(0.1));
    assert!(
        off >= 10,
        "the scenario must provoke false failures without Lifeguard: {off}"
    );
    assert!(on * 10 <= off, "{on} with Lifeguard vs {off} without");
}
