//! No matching worker: a clear error at once, or after a bounded wait, or the worker that
//! joins during the wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, RoutingError, TagFilter};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_matching_worker_a_call_fails_at_once_or_after_its_bounded_wait() {
    let director = start_director();
    let (registry, _events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    let error = client
        .call_worker("compute", Vec::new(), TagFilter::new())
        .timeout(PATIENCE)
        .await
        .expect_err("no worker");
    assert!(
        matches!(error, RoutingError::NoWorkersAvailable { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "no worker available for any worker");

    let waiting = ClusterClient::new(Arc::clone(&registry), director.config.clone())
        .with_wait_for_worker(Duration::from_millis(300));
    let start = Instant::now();
    let error = waiting
        .call_worker("compute", Vec::new(), TagFilter::new())
        .timeout(PATIENCE)
        .await
        .expect_err("no worker");
    assert!(
        matches!(error, RoutingError::NoWorkersAvailable { .. }),
        "{error:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(start.elapsed() < PATIENCE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_worker_goes_to_the_one_that_joins() {
    let director = start_director();
    let (registry, _events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    let client = Arc::new(
        ClusterClient::new(Arc::clone(&registry), director.config.clone())
            .with_wait_for_worker(PATIENCE),
    );
    let call = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .call_worker("compute", Vec::new(), TagFilter::new())
                .timeout(PATIENCE)
                .await
        })
    };
    let _worker = start_worker(
        "late",
        tags(&[("role", "worker")]),
        "127.0.0.1:0",
        director.addr,
        Behaviour::default(),
        Arc::default(),
    );
    let reply = call
        .await
        .expect("task")
        .expect("served by the late worker");
    assert_eq!(reply, b"late");
}
