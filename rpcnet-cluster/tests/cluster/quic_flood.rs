//! A gossip flood over real QUIC on loopback: one client sends a node of a three-node
//! cluster 100,000 well-formed pings, each from a sender address and member id of its own,
//! to be answered there. The node's peer clients and member table stay within their bounds,
//! its memory stays bounded, and its real members stay alive and keep gossiping with it.
//! (Floods of member announcements are the member table's business: see the unit tests of
//! `swim::membership` and `swim::tests`.)
#![cfg(feature = "quic")]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use rpcnet_cluster::{
    ClusterConfig, ClusterEvent, ClusterEvents, NodeConfig, Tags, GOSSIP_STREAM_KIND,
};
use rpcnet_runtime::RpcClient;

use crate::quic_nodes::{
    cluster_config, eventually, live_names, rpc_config, start_node_tuned, Node, PATIENCE,
};

/// Distinct claims: sender addresses, and member ids.
const CLAIMS: u32 = 100_000;
/// Attacker connections, and streams in flight on them at once.
const CONNECTIONS: usize = 4;
const STREAMS_IN_FLIGHT: usize = 256;
/// The member table of the nodes under attack: small, so that the flood overflows it (and
/// the peer-client table sized after it) many times over.
const MAX_MEMBERS: usize = 256;
/// Peer clients a node keeps beyond one per member (the driver's room for seeds).
const SEED_ROOM: usize = 64;

fn put_str(out: &mut BytesMut, s: &str) {
    assert!(s.len() < 32);
    out.put_u8(0xa0 | s.len() as u8);
    out.put_slice(s.as_bytes());
}

/// The `n`-th fake address: in 127.0.0.0/8 (loopback only), never the cluster's 127.0.0.1.
fn fake_addr(n: u32) -> SocketAddrV4 {
    let [_, b, c, d] = n.to_be_bytes();
    SocketAddrV4::new(Ipv4Addr::new(127, b + 1, c, d), 9)
}

/// A gossip envelope from the `n`-th fake sender (as PROTOCOL.md lays it out): a ping of
/// `target` from a member id of its own, to be answered at the sender's claimed address.
fn flood_envelope(n: u32, target: &str) -> Bytes {
    let text = fake_addr(n).to_string();
    let mut out = BytesMut::new();
    out.put_u8(1); // envelope version
    out.put_u8(text.len() as u8);
    out.put_slice(text.as_bytes());
    out.put_u8(1); // message version
    out.put_u8(0x93); // [from, body, updates]
    put_str(&mut out, &format!("fake-{n}"));
    out.put_u8(0x81); // {"Ping": [seq, target]}
    put_str(&mut out, "Ping");
    out.put_u8(0x92);
    out.put_u8(0xce);
    out.put_u32(n);
    put_str(&mut out, target);
    out.put_u8(0x90); // no updates
    out.freeze()
}

/// The process's resident memory, in bytes (Linux), if it can be read.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Panics if `events` holds a failure or departure of one of `real`.
fn no_real_member_lost(name: &str, events: &mut ClusterEvents, real: &BTreeSet<&str>) {
    while let Some(Some(event)) = futures::FutureExt::now_or_never(events.recv()) {
        let Ok(event) = event else { continue };
        if let ClusterEvent::NodeFailed(m) | ClusterEvent::NodeLeft(m) = &event {
            assert!(
                !real.contains(m.id().as_str()),
                "{name} lost a real member: {event:?}"
            );
        }
    }
}

/// LAN timers (a one-second probe period), not the tests' fast ones: while the flood
/// saturates the test machine's cores, the nodes' timers run late, and the fast timers would
/// turn that into false failures whatever the protocol does. [`MAX_MEMBERS`] members.
fn flood_config() -> ClusterConfig {
    ClusterConfig::lan()
        .with_max_members(MAX_MEMBERS)
        .with_phi_min_std_dev(cluster_config().phi_min_std_dev())
        .with_phi_acceptable_pause(cluster_config().phi_acceptable_pause())
}

