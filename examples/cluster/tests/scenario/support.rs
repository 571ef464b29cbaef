//! Starting the example's real binaries for the end-to-end tests, on free ports of
//! 127.0.0.1 with the bundled certificates. Every [`Process`] is killed when dropped, so a
//! failing test leaves nothing running.

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use rpcnet_cluster_example::processes::{free_port, token, Process};

/// How long a test waits for something that normally takes a second or two.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn director(port: u16) -> Process {
    Process::start(
        "director",
        Path::new(env!("CARGO_BIN_EXE_director")),
        &[("DIRECTOR_ADDR", format!("127.0.0.1:{port}"))],
        &[],
        None,
    )
    .expect("the director starts")
}

/// A failure cycle in seconds: serving, warning, failed.
pub(crate) type Cycle = (f64, f64, f64);

pub(crate) fn worker(label: &str, port: u16, director: u16, failure: Option<Cycle>) -> Process {
    let mut env = vec![
        ("WORKER_LABEL", label.to_owned()),
        ("WORKER_ADDR", format!("127.0.0.1:{port}")),
        ("DIRECTOR_ADDR", format!("127.0.0.1:{director}")),
    ];
    if let Some((serve, warning, down)) = failure {
        env.push(("WORKER_FAILURE_ENABLED", "true".to_owned()));
        env.push(("WORKER_FAILURE_SERVE_SECS", serve.to_string()));
        env.push(("WORKER_FAILURE_WARNING_SECS", warning.to_string()));
        env.push(("WORKER_FAILURE_DOWN_SECS", down.to_string()));
    }
    Process::start(
        label,
        Path::new(env!("CARGO_BIN_EXE_worker")),
        &env,
        &[],
        None,
    )
    .expect("the worker starts")
}

pub(crate) fn client(director: u16) -> Process {
    Process::start(
        "client",
        Path::new(env!("CARGO_BIN_EXE_client")),
        &[("DIRECTOR_ADDR", format!("127.0.0.1:{director}"))],
        &[],
        None,
    )
    .expect("the client starts")
}

/// The client's tokens so far: when each arrived, its sequence number and its worker.
pub(crate) fn tokens(client: &Process) -> Vec<(Instant, u64, String)> {
    client
        .lines()
        .iter()
        .filter_map(|l| token(&l.text).map(|(s, w)| (l.at, s, w)))
        .collect()
}

/// Every line of these processes, for a failed assertion's message.
pub(crate) fn logs(processes: &[&Process]) -> String {
    let mut out = String::new();
    for p in processes {
        out.push_str(&format!("\n===== {} =====\n", p.name()));
        for line in p.lines() {
            if token(&line.text).is_none() {
                out.push_str(&line.text);
                out.push('\n');
            }
        }
        let tokens = tokens(p);
        if let (Some(first), Some(last)) = (tokens.first(), tokens.last()) {
            out.push_str(&format!(
                "(tokens {}..={}, {} lines)\n",
                first.1,
                last.1,
                tokens.len()
            ));
        }
    }
    out
}

/// Asserts the tokens are numbered 1, 2, 3, … with none repeated or skipped.
pub(crate) fn assert_contiguous(client: &Process) {
    for (i, (_, sequence, worker)) in tokens(client).iter().enumerate() {
        assert_eq!(
            *sequence,
            i as u64 + 1,
            "token {} from {worker} out of sequence{}",
            i + 1,
            logs(&[client])
        );
    }
    assert!(
        !client.lines().iter().any(|l| l.text.starts_with('❗')),
        "the client saw an unexpected token{}",
        logs(&[client])
    );
}

/// Runs the scenario tests one at a time: each starts a whole cluster of processes, and
/// two at once on a small machine would measure each other's load rather than failover.
pub(crate) fn one_scenario_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SCENARIO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SCENARIO
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
