//! The runtime of [rpcnet](https://docs.rs/rpcnet): QUIC transport (s2n-quic, TLS 1.3), the
//! `rpcnet/1` wire format, MessagePack codec, clients, servers, the four call kinds,
//! deadlines, cancellation and typed errors.
//!
//! Most users depend on the `rpcnet` facade crate, which re-exports everything here and adds
//! the `#[rpcnet::service]` macro. The wire format is documented byte by byte in
//! `PROTOCOL.md` at the repository root.

mod call;
mod cancel;
mod client;
mod codec;
mod config;
mod context;
mod error;
pub mod frame;
mod gossip;
mod handler;
mod hash;
mod header;
mod io;
mod payload;
mod pool;
mod server;
mod transport;

pub use call::{
    BidiStreamingCall, ClientStreamingCall, ResponseStream, ServerStreamingCall, UnaryCall,
};
pub use client::{CallOptions, ClientEndpoint, RpcClient};
pub use config::{RpcConfig, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_MTU};
pub use context::CallContext;
pub use error::{BoxError, CallError, Code, CodecError, Never, ProtocolError, RpcError, Status};
pub use gossip::{GossipInbox, GossipMessage};
pub use handler::{MethodHandler, MethodKind, MethodTable, RequestStream, Service};
pub use header::Metadata;
pub use payload::Payload;
pub use server::{BoundServer, RpcServer, ShutdownHandle};
pub use transport::ALPN;
