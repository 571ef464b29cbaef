//! Nodes for the routing tests: a director in the test's runtime, and workers that each run
//! in a runtime of their own on their own thread, so that killing one drops its endpoint,
//! its node and its handlers at once, like a killed process.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rpcnet_cluster::{Cluster, NodeConfig, NodeId, PoolEvent, PoolEvents, Tags, WorkerRegistry};
use rpcnet_runtime::{Code, RpcConfig, RpcServer, Status};
use tokio::sync::{oneshot, watch};

/// How long a test waits for something that must happen (not how long it should take).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) use crate::quic_nodes::{cluster_config, rpc_config};

pub(crate) fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .fold(Tags::new(), |t, (k, v)| t.with(*k, *v).expect("small tags"))
}

/// The director: a node tagged `role=director` in the test's runtime. It serves `compute`
/// too, counting calls, so a test can prove it never receives one.
pub(crate) struct Director {
    pub(crate) cluster: Cluster,
    pub(crate) addr: SocketAddr,
    pub(crate) config: RpcConfig,
    pub(crate) hits: Arc<AtomicUsize>,
}

pub(crate) fn start_director() -> Director {
    start_director_tuned(|node| node)
}

/// Like [`start_director`], with `tune` applied to the director's node configuration.
pub(crate) fn start_director_tuned(tune: impl FnOnce(NodeConfig) -> NodeConfig) -> Director {
    let config = rpc_config("127.0.0.1:0");
    let mut server = RpcServer::new(config.clone());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    server.register("compute", move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(Bytes::from_static(b"director")) }
    });
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr();
    let node = NodeConfig::new(NodeId::new("director").expect("valid id"))
        .with_tags(tags(&[("role", "director")]))
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &config, tune(node)).expect("node starts");
    tokio::spawn(bound.serve());
    Director {
        cluster,
        addr,
        config,
        hits,
    }
}

/// What a worker's methods count, shared with the test across runtimes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Calls of `compute` and `overloaded`.
    pub(crate) hits: AtomicUsize,
    /// Calls of `hold` in their handler now.
    pub(crate) holding: AtomicUsize,
}

/// Counts a `hold` call in its handler until dropped (also when the call is cancelled).
struct Holding(Arc<Counters>);

impl Holding {
    fn new(counters: Arc<Counters>) -> Self {
        counters.holding.fetch_add(1, Ordering::SeqCst);
        Holding(counters)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.holding.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A worker running in its own runtime on its own thread.
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How a worker serves.
#[derive(Clone)]
pub(crate) struct Behaviour {
    /// `compute` sleeps this long before answering.
    pub(crate) delay: Duration,
    /// `hold` answers once this turns true (and never if it does not).
    pub(crate) release: Arc<watch::Sender<bool>>,
    /// Adds more services to the worker's server.
    pub(crate) services: Option<fn(&mut RpcServer, &str)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            delay: Duration::ZERO,
            release: Arc::new(watch::Sender::new(false)),
            services: None,
        }
    }
}

