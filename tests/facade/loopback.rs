//! A loopback server on an ephemeral port with the bundled development certificate, and
//! clients for it: the setup every test over real QUIC shares.

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet::{RpcClient, RpcConfig, RpcServer};

/// Generous bound for anything that waits on the real network: tests assert outcomes,
/// not speed.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A configuration for 127.0.0.1, port 0, with the bundled certificate and key.
pub(crate) fn config() -> RpcConfig {
    RpcConfig::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/certs/test_cert.pem"),
        "127.0.0.1:0",
    )
    .with_key_path(concat!(env!("CARGO_MANIFEST_DIR"), "/certs/test_key.pem"))
    .with_server_name("localhost")
}

/// Starts a server with the services `add` adds, serving in a background task, and
/// returns its real address.
pub(crate) fn serve(add: impl FnOnce(&mut RpcServer)) -> SocketAddr {
    let mut server = RpcServer::new(config());
    add(&mut server);
    let bound = server
        .bind()
        .expect("the server binds to an ephemeral port");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    addr
}

/// An untyped client connected to `addr`, for wrapping in generated clients.
pub(crate) async fn connect(addr: SocketAddr) -> RpcClient {
    tokio::time::timeout(PATIENCE, RpcClient::connect(addr, config()))
        .await
        .expect("connecting does not hang")
        .expect("the client connects")
}

/// Waits for `future`, failing the test if the network makes it hang.
pub(crate) async fn within<F: std::future::IntoFuture>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future.into_future())
        .await
        .expect("the call completes within the test's patience")
}
