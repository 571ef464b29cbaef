//! The director: the cluster's seed node (`role=director`). It keeps the pool of workers
//! (a `WorkerRegistry`, least connections, `role=worker`), prints it when it changes and
//! every few seconds, hands workers out to clients (the `Director` service), and sends a
//! `compute` call through the `ClusterClient` every two seconds. With `MEMBERSHIP_LOG` set
//! to a path it also writes its membership view there (for the chaos harness); with
//! `DIRECTOR_METRICS_ADDR` set to `ip:port` it serves its metrics there in Prometheus text
//! format (`GET /metrics`). The example's README lists every variable.
//!
//! ```text
//! DIRECTOR_ADDR=127.0.0.1:61000 cargo run --manifest-path examples/cluster/Cargo.toml --bin director
//! ```

// The binaries own their console output: these lines are the scenario's user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use rpcnet::cluster::{
    Cluster, ClusterClient, LoadBalancingStrategy, NodeConfig, NodeId, PoolEvent, RoutingError,
    TagFilter, Tags, WorkerInfo, WorkerRegistry,
};
use rpcnet::RpcServer;
use rpcnet_cluster_example::chaos::records::log_views;
use rpcnet_cluster_example::console::{init_tracing, interrupted, one_line};
use rpcnet_cluster_example::services::{
    AssignRequest, Director, DirectorError, DirectorServer, WorkerAssignment, COMPUTE_METHOD,
};
use rpcnet_cluster_example::settings::{
    addr_var, cluster_config, host_ports_var, var_or, vars, Addresses, BadSetting, Tls,
    DEFAULT_DIRECTOR_ADDR,
};

/// How often the director prints the pool when nothing changes.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// How often it sends a `compute` call to a worker.
const COMPUTE_INTERVAL: Duration = Duration::from_secs(2);

/// A worker's label tag, or its node id.
fn label(worker: &WorkerInfo) -> String {
    worker
        .tags()
        .get("label")
        .map_or_else(|| worker.id().to_string(), str::to_owned)
}

fn workers() -> TagFilter {
    TagFilter::new().with_tag("role", "worker")
}

/// The `Director` service: picks a worker from the registry.
struct Assignments {
    /// Set once the cluster node has started.
    registry: Arc<OnceLock<Arc<WorkerRegistry>>>,
}

impl Director for Assignments {
    async fn assign_worker(
        &self,
        request: AssignRequest,
    ) -> Result<WorkerAssignment, DirectorError> {
        let registry = self
            .registry
            .get()
            .ok_or(DirectorError::NoWorkersAvailable)?;
        let mut picked = registry
            .pick(&workers())
            .ok_or(DirectorError::NoWorkersAvailable)?;
        if let Some(avoid) = &request.avoid {
            // The client just lost this worker; the registry may not know yet. Take the
            // least loaded other worker if there is one.
            let other = registry
                .workers()
                .into_iter()
                .filter(|w| label(w) != *avoid)
                .min_by_key(WorkerInfo::in_flight);
            if let (true, Some(other)) = (label(&picked.info()) == *avoid, other) {
                if let Some(better) = registry.pick(&workers().with_tag("label", label(&other))) {
                    picked = better;
                }
            }
        }
        let info = picked.info();
        let assignment = WorkerAssignment {
            label: label(&info),
            addr: info.addr().to_string(),
        };
        println!(
            "📨 assigned {} ({}) to a client",
            assignment.label, assignment.addr
        );
        Ok(assignment)
    }
}

fn print_pool(registry: &WorkerRegistry) {
    let pool = registry.workers();
    println!("📊 Worker pool status: {} workers available", pool.len());
    for worker in &pool {
        println!(
            "   - {} at {} ({} connections)",
            label(worker),
            worker.addr(),
            worker.in_flight()
        );
    }
}

/// Prints the pool on every change and every [`STATUS_INTERVAL`].
async fn watch_pool(registry: Arc<WorkerRegistry>) {
    let mut changes = registry.subscribe();
    let mut ticks = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Some(Ok(PoolEvent::WorkerAdded(w))) => {
                    println!("➕ pool: {} added ({})", label(&w), w.addr());
                    print_pool(&registry);
                }
                Some(Ok(PoolEvent::WorkerRemoved(w))) => {
                    println!("➖ pool: {} removed", label(&w));
                    print_pool(&registry);
                }
                Some(_) => print_pool(&registry),
                None => return,
            },
            _ = ticks.tick() => print_pool(&registry),
        }
    }
}

/// Sends `compute` to a worker every [`COMPUTE_INTERVAL`] and says who answered.
async fn compute_periodically(client: Arc<ClusterClient>) {
    let mut ticks = tokio::time::interval(COMPUTE_INTERVAL);
    let mut round = 0u64;
    loop {
        ticks.tick().await;
        round += 1;
        let data = format!("compute round {round}").into_bytes();
        let call = client
            .call_worker(COMPUTE_METHOD, data, workers())
            .timeout(Duration::from_secs(2));
        match call.await {
            Ok(reply) => {
                let reply = String::from_utf8_lossy(&reply).into_owned();
                let worker = reply.split(':').next().unwrap_or("?");
                println!("🧮 compute answered by {worker} (round {round}, reply {reply:?})");
            }
            Err(RoutingError::NoWorkersAvailable { .. }) => {
                println!("⏳ compute round {round}: no worker available");
            }
            Err(error) => println!("⚠️  compute round {round} failed: {}", one_line(&error)),
        }
    }
}

