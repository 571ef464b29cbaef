//! Real nodes over QUIC on loopback: a cluster forms from one seed, a node that stops
//! abruptly is reported failed by every other node within twice the detection bound, comes
//! back on the same port at a higher incarnation, and garbage sent to a node does not disturb
//! membership. The helpers here serve `quic_membership` too.
#![cfg(feature = "quic")]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rpcnet_cluster::{
    Cluster, ClusterConfig, ClusterEvent, ClusterEvents, NodeConfig, NodeId, Tags,
};
use rpcnet_runtime::{RpcClient, RpcConfig, RpcServer, ShutdownHandle};

/// The deadline for outcomes with no protocol bound (a cluster forming, a restarted node
/// being seen): generous, since it only decides how long a failing run waits.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) fn rpc_config(bind: &str) -> RpcConfig {
    RpcConfig::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem"),
        bind,
    )
    .with_key_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../certs/test_key.pem"
    ))
    .with_server_name("localhost")
}

/// Test timers, with Phi Accrual margins wide enough for a loaded CI machine.
pub(crate) fn cluster_config() -> ClusterConfig {
    ClusterConfig::for_tests()
        .with_phi_min_std_dev(Duration::from_millis(50))
        .with_phi_acceptable_pause(Duration::from_millis(300))
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) cluster: Cluster,
    pub(crate) events: ClusterEvents,
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) served: tokio::task::JoinHandle<Result<(), rpcnet_runtime::RpcError>>,
}

impl Node {
    /// Replaces the subscription with a fresh one: nothing that happened before this call
    /// (formation, earlier flaps) can satisfy a later check.
    pub(crate) fn resubscribe(&mut self) {
        self.events = self.cluster.subscribe();
    }

    /// Stops the node abruptly (no leave): its server stops at once, and the node with it.
    pub(crate) async fn crash(self) {
        self.shutdown.shutdown(Duration::ZERO);
        let _ = self.served.await;
    }
}

pub(crate) fn start_node(name: &str, bind: &str, seeds: &[SocketAddr]) -> Node {
    start_node_with(
        name,
        bind,
        seeds,
        Tags::new().with("label", name).expect("small tags"),
    )
}

pub(crate) fn start_node_with(name: &str, bind: &str, seeds: &[SocketAddr], tags: Tags) -> Node {
    start_node_on(name, rpc_config(bind), seeds, tags)
}

/// Starts a node whose server and peer clients use `rpc` (its certificate, mutual TLS…).
pub(crate) fn start_node_on(name: &str, rpc: RpcConfig, seeds: &[SocketAddr], tags: Tags) -> Node {
    start_node_tuned_on(name, rpc, seeds, tags, |config| config)
}

/// Like [`start_node_with`], with `tune` applied to the node's configuration.
pub(crate) fn start_node_tuned(
    name: &str,
    bind: &str,
    seeds: &[SocketAddr],
    tags: Tags,
    tune: impl FnOnce(NodeConfig) -> NodeConfig,
) -> Node {
    start_node_tuned_on(name, rpc_config(bind), seeds, tags, tune)
}

/// Starts a node whose server and peer clients use `rpc` (its certificate, mutual TLS…),
/// with `tune` applied to the node's configuration.
fn start_node_tuned_on(
    name: &str,
    rpc: RpcConfig,
    seeds: &[SocketAddr],
    tags: Tags,
    tune: impl FnOnce(NodeConfig) -> NodeConfig,
) -> Node {
    // A node restarted on its port binds once the stopped one's endpoint has closed its socket.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let bound = loop {
        match RpcServer::new(rpc.clone()).bind() {
            Ok(bound) => break bound,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("{name} cannot bind: {error:?}"),
        }
    };
    let addr = bound.local_addr();
    let config = NodeConfig::new(NodeId::new(name).expect("valid id"))
        .with_tags(tags)
        .with_seeds(seeds.iter().map(ToString::to_string))
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &rpc, tune(config)).expect("node starts");
    let events = cluster.subscribe();
    let shutdown = bound.shutdown_handle();
    let served = tokio::spawn(bound.serve());
    Node {
        name: name.to_owned(),
        addr,
        cluster,
        events,
        shutdown,
        served,
    }
}

pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn live_names(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .live_members()
        .iter()
        .map(|m| m.id().as_str().to_owned())
        .collect()
}

/// Waits until `deadline` for the next event about `name` on `node`'s subscription, skipping
/// events about other members; panics if none comes.
pub(crate) async fn next_event_about(
    node: &mut Node,
    name: &str,
    deadline: tokio::time::Instant,
) -> ClusterEvent {
    loop {
        let event = tokio::time::timeout_at(deadline, node.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} saw no event about {name} in time", node.name))
            .expect("node running")
            .expect("read promptly: no lag");
        if event.member().id().as_str() == name {
            return event;
        }
    }
}

