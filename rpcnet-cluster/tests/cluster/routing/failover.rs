//! A worker killed abruptly: the burst carries on elsewhere, a call in flight on it ends
//! promptly, and the worker gets calls again once it is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, PoolEvent, RoutingError, TagFilter};

use super::support::*;

const NONE: Option<&HashMap<String, String>> = None;

fn worker_tags(name: &str) -> rpcnet_cluster::Tags {
    tags(&[("role", "worker"), ("label", name)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_four_workers_mid_burst_loses_no_retry_safe_call() {
    let director = start_director();
    let names = ["worker-0", "worker-1", "worker-2", "worker-3"];
    let mut workers: Vec<Worker> = names
        .iter()
        .map(|n| {
            start_worker(
                n,
                worker_tags(n),
                "127.0.0.1:0",
                director.addr,
                Behaviour::default(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::LeastConnections).await;
    wait_for_pool(&registry, &mut events, &names).await;
    let client = Arc::new(
        ClusterClient::new(Arc::clone(&registry), director.config.clone())
            .with_retry_safe_method("compute"),
    );

    const CALLS: usize = 2000;
    const TASKS: usize = 16;
    const DEADLINE: Duration = Duration::from_secs(10);
    let done = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, done) = (Arc::clone(&client), Arc::clone(&done));
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for _ in 0..CALLS / TASKS {
                    let start = Instant::now();
                    let result = client
                        .call_worker("compute", Vec::new(), NONE)
                        .timeout(DEADLINE)
                        .await;
                    outcomes.push((result, start.elapsed()));
                    done.send_modify(|n| *n += 1);
                }
                outcomes
            })
        })
        .collect();

    // Kill worker-3 a fifth of the way through the burst.
    let _ = done.subscribe().wait_for(|n| *n >= CALLS / 5).await;
    let victim = workers.remove(3);
    tokio::task::spawn_blocking(move || victim.kill())
        .await
        .expect("killed");
    wait_for_event(&mut events, "worker-3", |e| {
        matches!(e, PoolEvent::WorkerRemoved(_))
    })
    .await;
    // Once the registry has seen the failure, no call can be routed to the worker.
    for _ in 0..100 {
        let picked = registry
            .pick(&TagFilter::new())
            .expect("three workers left");
        assert_ne!(picked.id().as_str(), "worker-3");
    }
    assert!(registry
        .workers()
        .iter()
        .all(|w| w.id().as_str() != "worker-3"));

    let mut ok = 0;
    let mut failures = Vec::new();
    for task in tasks {
        for (result, elapsed) in task.await.expect("task") {
            assert!(
                elapsed < DEADLINE + Duration::from_secs(1),
                "a call hung for {elapsed:?}"
            );
            match result {
                Ok(_) => ok += 1,
                Err(error) => failures.push(error.to_string()),
            }
        }
    }
    assert!(
        ok * 1000 >= CALLS * 999,
        "{ok} of {CALLS} succeeded; failures: {failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_on_a_killed_worker_ends_within_two_seconds() {
    let director = start_director();
    let victim = start_worker(
        "victim",
        worker_tags("victim"),
        "127.0.0.1:0",
        director.addr,
        Behaviour::default(),
        Arc::default(),
    );
    let _other = start_worker(
        "other",
        worker_tags("other"),
        "127.0.0.1:0",
        director.addr,
        Behaviour::default(),
        Arc::default(),
    );
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::LeastConnections).await;
    wait_for_pool(&registry, &mut events, &["victim", "other"]).await;
    let client = Arc::new(ClusterClient::new(
        Arc::clone(&registry),
        director.config.clone(),
    ));

    let counters = Arc::clone(&victim.counters);
    let held = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let on_victim = TagFilter::new().with_tag("label", "victim");
            let result = client
                .call_worker("hold", Vec::new(), on_victim)
                .timeout(Duration::from_secs(30))
                .await;
            (result, Instant::now())
        })
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while counters.holding.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never reached the victim"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = Instant::now();
    tokio::task::spawn_blocking(move || victim.kill())
        .await
        .expect("killed");
    let (result, ended_at) = held.await.expect("task");
    let took = ended_at - killed_at;
    assert!(
        matches!(result, Err(RoutingError::WorkerLost { ref worker }) if worker.as_str() == "victim"),
        "{result:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "the call ended {took:?} after the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_on_its_address_gets_calls_again_within_ten_seconds() {
    let director = start_director();
    let victim = start_worker(
        "victim",
        worker_tags("victim"),
        "127.0.0.1:0",
        director.addr,
        Behaviour::default(),
        Arc::default(),
    );
    let _other = start_worker(
        "other",
        worker_tags("other"),
        "127.0.0.1:0",
        director.addr,
        Behaviour::default(),
        Arc::default(),
    );
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &["victim", "other"]).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone())
        .with_retry_safe_method("compute");
    // A connection to the victim exists before it dies.
    for _ in 0..4 {
        client
            .call_worker("compute", Vec::new(), NONE)
            .timeout(PATIENCE)
            .await
            .expect("call");
    }

    let addr = victim.addr;
    tokio::task::spawn_blocking(move || victim.kill())
        .await
        .expect("killed");
    wait_for_event(&mut events, "victim", |e| {
        matches!(e, PoolEvent::WorkerRemoved(_))
    })
    .await;

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let _restarted = start_worker(
        "victim",
        worker_tags("victim"),
        &addr.to_string(),
        director.addr,
        Behaviour::default(),
        Arc::clone(&counters),
    );
    let calls = AtomicUsize::new(0);
    loop {
        let reply = client
            .call_worker("compute", Vec::new(), NONE)
            .timeout(Duration::from_secs(5))
            .await
            .expect("the other worker serves meanwhile");
        calls.fetch_add(1, Ordering::Relaxed);
        if reply == b"victim" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no call reached the restarted worker"
        );
        // Calls go on while the worker rejoins; waiting on the pool keeps them few.
        let _ = tokio::time::timeout(Duration::from_millis(100), events.recv()).await;
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(counters.hits.load(Ordering::SeqCst) >= 1);
}
