//! Builds s2n-quic endpoints from an [`RpcConfig`]: TLS 1.3 with the `rpcnet/1` ALPN,
//! transport limits, MTU.

use std::net::SocketAddr;

use s2n_quic::provider::{io, limits::Limits, tls};

use crate::config::RpcConfig;
use crate::error::{BoxError, RpcError};
use crate::metrics::{Side, Traffic};

/// The ALPN protocol id of this wire format version.
pub const ALPN: &[u8] = b"rpcnet/1";

/// Admits a client certificate whatever names it carries: with mutual TLS a client is
/// admitted by the certificate authority's signature, which TLS has verified already.
#[derive(Debug)]
struct AnyClientName;

impl tls::default::callbacks::VerifyHostNameCallback for AnyClientName {
    fn verify_host_name(&self, _host_name: &str) -> bool {
        true
    }
}

/// QUIC application error codes rpcnet uses to reset streams and close connections.
pub(crate) mod app_error {
    /// The call was cancelled by the side that reset the stream.
    pub(crate) const CANCELLED: u32 = 0x01;
    /// The stream broke the protocol.
    pub(crate) const PROTOCOL: u32 = 0x02;
    /// The server is shutting down.
    pub(crate) const SHUTDOWN: u32 = 0x03;
    /// The client was dropped.
    pub(crate) const CLIENT_GONE: u32 = 0x04;
    /// The server already serves as many connections as it is configured for.
    pub(crate) const TOO_MANY_CONNECTIONS: u32 = 0x05;
}

pub(crate) fn app_error(code: u32) -> s2n_quic::application::Error {
    s2n_quic::application::Error::from(code)
}

fn limits(config: &RpcConfig) -> Result<Limits, RpcError> {
    let invalid = |e: BoxError| RpcError::Config {
        message: "invalid transport limits".into(),
        source: Some(e),
    };
    Limits::new()
        .with_max_idle_timeout(config.idle_timeout)
        .and_then(|l| l.with_max_open_local_bidirectional_streams(config.max_concurrent_streams))
        .and_then(|l| l.with_max_open_remote_bidirectional_streams(config.max_concurrent_streams))
        // Unidirectional streams carry cancels (and nothing else) in rpcnet/1.
        .and_then(|l| l.with_max_open_local_unidirectional_streams(config.max_concurrent_streams))
        .and_then(|l| l.with_max_open_remote_unidirectional_streams(config.max_concurrent_streams))
        .and_then(|l| l.with_data_window(config.connection_window))
        .and_then(|l| l.with_bidirectional_local_data_window(config.stream_window))
        .and_then(|l| l.with_bidirectional_remote_data_window(config.stream_window))
        .and_then(|l| l.with_max_send_buffer_size(config.send_buffer_size))
        .and_then(|l| l.with_max_handshake_duration(config.connect_timeout))
        .map_err(|e| invalid(Box::new(e)))
}

fn io_provider(config: &RpcConfig, addr: SocketAddr) -> Result<io::tokio::Provider, RpcError> {
    io::tokio::Provider::builder()
        .with_receive_address(addr)
        .and_then(|b| b.with_max_mtu(config.max_mtu))
        .and_then(|b| b.with_recv_buffer_size(config.socket_buffer_size))
        .and_then(|b| b.with_send_buffer_size(config.socket_buffer_size))
        .and_then(|b| b.build())
        .map_err(|e| RpcError::Bind {
            addr,
            source: Box::new(e),
        })
}

/// Starts a server endpoint bound to the configured address.
pub(crate) fn start_server(config: &RpcConfig) -> Result<s2n_quic::Server, RpcError> {
    let addr = config.resolve_bind_addr()?;
    let cert = config.cert.load("certificate")?;
    let key = config
        .key
        .as_ref()
        .ok_or_else(|| RpcError::Config {
            message: "a server needs a private key: use RpcConfig::with_key_path".into(),
            source: None,
        })?
        .load("private key")?;
    // The system trust store is only needed to verify peers we do not configure; loading
    // it parses hundreds of certificates per endpoint, so start from an empty one.
    let mut tls = tls::default::Server::builder()
        .with_empty_trust_store()
        .and_then(|b| b.with_certificate(cert.as_str(), key.as_str()))
        .and_then(|b| b.with_application_protocols([ALPN]))
        .map_err(|e| RpcError::config("invalid certificate or key", e))?;
    if config.mutual_tls {
        let anchor = config.trust_anchor().load("certificate authority")?;
        tls = tls
            .with_trusted_certificate(anchor.as_str())
            .and_then(|b| b.with_client_authentication())
            // The CA's signature is what admits a client; its names are not checked.
            .and_then(|b| b.with_verify_host_name_callback(AnyClientName))
            .map_err(|e| RpcError::config("invalid certificate authority", e))?;
    }
    let tls = tls
        .build()
        .map_err(|e| RpcError::config("invalid TLS configuration", e))?;
    let io = io_provider(config, addr)?;
    s2n_quic::Server::builder()
        .with_tls(tls)
        .map_err(|e| RpcError::config("TLS provider", e))?
        .with_event((
            crate::peer::PeerCertificates,
            Traffic::new(config.metrics, Side::Server),
        ))
        .map_err(|e| RpcError::config("event subscriber", e))?
        .with_io(io)
        .map_err(|e| RpcError::Bind {
            addr,
            source: Box::new(e),
        })?
        .with_limits(limits(config)?)
        .map_err(|e| RpcError::config("transport limits", e))?
        .start()
        .map_err(|e| RpcError::Bind {
            addr,
            source: Box::new(e),
        })
}

/// Starts a client endpoint on an ephemeral port of the right address family for `target`.
pub(crate) fn start_client(
    config: &RpcConfig,
    target: SocketAddr,
) -> Result<s2n_quic::Client, RpcError> {
    let local: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let anchor = config.trust_anchor().load("trusted certificate")?;
    // Trust exactly the configured CA (or certificate), not the system store: rpcnet
    // endpoints authenticate each other with certificates the deployment chooses.
    let mut tls = tls::default::Client::builder()
        .with_empty_trust_store()
        .and_then(|b| b.with_certificate(anchor.as_str()))
        .and_then(|b| b.with_application_protocols([ALPN]))
        .map_err(|e| RpcError::config("invalid trusted certificate", e))?;
    if config.mutual_tls {
        let cert = config.cert.load("certificate")?;
        let key = config
            .key
            .as_ref()
            .ok_or_else(|| RpcError::Config {
                message: "mutual TLS needs the client's private key: use RpcConfig::with_key_path"
                    .into(),
                source: None,
            })?
            .load("private key")?;
        tls = tls
            .with_client_identity(cert.as_str(), key.as_str())
            .map_err(|e| RpcError::config("invalid client certificate or key", e))?;
    }
    let tls = tls
        .build()
        .map_err(|e| RpcError::config("invalid TLS configuration", e))?;
    let io = io_provider(config, local)?;
    s2n_quic::Client::builder()
        .with_tls(tls)
        .map_err(|e| RpcError::config("TLS provider", e))?
        .with_event(Traffic::new(config.metrics, Side::Client))
        .map_err(|e| RpcError::config("event subscriber", e))?
        .with_io(io)
        .map_err(|e| RpcError::Bind {
            addr: local,
            source: Box::new(e),
        })?
        .with_limits(limits(config)?)
        .map_err(|e| RpcError::config("transport limits", e))?
        .start()
        .map_err(|e| RpcError::Bind {
            addr: local,
            source: Box::new(e),
        })
}
