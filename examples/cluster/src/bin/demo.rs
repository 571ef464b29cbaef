//! The whole scenario in one command: a director, two workers with failure simulation and
//! a client, as child processes of the sibling binaries, on free ports; one worker is also
//! killed with SIGKILL and restarted along the way. Every line is prefixed with its
//! process's name (colored on a terminal); a summary table ends the run, and the exit code
//! says whether the scenario held.
//!
//! ```text
//! cargo run --release --manifest-path examples/cluster/Cargo.toml --bin demo [-- --duration SECS]
//! ```

// The binaries own their console output: these lines are the scenario's user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rpcnet_cluster_example::console::interrupted;
use rpcnet_cluster_example::processes::{free_port, sibling, token, Process};
use rpcnet_cluster_example::settings::FailureCycle;

/// The longest the client may go without tokens for the scenario to hold.
const MAX_GAP: Duration = Duration::from_secs(5);

/// Parses `--duration SECS` (the only option; a CLI crate would be more than the demo).
fn duration() -> Result<Duration, String> {
    let mut args = std::env::args().skip(1);
    let mut duration = Duration::from_secs(60);
    while let Some(arg) = args.next() {
        let value = match arg.split_once('=') {
            Some(("--duration", value)) => value.to_owned(),
            None if arg == "--duration" => args.next().ok_or("--duration needs seconds")?,
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}; usage: demo [--duration SECS]"
                ))
            }
        };
        let secs: u64 = value
            .parse()
            .map_err(|_| format!("--duration {value:?} is not a number of seconds"))?;
        duration = Duration::from_secs(secs.max(1));
    }
    Ok(duration)
}

/// The prefix of a process's lines: its name, colored on a terminal.
fn prefix(name: &str, color: u8) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[{color}m{name:>9} │\x1b[0m ")
    } else {
        format!("{name:>9} │ ")
    }
}

/// The demo's own lines.
fn say(text: &str) {
    println!("{}{text}", prefix("demo", 1));
}

struct Cast {
    director: Process,
    worker_a: Process,
    worker_b: Option<Process>,
    client: Process,
    killed_at: Option<Instant>,
    restarted_at: Option<Instant>,
}

fn worker(name: &str, color: u8, port: u16, director: u16) -> std::io::Result<Process> {
    Process::start(
        name,
        &sibling("worker")?,
        &[
            ("WORKER_LABEL", name.to_owned()),
            ("WORKER_ADDR", format!("127.0.0.1:{port}")),
            ("DIRECTOR_ADDR", format!("127.0.0.1:{director}")),
            ("WORKER_FAILURE_ENABLED", "true".to_owned()),
        ],
        &[],
        Some(prefix(name, color)),
    )
}

fn wait(
    process: &Process,
    since: Instant,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Instant, String> {
    process
        .wait_for(since, Duration::from_secs(30), wanted)
        .map(|line| line.at)
        .ok_or_else(|| format!("{} did not report {what} within 30s", process.name()))
}

async fn run(duration: Duration, cycle: FailureCycle) -> Result<Cast, String> {
    let io = |e: std::io::Error| e.to_string();
    let (director_port, a_port, b_port) = (
        free_port().map_err(io)?,
        free_port().map_err(io)?,
        free_port().map_err(io)?,
    );
    let start = Instant::now();
    say(&format!(
        "running the cluster scenario for {}s: failure cycle {}s serving + {}s warning + {}s failed",
        duration.as_secs(),
        cycle.serve.as_secs_f64(),
        cycle.warning.as_secs_f64(),
        cycle.down.as_secs_f64()
    ));
    let director = Process::start(
        "director",
        &sibling("director").map_err(io)?,
        &[("DIRECTOR_ADDR", format!("127.0.0.1:{director_port}"))],
        &[],
        Some(prefix("director", 36)),
    )
    .map_err(io)?;
    wait(&director, start, "ready", |l| {
        l.starts_with("✅ Director ready")
    })?;
    let worker_a = worker("worker-a", 32, a_port, director_port).map_err(io)?;
    let a_joined = wait(&worker_a, start, "joining", |l| {
        l.starts_with("✅ Worker 'worker-a' joined")
    })?;
    let client = Process::start(
        "client",
        &sibling("client").map_err(io)?,
        &[("DIRECTOR_ADDR", format!("127.0.0.1:{director_port}"))],
        &[],
        Some(prefix("client", 35)),
    )
    .map_err(io)?;
    let mut cast = Cast {
        director,
        worker_a,
        worker_b: None,
        client,
        killed_at: None,
        restarted_at: None,
    };
    // Worker-b runs half a cycle behind worker-a, so their failures never overlap.
    let half = cycle.period() / 2;
    let b_start = a_joined + half;
    let end = start + duration;
    let mut kill_at: Option<Instant> = None;
    let mut restart_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(cast);
        }
        if cast.worker_b.is_none() && cast.killed_at.is_none() && now >= b_start {
            cast.worker_b = Some(worker("worker-b", 33, b_port, director_port).map_err(io)?);
        }
        // Once worker-a has recovered from its first failure, worker-b is serving the
        // client: kill it hard, and restart it half a cycle after worker-a's recovery.
        if kill_at.is_none() && cast.worker_b.is_some() {
            if let Some(recovered) = cast
                .worker_a
                .lines()
                .iter()
                .find(|l| l.text.starts_with("✅ [worker-a] Worker recovered"))
            {
                kill_at = Some(recovered.at + Duration::from_millis(500));
                restart_at = Some(recovered.at + half);
            }
        }
        if let (Some(at), None) = (kill_at, cast.killed_at) {
            if now >= at {
                if let Some(mut b) = cast.worker_b.take() {
                    say(&format!(
                        "💀 killing worker-b (pid {}) with SIGKILL",
                        b.id()
                    ));
                    b.kill();
                }
                cast.killed_at = Some(now);
            }
        }
        if let (Some(at), Some(_), None) = (restart_at, cast.killed_at, cast.restarted_at) {
            if now >= at {
                say("🔁 restarting worker-b with the same command");
                cast.worker_b = Some(worker("worker-b", 33, b_port, director_port).map_err(io)?);
                cast.restarted_at = Some(now);
            }
        }
        for process in [
            Some(&mut cast.director),
            Some(&mut cast.worker_a),
            Some(&mut cast.client),
            cast.worker_b.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(status) = process.try_wait() {
                return Err(format!("{} exited unexpectedly ({status})", process.name()));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = interrupted() => return Err("interrupted".to_owned()),
        }
    }
}

