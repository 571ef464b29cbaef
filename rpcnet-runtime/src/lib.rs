//! The runtime of [rpcnet](https://docs.rs/rpcnet): QUIC transport (s2n-quic, TLS 1.3), the
//! `rpcnet/1` wire format, MessagePack codec, clients, servers, the four call kinds,
//! deadlines, cancellation, typed errors, and one-way messages for layers above (such as
//! a cluster's membership protocol).
//!
//! Most users depend on the `rpcnet` facade crate, which re-exports the items of this
//! crate that services and their callers use and adds the `#[rpcnet::service]` macro. The
//! wire format is documented byte by byte in `PROTOCOL.md` at the repository root.
//!
//! The modules, from the wire up:
//!
//! - `frame`, `header`, `codec`, `payload`: the wire format and the message codec.
//! - `io`, `buffers`, `deadline`, `cancel`, `transport`: reading frames from QUIC streams,
//!   reused buffers, bounding futures by deadlines, cancels, endpoints from a config.
//! - `client` (connections), `call` (the four call kinds on them), `one_way`.
//! - `server`, `handler`, `context`: serving calls.
//! - `config`, `error`: what users configure and what they get back.
//! - [`health`]: the health service servers serve by default.

mod budget;
mod buffers;
mod call;
mod cancel;
mod client;
mod codec;
mod config;
mod context;
mod deadline;
mod error;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod header;
pub mod health;
mod io;
mod metrics;
mod one_way;
mod payload;
mod peer;
mod server;
mod trace;
mod transport;

pub use call::{
    BidiStreamingCall, CallOptions, ClientStreamingCall, ResponseStream, ServerStreamingCall,
    UnaryCall,
};
pub use client::{ClientEndpoint, FromClient, RpcClient};
pub use config::{
    RpcConfig, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DEADLINE, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_MTU, DEFAULT_RECEIVE_BUDGET_PER_CONNECTION, DEFAULT_RECEIVE_BUDGET_PER_SERVER,
};
pub use context::CallContext;
pub use error::{BoxError, CallError, Code, CodecError, Never, ProtocolError, RpcError, Status};
pub use handler::{MethodHandler, MethodKind, MethodTable, RequestStream, Service};
pub use header::Metadata;
pub use one_way::{OneWayInbox, OneWayMessage, FIRST_ONE_WAY_KIND};
pub use payload::Payload;
pub use peer::PeerCertificate;
pub use server::{BoundServer, RpcServer, ShutdownHandle};
pub use trace::{TraceContext, TRACEPARENT};
pub use transport::ALPN;

/// What [`RpcClient::connect`] accepts as a server address (`"127.0.0.1:8090"`,
/// `"host:port"`, a `SocketAddr`, …): tokio's, so host names are resolved without blocking
/// the runtime.
pub use tokio::net::ToSocketAddrs;

/// What `#[rpcnet_macros::service]` refers to when given `crate = "rpcnet_runtime"` (or
/// `crate = "crate"` here), for the built-in services written with the macro in the crates
/// below the `rpcnet` facade (such as [`health`]). Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use crate::handler::RequestStream as Streaming;
    pub use crate::{
        BidiStreamingCall, CallError, ClientStreamingCall, FromClient, MethodHandler, MethodTable,
        Never, ResponseStream, RpcClient, RpcConfig, RpcError, ServerStreamingCall, Service,
        ToSocketAddrs, UnaryCall,
    };
    pub use futures::future::BoxFuture;
    pub use futures::{Stream, StreamExt};
    pub use serde::{de::DeserializeOwned, Serialize};
}
