//! The client: asks the director for a worker, connects to it directly and streams tokens
//! (`Inference::generate`). When the stream fails (an error, or no token for
//! `CLIENT_STALL_SECS`, 2 s by default) it goes back to the director for another worker and
//! continues the sequence there: the request carries the next sequence number, so no token
//! number is repeated or skipped. `DIRECTOR_ADDR` may be a host name (a Kubernetes
//! Service): it is looked up again on every attempt to reach the director.
//!
//! ```text
//! DIRECTOR_ADDR=127.0.0.1:61000 cargo run --manifest-path examples/cluster/Cargo.toml --bin client
//! ```

// The binaries own their console output: these lines are the scenario's user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use rpcnet::CallError;
use rpcnet_cluster_example::console::{init_tracing, interrupted, one_line};
use rpcnet_cluster_example::services::{
    AssignRequest, DirectorClient, DirectorError, InferenceClient, InferenceRequest,
    WorkerAssignment,
};
use rpcnet_cluster_example::settings::{
    host_port_var, secs_var, vars, BadSetting, Tls, DEFAULT_DIRECTOR_ADDR,
};

/// How long the client waits before asking the director again.
const RETRY: Duration = Duration::from_secs(1);

/// Where the client is in its sequence.
#[derive(Debug, Default)]
struct Progress {
    /// The sequence number of the next token it expects.
    next: u64,
    /// Tokens received so far.
    total: u64,
}

/// Asks the director for a worker until it gets one, saying why while it does not.
async fn assignment(
    director: &str,
    tls: &Tls,
    client: &mut Option<DirectorClient>,
    mut avoid: Option<String>,
) -> WorkerAssignment {
    let config = tls.rpc_config(([127, 0, 0, 1], 0).into());
    loop {
        let connected = match client {
            Some(client) => client.clone(),
            None => match connect_director(director, config.clone()).await {
                Ok(connected) => client.insert(connected).clone(),
                Err(error) => {
                    println!(
                        "⏳ director at {director} not reachable yet ({}); retrying in {}s",
                        one_line(&*error),
                        RETRY.as_secs()
                    );
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let request = AssignRequest {
            avoid: avoid.take(),
        };
        match connected
            .assign_worker(request)
            .timeout(Duration::from_secs(3))
            .await
        {
            Ok(assignment) => return assignment,
            Err(CallError::Application(DirectorError::NoWorkersAvailable)) => {
                println!(
                    "⏳ the director has no worker available; asking again in {}s",
                    RETRY.as_secs()
                );
            }
            Err(error) => {
                println!(
                    "⏳ the director did not answer ({}); retrying in {}s",
                    one_line(&error),
                    RETRY.as_secs()
                );
                // Look the director up again: a restarted director may have a new
                // address behind the same name (a recreated Kubernetes pod).
                *client = None;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Looks `director` up (it may be a host name whose address changes) and connects to the
/// first of its addresses that answers.
async fn connect_director(
    director: &str,
    config: rpcnet::RpcConfig,
) -> Result<DirectorClient, Box<dyn std::error::Error + Send + Sync>> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(director).await? {
        match DirectorClient::connect(addr, config.clone()).await {
            Ok(client) => return Ok(client),
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) => error.into(),
        None => format!("{director} resolves to no address").into(),
    })
}

/// Streams tokens from `worker` until the stream fails; returns why it did.
async fn stream_tokens(
    worker: &WorkerAssignment,
    tls: &Tls,
    progress: &mut Progress,
    stall: Duration,
) -> String {
    let addr: SocketAddr = match worker.addr.parse() {
        Ok(addr) => addr,
        Err(_) => return format!("the director gave an unusable address {:?}", worker.addr),
    };
    let config = tls.rpc_config(([127, 0, 0, 1], 0).into());
    let client = match InferenceClient::connect(addr, config).await {
        Ok(client) => client,
        Err(error) => return format!("cannot connect to {}: {}", worker.label, one_line(&error)),
    };
    let request = InferenceRequest {
        prompt: "tell me about clusters".to_owned(),
        next_sequence: progress.next,
    };
    // One request, then the request side stays open for as long as the stream runs.
    let requests = futures::stream::iter([request]).chain(futures::stream::pending());
    let started = tokio::time::timeout(Duration::from_secs(3), client.generate(requests)).await;
    let mut tokens = match started {
        Ok(Ok(tokens)) => tokens,
        Ok(Err(error)) => {
            return format!("{} refused the stream: {}", worker.label, one_line(&error))
        }
        Err(_) => return format!("{} did not start the stream within 3s", worker.label),
    };
    println!(
        "🔗 connected to {} at {}, streaming from sequence={}",
        worker.label, worker.addr, progress.next
    );
    loop {
        match tokio::time::timeout(stall, tokens.next()).await {
            Ok(Some(Ok(token))) => {
                if token.sequence != progress.next {
                    println!(
                        "❗ unexpected token sequence={} (expected {}) from {}; ignored",
                        token.sequence, progress.next, token.worker
                    );
                    continue;
                }
                progress.next += 1;
                progress.total += 1;
                println!(
                    "📦 received token (sequence={}, text={:?}, total={}, worker={})",
                    token.sequence, token.text, progress.total, token.worker
                );
            }
            Ok(Some(Err(error))) => return one_line(&error),
            Ok(None) => return format!("{} ended the stream", worker.label),
            Err(_) => {
                return format!(
                    "no token from {} for {}s",
                    worker.label,
                    stall.as_secs_f64()
                )
            }
        }
    }
}

/// What the client is configured with.
struct Settings {
    director: String,
    stall: Duration,
    tls: Tls,
}

fn settings() -> Result<Settings, BadSetting> {
    Ok(Settings {
        director: host_port_var(vars::DIRECTOR_ADDR, DEFAULT_DIRECTOR_ADDR)?,
        stall: secs_var(vars::CLIENT_STALL_SECS, 2.0)?,
        tls: Tls::from_env()?,
    })
}

async fn run(settings: Settings) -> Result<(), String> {
    let Settings {
        director,
        stall,
        tls,
    } = settings;
    println!("🧑‍💻 Starting Client; director at {director}");
    let mut director_client = None;
    let mut progress = Progress { next: 1, total: 0 };
    let mut avoid = None;
    loop {
        let worker = assignment(&director, &tls, &mut director_client, avoid.take()).await;
        println!("📋 director assigned {} at {}", worker.label, worker.addr);
        let why = stream_tokens(&worker, &tls, &mut progress, stall).await;
        println!("⚠️  worker failed - will request new worker from director ({why})");
        println!("🔄 returning to director for new worker assignment");
        avoid = Some(worker.label);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("❌ client: {error}");
            return ExitCode::from(2);
        }
    };
    tokio::select! {
        outcome = run(settings) => match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("❌ client: {error}");
                ExitCode::FAILURE
            }
        },
        () = interrupted() => {
            println!("👋 client stopping");
            ExitCode::SUCCESS
        }
    }
}