/// Starts a worker named `name` with `tags`, bound to `bind`, joining through `seed`.
///
/// Methods (raw bytes): `compute` answers the worker's name; `hold` answers its name once
/// released; `overloaded` fails with an `Unavailable` status returned by the handler.
pub(crate) fn start_worker(
    name: &str,
    tags: Tags,
    bind: &str,
    seed: SocketAddr,
    behaviour: Behaviour,
    counters: Arc<Counters>,
) -> Worker {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let thread_name = name.to_owned();
    let thread_counters = Arc::clone(&counters);
    let bind = bind.to_owned();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let config = rpc_config(&bind);
            let mut server = RpcServer::new(config.clone());
            let reply = Bytes::from(thread_name.clone().into_bytes());
            let (c, r, delay) = (Arc::clone(&thread_counters), reply.clone(), behaviour.delay);
            server.register("compute", move |_, _| {
                c.hits.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(r)
                }
            });
            let (c, r) = (Arc::clone(&thread_counters), reply.clone());
            let release = behaviour.release.clone();
            server.register("hold", move |_, _| {
                let (c, r, mut release) = (Arc::clone(&c), r.clone(), release.subscribe());
                async move {
                    let _holding = Holding::new(c);
                    let _ = release.wait_for(|released| *released).await;
                    Ok(r)
                }
            });
            let c = Arc::clone(&thread_counters);
            server.register("overloaded", move |_, _| {
                c.hits.fetch_add(1, Ordering::SeqCst);
                async { Err(Status::new(Code::Unavailable, "overloaded")) }
            });
            if let Some(add) = behaviour.services {
                add(&mut server, &thread_name);
            }
            let bound = server.bind().expect("binds");
            let node = NodeConfig::new(NodeId::new(&thread_name).expect("valid id"))
                .with_tags(tags)
                .with_seeds([seed.to_string()])
                .with_cluster_config(cluster_config());
            let cluster = Cluster::start(&bound, &config, node).expect("node starts");
            addr_tx.send(bound.local_addr()).expect("test waiting");
            tokio::spawn(bound.serve());
            let _ = stop_rx.await;
            drop(cluster);
        });
        // Dropping the runtime drops every task at once: no goodbye, no connection close.
        drop(runtime);
    });
    let addr = addr_rx.recv_timeout(PATIENCE).expect("worker bound");
    Worker {
        name: name.to_owned(),
        addr,
        counters,
        stop: Some(stop),
        thread: Some(thread),
    }
}

impl Worker {
    /// Stops the worker abruptly, like a killed process, and waits for its thread.
    pub(crate) fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// A registry on the director, started, with its pool subscription.
pub(crate) async fn registry(
    director: &Director,
    strategy: rpcnet_cluster::LoadBalancingStrategy,
) -> (Arc<WorkerRegistry>, PoolEvents) {
    let registry = Arc::new(WorkerRegistry::new(director.cluster.clone(), strategy));
    let events = registry.subscribe();
    registry.start().await;
    (registry, events)
}

/// Waits until the pool holds exactly these workers.
pub(crate) async fn wait_for_pool(
    registry: &WorkerRegistry,
    events: &mut PoolEvents,
    names: &[&str],
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut have: Vec<String> = registry
            .workers()
            .iter()
            .map(|w| w.id().as_str().to_owned())
            .collect();
        have.sort();
        let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        want.sort();
        if have == want {
            return;
        }
        tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("pool never became {want:?} (is {have:?})"))
            .expect("registry running")
            .expect("read promptly: no lag");
    }
}

/// Waits for a pool event about `name` that `matches`.
pub(crate) async fn wait_for_event(
    events: &mut PoolEvents,
    name: &str,
    matches: impl Fn(&PoolEvent) -> bool,
) -> PoolEvent {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no pool event for {name} in time"))
            .expect("registry running")
            .expect("read promptly: no lag");
        if event.worker().id().as_str() == name && matches(&event) {
            return event;
        }
    }
}

/// A worker in the test's own runtime, whose cluster handle the test keeps (to change its
/// tags). Serves `compute`, answering its name.
pub(crate) fn start_local_worker(name: &str, tags: Tags, seed: SocketAddr) -> Cluster {
    let config = rpc_config("127.0.0.1:0");
    let mut server = RpcServer::new(config.clone());
    let reply = Bytes::from(name.to_owned().into_bytes());
    server.register("compute", move |_, _| {
        let reply = reply.clone();
        async move { Ok(reply) }
    });
    let bound = server.bind().expect("binds");
    let node = NodeConfig::new(NodeId::new(name).expect("valid id"))
        .with_tags(tags)
        .with_seeds([seed.to_string()])
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &config, node).expect("node starts");
    tokio::spawn(bound.serve());
    cluster
}
