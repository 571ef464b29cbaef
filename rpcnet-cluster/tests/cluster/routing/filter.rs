//! Tag filters over a heterogeneous pool, and a director that never receives worker calls.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, RoutingError, TagFilter};

use super::support::*;

async fn served_by(
    client: &ClusterClient,
    filter: impl Into<TagFilter> + Clone,
    calls: usize,
) -> BTreeSet<String> {
    let mut served = BTreeSet::new();
    for _ in 0..calls {
        let reply = client
            .call_worker("compute", Vec::new(), filter.clone())
            .timeout(PATIENCE)
            .await
            .expect("call succeeds");
        served.insert(String::from_utf8(reply).expect("a name"));
    }
    served
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_selects_only_matching_workers_and_never_the_director() {
    let director = start_director();
    let pool = [("gpu-0", "true"), ("gpu-1", "true"), ("cpu-0", "false")];
    let workers: Vec<Worker> = pool
        .iter()
        .map(|(name, gpu)| {
            let tags = tags(&[("role", "worker"), ("gpu", gpu), ("label", name)]);
            start_worker(
                name,
                tags,
                "127.0.0.1:0",
                director.addr,
                Behaviour::default(),
                Arc::default(),
            )
        })
        .collect();
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &["gpu-0", "gpu-1", "cpu-0"]).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());

    let gpu = TagFilter::new()
        .with_tag("role", "worker")
        .with_tag("gpu", "true");
    assert_eq!(served_by(&client, &gpu, 40).await, set(&["gpu-0", "gpu-1"]));

    let mut cpu = HashMap::new();
    cpu.insert("gpu".to_owned(), "false".to_owned());
    assert_eq!(served_by(&client, Some(&cpu), 20).await, set(&["cpu-0"]));

    let labelled = TagFilter::new()
        .with_tag_present("label")
        .without_tag("zone");
    assert_eq!(
        served_by(&client, &labelled, 30).await,
        set(&["gpu-0", "gpu-1", "cpu-0"])
    );
    let any = None::<&HashMap<String, String>>;
    assert_eq!(
        served_by(&client, any, 30).await,
        set(&["gpu-0", "gpu-1", "cpu-0"])
    );

    // Matching the director's own tags still finds no worker: it is not in the pool.
    let director_filter = TagFilter::new().with_tag("role", "director");
    let error = client
        .call_worker("compute", Vec::new(), director_filter)
        .await
        .expect_err("no worker is a director");
    assert!(
        matches!(error, RoutingError::NoWorkersAvailable { .. }),
        "{error:?}"
    );

    assert_eq!(
        director.hits.load(Ordering::SeqCst),
        0,
        "the director got worker calls"
    );
    let served: usize = workers
        .iter()
        .map(|w| w.counters.hits.load(Ordering::SeqCst))
        .sum();
    assert_eq!(served, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_follows_a_workers_tag_changes() {
    let director = start_director();
    let worker = start_local_worker(
        "w",
        tags(&[("role", "worker"), ("gpu", "false")]),
        director.addr,
    );
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::RoundRobin).await;
    wait_for_pool(&registry, &mut events, &["w"]).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    let gpu = TagFilter::new().with_tag("gpu", "true");
    let error = client
        .call_worker("compute", Vec::new(), &gpu)
        .await
        .expect_err("no gpu yet");
    assert!(
        matches!(error, RoutingError::NoWorkersAvailable { .. }),
        "{error:?}"
    );

    worker
        .set_tags(tags(&[("role", "worker"), ("gpu", "true")]))
        .await
        .expect("tags set");
    wait_for_event(&mut events, "w", |e| {
        matches!(e, rpcnet_cluster::PoolEvent::WorkerUpdated(_))
    })
    .await;
    let reply = client
        .call_worker("compute", Vec::new(), &gpu)
        .timeout(PATIENCE)
        .await;
    assert_eq!(reply.expect("served"), b"w");

    worker
        .set_tags(tags(&[("role", "standby")]))
        .await
        .expect("tags set");
    wait_for_event(&mut events, "w", |e| {
        matches!(e, rpcnet_cluster::PoolEvent::WorkerRemoved(_))
    })
    .await;
    assert!(registry.workers().is_empty());

    worker
        .set_tags(tags(&[("role", "worker")]))
        .await
        .expect("tags set");
    wait_for_event(&mut events, "w", |e| {
        matches!(e, rpcnet_cluster::PoolEvent::WorkerAdded(_))
    })
    .await;
    let reply = client
        .call_worker("compute", Vec::new(), TagFilter::new())
        .timeout(PATIENCE)
        .await;
    assert_eq!(reply.expect("served again"), b"w");
}