/// What the director is configured with.
struct Settings {
    addresses: Addresses,
    tls: Tls,
    /// Members to join through at start (`DIRECTOR_SEEDS`; none by default).
    seeds: Vec<String>,
    /// Where to serve metrics in Prometheus text format (`DIRECTOR_METRICS_ADDR`; off by
    /// default).
    metrics: Option<SocketAddr>,
}

fn settings() -> Result<Settings, BadSetting> {
    Ok(Settings {
        addresses: Addresses::from_env(
            vars::DIRECTOR_ADDR,
            vars::DIRECTOR_BIND_ADDR,
            vars::DIRECTOR_ADVERTISE_ADDR,
            DEFAULT_DIRECTOR_ADDR,
        )?,
        tls: Tls::from_env()?,
        seeds: host_ports_var(vars::DIRECTOR_SEEDS, "worker:62001")?,
        metrics: match var_or(vars::DIRECTOR_METRICS_ADDR, "").as_str() {
            "" => None,
            _ => Some(addr_var(vars::DIRECTOR_METRICS_ADDR, "0.0.0.0:9100")?),
        },
    })
}

/// The director's cluster node: the one place where its cluster configuration is built.
/// `settings.metrics` says whether metrics are exported (`run` turns the RPC layer's on
/// from it).
fn node_config(settings: &Settings) -> Result<NodeConfig, String> {
    let tags = Tags::new()
        .with("role", "director")
        .map_err(|e| e.to_string())?;
    let mut node = NodeConfig::new(NodeId::new("director").map_err(|e| e.to_string())?)
        .with_tags(tags)
        .with_seeds(settings.seeds.clone())
        // The cluster's and the routing's metrics go with the calls' (DIRECTOR_METRICS_ADDR).
        .with_cluster_config(cluster_config().with_metrics(settings.metrics.is_some()));
    if let Some(addr) = settings.addresses.advertise {
        node = node.with_advertise_addr(addr);
    }
    Ok(node)
}

async fn run(settings: Settings) -> Result<(), String> {
    let addr = settings.addresses.public();
    println!("🎯 Starting Director at {addr}");
    if let Some(metrics) = settings.metrics {
        PrometheusBuilder::new()
            .with_http_listener(metrics)
            .install()
            .map_err(|e| format!("cannot serve metrics on {metrics}: {}", one_line(&e)))?;
        println!("📈 metrics in Prometheus text format at http://{metrics}/metrics");
    }
    let config = settings
        .tls
        .rpc_config(settings.addresses.bind)
        .with_metrics(settings.metrics.is_some());
    // The service needs the registry, the registry the cluster node, and the node the
    // bound server: the service gets the registry once it exists.
    let registry_slot = Arc::new(OnceLock::new());
    let mut server = RpcServer::new(config.clone());
    server.add_service(DirectorServer::new(Assignments {
        registry: Arc::clone(&registry_slot),
    }));
    let bound = server.bind().map_err(|e| {
        format!(
            "cannot serve on {}: {}",
            settings.addresses.bind,
            one_line(&e)
        )
    })?;
    let node = node_config(&settings)?;
    let cluster = Cluster::start(&bound, &config, node)
        .map_err(|e| format!("cannot start the cluster node: {}", one_line(&e)))?;
    let membership_log = var_or(vars::MEMBERSHIP_LOG, "");
    if !membership_log.is_empty() {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let path = std::path::PathBuf::from(membership_log);
            if let Err(e) = log_views(cluster, &path).await {
                eprintln!("❌ director: membership log {}: {e}", path.display());
            }
        });
    }
    let registry = Arc::new(WorkerRegistry::new(
        cluster.clone(),
        LoadBalancingStrategy::LeastConnections,
    ));
    tokio::spawn(watch_pool(Arc::clone(&registry)));
    registry.start().await;
    let _ = registry_slot.set(Arc::clone(&registry));
    let client = Arc::new(ClusterClient::new(Arc::clone(&registry), config));
    tokio::spawn(compute_periodically(client));
    let shutdown = bound.shutdown_handle();
    let mut serving = tokio::spawn(bound.serve());
    println!("✅ Director ready: workers join through {addr}, clients ask here for a worker");
    tokio::select! {
        () = interrupted() => {
            println!("👋 director stopping");
            // With no worker left to tell, `leave` would wait for its own 30 s bound.
            let _ = tokio::time::timeout(Duration::from_secs(2), cluster.leave()).await;
            shutdown.shutdown(Duration::from_millis(500));
            let _ = serving.await;
            Ok(())
        }
        served = &mut serving => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the server stopped: {}", one_line(&e))),
            Err(e) => Err(format!("the server task ended: {e}")),
        },
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("❌ director: {error}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("❌ director: {error}");
            ExitCode::FAILURE
        }
    }
}
