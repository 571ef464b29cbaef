//! `rpcnet-bench memory`: the server-side memory cost of idle connections and of calls in
//! flight, measured as the growth of the process's resident set in one process.

use std::sync::Arc;
use std::time::Duration;

use rpcnet::{MethodHandler, RpcClient, RpcConfig, RpcServer, UnaryCall};
use tokio::sync::Semaphore;

use crate::transport::{CERT, KEY};

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn config(bind: &str) -> RpcConfig {
    RpcConfig::new(CERT, bind)
        .with_key_path(KEY)
        .with_server_name("localhost")
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Prints bytes per idle connection and per in-flight unary call.
pub(crate) async fn run(connections: usize, calls: usize) -> Result<(), String> {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let held = Arc::clone(&gate);
    server.register_handler(
        "Mem.hold",
        MethodHandler::unary(move |(): ()| {
            let held = Arc::clone(&held);
            async move {
                let _permit = held.acquire().await;
                Ok::<_, ()>(())
            }
        }),
    );
    let bound = server.bind().map_err(|e| e.to_string())?;
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());

    // Clients live in this process too; measure them separately from the connections.
    let endpoint =
        rpcnet::ClientEndpoint::new(&config("127.0.0.1:0")).map_err(|e| e.to_string())?;
    settle().await;
    let before = rss();
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = RpcClient::connect_via(&endpoint, addr, config("127.0.0.1:0"))
            .await
            .map_err(|e| e.to_string())?;
        clients.push(client);
    }
    settle().await;
    let after_connections = rss();
    let per_connection = after_connections.saturating_sub(before) / connections as u64;
    println!(
        "memory: {connections} idle connections: {} KiB each (client and server side together)",
        per_connection / 1024
    );

    let client = clients[0].clone();
    let before_calls = rss();
    let mut pending = Vec::with_capacity(calls);
    for _ in 0..calls {
        let call = UnaryCall::<(), (), ()>::new(client.clone(), "Mem.hold", ());
        pending.push(tokio::spawn(std::future::IntoFuture::into_future(call)));
    }
    settle().await;
    let after_calls = rss();
    let per_call = after_calls.saturating_sub(before_calls) / calls as u64;
    println!(
        "memory: {calls} in-flight calls on one connection: {per_call} bytes each (client and server side together)"
    );
    gate.add_permits(calls);
    let mut errors = 0;
    for call in pending {
        if !matches!(call.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    println!("memory: calls completed, errors={errors}");
    Ok(())
}
