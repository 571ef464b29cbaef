//! A worker: serves `compute` and `Inference::generate`, joins the cluster through the
//! director tagged `role=worker,label=<label>`, logs the cluster events it sees and, with
//! `WORKER_FAILURE_ENABLED=true`, fails and recovers on a cycle.
//!
//! ```text
//! WORKER_LABEL=worker-a WORKER_ADDR=127.0.0.1:62001 DIRECTOR_ADDR=127.0.0.1:61000 \
//!     cargo run --manifest-path examples/cluster/Cargo.toml --bin worker
//! ```
//!
//! `WORKER_BIND_ADDR` and `WORKER_ADVERTISE_ADDR` split `WORKER_ADDR` into the address the
//! worker binds and the one the cluster (and the clients the director sends) reach it at:
//! a container binding `0.0.0.0` advertises its pod IP, and the chaos harness puts a
//! delaying relay in front of the worker. `DIRECTOR_ADDR` may be a host name; the cluster
//! layer looks it up again until it resolves. For the chaos harness, `WORKER_REQUEST_LOG`
//! names a file where the `record` method appends each request id it executes, and
//! `MEMBERSHIP_LOG` one where the node writes its membership view. The example's README
//! lists every variable.
//!
//! A simulated failure is announced: the worker ends its open streams with
//! `InferenceError::WorkerFailed`, refuses every call, and leaves the routing pool
//! gracefully by re-tagging itself `role=failed-worker`, so the director drops it at once
//! instead of after failure detection; on recovery it tags itself `role=worker` again. A
//! silent crash is what `kill -9` shows; the example's README says why both.

