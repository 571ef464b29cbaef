//! The cluster layer's spans over real nodes on loopback QUIC, seen by a subscriber the
//! test sets for its own thread: a `cluster_node` span per node with its id and address,
//! and a `probe_round` span per probe, inside its node's, with the target, the sequence
//! number and the outcome recorded when the next probe starts.
//!
//! A test binary of its own: `tracing` caches whether a callsite is wanted the first time
//! it is hit, and with a single thread-local subscriber in the process it asks only the
//! hitting thread's, so a node of another test, probing on another thread first, would
//! hide the spans from this test's subscriber for good.
#![cfg(feature = "quic")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet_cluster::{Cluster, ClusterConfig, NodeConfig, NodeId};
use rpcnet_runtime::{RpcConfig, RpcServer, ShutdownHandle};

/// How long a wait may take before the test fails (not how long it should take).
const PATIENCE: Duration = Duration::from_secs(60);

fn rpc_config() -> RpcConfig {
    RpcConfig::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem"),
        "127.0.0.1:0",
    )
    .with_key_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../certs/test_key.pem"
    ))
    .with_server_name("localhost")
}

struct Node {
    addr: SocketAddr,
    cluster: Cluster,
    shutdown: ShutdownHandle,
}

fn start_node(name: &str, seeds: &[SocketAddr]) -> Node {
    let rpc = rpc_config();
    let bound = RpcServer::new(rpc.clone()).bind().expect("binds");
    let addr = bound.local_addr();
    let config = NodeConfig::new(NodeId::new(name).expect("valid id"))
        .with_seeds(seeds.iter().map(ToString::to_string))
        .with_cluster_config(
            ClusterConfig::for_tests()
                .with_phi_min_std_dev(Duration::from_millis(50))
                .with_phi_acceptable_pause(Duration::from_millis(300)),
        );
    let cluster = Cluster::start(&bound, &rpc, config).expect("node starts");
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Node {
        addr,
        cluster,
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

/// A span as the test layer saw it.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    /// The `id` field of the `cluster_node` span it was created in, if any.
    node: Option<String>,
    fields: HashMap<&'static str, String>,
}

/// Every span seen: the open ones by id (the registry reuses the ids of closed spans),
/// then the closed ones.
#[derive(Debug, Default)]
struct Seen {
    open: HashMap<u64, SeenSpan>,
    closed: Vec<SeenSpan>,
}

impl Seen {
    fn all(&self) -> impl Iterator<Item = &SeenSpan> {
        self.open.values().chain(&self.closed)
    }
}

#[derive(Debug, Clone, Default)]
struct Spans(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.id().into_u64());
        let Ok(mut spans) = self.0.lock() else {
            return;
        };
        let node = parent
            .and_then(|p| spans.open.get(&p))
            .filter(|p| p.name == "cluster_node")
            .and_then(|p| p.fields.get("id").cloned());
        let mut seen = SeenSpan {
            name: attrs.metadata().name(),
            node,
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut seen.fields));
        spans.open.insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Ok(mut spans) = self.0.lock() {
            if let Some(seen) = spans.open.get_mut(&id.into_u64()) {
                values.record(&mut Fields(&mut seen.fields));
            }
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if let Ok(mut spans) = self.0.lock() {
            if let Some(seen) = spans.open.remove(&id.into_u64()) {
                spans.closed.push(seen);
            }
        }
    }
}

impl Spans {
    /// The probe rounds of node `prober` (inside its `cluster_node` span) that probed
    /// `target` and ended with `outcome`.
    fn probe_rounds(&self, prober: &str, target: &str, outcome: &str) -> usize {
        let Ok(spans) = self.0.lock() else {
            return 0;
        };
        let count = spans
            .all()
            .filter(|s| s.name == "probe_round")
            .filter(|s| s.fields.get("target").map(String::as_str) == Some(target))
            .filter(|s| s.fields.get("outcome").map(String::as_str) == Some(outcome))
            .filter(|s| s.fields.contains_key("seq"))
            .filter(|s| s.node.as_deref() == Some(prober))
            .count();
        count
    }

    /// Whether a `cluster_node` span of node `id` at `addr` was seen.
    fn node(&self, id: &str, addr: &str) -> bool {
        let Ok(spans) = self.0.lock() else {
            return false;
        };
        let seen = spans.all().any(|s| {
            s.name == "cluster_node"
                && s.fields.get("id").map(String::as_str) == Some(id)
                && s.fields.get("addr").map(String::as_str) == Some(addr)
        });
        seen
    }
}

// One thread: the nodes' tasks run where the test's subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn probe_rounds_have_debug_spans_inside_their_node_with_target_and_outcome() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let a = start_node("spanned-a", &[]);
    let b = start_node("spanned-b", &[a.addr]);
    eventually("the two nodes to see each other", || {
        a.cluster.live_members().len() == 1 && b.cluster.live_members().len() == 1
    })
    .await;
    eventually("spanned-a's node span", || {
        spans.node("spanned-a", &a.addr.to_string())
    })
    .await;
    eventually("an acknowledged probe of spanned-b by spanned-a", || {
        spans.probe_rounds("spanned-a", "spanned-b", "ack") > 0
    })
    .await;
    assert_eq!(spans.probe_rounds("spanned-a", "spanned-b", "suspect"), 0);

    // b stops abruptly: its server and its node with it.
    b.shutdown.shutdown(Duration::ZERO);
    eventually(
        "a probe of the crashed spanned-b ending in suspicion",
        || spans.probe_rounds("spanned-a", "spanned-b", "suspect") > 0,
    )
    .await;
}
