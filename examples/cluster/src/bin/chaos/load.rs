//! `chaos load`: the load generator. It joins the cluster as the node `load`
//! (`role=load`), routes steady unary calls of the workers' `record` method through a
//! `WorkerRegistry` and a `ClusterClient`, each with a unique request id — nine in ten
//! marked retry-safe (`s-<n>`), the tenth not (`u-<n>`) — and writes what it was told
//! about each call to `calls.log`. It prints `LOAD STARTED <ms>` once it sees all three
//! workers and `LOAD DONE <ms>` when the last call has ended.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnet::cluster::{
    Cluster, ClusterClient, LoadBalancingStrategy, NodeConfig, NodeId, RetryBudget, TagFilter,
    Tags, WorkerRegistry,
};
use rpcnet::RpcServer;
use rpcnet_cluster_example::chaos::plan::WORKERS;
use rpcnet_cluster_example::chaos::records::{append, log_views, now_ms, Call, CallOutcome};
use rpcnet_cluster_example::console::one_line;
use rpcnet_cluster_example::services::RECORD_METHOD;
use rpcnet_cluster_example::settings::{cluster_config, rpc_config};
use std::io::Write;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use super::Options;

/// Each call's timeout, its retries included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call with no worker in the pool waits for one.
const WAIT_FOR_WORKER: Duration = Duration::from_secs(5);
/// Retries allowed per call made over the budget's window. The default budget (0.2) is
/// spent when both workers that take the calls hang for seconds at once (one killed, one
/// partitioned, until detection): at 100 calls a second that is hundreds of calls to retry.
const RETRY_RATIO: f64 = 1.0;
/// How long the load generator waits for the three workers before giving up.
const STARTUP: Duration = Duration::from_secs(90);
/// The `ClusterClient`'s debug event for a retry, which the retry count counts.
const RETRY_EVENT: &str = "retrying on another worker";
/// The module that emits it.
const RETRY_TARGET: &str = "rpcnet_cluster::routing";

/// Counts the `ClusterClient`'s retries from its debug events (it has no counter of its own).
#[derive(Debug, Clone, Default)]
struct RetryCounter(Arc<AtomicU64>);

/// Finds whether an event's message is [`RETRY_EVENT`].
#[derive(Debug, Default)]
struct IsRetry(bool);

impl Visit for IsRetry {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == RETRY_EVENT {
            self.0 = true;
        }
    }
}

impl<S: Subscriber> Layer<S> for RetryCounter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut is_retry = IsRetry::default();
        event.record(&mut is_retry);
        if is_retry.0 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) fn main(options: &Options) -> Result<bool, String> {
    let settings = Settings {
        director: options.parse_as("director")?,
        bind: options.parse_as("bind")?,
        out: PathBuf::from(options.get("out")?),
        duration: Duration::from_secs(options.parse_as("duration")?),
        rate: options.parse_or("rate", 100u32)?.max(1),
        unsafe_every: options.parse_or("unsafe-every", 10u64)?.max(1),
    };
    let retries = RetryCounter::default();
    let console = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(console),
        )
        .with(
            retries
                .clone()
                .with_filter(Targets::new().with_target(RETRY_TARGET, Level::DEBUG)),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(load(settings, retries))
}

#[derive(Debug)]
struct Settings {
    director: SocketAddr,
    bind: SocketAddr,
    out: PathBuf,
    duration: Duration,
    rate: u32,
    unsafe_every: u64,
}

