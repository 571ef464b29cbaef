//! Documented membership behaviour of the `Cluster` handle over real nodes on loopback:
//! subscriptions get every event in order even when read late (and, past their capacity,
//! a lag signal and the newest events), a graceful leave is reported
//! as `NodeLeft` (never `NodeFailed`), a node rejoins after leaving (at a fresh port), a node restarted at a new
//! address is seen there, and a node restarted on its port before anyone declared it failed
//! is seen at its new incarnation and then stays alive (its peers reach the new process).
#![cfg(feature = "quic")]

use rpcnet_cluster::{ClusterEvent, Lagged, Tags};
use std::collections::BTreeSet;

use crate::quic_nodes::{
    cluster_config, eventually, form, live_names, next_event_about, start_node, start_node_tuned,
    start_node_with, PATIENCE,
};

fn names(of: &[&str]) -> BTreeSet<String> {
    of.iter().map(|s| s.to_string()).collect()
}

/// Panics if any event about `name` is waiting on `node`'s subscription that is not `ok`.
fn no_pending_event_about(
    node: &mut crate::quic_nodes::Node,
    name: &str,
    ok: impl Fn(&ClusterEvent) -> bool,
) {
    while let Some(Some(event)) = futures::FutureExt::now_or_never(node.events.recv()) {
        let event = event.expect("within the subscription's capacity: no lag");
        assert!(
            event.member().id().as_str() != name || ok(&event),
            "{}: unexpected {event:?}",
            node.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_reads_late_gets_every_event_a_prompt_one_got_in_the_same_order() {
    let nodes = form(&["a", "b"]).await;
    let mut prompt = nodes[0].cluster.subscribe();
    let mut late = nodes[0].cluster.subscribe();
    // b changes its tags 50 times; a's prompt subscriber sees each before the next, while the
    // late one reads nothing until the end.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    for k in 0..50 {
        let value = k.to_string();
        nodes[1]
            .cluster
            .set_tags(Tags::new().with("k", &value).expect("small tags"))
            .await
            .expect("tags set");
        loop {
            let event = tokio::time::timeout_at(deadline, prompt.recv())
                .await
                .expect("a sees b's tag change")
                .expect("a running")
                .expect("read promptly: no lag");
            let done = matches!(&event, ClusterEvent::TagsChanged(m)
                if m.id().as_str() == "b" && m.tags().get("k") == Some(value.as_str()));
            seen.push(event);
            if done {
                break;
            }
        }
    }
    for (i, expected) in seen.iter().enumerate() {
        let got = late
            .recv()
            .await
            .expect("the late subscriber's events are all kept")
            .expect("within the subscription's capacity: no lag");
        assert_eq!(&got, expected, "event {i}");
    }
    // Every tag value arrived, in order, at rising incarnations.
    let values: Vec<(String, u64)> = seen
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::TagsChanged(m) if m.id().as_str() == "b" => {
                Some((m.tags().get("k")?.to_owned(), m.incarnation()))
            }
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..50).map(|k| k.to_string()).collect();
    assert_eq!(
        values.iter().map(|v| v.0.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(values.windows(2).all(|w| w[0].1 < w[1].1), "{values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_keeps_only_its_capacity_then_hears_of_its_lag_and_gets_the_newest(
) {
    const CAPACITY: usize = 8;
    let a = start_node_tuned("a", "127.0.0.1:0", &[], Tags::new(), |config| {
        config.with_event_capacity(CAPACITY)
    });
    let b = start_node("b", "127.0.0.1:0", &[a.addr]);
    eventually("a and b to see each other", || {
        a.cluster.is_alive("b") && b.cluster.is_alive("a")
    })
    .await;
    let mut prompt = a.cluster.subscribe();
    let mut stalled = a.cluster.subscribe();
    // b changes its tags 40 times; the prompt subscriber reads each change before the next,
    // the stalled one reads nothing.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    for k in 0..40 {
        let value = k.to_string();
        b.cluster
            .set_tags(Tags::new().with("k", &value).expect("small tags"))
            .await
            .expect("tags set");
        loop {
            let event = tokio::time::timeout_at(deadline, prompt.recv())
                .await
                .expect("a sees b's tag change")
                .expect("a running")
                .expect("read promptly: no lag");
            let done = matches!(&event, ClusterEvent::TagsChanged(m)
                if m.tags().get("k") == Some(value.as_str()));
            seen.push(event);
            if done {
                break;
            }
        }
    }
    assert!(seen.len() >= 40);
    // The stalled subscriber's queue held only the newest CAPACITY events: it hears how many
    // it missed, then gets the newest events, the same as the prompt one's last ones, then
    // nothing more. (The node hands an event to one subscription after the other, so the
    // last may reach it a moment after the prompt subscriber read it.)
    let Some(Err(Lagged { missed })) = stalled.recv().await else {
        panic!("the lag comes first");
    };
    let mut rest = Vec::new();
    while rest.last() != seen.last() {
        let event = tokio::time::timeout_at(deadline, stalled.recv())
            .await
            .expect("the newest events follow the lag")
            .expect("a running")
            .expect("one lag signal, then events");
        rest.push(event);
    }
    assert!(rest.len() <= CAPACITY + 1, "{} events kept", rest.len());
    assert_eq!(rest[..], seen[seen.len() - rest.len()..]);
    assert!(missed as usize + rest.len() >= 40, "missed {missed}");
    assert!(futures::FutureExt::now_or_never(stalled.recv()).is_none());
    // After a lag, the view holds what the missed events said.
    assert_eq!(
        a.cluster
            .member("b")
            .and_then(|m| m.tags().get("k").map(str::to_owned)),
        Some("39".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_is_reported_left_not_failed_and_can_rejoin() {
    let mut nodes = form(&["a", "b", "c"]).await;
    for node in &mut nodes {
        node.resubscribe();
    }
    let c = nodes.pop().expect("c");
    c.cluster.leave().await;
    let by = tokio::time::Instant::now() + PATIENCE;
    for node in &mut nodes {
        let event = next_event_about(node, "c", by).await;
        assert!(
            matches!(event, ClusterEvent::NodeLeft(_)),
            "{}: first event about c after its leave was {event:?}",
            node.name
        );
        assert!(!node.cluster.is_alive("c"));
    }
    // Stay with a left member for longer than it takes to detect a failure: no NodeFailed.
    let bound = cluster_config().detection_bound(3) * 2;
    tokio::time::sleep(bound).await;
    for node in &mut nodes {
        no_pending_event_about(node, "c", |_| false);
    }
    c.crash().await;

    // c starts again (on a fresh port) and joins: reported joined, seen alive by all.
    let seed = nodes[0].addr;
    let c = start_node("c", "127.0.0.1:0", &[seed]);
    let by = tokio::time::Instant::now() + PATIENCE;
    for node in &mut nodes {
        let event = next_event_about(node, "c", by).await;
        assert!(
            matches!(&event, ClusterEvent::NodeJoined(m) if m.addr() == c.addr),
            "{}: first event about c after its rejoin was {event:?}",
            node.name
        );
    }
    eventually("the rejoined node to see a and b", || {
        live_names(&c.cluster) == names(&["a", "b"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_at_a_new_address_is_seen_recovered_there() {
    let mut nodes = form(&["a", "b", "c"]).await;
    for node in &mut nodes {
        node.resubscribe();
    }
    let c = nodes.pop().expect("c");
    let old_addr = c.addr;
    c.crash().await;
    let bound = cluster_config().detection_bound(3) * 2;
    let by = tokio::time::Instant::now() + bound;
    for node in &mut nodes {
        let event = next_event_about(node, "c", by).await;
        assert!(
            matches!(event, ClusterEvent::NodeFailed(_)),
            "{}: {event:?}",
            node.name
        );
    }
    let seed = nodes[0].addr;
    let c = start_node("c", "127.0.0.1:0", &[seed]);
    assert_ne!(c.addr, old_addr);
    let by = tokio::time::Instant::now() + PATIENCE;
    for node in &mut nodes {
        let event = next_event_about(node, "c", by).await;
        let ClusterEvent::NodeRecovered(member) = &event else {
            panic!("{}: {event:?} instead of NodeRecovered", node.name);
        };
        assert_eq!(member.addr(), c.addr, "{}", node.name);
        assert_eq!(node.cluster.member("c").map(|m| m.addr()), Some(c.addr));
    }
    eventually("the restarted node to see a and b", || {
        live_names(&c.cluster) == names(&["a", "b"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_its_port_before_detection_is_seen_at_its_new_incarnation_and_stays_alive(
) {
    let mut nodes = form(&["a", "b", "c", "d"]).await;
    let mut before = Vec::new();
    for node in &mut nodes {
        node.resubscribe();
        before.push(node.cluster.member("d").map(|m| m.incarnation()));
    }
    before.pop();
    let d = nodes.pop().expect("d");
    let d_addr = d.addr;
    d.crash().await;
    // Back at once, before any node could declare it failed, with new tags.
    let seed = nodes[0].addr;
    let tags = Tags::new().with("generation", "2").expect("small tags");
    let d = start_node_with("d", &d_addr.to_string(), &[seed], tags);
    assert_eq!(d.addr, d_addr);
    let by = tokio::time::Instant::now() + PATIENCE;
    for (node, before) in nodes.iter_mut().zip(&before) {
        let event = next_event_about(node, "d", by).await;
        let ClusterEvent::TagsChanged(member) = &event else {
            panic!("{}: {event:?} instead of the new life's tags", node.name);
        };
        assert_eq!(member.tags().get("generation"), Some("2"));
        assert!(
            Some(member.incarnation()) > *before,
            "{}: new life at {}, held {before:?}",
            node.name,
            member.incarnation()
        );
    }
    eventually("the restarted node to see everyone", || {
        live_names(&d.cluster) == names(&["a", "b", "c"])
    })
    .await;
    // Every node keeps probing d over the detection bound twice over; a node still sending
    // into its connection to the dead process would get no acks and report d failed.
    let bound = cluster_config().detection_bound(4) * 2;
    tokio::time::sleep(bound).await;
    for node in &mut nodes {
        no_pending_event_about(node, "d", |e| matches!(e, ClusterEvent::TagsChanged(_)));
        assert!(node.cluster.is_alive("d"), "{}", node.name);
    }
}
