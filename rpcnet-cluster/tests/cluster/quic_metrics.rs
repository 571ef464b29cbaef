//! Cluster and routing metrics through the `metrics` facade, read back with a recorder
//! installed once for this test binary: over real nodes on loopback QUIC, the membership
//! gauges, suspicions, failures and gossip counters move as a cluster forms and loses a
//! node, and the routing counters count picks per worker, retries, retries the budget
//! refuses and calls with no worker. Each test names its nodes and workers uniquely and
//! reads only their labels; only `routing_metrics_count_retries_refusals_and_calls_with_no_worker`
//! reads the routing counters that have no label.
#![cfg(feature = "quic")]

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, RetryBudget, RoutingError, TagFilter};

use crate::quic_nodes::{cluster_config, eventually, live_names, start_node_tuned, Node};
use crate::routing::support::{
    registry, start_director_tuned, start_worker, tags, wait_for_pool, Behaviour, Worker,
};

/// A recorder that keeps every value.
struct Keeping(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for Keeping {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .get_or_create_counter(key, |c| Counter::from_arc(Arc::clone(c)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .get_or_create_gauge(key, |g| Gauge::from_arc(Arc::clone(g)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .get_or_create_histogram(key, |h| Histogram::from_arc(Arc::clone(h)))
    }
}

/// The process's recorder, installed once for every test of this binary that reads
/// metrics.
fn recorded() -> &'static Registry<Key, AtomicStorage> {
    static REGISTRY: OnceLock<Arc<Registry<Key, AtomicStorage>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Arc::new(Registry::atomic());
        metrics::set_global_recorder(Keeping(Arc::clone(&registry)))
            .expect("the only recorder of this test binary");
        registry
    })
}

/// Whether `key` is named `name` and has all of `labels`.
fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    recorded()
        .get_counter_handles()
        .into_iter()
        .filter(|(key, _)| matches(key, name, labels))
        .map(|(_, c)| c.load(Ordering::Acquire))
        .sum()
}

fn gauge(name: &str, labels: &[(&str, &str)]) -> f64 {
    recorded()
        .get_gauge_handles()
        .into_iter()
        .find(|(key, _)| matches(key, name, labels))
        .map_or(f64::NAN, |(_, g)| f64::from_bits(g.load(Ordering::Acquire)))
}

fn members(node: &str, state: &str) -> f64 {
    gauge(
        "rpcnet_cluster_members",
        &[("node", node), ("state", state)],
    )
}

fn gossip(name: &str, node: &str, direction: &str) -> u64 {
    counter(name, &[("node", node), ("direction", direction)])
}

