//! Between attempts. A worker that stalls (answers nothing, keeps its connection): with an
//! attempt timeout a retry-safe call goes on to another worker in time, and any other call
//! fails with the attempt's deadline after trying the stalled worker once. A retry-safe
//! call that has tried every worker waits for another one when the client waits for
//! workers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, RoutingError, TagFilter};
use rpcnet_runtime::Code;

use super::support::*;

/// A worker tagged `role=worker` joining through `seed`.
fn worker(name: &str, seed: std::net::SocketAddr, behaviour: Behaviour) -> Worker {
    start_worker(
        name,
        tags(&[("role", "worker")]),
        "127.0.0.1:0",
        seed,
        behaviour,
        Arc::default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_attempt_timeout_calls_leave_a_stalled_worker_for_another_one() {
    let director = start_director();
    let stalled = worker(
        "stalled",
        director.addr,
        Behaviour {
            delay: Duration::from_secs(3600),
            ..Behaviour::default()
        },
    );
    let _healthy = worker("healthy", director.addr, Behaviour::default());
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &["stalled", "healthy"]).await;
    let attempt = Duration::from_millis(300);
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone())
        .with_attempt_timeout(attempt);

    // Round robin alternates the first pick: some of these calls try the stalled worker
    // first, time out there after `attempt`, and are answered by the healthy one; without
    // the attempt timeout they would wait there until their own deadline and fail.
    for _ in 0..6 {
        let reply = client
            .call_worker("compute", Vec::new(), TagFilter::new())
            .retry_safe(true)
            .timeout(PATIENCE)
            .await
            .expect("answered by the healthy worker");
        assert_eq!(reply, b"healthy");
    }
    let tried_stalled = stalled.counters.hits.load(Ordering::SeqCst);
    assert!(
        (1..=6).contains(&tried_stalled),
        "the stalled worker was tried {tried_stalled} times"
    );

    // A call that is not retry-safe may have run on the stalled worker: it fails with the
    // attempt's deadline instead of running again elsewhere.
    let mut failed = 0;
    for _ in 0..6 {
        match client
            .call_worker("compute", Vec::new(), TagFilter::new())
            .timeout(PATIENCE)
            .await
        {
            Ok(reply) => assert_eq!(reply, b"healthy"),
            Err(RoutingError::Call { worker, source }) => {
                assert_eq!(worker.as_str(), "stalled");
                assert_eq!(source.code(), Code::DeadlineExceeded);
                failed += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let tried_again = stalled.counters.hits.load(Ordering::SeqCst) - tried_stalled;
    assert!(failed >= 1, "no call picked the stalled worker first");
    assert_eq!(
        failed, tried_again,
        "each call that tried the stalled worker failed there, and only there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_safe_call_whose_only_worker_dies_waits_for_the_next_worker_to_join() {
    let director = start_director();
    let first = worker("first", director.addr, Behaviour::default());
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &["first"]).await;
    let client = Arc::new(
        ClusterClient::new(Arc::clone(&registry), director.config.clone())
            .with_wait_for_worker(PATIENCE),
    );
    // `hold` answers only when released: the call is on `first` when it dies.
    let call = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .call_worker("hold", Vec::new(), TagFilter::new())
                .retry_safe(true)
                .timeout(PATIENCE * 2)
                .await
        })
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while first.counters.holding.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never reached first"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    // Once the pool has dropped `first`, its call has lost its worker and has no other to
    // try; it waits for the next one to join.
    wait_for_pool(&registry, &mut events, &[]).await;
    assert!(
        !call.is_finished(),
        "the call gave up when its only worker died"
    );
    let released = Behaviour::default();
    released.release.send_replace(true);
    let _second = worker("second", director.addr, released);
    let reply = tokio::time::timeout(PATIENCE * 3, call)
        .await
        .expect("the call ends")
        .expect("task")
        .expect("answered by the worker that joined");
    assert_eq!(reply, b"second");
}
