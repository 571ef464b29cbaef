//! The demo, shortened: it runs the whole scenario and its summary says it held.

use std::path::Path;
use std::time::{Duration, Instant};

use rpcnet_cluster_example::processes::Process;

use crate::support::one_scenario_at_a_time;

#[test]
fn the_demo_runs_the_scenario_and_its_summary_says_it_held() {
    let _one_at_a_time = one_scenario_at_a_time();
    let mut demo = Process::start(
        "demo",
        Path::new(env!("CARGO_BIN_EXE_demo")),
        &[
            ("WORKER_FAILURE_SERVE_SECS", "4".to_owned()),
            ("WORKER_FAILURE_WARNING_SECS", "1".to_owned()),
            ("WORKER_FAILURE_DOWN_SECS", "3".to_owned()),
        ],
        &["--duration".to_owned(), "26".to_owned()],
        None,
    )
    .expect("the demo starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = demo.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not end");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The reader threads may still be taking the last lines.
    std::thread::sleep(Duration::from_millis(300));
    let lines: Vec<String> = demo.lines().into_iter().map(|l| l.text).collect();
    let log = lines.join("\n");
    assert!(status.success(), "the demo failed ({status}):\n{log}");
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("│ {name}")))
            .unwrap_or_else(|| panic!("no {name:?} row in the summary:\n{log}"))
            .split('│')
            .nth(2)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let tokens: u64 = row("tokens received")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(tokens > 20, "{tokens} tokens:\n{log}");
    assert!(
        row("tokens received").contains("none repeated or skipped"),
        "{log}"
    );
    let failovers: u64 = row("failovers").parse().unwrap_or(0);
    assert!(failovers >= 2, "{failovers} failovers:\n{log}");
    assert_eq!(row("workers seen"), "worker-a, worker-b", "{log}");
    assert_eq!(row("worker-b killed and rejoined"), "true", "{log}");
    assert!(row("calls routed to worker-a").contains("compute"), "{log}");
    assert!(row("calls routed to worker-b").contains("compute"), "{log}");
    assert!(lines.iter().any(|l| l == "✅ scenario held"), "{log}");
}