/// Checks the run and prints the summary; whether the scenario held.
fn summary(cast: &Cast) -> bool {
    let client = cast.client.lines();
    let tokens: Vec<(Instant, u64, String)> = client
        .iter()
        .filter_map(|l| token(&l.text).map(|(s, w)| (l.at, s, w)))
        .collect();
    let contiguous = tokens.iter().enumerate().all(|(i, t)| t.1 == i as u64 + 1);
    let failovers = client
        .iter()
        .filter(|l| l.text.starts_with("🔄 returning to director"))
        .count();
    let longest_gap = tokens
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    let seen: BTreeSet<&str> = tokens.iter().map(|t| t.2.as_str()).collect();
    let mut routed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in cast.director.lines() {
        if let Some(rest) = line.text.strip_prefix("📨 assigned ") {
            let worker = rest.split(' ').next().unwrap_or("?").to_owned();
            routed.entry(worker).or_default().0 += 1;
        } else if let Some(rest) = line.text.strip_prefix("🧮 compute answered by ") {
            let worker = rest.split(' ').next().unwrap_or("?").to_owned();
            routed.entry(worker).or_default().1 += 1;
        }
    }
    let rejoined = cast.restarted_at.is_some_and(|restarted| {
        cast.director
            .wait_for(restarted, Duration::ZERO, |l| {
                l.starts_with("➕ pool: worker-b added")
            })
            .is_some()
    });
    println!();
    println!("┌──────────────────────────────┬────────────────────────────────────────────────┐");
    let row = |k: &str, v: String| println!("│ {k:<28} │ {v:<46} │");
    row(
        "tokens received",
        format!(
            "{} ({})",
            tokens.len(),
            if contiguous {
                "sequence 1..n, none repeated or skipped"
            } else {
                "SEQUENCE BROKEN"
            }
        ),
    );
    row("failovers", failovers.to_string());
    row(
        "longest gap without tokens",
        format!("{:.1}s", longest_gap.as_secs_f64()),
    );
    row(
        "workers seen",
        seen.iter().copied().collect::<Vec<_>>().join(", "),
    );
    for (worker, (assigned, computed)) in &routed {
        row(
            &format!("calls routed to {worker}"),
            format!("{assigned} assignments, {computed} compute calls"),
        );
    }
    row(
        "worker-b killed and rejoined",
        (cast.killed_at.is_some() && rejoined).to_string(),
    );
    println!("└──────────────────────────────┴────────────────────────────────────────────────┘");
    let mut problems = Vec::new();
    if tokens.is_empty() {
        problems.push("no tokens received".to_owned());
    }
    if !contiguous {
        problems.push("a token number was repeated or skipped".to_owned());
    }
    if failovers == 0 {
        problems.push("no failover happened (run longer)".to_owned());
    }
    if longest_gap > MAX_GAP {
        problems.push(format!(
            "the client went {:.1}s without tokens",
            longest_gap.as_secs_f64()
        ));
    }
    if seen.len() < 2 {
        problems.push("tokens came from fewer than two workers".to_owned());
    }
    if cast.killed_at.is_none() {
        problems.push("worker-b was never killed (run longer)".to_owned());
    } else if !rejoined {
        problems.push("worker-b did not rejoin the pool after its restart".to_owned());
    }
    if problems.is_empty() {
        println!("✅ scenario held");
        true
    } else {
        println!("❌ scenario did not hold: {}", problems.join("; "));
        false
    }
}

/// Under `cargo run`, builds the director, worker and client binaries next to this one
/// (with the same profile), so that the demo never starts a missing or stale one: `cargo run
/// --bin demo` builds the demo alone. Outside cargo the binaries must be there already.
fn build_the_cast() -> Result<(), String> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let release = me
        .parent()
        .and_then(|dir| dir.file_name())
        .is_some_and(|name| name == "release");
    let mut build = std::process::Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        "--bin",
        "director",
        "--bin",
        "worker",
        "--bin",
        "client",
    ]);
    if release {
        build.arg("--release");
    }
    println!("     demo │ building the director, worker and client binaries");
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo to build the binaries: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the binaries failed ({status})"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (duration, cycle) = match (duration(), FailureCycle::from_env()) {
        (Ok(d), Ok(c)) => (d, c),
        (Err(e), _) => {
            eprintln!("❌ demo: {e}");
            return ExitCode::from(2);
        }
        (_, Err(e)) => {
            eprintln!("❌ demo: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = build_the_cast() {
        eprintln!("❌ demo: {error}");
        return ExitCode::FAILURE;
    }
    match run(duration, cycle).await {
        Ok(cast) => {
            let held = summary(&cast);
            drop(cast);
            if held {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            // Every child is killed as the cast is dropped on the way here.
            eprintln!("❌ demo: {error}");
            ExitCode::FAILURE
        }
    }
}
