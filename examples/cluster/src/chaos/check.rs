//! The checks of a chaos run, over what its processes recorded ([`Run`]): each gives a
//! verdict and a line of detail, and the figures of the summary come with them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::plan::Fault;
use super::records::{Call, CallOutcome, View};

/// A fault the harness applied, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it was applied.
    pub at_ms: u64,
    /// What.
    pub fault: Fault,
    /// The worker's label.
    pub worker: String,
}

/// What one streaming client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// Its name in the summary.
    pub name: String,
    /// Each token's arrival and sequence number, in order.
    pub tokens: Vec<(u64, u64)>,
    /// Tokens the client received out of sequence (it prints and ignores them).
    pub out_of_sequence: u64,
    /// How often it went back to the director for another worker.
    pub failovers: u64,
}

/// Everything a chaos run recorded.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// When the load started and ended.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// The cluster's push-pull interval: views must agree within three of them after a heal.
    pub push_pull: Duration,
    /// The node ids (director, load generator, workers).
    pub nodes: Vec<String>,
    /// Every call the load generator finished.
    pub calls: Vec<Call>,
    /// Retries the load generator's `ClusterClient` made.
    pub retries: u64,
    /// How often each request id was executed, over every worker's request log.
    pub executions: HashMap<String, u64>,
    /// Each node's views over time, in order.
    pub views: BTreeMap<String, Vec<(u64, View)>>,
    /// The faults, in order.
    pub events: Vec<Event>,
    /// The streaming clients.
    pub streams: Vec<Stream>,
    /// Resident memory samples of the watched processes: name → (ms, kB), in order.
    pub rss: BTreeMap<String, Vec<(u64, u64)>>,
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the check asserts.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Figures or the first counter-examples.
    pub detail: String,
}

/// The most a retry-safe call may be executed more than once, as a share of them.
pub const MAX_DUPLICATE_SHARE: f64 = 0.001;
/// The least share of retry-safe calls that must succeed.
pub const MIN_SUCCESS_SHARE: f64 = 0.999;
/// The most a watched process's resident memory may grow from the first window to the last.
pub const MAX_RSS_GROWTH: f64 = 0.10;
/// How long into the run the first memory window starts (start-up allocations done).
const RSS_WARM_UP: Duration = Duration::from_secs(10);
/// A worker killed this long before a heal (or after it) is left out of the agreement.
const KILLED_RECENTLY: Duration = Duration::from_secs(15);