async fn load(settings: Settings, retries: RetryCounter) -> Result<bool, String> {
    let config = rpc_config(settings.bind);
    let bound = RpcServer::new(config.clone())
        .bind()
        .map_err(|e| format!("cannot serve on {}: {}", settings.bind, one_line(&e)))?;
    let tags = Tags::new()
        .with("role", "load")
        .map_err(|e| e.to_string())?;
    let node = NodeConfig::new(NodeId::new("load").map_err(|e| e.to_string())?)
        .with_tags(tags)
        .with_seeds([settings.director.to_string()])
        .with_cluster_config(cluster_config());
    let cluster = Cluster::start(&bound, &config, node)
        .map_err(|e| format!("cannot start the cluster node: {}", one_line(&e)))?;
    let view_log = settings.out.join("view-load.log");
    let viewed = cluster.clone();
    tokio::spawn(async move {
        if let Err(e) = log_views(viewed, &view_log).await {
            eprintln!("❌ load: membership log: {e}");
        }
    });
    tokio::spawn(bound.serve());
    let registry = Arc::new(WorkerRegistry::new(
        cluster.clone(),
        LoadBalancingStrategy::default(),
    ));
    registry.start().await;
    let client = Arc::new(
        ClusterClient::new(Arc::clone(&registry), config)
            .with_wait_for_worker(WAIT_FOR_WORKER)
            .with_retry_budget(RetryBudget::new(Duration::from_secs(10), 10, RETRY_RATIO)),
    );
    let started = Instant::now();
    while registry.workers().len() < WORKERS {
        if started.elapsed() > STARTUP {
            return Err(format!(
                "only {} of {WORKERS} workers joined within {} s",
                registry.workers().len(),
                STARTUP.as_secs()
            ));
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), cluster.changed()).await;
    }
    println!("LOAD STARTED {}", now_ms());
    let (calls, written) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_calls(settings.out.join("calls.log"), written));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / settings.rate);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + settings.duration;
    let mut running = JoinSet::new();
    let mut n = 0u64;
    while Instant::now() < end {
        ticks.tick().await;
        n += 1;
        let retry_safe = n % settings.unsafe_every != 0;
        let id = format!("{}-{n}", if retry_safe { 's' } else { 'u' });
        let (client, calls) = (Arc::clone(&client), calls.clone());
        running.spawn(async move {
            let call = one_call(&client, id, retry_safe).await;
            let _ = calls.send(call);
        });
        // Reap finished calls as we go so the set stays small.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
    drop(calls);
    let lines = writer
        .await
        .map_err(|e| format!("the call writer stopped: {e}"))?
        .map_err(|e| format!("calls.log: {e}"))?;
    let mut file = append(&settings.out.join("calls.log")).map_err(|e| e.to_string())?;
    writeln!(file, "# retries={}", retries.0.load(Ordering::Relaxed)).map_err(|e| e.to_string())?;
    println!("LOAD DONE {} ({lines} calls)", now_ms());
    Ok(true)
}

async fn one_call(client: &ClusterClient, id: String, retry_safe: bool) -> Call {
    let workers = TagFilter::new().with_tag("role", "worker");
    let began = Instant::now();
    let outcome = client
        .call_worker(RECORD_METHOD, id.clone().into_bytes(), workers)
        .retry_safe(retry_safe)
        .timeout(CALL_TIMEOUT)
        .await;
    let (outcome, detail) = match outcome {
        Ok(reply) => {
            let reply = String::from_utf8_lossy(&reply).into_owned();
            match reply.split_once(':') {
                Some((worker, answered)) if answered == id => (CallOutcome::Ok, worker.to_owned()),
                _ => (CallOutcome::WrongReply, reply),
            }
        }
        Err(error) => (CallOutcome::Failed, one_line(&error)),
    };
    Call {
        at_ms: now_ms(),
        id,
        retry_safe,
        outcome,
        took_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
        detail,
    }
}

/// Writes each finished call to `path`; returns how many.
async fn write_calls(
    path: PathBuf,
    mut calls: mpsc::UnboundedReceiver<Call>,
) -> std::io::Result<u64> {
    let mut file = std::io::BufWriter::new(append(Path::new(&path))?);
    let mut n = 0;
    while let Some(call) = calls.recv().await {
        writeln!(file, "{}", call.line())?;
        n += 1;
    }
    file.flush()?;
    Ok(n)
}
