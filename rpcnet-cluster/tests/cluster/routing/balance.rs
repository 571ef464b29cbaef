//! How the strategies spread calls over equal workers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, TagFilter};

use super::support::*;

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("worker-{i}")).collect()
}

/// Polls `condition` until it holds (a wait, not a verdict: it fails only after PATIENCE).
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_keeps_three_workers_within_one_call_of_each_other() {
    let director = start_director();
    let behaviour = Behaviour::default();
    let names = names(3);
    let workers: Vec<Worker> = names
        .iter()
        .map(|n| {
            let tags = tags(&[("role", "worker")]);
            start_worker(
                n,
                tags,
                "127.0.0.1:0",
                director.addr,
                behaviour.clone(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::LeastConnections).await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_for_pool(&registry, &mut events, &refs).await;
    let client = Arc::new(ClusterClient::new(
        Arc::clone(&registry),
        director.config.clone(),
    ));

    let calls: Vec<_> = (0..60)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .call_worker("hold", Vec::new(), TagFilter::new())
                    .timeout(PATIENCE)
                    .await
            })
        })
        .collect();
    until("60 calls in their handlers", || {
        workers
            .iter()
            .map(|w| w.counters.holding.load(Ordering::SeqCst))
            .sum::<usize>()
            == 60
    })
    .await;
    let in_flight: Vec<usize> = registry.workers().iter().map(|w| w.in_flight()).collect();
    assert_eq!(in_flight.iter().sum::<usize>(), 60, "{in_flight:?}");
    let spread = in_flight
        .iter()
        .max()
        .zip(in_flight.iter().min())
        .map(|(a, b)| a - b);
    assert!(spread <= Some(1), "registry counts {in_flight:?}");
    let holding: Vec<usize> = workers
        .iter()
        .map(|w| w.counters.holding.load(Ordering::SeqCst))
        .collect();
    let spread = holding
        .iter()
        .max()
        .zip(holding.iter().min())
        .map(|(a, b)| a - b);
    assert!(spread <= Some(1), "calls held by the workers {holding:?}");

    behaviour.release.send_replace(true);
    for call in calls {
        call.await.expect("task").expect("released call succeeds");
    }
    assert!(
        registry.workers().iter().all(|w| w.in_flight() == 0),
        "guards released"
    );
    assert_eq!(director.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_3000_short_calls_within_one_percent() {
    let director = start_director();
    let names = names(3);
    let workers: Vec<Worker> = names
        .iter()
        .map(|n| {
            let tags = tags(&[("role", "worker")]);
            start_worker(
                n,
                tags,
                "127.0.0.1:0",
                director.addr,
                Behaviour::default(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_for_pool(&registry, &mut events, &refs).await;
    let client = Arc::new(ClusterClient::new(
        Arc::clone(&registry),
        director.config.clone(),
    ));

    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let mut replies = HashMap::<Vec<u8>, usize>::new();
                for _ in 0..100 {
                    let reply = client
                        .call_worker("compute", b"x".to_vec(), None::<&HashMap<String, String>>)
                        .timeout(PATIENCE)
                        .await
                        .expect("call succeeds");
                    *replies.entry(reply).or_default() += 1;
                }
                replies
            })
        })
        .collect();
    let mut replies = HashMap::<Vec<u8>, usize>::new();
    for task in tasks {
        for (worker, n) in task.await.expect("task") {
            *replies.entry(worker).or_default() += n;
        }
    }
    for worker in &workers {
        let served = worker.counters.hits.load(Ordering::SeqCst);
        let answered = replies.get(worker.name.as_bytes()).copied().unwrap_or(0);
        assert_eq!(served, answered, "{}", worker.name);
        assert!(
            (990..=1010).contains(&served),
            "{} served {served} of 3000",
            worker.name
        );
    }
    assert_eq!(replies.values().sum::<usize>(), 3000);
    assert_eq!(director.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_counts_return_to_zero_when_calls_are_cancelled() {
    let director = start_director();
    let behaviour = Behaviour::default();
    let worker = start_worker(
        "worker-0",
        tags(&[("role", "worker")]),
        "127.0.0.1:0",
        director.addr,
        behaviour.clone(),
        Arc::default(),
    );
    let (registry, mut events) =
        registry(&director, LoadBalancingStrategy::PowerOfTwoChoices).await;
    wait_for_pool(&registry, &mut events, &["worker-0"]).await;
    let client = Arc::new(ClusterClient::new(
        Arc::clone(&registry),
        director.config.clone(),
    ));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .call_worker("hold", Vec::new(), TagFilter::new())
                    .timeout(PATIENCE)
                    .await
            })
        })
        .collect();
    until("10 calls in the handler", || {
        worker.counters.holding.load(Ordering::SeqCst) == 10
    })
    .await;
    assert_eq!(registry.workers()[0].in_flight(), 10);
    for call in &calls {
        call.abort();
    }
    for call in calls {
        assert!(call.await.is_err_and(|e| e.is_cancelled()));
    }
    assert_eq!(
        registry.workers()[0].in_flight(),
        0,
        "cancelled calls release their guards"
    );
    // The server sees the cancellations too.
    until("the handlers to be dropped", || {
        worker.counters.holding.load(Ordering::SeqCst) == 0
    })
    .await;
}
