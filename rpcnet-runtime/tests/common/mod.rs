//! Shared set-up for the runtime's loopback tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet_runtime::{BoundServer, RpcClient, RpcConfig, RpcServer, ShutdownHandle};

/// The bundled development certificate.
pub fn cert_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem")
}

/// The bundled development key.
pub fn key_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_key.pem")
}

/// A configuration on the bundled certificate, binding `bind`.
pub fn config(bind: &str) -> RpcConfig {
    RpcConfig::new(cert_path(), bind)
        .with_key_path(key_path())
        .with_server_name("localhost")
}

/// A generous bound for things that should happen promptly over loopback.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server serving in a background task.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Stops it.
    pub shutdown: ShutdownHandle,
    /// The serve task.
    pub task: tokio::task::JoinHandle<Result<(), rpcnet_runtime::RpcError>>,
}

/// Binds `server` and serves it in a background task.
pub fn start(server: RpcServer) -> Running {
    let bound: BoundServer = server.bind().expect("server binds");
    let addr = bound.local_addr();
    let shutdown = bound.shutdown_handle();
    let task = tokio::spawn(bound.serve());
    Running {
        addr,
        shutdown,
        task,
    }
}

/// A client of the server at `addr`.
pub async fn client(addr: SocketAddr) -> RpcClient {
    RpcClient::connect(addr, config("127.0.0.1:0"))
        .await
        .expect("client connects")
}