fn verdict(name: &str, passed: bool, detail: String) -> Verdict {
    Verdict {
        name: name.to_owned(),
        passed,
        detail,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn first_few<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(5).map(ToString::to_string).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} (+{more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Every check, in the order the summary prints them.
pub fn check(run: &Run) -> Vec<Verdict> {
    let mut verdicts = calls(run);
    verdicts.extend(streams(run));
    verdicts.extend(membership(run));
    verdicts.extend(memory(run));
    verdicts
}

fn calls(run: &Run) -> Vec<Verdict> {
    let executed = |id: &str| run.executions.get(id).copied().unwrap_or(0);
    let ok: Vec<&Call> = run
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::Ok)
        .collect();
    let lost: Vec<&str> = ok
        .iter()
        .filter(|c| executed(&c.id) == 0)
        .map(|c| c.id.as_str())
        .collect();
    let unsafe_twice: Vec<String> = run
        .calls
        .iter()
        .filter(|c| !c.retry_safe && executed(&c.id) > 1)
        .map(|c| format!("{}×{}", c.id, executed(&c.id)))
        .collect();
    let safe: Vec<&Call> = run.calls.iter().filter(|c| c.retry_safe).collect();
    let duplicated = safe.iter().filter(|c| executed(&c.id) > 1).count();
    let safe_ok = safe.iter().filter(|c| c.outcome == CallOutcome::Ok).count();
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut answers: HashMap<&str, usize> = HashMap::new();
    for call in &run.calls {
        *answers.entry(call.id.as_str()).or_default() += 1;
    }
    let answered_twice: Vec<&str> = answers
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    let wrong: Vec<&str> = run
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::WrongReply)
        .map(|c| c.id.as_str())
        .collect();
    let unsafe_calls = run.calls.len() - safe.len();
    let failed_safe: Vec<String> = safe
        .iter()
        .filter(|c| c.outcome != CallOutcome::Ok)
        .map(|c| format!("{} ({})", c.id, c.detail))
        .collect();
    vec![
        verdict(
            "every call reported successful was executed by a worker",
            !ok.is_empty() && lost.is_empty(),
            format!(
                "{} successful calls, {} not in any worker's log {}",
                ok.len(),
                lost.len(),
                first_few(&lost)
            ),
        ),
        verdict(
            "no call that is not retry-safe was executed twice",
            unsafe_calls > 0 && unsafe_twice.is_empty(),
            format!(
                "{unsafe_calls} such calls, {} executed twice {}",
                unsafe_twice.len(),
                first_few(&unsafe_twice)
            ),
        ),
        verdict(
            "retry-safe calls executed twice stay under 0.1%",
            share(duplicated, safe.len()) < MAX_DUPLICATE_SHARE,
            format!(
                "{duplicated} of {} ({:.3}%)",
                safe.len(),
                100.0 * share(duplicated, safe.len())
            ),
        ),
        verdict(
            "no response delivered twice or to the wrong call",
            answered_twice.is_empty() && wrong.is_empty(),
            format!(
                "{} answered twice {}, {} wrong replies {}",
                answered_twice.len(),
                first_few(&answered_twice),
                wrong.len(),
                first_few(&wrong)
            ),
        ),
        verdict(
            "at least 99.9% of retry-safe calls succeed",
            !safe.is_empty() && share(safe_ok, safe.len()) >= MIN_SUCCESS_SHARE,
            format!(
                "{safe_ok} of {} ({:.3}%); failed: {}",
                safe.len(),
                100.0 * share(safe_ok, safe.len()),
                first_few(&failed_safe)
            ),
        ),
    ]
}

/// The longest time without a token of a stream, from the start of the load to its end.
pub fn max_gap_ms(stream: &Stream, start_ms: u64, end_ms: u64) -> u64 {
    let mut last = start_ms;
    let mut gap = 0;
    for &(at, _) in &stream.tokens {
        gap = gap.max(at.saturating_sub(last));
        last = last.max(at);
    }
    gap.max(end_ms.saturating_sub(last))
}

fn streams(run: &Run) -> Vec<Verdict> {
    run.streams
        .iter()
        .map(|s| {
            let mut bad = Vec::new();
            for (i, &(_, sequence)) in s.tokens.iter().enumerate() {
                let expected = i as u64 + 1;
                if sequence != expected {
                    bad.push(format!("#{expected} was {sequence}"));
                }
            }
            let gap = max_gap_ms(s, run.start_ms, run.end_ms);
            verdict(
                &format!("{}: no token skipped or repeated", s.name),
                !s.tokens.is_empty() && bad.is_empty() && s.out_of_sequence == 0,
                format!(
                    "{} tokens, {} failovers, longest gap {:.1} s, {} out of sequence, {} misnumbered {}",
                    s.tokens.len(),
                    s.failovers,
                    gap as f64 / 1000.0,
                    s.out_of_sequence,
                    bad.len(),
                    first_few(&bad)
                ),
            )
        })
        .collect()
}

/// A node's view at `at_ms` (its last record at or before it).
fn view_at<'a>(run: &'a Run, node: &str, at_ms: u64) -> Option<&'a View> {
    let views = run.views.get(node)?;
    let i = views.partition_point(|(t, _)| *t <= at_ms);
    i.checked_sub(1).map(|i| &views[i].1)
}

/// Whether `worker` is cut off or partitioned one way at `at_ms`.
fn partitioned(run: &Run, worker: &str, at_ms: u64) -> bool {
    let mut inside = false;
    for e in run
        .events
        .iter()
        .filter(|e| e.worker == worker && e.at_ms <= at_ms)
    {
        match e.fault {
            Fault::Cut | Fault::OneWay => inside = true,
            Fault::HealCut | Fault::HealOneWay => inside = false,
            _ => {}
        }
    }
    inside
}

