//! [`RpcConfig`]: certificates, addresses, limits and timeouts for servers and clients.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::RpcError;
use crate::trace::TraceContext;

/// Where a certificate or key comes from.
#[derive(Clone)]
pub(crate) enum PemSource {
    /// A PEM file on disk, read when the endpoint starts.
    Path(PathBuf),
    /// PEM text held in memory.
    Pem(String),
}

impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::Path(path) => f.debug_tuple("Path").field(path).finish(),
            // Never print key material.
            PemSource::Pem(_) => f.write_str("Pem(..)"),
        }
    }
}

impl PemSource {
    pub(crate) fn load(&self, what: &str) -> Result<String, RpcError> {
        match self {
            PemSource::Pem(pem) => Ok(pem.clone()),
            PemSource::Path(path) => std::fs::read_to_string(path).map_err(|e| {
                RpcError::config(format!("cannot read {what} `{}`", path.display()), e)
            }),
        }
    }
}

/// The configuration of an rpcnet endpoint (server or client).
///
/// A server needs the certificate chain and its private key; a client needs the certificate
/// (or CA) it trusts and the server name to verify. The same value can serve both sides of
/// a test: the bundled development certificate is self-signed for `localhost`.
///
/// With a certificate authority ([`with_ca_path`](Self::with_ca_path)) clients trust the
/// CA instead of the certificate itself, and with [`with_mutual_tls`](Self::with_mutual_tls)
/// every connection is authenticated both ways: servers accept only clients that present a
/// certificate signed by the CA, and clients present the configured certificate and key.
///
/// ```
/// use std::time::Duration;
/// let config = rpcnet_runtime::RpcConfig::new("certs/test_cert.pem", "127.0.0.1:0")
///     .with_key_path("certs/test_key.pem")
///     .with_server_name("localhost")
///     .with_default_deadline(Duration::from_secs(5))
///     .with_max_message_size(8 * 1024 * 1024);
/// assert_eq!(config.max_message_size(), 8 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct RpcConfig {
    pub(crate) cert: PemSource,
    pub(crate) key: Option<PemSource>,
    pub(crate) ca: Option<PemSource>,
    pub(crate) mutual_tls: bool,
    pub(crate) bind_addr: String,
    pub(crate) server_name: String,
    pub(crate) keep_alive: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) max_deadline: Duration,
    pub(crate) default_deadline: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) max_concurrent_streams: u64,
    pub(crate) max_connections: usize,
    pub(crate) receive_budget: (usize, usize),
    pub(crate) metrics: bool,
    pub(crate) stream_window: u64,
    pub(crate) connection_window: u64,
    pub(crate) send_buffer_size: u32,
    pub(crate) max_mtu: u16,
    pub(crate) socket_buffer_size: usize,
    pub(crate) reconnect_backoff: (Duration, Duration),
    pub(crate) trace_source: Option<fn() -> Option<TraceContext>>,
}

/// The default ceiling for QUIC's path MTU discovery: 9000 bytes, jumbo frames. Loopback
/// and most datacenter networks carry them, and bulk transfers run about twice as fast with
/// them; paths that do not are found out by the probes (see [`RpcConfig::with_max_mtu`]).
pub const DEFAULT_MAX_MTU: u16 = 9000;

/// The default longest a server lets a call run: one hour.
pub const DEFAULT_MAX_DEADLINE: Duration = Duration::from_secs(3600);

/// The default number of connections a server serves at once: 4,096.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The default most bytes of requests a server holds on behalf of one connection: 8 MiB
/// (see [`RpcConfig::with_receive_budget`]).
pub const DEFAULT_RECEIVE_BUDGET_PER_CONNECTION: usize = 8 * 1024 * 1024;

/// The default most bytes of requests a server holds on behalf of all its connections
/// together: 16 MiB (see [`RpcConfig::with_receive_budget`]).
pub const DEFAULT_RECEIVE_BUDGET_PER_SERVER: usize = 16 * 1024 * 1024;

