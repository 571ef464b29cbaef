//! The certificates and transport limits both implementations share.

use std::net::SocketAddr;

use s2n_quic::provider::{io, limits, tls};

/// The bundled development certificate and key.
pub(crate) const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem");
pub(crate) const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_key.pem");

/// Transport limits; `None` means s2n-quic's stock limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) stream_window: u64,
    pub(crate) connection_window: u64,
    pub(crate) send_buffer: u32,
    pub(crate) max_mtu: u16,
    pub(crate) max_streams: u64,
    pub(crate) socket_buffer: usize,
    pub(crate) stock: bool,
}

impl Limits {
    /// rpcnet's defaults, given to both sides.
    pub(crate) fn rpcnet_defaults() -> Self {
        Limits {
            stream_window: 4 * 1024 * 1024,
            connection_window: 16 * 1024 * 1024,
            send_buffer: 1024 * 1024,
            max_mtu: rpcnet::DEFAULT_MAX_MTU,
            max_streams: 1024,
            socket_buffer: 4 * 1024 * 1024,
            stock: false,
        }
    }

    pub(crate) fn apply_to(&self, config: rpcnet::RpcConfig) -> rpcnet::RpcConfig {
        config
            .with_flow_control_windows(self.stream_window, self.connection_window)
            .with_send_buffer_size(self.send_buffer)
            .with_max_mtu(self.max_mtu)
            .with_max_concurrent_streams(self.max_streams)
            .with_socket_buffer_size(self.socket_buffer)
    }

    fn quic(&self) -> Result<limits::Limits, String> {
        let base = limits::Limits::new()
            .with_max_open_local_bidirectional_streams(self.max_streams)
            .and_then(|l| l.with_max_open_remote_bidirectional_streams(self.max_streams));
        if self.stock {
            return base.map_err(|e| e.to_string());
        }
        base.and_then(|l| l.with_data_window(self.connection_window))
            .and_then(|l| l.with_bidirectional_local_data_window(self.stream_window))
            .and_then(|l| l.with_bidirectional_remote_data_window(self.stream_window))
            .and_then(|l| l.with_max_send_buffer_size(self.send_buffer))
            .map_err(|e| e.to_string())
    }

    fn io(&self, addr: SocketAddr) -> Result<io::tokio::Provider, String> {
        let builder = io::tokio::Provider::builder()
            .with_receive_address(addr)
            .map_err(|e| e.to_string())?;
        let builder = if self.stock {
            builder
        } else {
            builder
                .with_max_mtu(self.max_mtu)
                .and_then(|b| b.with_recv_buffer_size(self.socket_buffer))
                .and_then(|b| b.with_send_buffer_size(self.socket_buffer))
                .map_err(|e| e.to_string())?
        };
        builder.build().map_err(|e| e.to_string())
    }
}

pub(crate) fn server_endpoint(
    addr: SocketAddr,
    limits: &Limits,
) -> Result<s2n_quic::Server, String> {
    let cert = std::fs::read_to_string(CERT).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(KEY).map_err(|e| e.to_string())?;
    let tls = tls::default::Server::builder()
        .with_certificate(cert.as_str(), key.as_str())
        .and_then(|b| b.with_application_protocols([b"raw-bench".as_slice()]))
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    s2n_quic::Server::builder()
        .with_tls(tls)
        .map_err(|e| e.to_string())?
        .with_io(limits.io(addr)?)
        .map_err(|e| e.to_string())?
        .with_limits(limits.quic()?)
        .map_err(|e| e.to_string())?
        .start()
        .map_err(|e| e.to_string())
}

pub(crate) fn client_endpoint(limits: &Limits) -> Result<s2n_quic::Client, String> {
    let cert = std::fs::read_to_string(CERT).map_err(|e| e.to_string())?;
    let tls = tls::default::Client::builder()
        .with_certificate(cert.as_str())
        .and_then(|b| b.with_application_protocols([b"raw-bench".as_slice()]))
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    s2n_quic::Client::builder()
        .with_tls(tls)
        .map_err(|e| e.to_string())?
        .with_io(limits.io(([0, 0, 0, 0], 0).into())?)
        .map_err(|e| e.to_string())?
        .with_limits(limits.quic()?)
        .map_err(|e| e.to_string())?
        .start()
        .map_err(|e| e.to_string())
}