/// The nodes whose views must agree at `at_ms` after a heal at `heal_ms`: every node but
/// the workers killed from [`KILLED_RECENTLY`] before the heal until then, and those
/// partitioned at `at_ms` by a later fault.
fn settled_nodes(run: &Run, heal_ms: u64, at_ms: u64) -> Vec<&str> {
    let since = heal_ms.saturating_sub(ms(KILLED_RECENTLY));
    run.nodes
        .iter()
        .map(String::as_str)
        .filter(|n| {
            !run.events.iter().any(|e| {
                e.fault == Fault::Kill && e.worker == *n && e.at_ms >= since && e.at_ms <= at_ms
            }) && !partitioned(run, n, at_ms)
        })
        .collect()
}

/// Whether every settled node sees every other settled node live (alive or suspected).
fn agree(run: &Run, heal_ms: u64, at_ms: u64) -> bool {
    let nodes = settled_nodes(run, heal_ms, at_ms);
    nodes.iter().all(|n| {
        view_at(run, n, at_ms).is_some_and(|view| {
            nodes
                .iter()
                .filter(|m| *m != n)
                .all(|m| matches!(view.get(*m), Some('A' | 'S')))
        })
    })
}

/// How long after `heal_ms` the views agreed, if they did before the run ended.
pub fn convergence_ms(run: &Run, heal_ms: u64) -> Option<u64> {
    let mut times: Vec<u64> = run
        .views
        .values()
        .flatten()
        .map(|(t, _)| *t)
        .chain(run.events.iter().map(|e| e.at_ms))
        .filter(|t| *t > heal_ms && *t <= run.end_ms)
        .collect();
    times.push(heal_ms);
    times.sort_unstable();
    times
        .into_iter()
        .find(|t| agree(run, heal_ms, *t))
        .map(|t| t - heal_ms)
}

fn membership(run: &Run) -> Vec<Verdict> {
    let limit = 3 * ms(run.push_pull);
    let mut verdicts = Vec::new();
    let mut times = Vec::new();
    let mut late = Vec::new();
    for heal in run.events.iter().filter(|e| e.fault.is_heal()) {
        let took = convergence_ms(run, heal.at_ms);
        let text = match took {
            Some(t) => format!(
                "{} {} {:.1} s",
                heal.fault.name(),
                heal.worker,
                t as f64 / 1e3
            ),
            None => format!("{} {} never", heal.fault.name(), heal.worker),
        };
        if took.is_none_or(|t| t > limit) {
            late.push(text.clone());
        }
        times.push(text);
    }
    verdicts.push(verdict(
        "after each heal the views agree within 3 push-pull intervals",
        !times.is_empty() && late.is_empty(),
        format!(
            "limit {:.0} s: {}",
            limit as f64 / 1e3,
            if times.is_empty() {
                "no heal".to_owned()
            } else {
                times.join("; ")
            }
        ),
    ));
    // The end of the run: every node sees every other node live, nobody left out.
    let everyone = run.nodes.iter().all(|n| {
        view_at(run, n, run.end_ms).is_some_and(|view| {
            run.nodes
                .iter()
                .filter(|m| *m != n)
                .all(|m| matches!(view.get(m), Some('A' | 'S')))
        })
    });
    verdicts.push(verdict(
        "at the end every node sees every other node live",
        everyone,
        run.nodes
            .iter()
            .map(|n| match view_at(run, n, run.end_ms) {
                Some(view) => {
                    let dead: Vec<&str> = view
                        .iter()
                        .filter(|(_, s)| !matches!(s, 'A' | 'S'))
                        .map(|(m, _)| m.as_str())
                        .collect();
                    format!("{n}: {} members, not live: {}", view.len(), dead.join(" "))
                }
                None => format!("{n}: no view"),
            })
            .collect::<Vec<_>>()
            .join("; "),
    ));
    // One-way partitions: healthy nodes may be suspected meanwhile, but none stays dead.
    for start in run.events.iter().filter(|e| e.fault == Fault::OneWay) {
        let heal = run.events.iter().find(|e| {
            e.fault == Fault::HealOneWay && e.worker == start.worker && e.at_ms >= start.at_ms
        });
        let Some(heal) = heal else { continue };
        let healthy: Vec<&str> = settled_nodes(run, heal.at_ms, heal.at_ms)
            .into_iter()
            .filter(|n| *n != start.worker)
            .collect();
        let mut declared = Vec::new();
        for n in &healthy {
            for (t, view) in run.views.get(*n).into_iter().flatten() {
                if *t < start.at_ms || *t > heal.at_ms {
                    continue;
                }
                for m in &healthy {
                    if view.get(*m) == Some(&'D') && !declared.contains(&format!("{n}→{m}")) {
                        declared.push(format!("{n}→{m}"));
                    }
                }
            }
        }
        let back = convergence_ms(run, heal.at_ms);
        verdicts.push(verdict(
            &format!(
                "one-way partition of {}: nobody healthy declared dead for good",
                start.worker
            ),
            back.is_some_and(|t| t <= limit),
            format!(
                "healthy nodes declared dead meanwhile: {}; everyone live again after {}",
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(" ")
                },
                back.map_or("never".to_owned(), |t| format!("{:.1} s", t as f64 / 1e3))
            ),
        ));
    }
    // The faults bit: the director saw each cut-off worker dead during its cut.
    let mut missed = Vec::new();
    for cut in run.events.iter().filter(|e| e.fault == Fault::Cut) {
        let until = run
            .events
            .iter()
            .find(|e| e.fault == Fault::HealCut && e.worker == cut.worker && e.at_ms >= cut.at_ms)
            .map_or(run.end_ms, |e| e.at_ms);
        let seen = run
            .views
            .get("director")
            .into_iter()
            .flatten()
            .any(|(t, v)| *t >= cut.at_ms && *t <= until && v.get(&cut.worker) == Some(&'D'));
        if !seen {
            missed.push(cut.worker.clone());
        }
    }
    let cuts = run.events.iter().filter(|e| e.fault == Fault::Cut).count();
    verdicts.push(verdict(
        "each cut-off worker was declared dead by the director during its cut",
        cuts > 0 && missed.is_empty(),
        format!("{cuts} cuts, not seen dead: {}", first_few(&missed)),
    ));
    verdicts
}