// The binaries own their console output: these lines are the scenario's user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use rpcnet::cluster::{Cluster, ClusterEvent, NodeConfig, NodeId, Tags};
use rpcnet::{Code, RpcServer, ShutdownHandle, Status};
use rpcnet_cluster_example::chaos::records::{log_views, RequestLog};
use rpcnet_cluster_example::console::{init_tracing, interrupted, one_line};
use rpcnet_cluster_example::services::{
    Inference, InferenceError, InferenceRequest, InferenceResponse, InferenceServer,
    COMPUTE_METHOD, RECORD_METHOD,
};
use rpcnet_cluster_example::settings::{
    bool_var, cluster_config, host_port_var, var_or, vars, Addresses, FailureCycle, Tls,
    DEFAULT_DIRECTOR_ADDR, DEFAULT_WORKER_ADDR, DEFAULT_WORKER_LABEL,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a `generate` stream produces a token.
const TOKEN_INTERVAL: Duration = Duration::from_millis(200);

/// The worker's model: streams `token-<n>` every [`TOKEN_INTERVAL`] until the worker fails.
struct Model {
    label: String,
    /// `true` while the worker is failed.
    failed: watch::Receiver<bool>,
}

impl Inference for Model {
    async fn generate(
        &self,
        mut request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    > {
        let label = self.label.clone();
        if *self.failed.borrow() {
            return Err(InferenceError::Unavailable { worker: label });
        }
        let first = request.next().await.ok_or(InferenceError::NoRequest)?;
        let start = first.next_sequence.max(1);
        println!("🎬 [{label}] streaming tokens from sequence={start}");
        let state = (start, self.failed.clone(), false);
        let tokens = futures::stream::unfold(state, move |(sequence, mut failed, done)| {
            let label = label.clone();
            async move {
                if done {
                    return None;
                }
                let worker_failed = tokio::select! {
                    () = tokio::time::sleep(TOKEN_INTERVAL) => false,
                    _ = failed.wait_for(|failed| *failed) => true,
                };
                if worker_failed {
                    let failure = InferenceError::WorkerFailed { worker: label };
                    return Some((Err(failure), (sequence, failed, true)));
                }
                let token = InferenceResponse {
                    sequence,
                    text: format!("token-{sequence}"),
                    worker: label,
                };
                Some((Ok(token), (sequence + 1, failed, false)))
            }
        });
        Ok(Box::pin(tokens))
    }
}

/// What the worker is configured with.
struct Settings {
    label: String,
    /// Where it binds and what it advertises (`WORKER_ADDR`, `WORKER_BIND_ADDR`,
    /// `WORKER_ADVERTISE_ADDR`).
    addresses: Addresses,
    /// The director to join through: `host:port`, resolved by the cluster layer.
    director: String,
    tls: Tls,
    failure: Option<FailureCycle>,
    /// Where `record` appends request ids (`WORKER_REQUEST_LOG`; none by default).
    request_log: Option<PathBuf>,
    /// Where the node writes its membership view (`MEMBERSHIP_LOG`; none by default).
    membership_log: Option<PathBuf>,
}

/// A path from the variable `name`, if it is set.
fn path_var(name: &str) -> Option<PathBuf> {
    Some(PathBuf::from(var_or(name, ""))).filter(|p| !p.as_os_str().is_empty())
}

fn settings() -> Result<Settings, Box<dyn std::error::Error>> {
    let label = var_or(vars::WORKER_LABEL, DEFAULT_WORKER_LABEL);
    NodeId::new(label.clone()).map_err(|e| format!("WORKER_LABEL={label:?}: {e}"))?;
    Ok(Settings {
        addresses: Addresses::from_env(
            vars::WORKER_ADDR,
            vars::WORKER_BIND_ADDR,
            vars::WORKER_ADVERTISE_ADDR,
            DEFAULT_WORKER_ADDR,
        )?,
        director: host_port_var(vars::DIRECTOR_ADDR, DEFAULT_DIRECTOR_ADDR)?,
        tls: Tls::from_env()?,
        failure: if bool_var(vars::WORKER_FAILURE_ENABLED, false)? {
            Some(FailureCycle::from_env()?)
        } else {
            None
        },
        request_log: path_var(vars::WORKER_REQUEST_LOG),
        membership_log: path_var(vars::MEMBERSHIP_LOG),
        label,
    })
}

/// The running worker: its server and its cluster node.
struct Running {
    cluster: Cluster,
    shutdown: ShutdownHandle,
    serving: JoinHandle<()>,
    events: JoinHandle<()>,
}

impl Running {
    /// Binds the worker's port and joins the cluster through the director.
    async fn start(settings: &Settings, failed: &watch::Receiver<bool>) -> Result<Running, String> {
        let label = settings.label.clone();
        let config = settings.tls.rpc_config(settings.addresses.bind);
        let bound = {
            let mut server = RpcServer::new(config.clone());
            server.add_service(InferenceServer::new(Model {
                label: label.clone(),
                failed: failed.clone(),
            }));
            let (compute_label, compute_failed) = (label.clone(), failed.clone());
            server.register(COMPUTE_METHOD, move |_ctx, request| {
                let answer = if *compute_failed.borrow() {
                    Err(Status::new(Code::Unavailable, "the worker is failed"))
                } else {
                    Ok(format!("{compute_label}:{}", request.len())
                        .into_bytes()
                        .into())
                };
                async move { answer }
            });
            let log = match &settings.request_log {
                Some(path) => Some(Arc::new(RequestLog::open(path).map_err(|e| {
                    format!("cannot open the request log {}: {e}", path.display())
                })?)),
                None => None,
            };
            let (record_label, record_failed) = (label.clone(), failed.clone());
            server.register(RECORD_METHOD, move |_ctx, request| {
                let answer = record(&record_label, &record_failed, log.as_deref(), &request);
                async move { answer }
            });
            server.bind().map_err(|error| {
                format!(
                    "cannot serve on {}: {}",
                    settings.addresses.bind,
                    one_line(&error)
                )
            })?
        };
        let tags = tags(&label, false)?;
        let mut node = NodeConfig::new(NodeId::new(label.clone()).map_err(|e| e.to_string())?)
            .with_tags(tags)
            .with_seeds([settings.director.clone()])
            .with_cluster_config(cluster_config());
        if let Some(addr) = settings.addresses.advertise {
            node = node.with_advertise_addr(addr);
        }
        let cluster = Cluster::start(&bound, &config, node)
            .map_err(|e| format!("cannot start the cluster node: {}", one_line(&e)))?;
        let events = tokio::spawn(log_events(label.clone(), cluster.clone()));
        if let Some(path) = settings.membership_log.clone() {
            let (cluster, label) = (cluster.clone(), label.clone());
            tokio::spawn(async move {
                if let Err(e) = log_views(cluster, &path).await {
                    eprintln!("❌ [{label}] membership log {}: {e}", path.display());
                }
            });
        }
        let shutdown = bound.shutdown_handle();
        let serving = tokio::spawn(async move {
            if let Err(error) = bound.serve().await {
                eprintln!("❌ [{label}] server stopped: {}", one_line(&error));
            }
        });
        Ok(Running {
            cluster,
            shutdown,
            serving,
            events,
        })
    }

    /// Waits until the director is a live member of this node's view, saying so every few
    /// seconds while it is not.
    async fn wait_for_director(&self, settings: &Settings) {
        let mut waited = Duration::ZERO;
        let step = Duration::from_secs(5);
        while !self
            .cluster
            .live_members()
            .iter()
            .any(|m| m.tags().get("role") == Some("director"))
        {
            match tokio::time::timeout(step, self.cluster.changed()).await {
                Ok(Ok(())) => continue,
                // The node has stopped: nothing more will change.
                Ok(Err(_)) => return,
                Err(_) => waited += step,
            }
            println!(
                "⏳ [{}] waiting for the director at {} ({}s; is it running?)",
                settings.label,
                settings.director,
                waited.as_secs()
            );
        }
    }

    /// Leaves the cluster gracefully, then closes the port (on Ctrl+C).
    async fn end(self) {
        // A node with nobody left to tell waits for `leave`'s own 30 s bound; two seconds
        // are plenty for the goodbye to reach a live director.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.cluster.leave()).await;
        self.shutdown.shutdown(Duration::from_millis(500));
        let _ = self.serving.await;
        self.events.abort();
    }
}

/// The `record` method: appends the request id to the request log, then answers
/// `<label>:<request id>`.
fn record(
    label: &str,
    failed: &watch::Receiver<bool>,
    log: Option<&RequestLog>,
    request: &[u8],
) -> Result<bytes::Bytes, Status> {
    if *failed.borrow() {
        return Err(Status::new(Code::Unavailable, "the worker is failed"));
    }
    let id = std::str::from_utf8(request)
        .ok()
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
        .ok_or_else(|| {
            Status::new(
                Code::InvalidArgument,
                "a request id is non-empty UTF-8 without spaces",
            )
        })?;
    if let Some(log) = log {
        log.record(id)
            .map_err(|e| Status::new(Code::Internal, format!("cannot record: {e}")))?;
    }
    Ok(format!("{label}:{id}").into_bytes().into())
}

/// Logs every membership change this node sees.
async fn log_events(label: String, cluster: Cluster) {
    let mut events = cluster.subscribe();
    drop(cluster);
    while let Some(event) = events.recv().await {
        let event = match event {
            Ok(event) => event,
            Err(lagged) => {
                println!("⚠️  [{label}] cluster: {lagged}; the view is current again");
                continue;
            }
        };
        let member = event.member();
        let (id, addr) = (member.id(), member.addr());
        let role = member.tags().get("role").unwrap_or("?");
        match &event {
            ClusterEvent::NodeJoined(_) => {
                println!("👋 [{label}] cluster: {id} joined ({addr}, role={role})")
            }
            ClusterEvent::NodeLeft(_) => println!("🚪 [{label}] cluster: {id} left"),
            ClusterEvent::NodeFailed(_) => println!("💀 [{label}] cluster: {id} failed"),
            ClusterEvent::NodeRecovered(_) => println!("💚 [{label}] cluster: {id} recovered"),
            ClusterEvent::TagsChanged(_) => {
                println!("🏷️  [{label}] cluster: {id} changed its tags")
            }
            _ => println!("ℹ️  [{label}] cluster: {event:?}"),
        }
    }
}

/// Runs `future` unless Ctrl+C comes first (then `None`).
async fn unless_interrupted<F: Future>(future: F) -> Option<F::Output> {
    tokio::select! {
        output = future => Some(output),
        () = interrupted() => None,
    }
}

/// The worker's tags: `role=worker,label=<label>` while serving, `role=failed-worker` while
/// failed (the registry's pool takes members tagged `role=worker` only).
fn tags(label: &str, failed: bool) -> Result<Tags, String> {
    let role = if failed { "failed-worker" } else { "worker" };
    Tags::new()
        .with("role", role)
        .and_then(|t| t.with("label", label))
        .map_err(|e| format!("tags: {e}"))
}

async fn run(settings: Settings) -> Result<(), String> {
    let label = settings.label.clone();
    println!(
        "👷 Starting Worker '{label}' at {} (director {}, failure simulation {})",
        settings.addresses.public(),
        settings.director,
        if settings.failure.is_some() {
            "on"
        } else {
            "off"
        }
    );
    let (failed_tx, failed) = watch::channel(false);
    let running = Running::start(&settings, &failed).await?;
    if unless_interrupted(running.wait_for_director(&settings))
        .await
        .is_none()
    {
        return stop(&label, running).await;
    }
    println!("✅ Worker '{label}' joined cluster with role=worker, label={label}");
    let Some(cycle) = settings.failure else {
        interrupted().await;
        return stop(&label, running).await;
    };
    loop {
        if unless_interrupted(tokio::time::sleep(cycle.serve))
            .await
            .is_none()
        {
            return stop(&label, running).await;
        }
        println!(
            "⚠️  [{label}] Simulating worker failure in {} seconds...",
            cycle.warning.as_secs_f64()
        );
        if unless_interrupted(tokio::time::sleep(cycle.warning))
            .await
            .is_none()
        {
            return stop(&label, running).await;
        }
        println!("💥 [{label}] Worker failed!");
        // Streams end with an error and calls are refused from now on; the new tags take
        // the worker out of every registry's pool (calls in flight there fail at once).
        failed_tx.send_replace(true);
        set_tags(&running, &label, true).await?;
        if unless_interrupted(tokio::time::sleep(cycle.down))
            .await
            .is_none()
        {
            return stop(&label, running).await;
        }
        println!("🔄 [{label}] Worker recovering...");
        failed_tx.send_replace(false);
        set_tags(&running, &label, false).await?;
        println!("✅ [{label}] Worker recovered and ready to serve!");
    }
}

async fn set_tags(running: &Running, label: &str, failed: bool) -> Result<(), String> {
    running
        .cluster
        .set_tags(tags(label, failed)?)
        .await
        .map_err(|e| format!("cannot change the worker's tags: {}", one_line(&e)))
}

async fn stop(label: &str, running: Running) -> Result<(), String> {
    println!("👋 [{label}] leaving the cluster and stopping");
    running.end().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("❌ worker: {error}");
            return ExitCode::from(2);
        }
    };
    let label = settings.label.clone();
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("❌ [{label}] {error}");
            ExitCode::FAILURE
        }
    }
}
