//! The cluster scenarios: `pick_1000` (choosing a worker, in-process), `route_c64`
//! (`unary_c64` through `ClusterClient` against direct clients) and `slow_worker` (one of
//! five workers ten times slower, per strategy). The nodes of a scenario run in this
//! process, on loopback, and share its runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnet::cluster::{
    Cluster, ClusterClient, ClusterConfig, LoadBalancingStrategy, NodeConfig, NodeId, PickedWorker,
    TagFilter, Tags, WorkerRegistry,
};
use rpcnet::{CallOptions, RpcClient, RpcServer};

use crate::rpc::chain;
use crate::transport::{Limits, CERT, KEY};
use crate::workload::{echo_scenario, Target, DEADLINE, SMALL};

const STRATEGIES: [(LoadBalancingStrategy, &str); 4] = [
    (LoadBalancingStrategy::RoundRobin, "round_robin"),
    (LoadBalancingStrategy::Random, "random"),
    (LoadBalancingStrategy::LeastConnections, "least_connections"),
    (LoadBalancingStrategy::PowerOfTwoChoices, "power_of_two"),
];

/// Runs one cluster scenario, or all of them.
pub(crate) async fn run(scenario: &str) -> Result<(), String> {
    let all = scenario == "all";
    let mut ran = false;
    if all || scenario == "pick_1000" {
        pick_1000();
        ran = true;
    }
    if all || scenario == "route_c64" {
        route_c64().await?;
        ran = true;
    }
    if all || scenario == "slow_worker" {
        slow_worker().await?;
        ran = true;
    }
    if ran {
        Ok(())
    } else {
        Err(format!("unknown cluster scenario `{scenario}`"))
    }
}

fn tags(pairs: &[(&str, &str)]) -> Result<Tags, String> {
    pairs.iter().try_fold(Tags::new(), |t, (k, v)| {
        t.with(*k, *v).map_err(|e| e.to_string())
    })
}

/// Choosing a worker among 1,000 (250 match the two-tag filter), per strategy: the pool
/// idle (no call in flight), then busy (one call in flight on every worker, so
/// least-connections finds no idle worker and looks at every candidate). Reports the
/// median and p99 of the mean time per pick over batches of 1,000 picks.
fn pick_1000() {
    for (strategy, name) in STRATEGIES {
        let workers = (0..1000u32).map(|i| {
            let id = NodeId::new(format!("worker-{i:04}")).expect("a short id");
            let addr = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8], 7000));
            let zone = if i % 2 == 0 { "eu" } else { "us" };
            let gpu = if i % 4 < 2 { "true" } else { "false" };
            let label = format!("{i}");
            let tags = tags(&[
                ("role", "worker"),
                ("zone", zone),
                ("gpu", gpu),
                ("label", &label),
            ])
            .expect("small tags");
            (id, addr, tags)
        });
        let registry = WorkerRegistry::fixed(workers, strategy);
        let filter = TagFilter::new()
            .with_tag("zone", "eu")
            .with_tag("gpu", "true");
        for pool in ["idle", "busy"] {
            let _held: Vec<PickedWorker> = if pool == "busy" {
                (0..1000)
                    .filter_map(|i| {
                        registry.pick(&TagFilter::new().with_tag("label", format!("{i}")))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            for _ in 0..10_000 {
                std::hint::black_box(registry.pick(&filter));
            }
            let mut per_pick_ns: Vec<f64> = (0..1000)
                .map(|_| {
                    let began = Instant::now();
                    for _ in 0..1000 {
                        std::hint::black_box(registry.pick(&filter));
                    }
                    began.elapsed().as_nanos() as f64 / 1000.0
                })
                .collect();
            per_pick_ns.sort_by(f64::total_cmp);
            let p50 = per_pick_ns[per_pick_ns.len() / 2];
            let p99 = per_pick_ns[per_pick_ns.len() * 99 / 100];
            println!(
                "scenario=pick_1000 strategy={name} pool={pool} candidates=250 p50_ns={p50:.0} p99_ns={p99:.0}"
            );
        }
    }
}

fn config(bind: &str) -> rpcnet::RpcConfig {
    let config = rpcnet::RpcConfig::new(CERT, bind)
        .with_key_path(KEY)
        .with_server_name("localhost");
    Limits::rpcnet_defaults().apply_to(config)
}

fn cluster_config() -> ClusterConfig {
    ClusterConfig::default()
        .with_gossip_interval(Duration::from_millis(100))
        .with_health_check_interval(Duration::from_millis(500))
}

/// A worker's handler delay, in microseconds, changeable while it runs.
type Delay = Arc<AtomicU64>;

/// Starts a worker serving `echo` (returns the request after its delay, if any).
fn start_worker(
    name: &str,
    seed: SocketAddr,
    delay: Delay,
) -> Result<(Cluster, SocketAddr), String> {
    let config = config("127.0.0.1:0");
    let mut server = RpcServer::new(config.clone());
    server.register("echo", move |_, request| {
        let micros = delay.load(Ordering::Relaxed);
        async move {
            if micros > 0 {
                tokio::time::sleep(Duration::from_micros(micros)).await;
            }
            Ok(request)
        }
    });
    let bound = server.bind().map_err(|e| chain(&e))?;
    let addr = bound.local_addr();
    let node = NodeConfig::new(NodeId::new(name).map_err(|e| e.to_string())?)
        .with_tags(tags(&[("role", "worker")])?)
        .with_seeds([seed.to_string()])
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &config, node).map_err(|e| chain(&e))?;
    tokio::spawn(bound.serve());
    Ok((cluster, addr))
}

