//! Real nodes over QUIC on loopback: a cluster forms from one seed, a node that stops
//! abruptly is reported failed by every other node, comes back on the same port and is
//! seen again, and garbage sent to a node does not disturb membership.
#![cfg(feature = "quic")]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rpcnet_cluster::{
    Cluster, ClusterConfig, ClusterEvent, ClusterEvents, NodeConfig, NodeId, Tags,
};
use rpcnet_runtime::{RpcClient, RpcConfig, RpcServer, ShutdownHandle};

const PATIENCE: Duration = Duration::from_secs(60);

fn rpc_config(bind: &str) -> RpcConfig {
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
fn cluster_config() -> ClusterConfig {
    ClusterConfig::for_tests()
        .with_phi_min_std_dev(Duration::from_millis(50))
        .with_phi_acceptable_pause(Duration::from_millis(300))
}

struct Node {
    name: String,
    addr: SocketAddr,
    cluster: Cluster,
    events: ClusterEvents,
    shutdown: ShutdownHandle,
}

fn start_node(name: &str, bind: &str, seeds: &[SocketAddr]) -> Node {
    let rpc = rpc_config(bind);
    let server = RpcServer::new(rpc.clone());
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr();
    let tags = Tags::new().with("label", name).expect("small tags");
    let config = NodeConfig::new(NodeId::new(name).expect("valid id"))
        .with_tags(tags)
        .with_seeds(seeds.iter().map(ToString::to_string))
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &rpc, config).expect("node starts");
    let events = cluster.subscribe();
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Node {
        name: name.to_owned(),
        addr,
        cluster,
        events,
        shutdown,
    }
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn live_names(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .live_members()
        .iter()
        .map(|m| m.id().as_str().to_owned())
        .collect()
}

/// Waits for an event about `name` that `matches` on `node`'s subscription.
async fn expect_event(
    node: &mut Node,
    name: &str,
    what: &str,
    matches: impl Fn(&ClusterEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, node.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} never saw {what} for {name}", node.name))
            .expect("node running");
        if event.member().id().as_str() == name && matches(&event) {
            return;
        }
    }
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

    // Stop node-3 abruptly: no leave, its endpoint and node task simply go away.
    let victim = nodes.remove(3);
    let victim_addr = victim.addr;
    victim.shutdown.shutdown(Duration::ZERO);
    drop(victim);
    for node in &mut nodes {
        expect_event(node, "node-3", "NodeFailed", |e| {
            matches!(e, ClusterEvent::NodeFailed(_))
        })
        .await;
    }
    for node in &nodes {
        assert!(
            !node.cluster.is_alive("node-3"),
            "{} still sees node-3 alive",
            node.name
        );
    }

    // It restarts on the same port and every node sees it come back.
    let restarted = start_node("node-3", &victim_addr.to_string(), &[seed_addr]);
    assert_eq!(restarted.addr, victim_addr);
    for node in &mut nodes {
        expect_event(node, "node-3", "its return", |e| {
            matches!(
                e,
                ClusterEvent::NodeRecovered(_) | ClusterEvent::NodeJoined(_)
            )
        })
        .await;
    }
    let others: BTreeSet<String> = all.iter().filter(|n| **n != "node-3").cloned().collect();
    eventually("the restarted node to see everyone", || {
        live_names(&restarted.cluster) == others
    })
    .await;
    let member = nodes[0].cluster.member("node-3").expect("known");
    assert!(member.incarnation() > 0, "the return is a new incarnation");
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
    let mut events = a.cluster.subscribe();
    c.cluster
        .set_tags(Tags::new().with("zone", "eu").expect("small tags"))
        .await
        .expect("tags set");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("tag change reaches a")
            .expect("a running");
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