/// Forms a cluster of `names` with [`flood_config`], the first the seed of the others.
async fn form_small(names: &[&str]) -> Vec<Node> {
    let tune = |config: NodeConfig| config.with_cluster_config(flood_config());
    let mut nodes = vec![start_node_tuned(
        names[0],
        "127.0.0.1:0",
        &[],
        Tags::new(),
        tune,
    )];
    let seed = nodes[0].addr;
    for name in &names[1..] {
        nodes.push(start_node_tuned(
            name,
            "127.0.0.1:0",
            &[seed],
            Tags::new(),
            tune,
        ));
    }
    for node in &nodes {
        let others: BTreeSet<String> = names
            .iter()
            .filter(|n| **n != node.name)
            .map(|n| n.to_string())
            .collect();
        eventually("the cluster to form", || {
            live_names(&node.cluster) == others
        })
        .await;
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_claiming_100000_sender_addresses_leaves_the_node_bounded_and_its_members_alive() {
    let max_members = MAX_MEMBERS;
    let nodes = form_small(&["a", "b", "c"]).await;
    let mut watches: Vec<ClusterEvents> = nodes.iter().map(|n| n.cluster.subscribe()).collect();
    let real: BTreeSet<&str> = ["a", "b", "c"].into();
    let target = &nodes[0];
    // Every real member has answered a probe of every other: they are the members a full
    // table keeps.
    for node in &nodes {
        eventually("every member to answer a probe", || {
            node.cluster.stats().confirmed == 2
        })
        .await;
    }
    let rss_before = resident_bytes();

    // The attacker: a few connections to a, many one-way streams in flight on them.
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = RpcClient::connect(target.addr, rpc_config("127.0.0.1:0"))
            .await
            .expect("the attacker connects");
        clients.push(client);
    }
    let started = Instant::now();
    let sent = futures::stream::iter(0..CLAIMS)
        .map(|n| {
            let client = clients[n as usize % CONNECTIONS].clone();
            async move {
                client
                    .send_one_way(GOSSIP_STREAM_KIND, flood_envelope(n, "a"))
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(STREAMS_IN_FLIGHT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let flood_time = started.elapsed();
    assert_eq!(sent, CLAIMS as usize, "every flood message handed to QUIC");

    // A tag change of c after the flood reaches a and b: gossip still flows both ways
    // through the node under attack.
    nodes[2]
        .cluster
        .set_tags(Tags::new().with("after", "flood").expect("small tags"))
        .await
        .expect("tags set");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for node in &nodes[..2] {
        while node
            .cluster
            .member("c")
            .and_then(|m| m.tags().get("after").map(str::to_owned))
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never saw c's tags after the flood",
                node.name
            );
            node.cluster.changed().await.expect("node running");
        }
    }
    let stats = target.cluster.stats();
    let rss_after = resident_bytes();
    // Shown with --nocapture, for the closing note.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "flood: {CLAIMS} messages in {flood_time:?}; a handled {} gossip messages, keeps {} \
         peer clients and {} members, dropped {} sends; resident memory {:?} -> {:?} MiB",
            stats.gossip_handled,
            stats.peer_clients,
            stats.members,
            stats.sends_dropped,
            rss_before.map(|b| b >> 20),
            rss_after.map(|b| b >> 20),
        );
    }
    // The node read a large share of the flood (more distinct addresses than its peer table
    // holds), and its tables stayed within their bounds.
    let peer_capacity = max_members + SEED_ROOM;
    assert!(
        stats.gossip_handled > 2 * peer_capacity as u64,
        "only {} flood messages were handled: the bounds were not exercised",
        stats.gossip_handled
    );
    assert!(stats.peer_clients <= peer_capacity, "{stats:?}");
    assert!(stats.members <= max_members, "{stats:?}");
    assert_eq!(stats.confirmed, 2, "{stats:?}");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        assert!(
            after.saturating_sub(before) < 128 << 20,
            "resident memory grew by {} MiB",
            (after - before) >> 20
        );
    }
    // The real members are all alive everywhere, and none was ever reported lost.
    for (node, events) in nodes.iter().zip(&mut watches) {
        no_real_member_lost(&node.name, events, &real);
        for other in &real {
            assert!(
                *other == node.name || node.cluster.is_alive(other),
                "{} sees {other} dead",
                node.name
            );
        }
    }
}