/// The median of the samples between `from` and `to`.
fn median(samples: &[(u64, u64)], from: u64, to: u64) -> Option<u64> {
    let mut kb: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|(_, kb)| *kb)
        .collect();
    kb.sort_unstable();
    kb.get(kb.len() / 2).copied()
}

/// The two windows memory is compared over: from the warm-up, and at the end; each a
/// minute, or a quarter of the rest of the run when that is shorter.
pub fn rss_windows(start_ms: u64, end_ms: u64) -> ((u64, u64), (u64, u64)) {
    let first = start_ms + ms(RSS_WARM_UP);
    let window = ((end_ms.saturating_sub(first)) / 4).min(60_000);
    ((first, first + window), (end_ms - window, end_ms))
}

fn memory(run: &Run) -> Vec<Verdict> {
    let (first, last) = rss_windows(run.start_ms, run.end_ms);
    run.rss
        .iter()
        .map(|(name, samples)| {
            let a = median(samples, first.0, first.1);
            let b = median(samples, last.0, last.1);
            let (passed, detail) = match (a, b) {
                (Some(a), Some(b)) if a > 0 => {
                    let growth = b as f64 / a as f64 - 1.0;
                    (
                        growth <= MAX_RSS_GROWTH,
                        format!(
                            "{:.1} MiB → {:.1} MiB ({:+.1}%; windows of {:.0} s)",
                            a as f64 / 1024.0,
                            b as f64 / 1024.0,
                            100.0 * growth,
                            (first.1 - first.0) as f64 / 1e3
                        ),
                    )
                }
                _ => (false, "no samples".to_owned()),
            };
            verdict(
                &format!("{name}: resident memory grows at most 10%"),
                passed,
                detail,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, safe: bool, outcome: CallOutcome) -> Call {
        Call {
            at_ms: 1,
            id: id.to_owned(),
            retry_safe: safe,
            outcome,
            took_ms: 1,
            detail: String::new(),
        }
    }

    fn failed(verdicts: &[Verdict]) -> Vec<String> {
        verdicts
            .iter()
            .filter(|v| !v.passed)
            .map(|v| v.name.clone())
            .collect()
    }

    fn view(entries: &[(&str, char)]) -> View {
        entries.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    /// A run of 10,000 retry-safe calls and 100 others, each executed once.
    fn clean_calls() -> Run {
        let mut run = Run::default();
        for i in 0..10_000 {
            run.calls
                .push(call(&format!("s-{i}"), true, CallOutcome::Ok));
            run.executions.insert(format!("s-{i}"), 1);
        }
        for i in 0..100 {
            run.calls
                .push(call(&format!("u-{i}"), false, CallOutcome::Ok));
            run.executions.insert(format!("u-{i}"), 1);
        }
        run
    }

    #[test]
    fn clean_calls_pass_every_call_check() {
        assert!(failed(&calls(&clean_calls())).is_empty());
    }

    #[test]
    fn a_success_no_worker_executed_fails_its_check() {
        let mut run = clean_calls();
        run.executions.remove("s-7");
        assert_eq!(
            failed(&calls(&run)),
            ["every call reported successful was executed by a worker"]
        );
    }

    #[test]
    fn an_unsafe_call_executed_twice_fails_even_once() {
        let mut run = clean_calls();
        run.executions.insert("u-3".to_owned(), 2);
        assert_eq!(
            failed(&calls(&run)),
            ["no call that is not retry-safe was executed twice"]
        );
    }

    #[test]
    fn retry_safe_duplicates_fail_at_a_tenth_of_a_percent() {
        let mut run = clean_calls();
        for i in 0..9 {
            run.executions.insert(format!("s-{i}"), 2);
        }
        assert!(failed(&calls(&run)).is_empty());
        run.executions.insert("s-9".to_owned(), 2);
        assert_eq!(
            failed(&calls(&run)),
            ["retry-safe calls executed twice stay under 0.1%"]
        );
    }

    #[test]
    fn eleven_failures_in_ten_thousand_fail_the_success_check() {
        let mut run = clean_calls();
        for i in 0..10 {
            run.calls[i].outcome = CallOutcome::Failed;
        }
        assert!(failed(&calls(&run)).is_empty());
        run.calls[10].outcome = CallOutcome::Failed;
        assert_eq!(
            failed(&calls(&run)),
            ["at least 99.9% of retry-safe calls succeed"]
        );
    }

    #[test]
    fn a_call_answered_twice_or_wrongly_fails() {
        let mut run = clean_calls();
        run.calls.push(call("s-5", true, CallOutcome::Ok));
        assert_eq!(
            failed(&calls(&run)),
            ["no response delivered twice or to the wrong call"]
        );
        let mut run = clean_calls();
        run.calls[0].outcome = CallOutcome::WrongReply;
        assert!(failed(&calls(&run))
            .iter()
            .any(|f| f == "no response delivered twice or to the wrong call"));
    }

    #[test]
    fn a_skipped_or_repeated_token_fails_the_stream_check() {
        let mut run = Run {
            end_ms: 10_000,
            ..Run::default()
        };
        let good = Stream {
            name: "stream-1".to_owned(),
            tokens: (1..=40).map(|s| (s * 200, s)).collect(),
            ..Stream::default()
        };
        run.streams = vec![good.clone()];
        assert!(failed(&streams(&run)).is_empty());
        assert_eq!(max_gap_ms(&good, 0, 10_000), 2_000);
        for broken in [vec![1, 2, 4], vec![1, 2, 2, 3]] {
            let mut s = good.clone();
            s.tokens = broken.into_iter().map(|q| (q * 200, q)).collect();
            run.streams = vec![s];
            assert_eq!(failed(&streams(&run)).len(), 1);
        }
    }

    fn three_nodes() -> Run {
        Run {
            start_ms: 0,
            end_ms: 60_000,
            push_pull: Duration::from_secs(5),
            nodes: vec!["director".into(), "worker-1".into(), "worker-2".into()],
            ..Run::default()
        }
    }

    fn all_live(run: &mut Run, at_ms: u64) {
        for n in run.nodes.clone() {
            let others: Vec<(&str, char)> = run
                .nodes
                .iter()
                .filter(|m| **m != n)
                .map(|m| (m.as_str(), 'A'))
                .collect();
            run.views.entry(n).or_default().push((at_ms, view(&others)));
        }
    }

    #[test]
    fn views_converge_when_the_last_node_sees_everyone_again() {
        let mut run = three_nodes();
        all_live(&mut run, 0);
        let cut = [("director", 'A'), ("worker-1", 'D')];
        run.views
            .get_mut("worker-2")
            .expect("node")
            .push((20_000, view(&cut)));
        run.events.push(Event {
            at_ms: 30_000,
            fault: Fault::HealCut,
            worker: "worker-1".into(),
        });
        run.views
            .get_mut("worker-2")
            .expect("node")
            .push((34_500, view(&[("director", 'A'), ("worker-1", 'S')])));
        assert_eq!(convergence_ms(&run, 30_000), Some(4_500));
        // A worker killed meanwhile is left out; the others must still agree.
        run.views
            .get_mut("worker-2")
            .expect("node")
            .push((36_000, view(&[("director", 'A'), ("worker-1", 'D')])));
        run.end_ms = 40_000;
        assert_eq!(convergence_ms(&run, 36_000), None);
        run.events.push(Event {
            at_ms: 35_000,
            fault: Fault::Kill,
            worker: "worker-1".into(),
        });
        assert_eq!(convergence_ms(&run, 36_000), Some(0));
    }

    #[test]
    fn a_node_partitioned_after_the_heal_is_left_out_of_the_agreement() {
        let mut run = three_nodes();
        all_live(&mut run, 0);
        run.views
            .get_mut("worker-2")
            .expect("node")
            .push((20_000, view(&[("director", 'A'), ("worker-1", 'D')])));
        run.events.push(Event {
            at_ms: 30_000,
            fault: Fault::HealCut,
            worker: "worker-1".into(),
        });
        assert_eq!(convergence_ms(&run, 30_000), None);
        run.events.push(Event {
            at_ms: 32_000,
            fault: Fault::OneWay,
            worker: "worker-2".into(),
        });
        assert_eq!(convergence_ms(&run, 30_000), Some(2_000));
    }

    #[test]
    fn a_heal_that_takes_longer_than_three_push_pull_intervals_fails() {
        let mut run = three_nodes();
        all_live(&mut run, 0);
        run.views
            .get_mut("director")
            .expect("node")
            .push((10_000, view(&[("worker-1", 'D'), ("worker-2", 'A')])));
        run.events.push(Event {
            at_ms: 20_000,
            fault: Fault::HealOneWay,
            worker: "worker-1".into(),
        });
        run.events.insert(
            0,
            Event {
                at_ms: 10_000,
                fault: Fault::OneWay,
                worker: "worker-1".into(),
            },
        );
        all_live(&mut run, 35_001);
        let failures = failed(&membership(&run));
        assert!(failures
            .iter()
            .any(|f| f == "after each heal the views agree within 3 push-pull intervals"));
        assert!(failures
            .iter()
            .any(|f| f == "one-way partition of worker-1: nobody healthy declared dead for good"));
        run.views
            .get_mut("director")
            .expect("node")
            .push((34_000, view(&[("worker-1", 'A'), ("worker-2", 'A')])));
        run.views
            .get_mut("director")
            .expect("node")
            .sort_by_key(|(t, _)| *t);
        let failures = failed(&membership(&run));
        assert!(
            !failures
                .iter()
                .any(|f| f.contains("heal") || f.contains("one-way")),
            "{failures:?}"
        );
    }

    #[test]
    fn memory_that_grows_more_than_a_tenth_fails() {
        let mut run = three_nodes();
        run.end_ms = 300_000;
        let samples = |end_kb: u64| -> Vec<(u64, u64)> {
            (0..300)
                .map(|s| (s * 1000, if s < 200 { 10_000 } else { end_kb }))
                .collect()
        };
        run.rss.insert("director".into(), samples(10_900));
        assert!(failed(&memory(&run)).is_empty());
        run.rss.insert("director".into(), samples(11_100));
        assert_eq!(failed(&memory(&run)).len(), 1);
    }
}
