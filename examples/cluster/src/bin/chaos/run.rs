//! `chaos run`: starts the cluster in the namespaces `scripts/chaos.sh` made, applies the
//! seeded fault schedule, then checks the records and prints the summary. `chaos check`
//! runs the checks again over a finished run's directory.
//!
//! The namespaces are `<prefix>-director`, `<prefix>-w1` … `<prefix>-w3` and
//! `<prefix>-load`, each with one interface `eth0` on the run's bridge, addressed
//! `<subnet>.2`, `<subnet>.11` … `<subnet>.13` and `<subnet>.20`. Faults are `iptables`
//! rules inside a worker's namespace, on its `eth0`, so they vanish with the namespace.
//! Two relays delay datagrams: one in the delayed worker's namespace, which that worker
//! advertises as its address (so every node's calls, streams and probes to it are
//! delayed), and one in the load's namespace in front of the director, for the second
//! streaming client.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpcnet_cluster_example::chaos::check::{check, max_gap_ms, rss_windows, Event, Run, Stream};
use rpcnet_cluster_example::chaos::plan::{plan, worker_label, Fault, Plan, WORKERS};
use rpcnet_cluster_example::chaos::records::{now_ms, parse_view, timed, Call, CallOutcome};
use rpcnet_cluster_example::processes::{sibling, token, Process};
use rpcnet_cluster_example::settings::cluster_config;

use super::Options;

/// How long a process may take to say it is ready.
const PATIENCE: Duration = Duration::from_secs(120);
/// The delay the relay adds each way.
const RELAY_DELAY_MS: u64 = 50;
/// The ports: the director's, the workers', the load generator's, the relay's.
const DIRECTOR_PORT: u16 = 61000;
const WORKER_PORT: u16 = 62001;
const LOAD_PORT: u16 = 63000;
const RELAY_PORT: u16 = 61001;

/// Where everything of one run lives.
#[derive(Debug)]
struct Layout {
    prefix: String,
    subnet: String,
    out: PathBuf,
    iptables: String,
    /// The worker reached through the delaying relay in its namespace.
    delayed: usize,
}

impl Layout {
    fn namespace(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn director(&self) -> String {
        format!("{}.2:{DIRECTOR_PORT}", self.subnet)
    }

    fn worker(&self, i: usize) -> String {
        format!("{}.{}:{WORKER_PORT}", self.subnet, 11 + i)
    }

    /// Where the delayed worker's relay listens, in the worker's namespace.
    fn worker_relay(&self) -> String {
        format!("{}.{}:{RELAY_PORT}", self.subnet, 11 + self.delayed)
    }

    fn load_ip(&self) -> String {
        format!("{}.20", self.subnet)
    }

    /// Starts `program` in namespace `host` as `ip netns exec` does it (the process keeps
    /// its pid: `ip` execs it).
    fn start(
        &self,
        name: &str,
        host: &str,
        program: &Path,
        env: &[(&str, String)],
        args: &[String],
    ) -> Result<Process, String> {
        let mut all = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.namespace(host),
            program.display().to_string(),
        ];
        all.extend_from_slice(args);
        Process::start(name, Path::new("ip"), env, &all, None).map_err(|e| e.to_string())
    }

    /// Runs `iptables <rule>` in worker `i`'s namespace.
    fn iptables(&self, i: usize, rule: &[&str]) -> Result<(), String> {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.namespace(&format!("w{}", i + 1))])
            .arg(&self.iptables)
            .args(rule)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.iptables))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed: {status}",
                self.iptables,
                rule.join(" ")
            ))
        }
    }
}

fn parse_layout(options: &Options, delayed: usize) -> Result<Layout, String> {
    Ok(Layout {
        prefix: options.get("prefix")?.to_owned(),
        subnet: options.get("subnet")?.to_owned(),
        out: PathBuf::from(options.get("out")?),
        iptables: options.parse_or("iptables", "iptables".to_owned())?,
        delayed,
    })
}