/// The default maximum size of one encoded message: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

impl RpcConfig {
    /// A configuration with the certificate at `cert_path` (a PEM file) and the address a
    /// server binds to (`"127.0.0.1:0"` picks a free port). Clients ignore `bind_addr` and
    /// bind an ephemeral port.
    pub fn new(cert_path: impl Into<PathBuf>, bind_addr: impl Into<String>) -> Self {
        Self::with_cert(PemSource::Path(cert_path.into()), bind_addr.into())
    }

    /// A configuration with the certificate given as PEM text rather than a path.
    pub fn from_pem(cert_pem: impl Into<String>, bind_addr: impl Into<String>) -> Self {
        Self::with_cert(PemSource::Pem(cert_pem.into()), bind_addr.into())
    }

    fn with_cert(cert: PemSource, bind_addr: String) -> Self {
        RpcConfig {
            cert,
            key: None,
            ca: None,
            mutual_tls: false,
            bind_addr,
            server_name: "localhost".to_owned(),
            keep_alive: true,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_deadline: DEFAULT_MAX_DEADLINE,
            default_deadline: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_concurrent_streams: 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics: false,
            receive_budget: (
                DEFAULT_RECEIVE_BUDGET_PER_CONNECTION,
                DEFAULT_RECEIVE_BUDGET_PER_SERVER,
            ),
            stream_window: 4 * 1024 * 1024,
            connection_window: 16 * 1024 * 1024,
            send_buffer_size: 1024 * 1024,
            max_mtu: DEFAULT_MAX_MTU,
            socket_buffer_size: 4 * 1024 * 1024,
            reconnect_backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            trace_source: None,
        }
    }

    /// The private key (PEM file) for the certificate; required to serve.
    pub fn with_key_path(mut self, key_path: impl Into<PathBuf>) -> Self {
        self.key = Some(PemSource::Path(key_path.into()));
        self
    }

    /// The private key as PEM text.
    pub fn with_key_pem(mut self, key_pem: impl Into<String>) -> Self {
        self.key = Some(PemSource::Pem(key_pem.into()));
        self
    }

    /// The certificate authority (a PEM file) that signs the certificates of this
    /// deployment: clients verify servers against it, and with mutual TLS servers verify
    /// clients against it. Without one, clients trust exactly the configured certificate.
    pub fn with_ca_path(mut self, ca_path: impl Into<PathBuf>) -> Self {
        self.ca = Some(PemSource::Path(ca_path.into()));
        self
    }

    /// The certificate authority given as PEM text (see [`with_ca_path`](Self::with_ca_path)).
    pub fn with_ca_pem(mut self, ca_pem: impl Into<String>) -> Self {
        self.ca = Some(PemSource::Pem(ca_pem.into()));
        self
    }

    /// Mutual TLS (default off). A server then refuses, in the handshake, every client that
    /// does not present a certificate signed by the certificate authority (or, without
    /// one, the configured certificate), so that nobody else can call it or send it one-way
    /// messages (a cluster's membership protocol, for example); a client presents its
    /// configured certificate and key. Both sides need a key ([`with_key_path`](Self::with_key_path)).
    pub fn with_mutual_tls(mut self, enabled: bool) -> Self {
        self.mutual_tls = enabled;
        self
    }

    /// The certificates this side trusts to sign its peer's: the CA, or else the
    /// configured certificate itself.
    pub(crate) fn trust_anchor(&self) -> &PemSource {
        self.ca.as_ref().unwrap_or(&self.cert)
    }

    /// The name a client expects in the server's certificate (default `localhost`).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Changes the address a server binds to.
    pub fn with_bind_addr(mut self, bind_addr: impl Into<String>) -> Self {
        self.bind_addr = bind_addr.into();
        self
    }

