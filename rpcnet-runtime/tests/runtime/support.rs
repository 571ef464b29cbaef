//! Shared set-up for the runtime's loopback tests.

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet_runtime::{BoundServer, RpcClient, RpcConfig, RpcServer, ShutdownHandle};

/// The bundled development certificate.
pub(crate) fn cert_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem")
}

/// The bundled development key.
pub(crate) fn key_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_key.pem")
}

/// A configuration on the bundled certificate, binding `bind`.
pub(crate) fn config(bind: &str) -> RpcConfig {
    RpcConfig::new(cert_path(), bind)
        .with_key_path(key_path())
        .with_server_name("localhost")
}

/// A generous bound for things that should happen promptly over loopback.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A server serving in a background task.
#[derive(Debug)]
pub(crate) struct Running {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Stops it.
    pub(crate) shutdown: ShutdownHandle,
    /// The serve task.
    pub(crate) task: tokio::task::JoinHandle<Result<(), rpcnet_runtime::RpcError>>,
}

/// Binds `server` and serves it in a background task.
pub(crate) fn start(server: RpcServer) -> Running {
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
pub(crate) async fn client(addr: SocketAddr) -> RpcClient {
    RpcClient::connect(addr, config("127.0.0.1:0"))
        .await
        .expect("client connects")
}

/// Waits until `condition` holds, checking every 10 ms; fails the test after [`PATIENCE`].
pub(crate) async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Counts one when dropped: put one in a handler's future to learn that the server dropped
/// it (`std::mem::forget` it on the path that finishes normally).
#[derive(Debug)]
pub(crate) struct DropCounter(pub(crate) std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
