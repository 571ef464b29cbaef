//! Subscribers that fall behind: the registry's pool stays right, and a lagging pool
//! subscription hears how much it missed.

use std::collections::BTreeSet;

use rpcnet_cluster::{Lagged, LoadBalancingStrategy, PoolEvent, WorkerRegistry};

use super::support::*;
use crate::quic_nodes::eventually;

fn pool_of(registry: &WorkerRegistry) -> BTreeSet<String> {
    registry
        .workers()
        .iter()
        .map(|w| w.id().as_str().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_whose_subscriptions_lagged_still_holds_the_right_workers() {
    // Room for one event only, on the director's cluster subscriptions and on the pool's.
    let director = start_director_tuned(|node| node.with_event_capacity(1));
    let mut membership = director.cluster.subscribe();
    let registry = std::sync::Arc::new(
        WorkerRegistry::new(director.cluster.clone(), LoadBalancingStrategy::RoundRobin)
            .with_event_capacity(1),
    );
    let mut pool = registry.subscribe();
    registry.start().await;

    let worker = |name: &str| tags(&[("role", "worker"), ("label", name)]);
    let w0 = start_local_worker("w0", worker("w0"), director.addr);
    let w1 = start_local_worker("w1", worker("w1"), director.addr);
    let w2 = start_local_worker("w2", worker("w2"), director.addr);
    eventually("all three workers in the pool", || {
        pool_of(&registry) == set(&["w0", "w1", "w2"])
    })
    .await;
    w2.leave().await;
    eventually("w2 out of the pool", || {
        pool_of(&registry) == set(&["w0", "w1"])
    })
    .await;
    w1.set_tags(tags(&[("role", "other")]))
        .await
        .expect("tags set");
    eventually("w1 out of the pool", || pool_of(&registry) == set(&["w0"])).await;

    // Three additions and two removals went by unread: the pool subscription hears of the
    // lag, then gets the newest change, which agrees with the pool. (The registry publishes
    // a change just after the pool it describes, so the last may come a moment later.)
    let Some(Err(Lagged { missed })) = pool.recv().await else {
        panic!("the lag comes first");
    };
    let mut rest = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, pool.recv())
            .await
            .expect("the newest change follows the lag")
            .expect("registry running")
            .expect("one lag signal, then changes");
        let last = matches!(&event, PoolEvent::WorkerRemoved(w) if w.id().as_str() == "w1");
        rest.push(event);
        if last {
            break;
        }
    }
    assert!(rest.len() <= 2, "{rest:?}");
    assert!(missed as usize + rest.len() >= 5, "missed {missed}");
    assert!(futures::FutureExt::now_or_never(pool.recv()).is_none());
    // The director's membership subscription lagged as well (three joins, a leave and a tag
    // change for one slot), while its view is complete.
    let Some(Err(Lagged { missed })) = membership.recv().await else {
        panic!("the lag comes first");
    };
    assert!(missed >= 3, "missed {missed}");
    assert!(["w0", "w1"].iter().all(|w| director.cluster.is_alive(w)));
    assert!(!director.cluster.is_alive("w2"));
    drop(w0);
}