fn start_metered(name: &str, seeds: &[std::net::SocketAddr]) -> Node {
    start_node_tuned(
        name,
        "127.0.0.1:0",
        seeds,
        tags(&[("label", name)]),
        |config| config.with_cluster_config(cluster_config().with_metrics(true)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_metrics_follow_members_by_state_suspicions_failures_and_gossip_of_real_nodes() {
    let _ = recorded();
    let names = ["metered-a", "metered-b", "metered-c"];
    let seed = start_metered(names[0], &[]);
    let seed_addr = seed.addr;
    let mut nodes = vec![
        seed,
        start_metered(names[1], &[seed_addr]),
        start_metered(names[2], &[seed_addr]),
    ];
    for node in &nodes {
        let name = node.name.clone();
        eventually(&format!("{name} to count two members alive"), || {
            members(&name, "alive") == 2.0
        })
        .await;
        assert_eq!(members(&name, "dead"), 0.0);
        assert_eq!(live_names(&node.cluster).len(), 2);
    }
    let sent = |node: &str| gossip("rpcnet_cluster_gossip_messages_total", node, "sent");
    let received = |node: &str| gossip("rpcnet_cluster_gossip_messages_total", node, "received");
    let sent_bytes = |node: &str| gossip("rpcnet_cluster_gossip_bytes_total", node, "sent");
    let received_bytes = |node: &str| gossip("rpcnet_cluster_gossip_bytes_total", node, "received");
    let before: Vec<(u64, u64)> = names.iter().map(|n| (sent(n), received(n))).collect();
    let bytes_before: Vec<(u64, u64)> = names
        .iter()
        .map(|n| (sent_bytes(n), received_bytes(n)))
        .collect();
    for (name, ((sent_then, received_then), (bytes_out, bytes_in))) in
        names.iter().zip(before.iter().zip(&bytes_before))
    {
        assert!(*sent_then > 0 && *received_then > 0, "{name} gossiped");
        assert!(*bytes_out > 0 && *bytes_in > 0, "{name} counted bytes");
        assert_eq!(
            counter("rpcnet_cluster_failures_total", &[("node", name)]),
            0
        );
    }
    // Probing goes on: the counters keep moving.
    for (name, ((sent_then, received_then), (bytes_out, bytes_in))) in
        names.iter().zip(before.iter().zip(&bytes_before))
    {
        eventually(&format!("{name}'s gossip counters to move on"), || {
            sent(name) > *sent_then
                && received(name) > *received_then
                && sent_bytes(name) > *bytes_out
                && received_bytes(name) > *bytes_in
        })
        .await;
    }

    let crashed = nodes.pop().expect("three nodes");
    crashed.crash().await;
    for name in &names[..2] {
        eventually(&format!("{name} to count metered-c failed"), || {
            counter("rpcnet_cluster_failures_total", &[("node", name)]) == 1
                && members(name, "dead") == 1.0
                && members(name, "alive") == 1.0
        })
        .await;
        assert_eq!(members(name, "suspect"), 0.0);
        assert!(
            counter("rpcnet_cluster_suspicions_total", &[("node", name)]) >= 1,
            "{name} suspected metered-c before declaring it failed"
        );
    }
}

/// A director with metrics on, and `names` as workers serving the usual methods.
async fn metered_routing(
    names: &[&str],
) -> (
    crate::routing::support::Director,
    Vec<Worker>,
    Arc<rpcnet_cluster::WorkerRegistry>,
) {
    let director =
        start_director_tuned(|node| node.with_cluster_config(cluster_config().with_metrics(true)));
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
    wait_for_pool(&registry, &mut events, names).await;
    (director, workers, registry)
}

fn picks(worker: &str) -> u64 {
    counter("rpcnet_routing_picks_total", &[("worker", worker)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_metrics_count_each_call_as_one_pick_of_the_worker_that_served_it() {
    let _ = recorded();
    let names = ["picked-0", "picked-1"];
    let (director, workers, registry) = metered_routing(&names).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    const CALLS: u64 = 20;
    for _ in 0..CALLS {
        client
            .call_worker("compute", Vec::new(), TagFilter::new())
            .await
            .expect("a worker answers");
    }
    let served: Vec<u64> = workers
        .iter()
        .map(|w| w.counters.hits.load(Ordering::SeqCst) as u64)
        .collect();
    assert_eq!(picks(names[0]) + picks(names[1]), CALLS);
    assert_eq!([picks(names[0]), picks(names[1])], [served[0], served[1]]);
    assert!(
        picks(names[0]) > 0 && picks(names[1]) > 0,
        "round robin splits the calls: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_metrics_count_retries_refusals_and_calls_with_no_worker() {
    let _ = recorded();
    let names = ["failing-0", "failing-1"];
    let (director, _workers, registry) = metered_routing(&names).await;
    let retries = || counter("rpcnet_routing_retries_total", &[]);
    let refused = || counter("rpcnet_routing_retries_exhausted_total", &[]);
    let no_workers = || counter("rpcnet_routing_no_workers_total", &[]);
    let (retries_then, refused_then, no_workers_then) = (retries(), refused(), no_workers());

    // Both workers fail `overloaded`: a retry-safe call tries one, then the other (one
    // retry), and fails with no third worker to try.
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    const CALLS: u64 = 10;
    for _ in 0..CALLS {
        let error = client
            .call_worker("overloaded", Vec::new(), TagFilter::new())
            .retry_safe(true)
            .await
            .expect_err("every worker is overloaded");
        assert!(matches!(error, RoutingError::Call { .. }), "{error:?}");
    }
    assert_eq!(retries() - retries_then, CALLS);
    assert_eq!(picks(names[0]) + picks(names[1]), 2 * CALLS);
    assert_eq!(refused(), refused_then);

    // With no retry budget, each call's retry is refused.
    let stingy = ClusterClient::new(Arc::clone(&registry), director.config.clone())
        .with_retry_budget(RetryBudget::none());
    for _ in 0..3 {
        stingy
            .call_worker("overloaded", Vec::new(), TagFilter::new())
            .retry_safe(true)
            .await
            .expect_err("every worker is overloaded");
    }
    assert_eq!(refused() - refused_then, 3);
    assert_eq!(retries() - retries_then, CALLS);

    let nobody = TagFilter::new().with_tag("zone", "nowhere");
    let error = client
        .call_worker("compute", Vec::new(), nobody)
        .await
        .expect_err("no worker matches");
    assert!(
        matches!(error, RoutingError::NoWorkersAvailable { .. }),
        "{error:?}"
    );
    assert_eq!(no_workers() - no_workers_then, 1);
}
