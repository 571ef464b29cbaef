//! The retry budget: when every worker fails, retries stay a bounded fraction of calls.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, RetryBudget, RoutingError, TagFilter};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_retry_budget_spent_calls_fail_fast_instead_of_multiplying() {
    let director = start_director();
    let names = ["worker-0", "worker-1", "worker-2"];
    let workers: Vec<Worker> = names
        .iter()
        .map(|n| {
            start_worker(
                n,
                tags(&[("role", "worker")]),
                "127.0.0.1:0",
                director.addr,
                Behaviour::default(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &names).await;
    // 1 retry a second over 10 s, plus 10 % of calls: at most 10 + 20 retries for 200 calls.
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone())
        .with_retry_budget(RetryBudget::new(Duration::from_secs(10), 1, 0.1))
        .with_retry_safe_method("overloaded");

    const CALLS: usize = 200;
    for _ in 0..CALLS {
        let error = client
            .call_worker("overloaded", Vec::new(), TagFilter::new())
            .timeout(PATIENCE)
            .await
            .expect_err("every worker is overloaded");
        assert!(matches!(error, RoutingError::Call { .. }), "{error:?}");
    }
    let attempts: usize = workers
        .iter()
        .map(|w| w.counters.hits.load(Ordering::SeqCst))
        .sum();
    assert!(
        attempts > CALLS,
        "retries happen while the budget lasts ({attempts})"
    );
    assert!(
        attempts <= CALLS + 30,
        "{attempts} attempts for {CALLS} calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_status_is_not_retried_unless_the_call_is_retry_safe() {
    let director = start_director();
    let names = ["worker-0", "worker-1"];
    let workers: Vec<Worker> = names
        .iter()
        .map(|n| {
            start_worker(
                n,
                tags(&[("role", "worker")]),
                "127.0.0.1:0",
                director.addr,
                Behaviour::default(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &names).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    for _ in 0..10 {
        let result = client
            .call_worker("overloaded", Vec::new(), TagFilter::new())
            .await;
        assert!(result.is_err());
    }
    let attempts: usize = workers
        .iter()
        .map(|w| w.counters.hits.load(Ordering::SeqCst))
        .sum();
    assert_eq!(
        attempts, 10,
        "a handler's status may follow work: not retried"
    );
    for _ in 0..10 {
        let result = client
            .call_worker("overloaded", Vec::new(), TagFilter::new())
            .retry_safe(true)
            .await;
        assert!(result.is_err());
    }
    let attempts: usize = workers
        .iter()
        .map(|w| w.counters.hits.load(Ordering::SeqCst))
        .sum();
    assert_eq!(attempts, 30, "each retry-safe call tried both workers");
}