/// A director node (tagged `role=director`) and `delays.len()` workers, once every worker
/// is in a registry's pool.
async fn start_cluster(
    delays: &[Delay],
) -> Result<(Cluster, Vec<Cluster>, Vec<SocketAddr>), String> {
    let config = config("127.0.0.1:0");
    let bound = RpcServer::new(config.clone())
        .bind()
        .map_err(|e| chain(&e))?;
    let seed = bound.local_addr();
    let node = NodeConfig::new(NodeId::new("director").map_err(|e| e.to_string())?)
        .with_tags(tags(&[("role", "director")])?)
        .with_cluster_config(cluster_config());
    let director = Cluster::start(&bound, &config, node).map_err(|e| chain(&e))?;
    tokio::spawn(bound.serve());
    let mut workers = Vec::new();
    let mut addrs = Vec::new();
    for (i, delay) in delays.iter().enumerate() {
        let (cluster, addr) = start_worker(&format!("worker-{i}"), seed, Arc::clone(delay))?;
        workers.push(cluster);
        addrs.push(addr);
    }
    let registry = WorkerRegistry::new(director.clone(), LoadBalancingStrategy::RoundRobin);
    registry.start().await;
    if !registry
        .wait_for_worker(&TagFilter::new(), Duration::from_secs(30))
        .await
    {
        return Err("no worker joined".into());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.workers().len() < delays.len() {
        if Instant::now() > deadline {
            return Err("not every worker joined".into());
        }
        let mut events = registry.subscribe();
        let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    }
    Ok((director, workers, addrs))
}

/// Calls through a `ClusterClient`.
#[derive(Clone)]
struct Routed {
    client: Arc<ClusterClient>,
    name: &'static str,
}

impl Target for Routed {
    async fn echo(&self, payload: bytes::Bytes) -> Result<bytes::Bytes, String> {
        let reply = self
            .client
            .call_worker("echo", payload, TagFilter::new())
            .timeout(DEADLINE)
            .await
            .map_err(|e| chain(&e))?;
        Ok(bytes::Bytes::from(reply))
    }

    async fn stream(&self, _: u32, _: u32) -> Result<u64, String> {
        Err("not a streaming scenario".into())
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

/// Calls straight to the workers, each call to the next worker in turn.
#[derive(Clone)]
struct Direct {
    clients: Arc<[RpcClient]>,
    next: Arc<AtomicUsize>,
}

impl Target for Direct {
    async fn echo(&self, payload: bytes::Bytes) -> Result<bytes::Bytes, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i]
            .call_raw("echo", payload, CallOptions::default().timeout(DEADLINE))
            .await
            .map_err(|e| chain(&e))
    }

    async fn stream(&self, _: u32, _: u32) -> Result<u64, String> {
        Err("not a streaming scenario".into())
    }

    fn name(&self) -> &'static str {
        "direct"
    }
}

/// `unary_c64` (64 B, 64 tasks) to 3 workers: through a `ClusterClient` (least
/// connections) and through three direct clients, alternately, twice.
async fn route_c64() -> Result<(), String> {
    let delays: Vec<Delay> = (0..3).map(|_| Delay::default()).collect();
    let (director, _workers, addrs) = start_cluster(&delays).await?;
    let registry = Arc::new(WorkerRegistry::new(
        director.clone(),
        LoadBalancingStrategy::LeastConnections,
    ));
    registry.start().await;
    let routed = Routed {
        client: Arc::new(ClusterClient::new(registry, config("127.0.0.1:0"))),
        name: "cluster",
    };
    let mut clients = Vec::new();
    for addr in &addrs {
        clients.push(
            RpcClient::connect(*addr, config("127.0.0.1:0"))
                .await
                .map_err(|e| chain(&e))?,
        );
    }
    let direct = Direct {
        clients: clients.into(),
        next: Arc::default(),
    };
    for round in 0..2 {
        if round % 2 == 0 {
            echo_scenario(direct.clone(), "route_c64", SMALL, 64).await;
            echo_scenario(routed.clone(), "route_c64", SMALL, 64).await;
        } else {
            echo_scenario(routed.clone(), "route_c64", SMALL, 64).await;
            echo_scenario(direct.clone(), "route_c64", SMALL, 64).await;
        }
    }
    Ok(())
}

/// Five workers answering after 2 ms, 32 tasks in a closed loop of 64 B calls, per
/// strategy: all fast, then with one worker answering after 20 ms.
async fn slow_worker() -> Result<(), String> {
    const FAST_US: u64 = 2_000;
    const SLOW_US: u64 = 20_000;
    let delays: Vec<Delay> = (0..5).map(|_| Arc::new(AtomicU64::new(FAST_US))).collect();
    let (director, _workers, _) = start_cluster(&delays).await?;
    for (strategy, name) in STRATEGIES {
        for slow in [false, true] {
            delays[4].store(if slow { SLOW_US } else { FAST_US }, Ordering::Relaxed);
            let registry = Arc::new(WorkerRegistry::new(director.clone(), strategy));
            registry.start().await;
            let label: &'static str = Box::leak(
                format!("{name}/{}", if slow { "one_slow" } else { "all_fast" }).into_boxed_str(),
            );
            let routed = Routed {
                client: Arc::new(ClusterClient::new(registry, config("127.0.0.1:0"))),
                name: label,
            };
            echo_scenario(routed, "slow_worker", SMALL, 32).await;
        }
    }
    Ok(())
}