    /// Whether a client keeps an idle connection open with pings (default on).
    pub fn with_keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive = enabled;
        self
    }

    /// How long a connection may be silent before QUIC closes it (default 30 s).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The longest a server waits on a client that makes no progress (default 30 s): for
    /// the start of a call's stream or of a one-way stream, for the rest of a request, for
    /// the client's end of stream after the reply, and for each write of a response that
    /// the client does not read (QUIC flow control holds it back). A request that stalls
    /// longer fails its call with `DeadlineExceeded`; an unread response has its stream
    /// reset. Steady progress, however slow, is never cut off by this.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The longest a server lets a call run (default [`DEFAULT_MAX_DEADLINE`]): a call
    /// whose client sets no deadline, or a longer one, gets this one on the server, enforced
    /// like any deadline (`DeadlineExceeded`) and inherited by the calls its handler makes.
    pub fn with_max_deadline(mut self, deadline: Duration) -> Self {
        self.max_deadline = deadline;
        self
    }

    /// How long a client waits for a connection handshake (default 10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline a client gives calls that set none themselves (default: none).
    pub fn with_default_deadline(mut self, deadline: Duration) -> Self {
        self.default_deadline = Some(deadline);
        self
    }

    /// The largest encoded message either side accepts or sends (default 4 MiB). A peer
    /// announcing a larger frame gets a `ResourceExhausted` status on that call only.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.min(u32::MAX as usize);
        self
    }

    /// The most connections a server serves at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]). A connection beyond it is closed as soon as its
    /// handshake completes, with QUIC application error `0x05`; its client's calls fail
    /// with [`RpcError::Unavailable`](crate::RpcError::Unavailable) saying so, and the
    /// connections already served are not disturbed.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The most bytes of requests a server holds in its own buffers on behalf of one
    /// connection (default [`DEFAULT_RECEIVE_BUDGET_PER_CONNECTION`], 8 MiB) and of all
    /// connections together (default [`DEFAULT_RECEIVE_BUDGET_PER_SERVER`], 16 MiB).
    ///
    /// Counted: a request frame that spans received chunks while it is assembled (by the
    /// capacity of its buffer, which grows with the bytes that arrive, never to a length a
    /// peer merely announced), and the messages of a streaming request waiting for their
    /// handler. A request that arrives in one piece, as small ones do, is not counted. A
    /// call whose request would take its connection or the server past the budget fails
    /// with [`Code::ResourceExhausted`](crate::Code::ResourceExhausted) and gives back what
    /// it held; other calls go on. Each budget should leave room for the largest message
    /// ([`with_max_message_size`](Self::with_max_message_size)).
    pub fn with_receive_budget(mut self, per_connection: usize, per_server: usize) -> Self {
        self.receive_budget = (per_connection.max(1), per_server.max(1));
        self
    }

    /// Whether servers and clients made with this configuration report call metrics
    /// through the [`metrics`](https://docs.rs/metrics) facade (default: off). Whatever
    /// recorder the application installs (a Prometheus exporter, say) receives them;
    /// install it before binding servers and making calls, since each method's handles are
    /// made once (a server's when it binds, a client's on its first call of the method).
    ///
    /// | name | kind | labels |
    /// |---|---|---|
    /// | `rpcnet_server_calls_started_total` | counter | `method` |
    /// | `rpcnet_server_calls_finished_total` | counter | `method`, `code` |
    /// | `rpcnet_server_calls_in_flight` | gauge | `method` |
    /// | `rpcnet_server_call_duration_seconds` | histogram | `method` |
    /// | `rpcnet_server_connections` | gauge | |
    /// | `rpcnet_client_calls_finished_total` | counter | `method`, `code`: unary calls |
    /// | `rpcnet_client_call_duration_seconds` | histogram | `method`: unary calls |
    /// | `rpcnet_server_sent_bytes_total`, `rpcnet_server_received_bytes_total` | counter | |
    /// | `rpcnet_client_sent_bytes_total`, `rpcnet_client_received_bytes_total` | counter | |
    ///
    /// The byte counters count the UDP datagrams of the endpoint's QUIC connections: calls,
    /// streams and one-way messages (a cluster node's gossip) together, with QUIC's own
    /// packets and headers, as the network carries them.
    ///
    /// `code` is the status code in snake case: `ok`, `cancelled`, `invalid_argument`,
    /// `deadline_exceeded`, `resource_exhausted`, `unimplemented`, `internal`,
    /// `unavailable`, `application` (the service's typed error), `unknown`.
    pub fn with_metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Sets where a client's calls get their trace context, for tracing exporters whose
    /// spans have ids of their own (`tracing-opentelemetry`: the current span's context).
    /// `source` is called for each call that has no `traceparent` in its metadata, inside
    /// the call's client span (unary calls; for streaming calls, which have none, the
    /// caller's span is current), and the context it returns is sent as the call's
    /// `traceparent`. When it returns `None`, or without a source, a call made while
    /// serving another continues the served call's trace (see [`TraceContext`]).
    pub fn with_trace_source(mut self, source: fn() -> Option<TraceContext>) -> Self {
        self.trace_source = Some(source);
        self
    }

    /// The number of calls that may be open at once on one connection (default 1024).
    /// Further calls wait for a slot (QUIC stream credit) rather than fail.
    pub fn with_max_concurrent_streams(mut self, streams: u64) -> Self {
        self.max_concurrent_streams = streams.max(1);
        self
    }

    /// QUIC flow-control window per stream (default 4 MiB) and per connection (default
    /// 16 MiB). Larger windows let bulk transfers fill fast links; they also bound how far
    /// a writer can run ahead of a slow reader.
    pub fn with_flow_control_windows(mut self, stream: u64, connection: u64) -> Self {
        self.stream_window = stream.min(u64::from(u32::MAX));
        self.connection_window = connection.min(u64::from(u32::MAX));
        self
    }

    /// How many bytes one stream may queue in the endpoint before writes wait (default 1 MiB).
    pub fn with_send_buffer_size(mut self, bytes: u32) -> Self {
        self.send_buffer_size = bytes.max(1);
        self
    }

    /// The largest MTU QUIC may probe for (default [`DEFAULT_MAX_MTU`], 9000). Connections
    /// start at a size every path carries and use a larger one only after a probe of that
    /// size got through, so on a path limited to 1500 bytes the cost of the higher ceiling
    /// is a few lost probe packets per connection; set 1500 to send none.
    pub fn with_max_mtu(mut self, mtu: u16) -> Self {
        self.max_mtu = mtu;
        self
    }

    /// The size asked of the operating system for the UDP socket's receive and send buffers
    /// (default 4 MiB; Linux grants at most `net.core.rmem_max` / `wmem_max`). QUIC packets
    /// that arrive while the receive buffer is full are dropped and must be sent again, so
    /// the system default (about 200 KiB) loses packets under bursts of jumbo frames.
    pub fn with_socket_buffer_size(mut self, bytes: usize) -> Self {
        self.socket_buffer_size = bytes.max(1);
        self
    }

    /// The first and the largest wait between reconnect attempts after a connection is lost
    /// (default 50 ms doubling up to 5 s).
    pub fn with_reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_backoff = (initial, max.max(initial));
        self
    }

    /// The configured maximum message size.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The configured default deadline.
    pub fn default_deadline(&self) -> Option<Duration> {
        self.default_deadline
    }

    /// The server name clients verify.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Resolves the bind address.
    pub(crate) fn resolve_bind_addr(&self) -> Result<SocketAddr, RpcError> {
        self.bind_addr
            .to_socket_addrs()
            .map_err(|e| RpcError::config(format!("invalid bind address `{}`", self.bind_addr), e))?
            .next()
            .ok_or_else(|| RpcError::Config {
                message: format!("bind address `{}` resolves to nothing", self.bind_addr),
                source: None,
            })
    }
}