fn start_worker(layout: &Layout, bin: &Path, i: usize, generation: u32) -> Result<Process, String> {
    let label = worker_label(i);
    let mut env = vec![
        ("WORKER_LABEL", label.clone()),
        ("WORKER_ADDR", layout.worker(i)),
        ("DIRECTOR_ADDR", layout.director()),
        (
            "WORKER_REQUEST_LOG",
            layout
                .out
                .join(format!("requests-{label}.log"))
                .display()
                .to_string(),
        ),
        (
            "MEMBERSHIP_LOG",
            layout
                .out
                .join(format!("view-{label}.log"))
                .display()
                .to_string(),
        ),
    ];
    if i == layout.delayed {
        env.push(("WORKER_ADVERTISE_ADDR", layout.worker_relay()));
    }
    let name = if generation == 0 {
        label
    } else {
        format!("{label}.{generation}")
    };
    layout.start(&name, &format!("w{}", i + 1), bin, &env, &[])
}

/// Waits for a line of `process` starting with `prefix`; returns the rest.
fn wait_for_line(process: &Process, since: Instant, prefix: &str) -> Result<String, String> {
    process
        .wait_for(since, PATIENCE, |l| l.starts_with(prefix))
        .map(|l| l.text[prefix.len()..].trim().to_owned())
        .ok_or_else(|| {
            let tail: Vec<String> = process
                .lines()
                .iter()
                .rev()
                .take(10)
                .map(|l| l.text.clone())
                .collect();
            format!(
                "{} did not print {prefix:?} within {} s; its last lines: {}",
                process.name(),
                PATIENCE.as_secs(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        })
}

/// Resident memory of `pid` in kB, from `/proc`.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Applies one step of the schedule.
fn apply(
    layout: &Layout,
    worker_bin: &Path,
    workers: &mut [Option<Process>],
    finished: &mut Vec<Process>,
    generations: &mut [u32],
    fault: Fault,
    i: usize,
) -> Result<(), String> {
    const IN: [&str; 4] = ["INPUT", "-i", "eth0", "DROP"];
    const OUT: [&str; 4] = ["OUTPUT", "-o", "eth0", "DROP"];
    let rule = |op: &str, dir: [&'static str; 4], loss: bool| -> Vec<String> {
        let mut rule: Vec<String> = vec![op.into(), dir[0].into(), dir[1].into(), dir[2].into()];
        if loss {
            rule.extend(
                [
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    "0.1",
                ]
                .map(String::from),
            );
        }
        rule.extend(["-j".to_owned(), dir[3].to_owned()]);
        rule
    };
    let run = |rules: Vec<Vec<String>>| -> Result<(), String> {
        for r in rules {
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            layout.iptables(i, &r)?;
        }
        Ok(())
    };
    match fault {
        Fault::Kill => {
            if let Some(mut process) = workers[i].take() {
                process.kill();
                finished.push(process);
            }
            Ok(())
        }
        Fault::Restart => {
            generations[i] += 1;
            workers[i] = Some(start_worker(layout, worker_bin, i, generations[i])?);
            Ok(())
        }
        Fault::Cut => run(vec![rule("-I", IN, false), rule("-I", OUT, false)]),
        Fault::HealCut => run(vec![rule("-D", IN, false), rule("-D", OUT, false)]),
        Fault::OneWay => run(vec![rule("-I", IN, false)]),
        Fault::HealOneWay => run(vec![rule("-D", IN, false)]),
        Fault::LossOn => run(vec![rule("-I", IN, true), rule("-I", OUT, true)]),
        Fault::LossOff => run(vec![rule("-D", IN, true), rule("-D", OUT, true)]),
    }
}

fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> Result<(), String> {
    let mut file = fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for line in lines {
        writeln!(file, "{line}").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// A process's lines with wall-clock times, given one instant whose wall-clock time is known.
fn timed_lines(process: &Process, anchor: Instant, anchor_ms: u64) -> Vec<String> {
    process
        .lines()
        .into_iter()
        .map(|l| {
            let ms = if l.at >= anchor {
                anchor_ms + u64::try_from((l.at - anchor).as_millis()).unwrap_or(0)
            } else {
                anchor_ms.saturating_sub(u64::try_from((anchor - l.at).as_millis()).unwrap_or(0))
            };
            format!("{ms} {}", l.text)
        })
        .collect()
}

pub(crate) fn main(options: &Options) -> Result<bool, String> {
    let seed: u64 = options.parse_as("seed")?;
    let duration = Duration::from_secs(options.parse_as("duration")?);
    let plan = plan(seed, duration);
    let layout = parse_layout(options, plan.delayed)?;
    fs::create_dir_all(&layout.out).map_err(|e| format!("{}: {e}", layout.out.display()))?;
    let bin = |name: &str| sibling(name).map_err(|e| e.to_string());
    let (director_bin, worker_bin, client_bin) = (bin("director")?, bin("worker")?, bin("client")?);
    let chaos_bin = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "🌪️  chaos run: seed {seed}, {} s, steady worker {}, lossy worker {}, delayed worker {}, records in {}",
        plan.duration.as_secs(),
        worker_label(plan.steady),
        worker_label(plan.lossy),
        worker_label(plan.delayed),
        layout.out.display()
    );
    let begun = Instant::now();
    let director = layout.start(
        "director",
        "director",
        &director_bin,
        &[
            ("DIRECTOR_ADDR", layout.director()),
            (
                "MEMBERSHIP_LOG",
                layout.out.join("view-director.log").display().to_string(),
            ),
        ],
        &[],
    )?;
    wait_for_line(&director, begun, "✅ Director ready")?;
    let worker_relay = layout.start(
        "relay-worker",
        &format!("w{}", plan.delayed + 1),
        &chaos_bin,
        &[],
        &[
            "relay",
            "--listen",
            &layout.worker_relay(),
            "--to",
            &layout.worker(plan.delayed),
            "--delay-ms",
            &RELAY_DELAY_MS.to_string(),
        ]
        .map(String::from),
    )?;
    wait_for_line(&worker_relay, begun, "RELAY READY")?;
    let mut workers: Vec<Option<Process>> = Vec::new();
    for i in 0..WORKERS {
        workers.push(Some(start_worker(&layout, &worker_bin, i, 0)?));
    }
    let load = layout.start(
        "load",
        "load",
        &chaos_bin,
        &[],
        &[
            "load",
            "--director",
            &layout.director(),
            "--bind",
            &format!("{}:{LOAD_PORT}", layout.load_ip()),
            "--out",
            &layout.out.display().to_string(),
            "--duration",
            &plan.duration.as_secs().to_string(),
        ]
        .map(String::from),
    )?;
    let relay_addr = format!("{}:{RELAY_PORT}", layout.load_ip());
    let relay = layout.start(
        "relay",
        "load",
        &chaos_bin,
        &[],
        &[
            "relay",
            "--listen",
            &relay_addr,
            "--to",
            &layout.director(),
            "--delay-ms",
            &RELAY_DELAY_MS.to_string(),
        ]
        .map(String::from),
    )?;
    wait_for_line(&relay, begun, "RELAY READY")?;
    let start_ms: u64 = wait_for_line(&load, begun, "LOAD STARTED")?
        .parse()
        .map_err(|_| "the load generator printed an unreadable start time".to_owned())?;
    let t0 = Instant::now();
    let t0_ms = now_ms();
    println!(
        "▶️  load started ({:.1} s after the director)",
        begun.elapsed().as_secs_f64()
    );
    let streams = [
        ("stream-direct", layout.director()),
        ("stream-relayed", relay_addr),
    ]
    .into_iter()
    .map(|(name, director)| {
        layout.start(
            name,
            "load",
            &client_bin,
            &[("DIRECTOR_ADDR", director)],
            &[],
        )
    })
    .collect::<Result<Vec<_>, _>>()?;
    // Memory of the director and of the worker that is never killed, every second.
    let sampling = Arc::new(AtomicBool::new(true));
    let samples: Arc<Mutex<Vec<String>>> = Arc::default();
    let watched = [
        ("director".to_owned(), director.id()),
        (
            worker_label(plan.steady),
            workers[plan.steady].as_ref().map_or(0, Process::id),
        ),
    ];
    let sampler = {
        let (sampling, samples) = (Arc::clone(&sampling), Arc::clone(&samples));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                for (name, pid) in &watched {
                    if let Some(kb) = rss_kb(*pid) {
                        if let Ok(mut s) = samples.lock() {
                            s.push(format!("{} {name} {kb}", now_ms()));
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mut finished = Vec::new();
    let mut generations = vec![0u32; WORKERS];
    let mut events = Vec::new();
    let mut failure = None;
    for step in &plan.steps {
        let due = t0 + step.at;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let label = worker_label(step.worker);
        println!(
            "⚡ t={:>5.1}s {} {label}",
            t0.elapsed().as_secs_f64(),
            step.fault.name()
        );
        let at_ms = now_ms();
        if let Err(e) = apply(
            &layout,
            &worker_bin,
            &mut workers,
            &mut finished,
            &mut generations,
            step.fault,
            step.worker,
        ) {
            failure = Some(e);
            break;
        }
        events.push(format!("{at_ms} {} {label}", step.fault.name()));
    }
    let done = if failure.is_none() {
        wait_for_line(&load, t0, "LOAD DONE")
    } else {
        Err("stopped early".to_owned())
    };
    let end_ms = now_ms();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    // Records of everything, then the processes go (each is killed when dropped).
    write_lines(&layout.out.join("events.log"), events)?;
    write_lines(
        &layout.out.join("rss.log"),
        samples.lock().map(|s| s.clone()).unwrap_or_default(),
    )?;
    write_lines(
        &layout.out.join("run.log"),
        [
            format!("start {start_ms}"),
            format!("end {end_ms}"),
            format!("seed {seed}"),
            format!("duration {}", plan.duration.as_secs()),
            format!("steady {}", worker_label(plan.steady)),
            format!("lossy {}", worker_label(plan.lossy)),
            format!("delayed {}", worker_label(plan.delayed)),
        ],
    )?;
    let all = [&director, &load, &relay, &worker_relay]
        .into_iter()
        .chain(streams.iter())
        .chain(workers.iter().flatten())
        .chain(finished.iter());
    for process in all {
        write_lines(
            &layout.out.join(format!("{}.out", process.name())),
            timed_lines(process, t0, t0_ms),
        )?;
    }
    drop(streams);
    drop(workers);
    drop((director, load, relay, worker_relay));
    if let Some(e) = failure {
        return Err(e);
    }
    done?;
    report(&layout.out, &plan)
}

pub(crate) fn check_only(options: &Options) -> Result<bool, String> {
    let out = PathBuf::from(options.get("out")?);
    let info = read_info(&out)?;
    let seed = info
        .get("seed")
        .and_then(|s| s.parse().ok())
        .ok_or("run.log has no seed")?;
    let duration = info
        .get("duration")
        .and_then(|s| s.parse().ok())
        .ok_or("run.log has no duration")?;
    report(&out, &plan(seed, Duration::from_secs(duration)))
}

fn read_info(out: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = read(&out.join("run.log"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a finished run's records.
fn read_run(out: &Path) -> Result<Run, String> {
    let info = read_info(out)?;
    let number = |key: &str| -> Result<u64, String> {
        info.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("run.log has no {key}"))
    };
    let mut run = Run {
        start_ms: number("start")?,
        end_ms: number("end")?,
        push_pull: cluster_config().push_pull_interval(),
        nodes: ["director", "load"]
            .map(String::from)
            .into_iter()
            .chain((0..WORKERS).map(worker_label))
            .collect(),
        ..Run::default()
    };
    for line in read(&out.join("calls.log"))?.lines() {
        if let Some(retries) = line.strip_prefix("# retries=") {
            run.retries = retries.parse().unwrap_or(0);
        } else if let Some(call) = Call::parse(line) {
            run.calls.push(call);
        }
    }
    for label in (0..WORKERS).map(worker_label) {
        let path = out.join(format!("requests-{label}.log"));
        for id in read(&path).unwrap_or_default().lines() {
            *run.executions.entry(id.to_owned()).or_default() += 1;
        }
    }
    for node in run.nodes.clone() {
        let path = out.join(format!("view-{node}.log"));
        let views = read(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(parse_view)
            .collect();
        run.views.insert(node, views);
    }
    for line in read(&out.join("events.log"))?.lines() {
        let mut parts = line.split(' ');
        let (Some(ms), Some(fault), Some(worker)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let fault = [
            Fault::Kill,
            Fault::Restart,
            Fault::Cut,
            Fault::HealCut,
            Fault::OneWay,
            Fault::HealOneWay,
            Fault::LossOn,
            Fault::LossOff,
        ]
        .into_iter()
        .find(|f| f.name() == fault);
        if let (Ok(at_ms), Some(fault)) = (ms.parse(), fault) {
            run.events.push(Event {
                at_ms,
                fault,
                worker: worker.to_owned(),
            });
        }
    }
    for name in ["stream-direct", "stream-relayed"] {
        let mut stream = Stream {
            name: name.to_owned(),
            ..Stream::default()
        };
        for line in read(&out.join(format!("{name}.out")))?.lines() {
            let Some((ms, text)) = timed(line) else {
                continue;
            };
            if let Some((sequence, _)) = token(text) {
                stream.tokens.push((ms, sequence));
            } else if text.starts_with("❗ unexpected token") {
                stream.out_of_sequence += 1;
            } else if text.starts_with("🔄 returning to director") {
                stream.failovers += 1;
            }
        }
        run.streams.push(stream);
    }
    for line in read(&out.join("rss.log"))?.lines() {
        let mut parts = line.split(' ');
        if let (Some(Ok(ms)), Some(name), Some(Ok(kb))) = (
            parts.next().map(str::parse),
            parts.next(),
            parts.next().map(str::parse),
        ) {
            run.rss.entry(name.to_owned()).or_default().push((ms, kb));
        }
    }
    Ok(run)
}

/// Prints the summary and the checks; `true` if every check held.
fn report(out: &Path, plan: &Plan) -> Result<bool, String> {
    let run = read_run(out)?;
    let count = |f: Fault| run.events.iter().filter(|e| e.fault == f).count();
    let safe = run.calls.iter().filter(|c| c.retry_safe).count();
    let ok = run
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::Ok)
        .count();
    let duplicates = run.executions.values().filter(|n| **n > 1).count();
    let mut summary = vec![
        format!(
            "run: {:.0} s of load, faults: {} kills, {} cuts, {} one-way partitions, 10% loss on {}, {} ms delay each way through relays to {} and (for stream-relayed) to the director",
            (run.end_ms - run.start_ms) as f64 / 1e3,
            count(Fault::Kill),
            count(Fault::Cut),
            count(Fault::OneWay),
            worker_label(plan.lossy),
            RELAY_DELAY_MS,
            worker_label(plan.delayed)
        ),
        format!(
            "calls: {} ({} retry-safe, {} not), {} succeeded, {} failed, {} retries, {} request ids executed more than once",
            run.calls.len(),
            safe,
            run.calls.len() - safe,
            ok,
            run.calls.len() - ok,
            run.retries,
            duplicates
        ),
    ];
    let mut took: Vec<u64> = run
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::Ok)
        .map(|c| c.took_ms)
        .collect();
    took.sort_unstable();
    let quantile = |q: f64| {
        let i = ((took.len() as f64 * q).ceil() as usize).saturating_sub(1);
        took.get(i).copied().unwrap_or(0)
    };
    summary.push(format!(
        "successful calls took: p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        quantile(0.5),
        quantile(0.99),
        quantile(0.999),
        took.last().copied().unwrap_or(0)
    ));
    for s in &run.streams {
        summary.push(format!(
            "{}: {} tokens, {} failovers, max gap {:.1} s",
            s.name,
            s.tokens.len(),
            s.failovers,
            max_gap_ms(s, run.start_ms, run.end_ms) as f64 / 1e3
        ));
    }
    let ((a, b), (c, d)) = rss_windows(run.start_ms, run.end_ms);
    summary.push(format!(
        "memory windows: {:.0}–{:.0} s and {:.0}–{:.0} s into the load",
        (a - run.start_ms) as f64 / 1e3,
        (b - run.start_ms) as f64 / 1e3,
        (c - run.start_ms) as f64 / 1e3,
        (d - run.start_ms) as f64 / 1e3
    ));
    let verdicts = check(&run);
    let passed = verdicts.iter().all(|v| v.passed);
    for v in &verdicts {
        summary.push(format!(
            "{} {} — {}",
            if v.passed { "✅" } else { "❌" },
            v.name,
            v.detail
        ));
    }
    summary.push(if passed {
        "🎉 chaos run passed".to_owned()
    } else {
        "💥 chaos run FAILED".to_owned()
    });
    for line in &summary {
        println!("{line}");
    }
    write_lines(&out.join("summary.txt"), summary)?;
    Ok(passed)
}