/// Forms a cluster of `names`, the first the seed of the others, and waits until every node
/// sees every other alive.
pub(crate) async fn form(names: &[&str]) -> Vec<Node> {
    let mut nodes = vec![start_node(names[0], "127.0.0.1:0", &[])];
    let seed = nodes[0].addr;
    for name in &names[1..] {
        nodes.push(start_node(name, "127.0.0.1:0", &[seed]));
    }
    let all: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    for node in &nodes {
        let mut others = all.clone();
        others.remove(&node.name);
        eventually(&format!("{} to see every other node", node.name), || {
            live_names(&node.cluster) == others
        })
        .await;
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_form_a_cluster_detect_a_crash_and_see_the_restart() {
    let seed = start_node("node-0", "127.0.0.1:0", &[]);
    let mut nodes = vec![seed];
    let seed_addr = nodes[0].addr;
    for i in 1..5 {
        nodes.push(start_node(
            &format!("node-{i}"),
            "127.0.0.1:0",
            &[seed_addr],
        ));
    }
    let all: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    for node in &nodes {
        let others: BTreeSet<String> = all.iter().filter(|n| **n != node.name).cloned().collect();
        eventually(&format!("{} to see every other node", node.name), || {
            live_names(&node.cluster) == others
        })
        .await;
        // Tags travel with membership.
        let member = node
            .cluster
            .members()
            .into_iter()
            .find(|m| m.id().as_str() != node.name)
            .expect("a member");
        assert_eq!(member.tags().get("label"), Some(member.id().as_str()));
    }

    // Fresh subscriptions after formation, and node-3's incarnation as each node holds it:
    // nothing from formation can satisfy the checks below.
    let mut before = Vec::new();
    for node in &mut nodes {
        node.resubscribe();
        before.push(node.cluster.member("node-3").map_or(0, |m| m.incarnation()));
    }
    // Stop node-3 abruptly: no leave, its endpoint and node task simply go away.
    let victim = nodes.remove(3);
    before.remove(3);
    let victim_addr = victim.addr;
    victim.crash().await;
    let bound = cluster_config().detection_bound(5) * 2;
    let detect_by = tokio::time::Instant::now() + bound;
    for node in &mut nodes {
        let event = next_event_about(node, "node-3", detect_by).await;
        assert!(
            matches!(event, ClusterEvent::NodeFailed(_)),
            "{}: first event about node-3 after the crash was {event:?}, not NodeFailed within {bound:?}",
            node.name
        );
        assert!(
            !node.cluster.is_alive("node-3"),
            "{} still sees node-3 alive",
            node.name
        );
    }

    // It restarts on the same port and every node sees it come back at a higher incarnation.
    let restarted = start_node("node-3", &victim_addr.to_string(), &[seed_addr]);
    assert_eq!(restarted.addr, victim_addr);
    let back_by = tokio::time::Instant::now() + PATIENCE;
    for (node, before) in nodes.iter_mut().zip(&before) {
        let event = next_event_about(node, "node-3", back_by).await;
        let ClusterEvent::NodeRecovered(member) = &event else {
            panic!(
                "{}: after NodeFailed, {event:?} instead of NodeRecovered",
                node.name
            );
        };
        assert!(
            member.incarnation() > *before,
            "{}: node-3 returned at incarnation {}, it held {before} before the crash",
            node.name,
            member.incarnation()
        );
    }
    let others: BTreeSet<String> = all.iter().filter(|n| **n != "node-3").cloned().collect();
    eventually("the restarted node to see everyone", || {
        live_names(&restarted.cluster) == others
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sent_to_a_node_does_not_disturb_membership() {
    let a = start_node("a", "127.0.0.1:0", &[]);
    let b = start_node("b", "127.0.0.1:0", &[a.addr]);
    let c = start_node("c", "127.0.0.1:0", &[a.addr]);
    for (node, others) in [(&a, ["b", "c"]), (&b, ["a", "c"]), (&c, ["a", "b"])] {
        let others: BTreeSet<String> = others.iter().map(|s| s.to_string()).collect();
        eventually("the cluster to form", || {
            live_names(&node.cluster) == others
        })
        .await;
    }

    // From here on, nothing may be reported failed.
    let mut events = a.cluster.subscribe();
    // Raw UDP garbage at the port.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..(i % 1200) as usize)
            .map(|j| (j as u32 * 31 + i) as u8)
            .collect();
        socket.send_to(&junk, a.addr).await.expect("sent");
    }
    // Well-formed QUIC and TLS, garbage gossip: random bytes, a lying envelope, a huge one.
    let client = RpcClient::connect(a.addr, rpc_config("127.0.0.1:0"))
        .await
        .expect("connects");
    let junk: Vec<bytes::Bytes> = vec![
        bytes::Bytes::from_static(b""),
        bytes::Bytes::from_static(&[1, 255, b'1']),
        bytes::Bytes::from_static(b"\x01\x0e127.0.0.1:9999\xc1\xc1\xc1"),
        bytes::Bytes::from(vec![0x91u8; 64 * 1024]),
    ];
    for payload in junk {
        client
            .send_one_way(rpcnet_cluster::GOSSIP_STREAM_KIND, payload)
            .await
            .expect("handed to QUIC");
    }

    // a still sees everyone, and still takes part: a tag change from c reaches it.
    c.cluster
        .set_tags(Tags::new().with("zone", "eu").expect("small tags"))
        .await
        .expect("tags set");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("tag change reaches a")
            .expect("a running")
            .expect("read promptly: no lag");
        match event {
            ClusterEvent::TagsChanged(m) if m.id().as_str() == "c" => {
                assert_eq!(m.tags().get("zone"), Some("eu"));
                break;
            }
            ClusterEvent::NodeFailed(m) => {
                panic!("garbage made a report {} failed", m.id().as_str())
            }
            _ => {}
        }
    }
    let expected: BTreeSet<String> = ["b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(live_names(&a.cluster), expected);
    drop(b);
}
