//! Who can speak for a member, over real nodes on loopback (see "Who can gossip" in
//! `PROTOCOL.md`). With mutual TLS a peer holding a cluster certificate (mallory) forges
//! gossip about a third node (c): its death, its departure, a new address for it, in its own
//! name and in c's; nobody's view of c changes. Without mutual TLS the same claims in the
//! sender's own name are refused just the same, but a sender that names itself c is taken as
//! c. A node whose certificate is not from the cluster CA cannot join.
#![cfg(feature = "quic")]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use rpcnet_cluster::{ClusterEvent, MemberState, Tags, GOSSIP_STREAM_KIND};
use rpcnet_runtime::{ClientEndpoint, RpcClient, RpcConfig};
use serde::Serialize;

use crate::quic_nodes::{eventually, live_names, rpc_config, start_node_on, Node};

fn cluster_file(name: &str) -> String {
    format!("{}/../certs/cluster/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A node of the development cluster named `id`, with mutual TLS: its certificate names
/// `rpcnet://node/<id>`.
fn mtls(id: &str) -> RpcConfig {
    RpcConfig::new(cluster_file(&format!("nodes/{id}_cert.pem")), "127.0.0.1:0")
        .with_key_path(cluster_file(&format!("nodes/{id}_key.pem")))
        .with_ca_path(cluster_file("cluster_ca.pem"))
        .with_server_name("localhost")
        .with_mutual_tls(true)
}

// The gossip wire format of PROTOCOL.md, written out here as a hostile peer would.

#[derive(Serialize)]
struct Wire(String, WireBody, Vec<WireUpdate>);

#[derive(Serialize)]
enum WireBody {
    Gossip,
}

#[derive(Serialize)]
struct WireUpdate(
    String,
    WireAddr,
    u64,
    WireState,
    BTreeMap<String, String>,
    Option<String>,
);

#[derive(Serialize)]
enum WireAddr {
    V4([u8; 4], u16),
}

#[derive(Serialize, Clone, Copy)]
enum WireState {
    Alive,
    Dead,
    Left,
}

fn wire_addr(addr: SocketAddr) -> WireAddr {
    match addr {
        SocketAddr::V4(v4) => WireAddr::V4(v4.ip().octets(), v4.port()),
        SocketAddr::V6(_) => panic!("the tests run on IPv4 loopback"),
    }
}

/// A gossip envelope from `from` (listening at `reply_to`) carrying `updates`.
fn forged(from: &str, reply_to: SocketAddr, updates: Vec<WireUpdate>) -> Bytes {
    let message = Wire(from.to_owned(), WireBody::Gossip, updates);
    let encoded = rmp_serde::to_vec(&message).expect("encodes");
    let addr = reply_to.to_string();
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_u8(addr.len() as u8);
    out.put_slice(addr.as_bytes());
    out.put_u8(1);
    out.put_slice(&encoded);
    out.freeze()
}

fn update(id: &str, addr: SocketAddr, incarnation: u64, state: WireState) -> WireUpdate {
    let tags = BTreeMap::from([("label".to_owned(), id.to_owned())]);
    WireUpdate(
        id.to_owned(),
        wire_addr(addr),
        incarnation,
        state,
        tags,
        None,
    )
}

/// Starts a, b and c (b and c seeded with a) on `rpc(name)` and waits until each sees the
/// other two alive.
async fn trio(rpc: impl Fn(&str) -> RpcConfig) -> Vec<Node> {
    let tags = |n: &str| Tags::new().with("label", n).expect("small tags");
    let a = start_node_on("a", rpc("a"), &[], tags("a"));
    let seed = [a.addr];
    let b = start_node_on("b", rpc("b"), &seed, tags("b"));
    let c = start_node_on("c", rpc("c"), &seed, tags("c"));
    let nodes = vec![a, b, c];
    for node in &nodes {
        eventually(&format!("{} to see the two others", node.name), || {
            live_names(&node.cluster).len() == 2
        })
        .await;
    }
    nodes
}

/// mallory's forgeries about c, in its own name: c dead, c left, c moved to another
/// address; each at c's incarnation as `observer` knows it.
fn forgeries_about_c(observer: &Node, c: &Node, mallory_addr: SocketAddr) -> Bytes {
    let incarnation = observer.cluster.member("c").expect("c known").incarnation();
    let elsewhere: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    forged(
        "mallory",
        mallory_addr,
        vec![
            update("c", c.addr, incarnation, WireState::Dead),
            update("c", c.addr, incarnation, WireState::Left),
            update(
                "c",
                elsewhere,
                incarnation.wrapping_add(1),
                WireState::Alive,
            ),
        ],
    )
}

/// Panics if an event saying c failed or left is waiting on `node`'s subscription.
fn no_failure_or_departure_of_c(node: &mut Node) {
    while let Some(Some(event)) = futures::FutureExt::now_or_never(node.events.recv()) {
        // A lag would hide the events this check is for.
        let event = event.expect("the subscription kept every event");
        assert!(
            !matches!(&event, ClusterEvent::NodeFailed(m) | ClusterEvent::NodeLeft(m)
                if m.id().as_str() == "c"),
            "{}: {event:?}",
            node.name
        );
    }
}

/// c alive (or suspected, not failed or gone) at its own address in `node`'s view.
fn sees_c_at(node: &Node, addr: SocketAddr) -> bool {
    node.cluster
        .member("c")
        .is_some_and(|m| m.addr() == addr && m.state().is_live())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_a_certificate_holder_cannot_kill_remove_or_move_another_member() {
    let mut nodes = trio(mtls).await;
    for node in &mut nodes {
        node.resubscribe();
    }
    let c_addr = nodes[2].addr;
    let mallory = mtls("mallory");
    let endpoint = ClientEndpoint::new(&mallory).expect("endpoint");
    let mallory_addr: SocketAddr = "127.0.0.1:7".parse().expect("an address");
    // Kept until the end: dropping a client closes its connection, perhaps before the
    // server has read what was sent on it.
    let mut clients = Vec::new();
    for target in 0..2 {
        let observer = &nodes[target];
        let client = RpcClient::lazy(&endpoint, observer.addr, mallory.clone());
        // In its own name: second-hand claims about c.
        let own_name = forgeries_about_c(observer, &nodes[2], mallory_addr);
        // In c's name, with mallory's certificate: c says it left, and moved.
        let incarnation = observer.cluster.member("c").expect("c").incarnation();
        let as_c = forged(
            "c",
            mallory_addr,
            vec![update(
                "c",
                mallory_addr,
                incarnation.wrapping_add(5),
                WireState::Left,
            )],
        );
        for payload in [own_name, as_c] {
            client
                .send_one_way(GOSSIP_STREAM_KIND, payload)
                .await
                .expect("mallory's certificate is from the cluster CA: it may send");
        }
        clients.push(client);
    }
    // Both observers processed the forgeries: the impersonation refused, the three
    // second-hand claims not taken at their word.
    for node in &nodes[..2] {
        eventually(
            &format!("{} to process mallory's gossip", node.name),
            || {
                let r = node.cluster.refusals();
                r.impersonations >= 1 && r.second_hand_claims >= 3
            },
        )
        .await;
    }
    // The death was taken as a suspicion, which c refutes: both see c alive again, at its
    // address, at a higher incarnation than the forged Left claimed (c's own word).
    for node in &nodes[..2] {
        eventually(
            &format!("{} to see c alive at its address", node.name),
            || {
                node.cluster
                    .member("c")
                    .is_some_and(|m| m.addr() == c_addr && m.state() == MemberState::Alive)
            },
        )
        .await;
    }
    for node in &mut nodes {
        no_failure_or_departure_of_c(node);
    }
    for node in &nodes[..2] {
        assert!(sees_c_at(node, c_addr), "{}", node.name);
        assert!(node.cluster.member("mallory").is_none(), "{}", node.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mutual_tls_second_hand_claims_are_refused_but_a_sender_naming_itself_c_is_taken_as_c(
) {
    let mut nodes = trio(|_| rpc_config("127.0.0.1:0")).await;
    for node in &mut nodes {
        node.resubscribe();
    }
    let c_addr = nodes[2].addr;
    let anyone = rpc_config("127.0.0.1:0");
    let endpoint = ClientEndpoint::new(&anyone).expect("endpoint");
    let mallory_addr: SocketAddr = "127.0.0.1:7".parse().expect("an address");
    let a = nodes[0].cluster.clone();
    let client = RpcClient::lazy(&endpoint, nodes[0].addr, anyone);
    client
        .send_one_way(
            GOSSIP_STREAM_KIND,
            forgeries_about_c(&nodes[0], &nodes[2], mallory_addr),
        )
        .await
        .expect("sent");
    eventually("a to process the second-hand claims", || {
        a.refusals().second_hand_claims >= 3
    })
    .await;
    eventually("a to see c alive at its address", || {
        a.member("c")
            .is_some_and(|m| m.addr() == c_addr && m.state() == MemberState::Alive)
    })
    .await;
    no_failure_or_departure_of_c(&mut nodes[0]);

    // The weaker guarantee's limit: nothing binds the sender's name, so "c" saying it left
    // is c's own word.
    let incarnation = a.member("c").expect("c").incarnation();
    client
        .send_one_way(
            GOSSIP_STREAM_KIND,
            forged(
                "c",
                mallory_addr,
                vec![update("c", c_addr, incarnation, WireState::Left)],
            ),
        )
        .await
        .expect("sent");
    eventually("a to take the unauthenticated leave as c's", || {
        a.member("c")
            .is_some_and(|m| m.state() == MemberState::Left || m.incarnation() != incarnation)
    })
    .await;
    assert_eq!(a.refusals().impersonations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_a_node_whose_certificate_is_not_from_the_cluster_ca_cannot_join() {
    let tags = |n: &str| Tags::new().with("label", n).expect("small tags");
    let a = start_node_on("a", mtls("a"), &[], tags("a"));
    let rogue_config = RpcConfig::new(cluster_file("rogue_node_cert.pem"), "127.0.0.1:0")
        .with_key_path(cluster_file("rogue_node_key.pem"))
        .with_ca_path(cluster_file("cluster_ca.pem"))
        .with_server_name("localhost")
        .with_mutual_tls(true);
    let rogue = start_node_on("rogue", rogue_config, &[a.addr], tags("rogue"));
    // A node with a cluster certificate, started after the rogue, joins through the same
    // seed: by the time a sees it, the rogue's first join attempts have long been refused.
    let b = start_node_on("b", mtls("b"), &[a.addr], tags("b"));
    eventually("a and b to see each other", || {
        live_names(&a.cluster).contains("b") && live_names(&b.cluster).contains("a")
    })
    .await;
    assert!(a.cluster.member("rogue").is_none());
    assert!(b.cluster.member("rogue").is_none());
    assert!(
        rogue.cluster.members().is_empty(),
        "{:?}",
        rogue.cluster.members()
    );
}
