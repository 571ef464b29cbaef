//! A worker killed with SIGKILL mid-stream: the client resumes on the other worker, the
//! director stops routing to the dead one, and the same command run again brings it back
//! into the pool and to work.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn a_killed_worker_is_replaced_for_the_client_and_gets_work_again_after_its_restart() {
    let _one_at_a_time = one_scenario_at_a_time();
    let (d, a, b) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let director = director(d);
    let mut workers = vec![
        ("worker-a", a, worker("worker-a", a, d, None)),
        ("worker-b", b, worker("worker-b", b, d, None)),
    ];
    let start = Instant::now();
    for (label, _, _) in &workers {
        let added = format!("➕ pool: {label} added");
        assert!(
            director
                .wait_for(start, PATIENCE, |l| l.starts_with(&added))
                .is_some(),
            "{label} never joined the pool{}",
            logs(&[&director])
        );
    }
    let client = client(d);
    assert!(
        client
            .wait_for(start, PATIENCE, |l| token(l).is_some_and(|(s, _)| s >= 5))
            .is_some(),
        "the client got no tokens{}",
        logs(&[&director, &client])
    );

    // Kill the worker serving the client, mid-stream.
    let serving = tokens(&client).last().expect("tokens").2.clone();
    let at = workers
        .iter()
        .position(|(label, _, _)| *label == serving)
        .expect("a known worker");
    let (victim, victim_port, mut victim_process) = workers.remove(at);
    let survivor = workers[0].0;
    let killed = Instant::now();
    victim_process.kill();

    let resumed = client.wait_for(killed, Duration::from_secs(5), |l| {
        token(l).is_some_and(|(_, w)| w == survivor)
    });
    assert!(
        resumed.is_some(),
        "the client did not resume on {survivor} within 5s of the kill{}",
        logs(&[&director, &client])
    );

    let removed = format!("➖ pool: {victim} removed");
    let removed_at = director
        .wait_for(killed, PATIENCE, |l| l.starts_with(&removed))
        .unwrap_or_else(|| {
            panic!(
                "the director kept {victim} in its pool{}",
                logs(&[&director])
            )
        })
        .at;
    // The director keeps routing, to the survivor only.
    let survivor_compute = format!("🧮 compute answered by {survivor}");
    assert!(
        director
            .wait_for(removed_at, PATIENCE, |l| l.starts_with(&survivor_compute))
            .is_some(),
        "the director stopped routing{}",
        logs(&[&director])
    );
    let routed_to_victim = |l: &str| {
        l.starts_with(&format!("🧮 compute answered by {victim}"))
            || l.starts_with(&format!("📨 assigned {victim} "))
    };

    // The same command again: it rejoins within 10 s and gets work.
    let restarted = Instant::now();
    assert!(
        !director
            .lines()
            .iter()
            .any(|l| l.at >= removed_at && routed_to_victim(&l.text)),
        "the director routed to {victim} after removing it{}",
        logs(&[&director])
    );
    let _victim_again = worker(victim, victim_port, d, None);
    let added = format!("➕ pool: {victim} added");
    assert!(
        director
            .wait_for(restarted, Duration::from_secs(10), |l| l
                .starts_with(&added))
            .is_some(),
        "the director did not list the restarted {victim} within 10s{}",
        logs(&[&director])
    );
    assert!(
        director
            .wait_for(restarted, PATIENCE, routed_to_victim)
            .is_some(),
        "the director never routed to the restarted {victim}{}",
        logs(&[&director])
    );
    assert_contiguous(&client);
}
