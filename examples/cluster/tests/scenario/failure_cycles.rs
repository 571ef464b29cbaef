//! Both workers with failure simulation, half a cycle apart, for more than two cycles: the
//! client always has a worker that is up, and is never without tokens for longer than one
//! failure window.

use std::time::{Duration, Instant};

use crate::support::*;

/// Shorter than the scenario's 10 s + 3 s + 5 s, to keep the test short: 8 s cycles.
const CYCLE: Cycle = (4.0, 1.0, 3.0);

/// When a worker was failed: from `💥 … failed!` to `✅ … recovered`.
fn down_windows(worker: &Process, label: &str) -> Vec<(Instant, Instant)> {
    let mut windows = Vec::new();
    let mut failed_at = None;
    for line in worker.lines() {
        if line
            .text
            .starts_with(&format!("💥 [{label}] Worker failed!"))
        {
            failed_at = Some(line.at);
        } else if line
            .text
            .starts_with(&format!("✅ [{label}] Worker recovered"))
        {
            if let Some(from) = failed_at.take() {
                windows.push((from, line.at));
            }
        }
    }
    if let Some(from) = failed_at {
        windows.push((from, Instant::now()));
    }
    windows
}

#[test]
fn the_client_is_never_without_tokens_longer_than_a_failure_window_while_a_worker_is_up() {
    let _one_at_a_time = one_scenario_at_a_time();
    let (d, a, b) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let start = Instant::now();
    let director = director(d);
    let worker_a = worker("worker-a", a, d, Some(CYCLE));
    let a_joined = worker_a
        .wait_for(start, PATIENCE, |l| {
            l.starts_with("✅ Worker 'worker-a' joined")
        })
        .unwrap_or_else(|| panic!("worker-a never joined{}", logs(&[&director, &worker_a])))
        .at;
    let client = client(d);
    // Half a cycle behind worker-a, so that one of them is always up.
    let period = Duration::from_secs_f64(CYCLE.0 + CYCLE.1 + CYCLE.2);
    std::thread::sleep((a_joined + period / 2).saturating_duration_since(Instant::now()));
    let worker_b = worker("worker-b", b, d, Some(CYCLE));
    let all = [&director, &worker_a, &worker_b, &client];

    // Two full cycles of each worker.
    for (process, label) in [(&worker_a, "worker-a"), (&worker_b, "worker-b")] {
        let recovered = format!("✅ [{label}] Worker recovered");
        let deadline = Instant::now() + 3 * period + PATIENCE;
        while process
            .lines()
            .iter()
            .filter(|l| l.text.starts_with(&recovered))
            .count()
            < 2
        {
            assert!(
                Instant::now() < deadline,
                "{label} did not cycle twice{}",
                logs(&all)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let tokens = tokens(&client);
    assert!(!tokens.is_empty(), "no tokens{}", logs(&all));
    let down_a = down_windows(&worker_a, "worker-a");
    let down_b = down_windows(&worker_b, "worker-b");
    let both_down = |from: Instant, to: Instant| {
        down_a.iter().any(|&(a0, a1)| {
            down_b
                .iter()
                .any(|&(b0, b1)| a0.max(b0).max(from) < a1.min(b1).min(to))
        })
    };
    let window = Duration::from_secs_f64(CYCLE.2);
    for pair in tokens.windows(2) {
        let (t0, t1) = (pair[0].0, pair[1].0);
        let gap = t1.duration_since(t0);
        assert!(
            gap <= window || both_down(t0, t1),
            "no tokens for {gap:?} (after sequence={}) although a worker was up{}",
            pair[0].1,
            logs(&all)
        );
    }
    let failovers = client
        .lines()
        .iter()
        .filter(|l| l.text.starts_with("🔄 returning to director"))
        .count();
    assert!(failovers >= 3, "only {failovers} failovers{}", logs(&all));
    for label in ["worker-a", "worker-b"] {
        assert!(
            tokens.iter().any(|t| t.2 == label),
            "no token from {label}{}",
            logs(&all)
        );
    }
    assert_contiguous(&client);
}
