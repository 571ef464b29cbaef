//! # rpcnet
//!
//! Typed RPC for clusters, over QUIC. Annotate a plain Rust trait with
//! [`#[rpcnet::service]`](service) and it becomes the schema: the macro expands it, inline,
//! into a typed client, a server dispatcher and streaming stubs. Calls travel over QUIC
//! (s2n-quic) with TLS 1.3, one QUIC stream per call, encoded as MessagePack.
//!
//! - Four call kinds: unary, server streaming, client streaming, bidirectional.
//! - Deadlines (a client default, per-call overrides, inherited by nested calls),
//!   cancellation by dropping, typed application errors next to framework errors
//!   ([`CallError`]), message size limits, graceful shutdown.
//! - Byte fields as [`Payload`]: large payloads travel without copies.
//! - With the `cluster` feature (on by default): SWIM gossip membership with Phi Accrual
//!   failure detection, node tags and membership events, sharing the node's RPC endpoint
//!   (`cluster::Cluster`).
//!
//! ## Quick start
//!
//! The [`service`] attribute's documentation has a complete, runnable example: define the
//! trait, implement it with plain `async fn`s, add `XServer::new(..)` to an [`RpcServer`],
//! and call it through `XClient::connect(..)`.
//!
//! Streams in a service trait are `Pin<Box<dyn Stream<Item = T> + Send>>`; [`Streaming<T>`]
//! is the short name for that type (also what `futures::StreamExt::boxed` returns, spelled
//! `futures::stream::BoxStream<'static, T>`).
//!
//! ## Feature flags
//!
//! - `cluster` (default): the `cluster` module (membership, tags, events).
//!
//! The wire format, and which changes to a service's messages older peers still
//! understand, are documented in `PROTOCOL.md` in the repository.

pub use rpcnet_macros::service;
pub use rpcnet_runtime::RequestStream as Streaming;
pub use rpcnet_runtime::{
    BidiStreamingCall, BoundServer, BoxError, CallContext, CallError, CallOptions, ClientEndpoint,
    ClientStreamingCall, Code, CodecError, FromClient, Metadata, MethodHandler, MethodKind,
    MethodTable, Never, Payload, ProtocolError, ResponseStream, RpcClient, RpcConfig, RpcError,
    RpcServer, ServerStreamingCall, Service, ShutdownHandle, Status, UnaryCall,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_MTU,
};

#[cfg(feature = "cluster")]
pub mod cluster {
    //! Cluster membership: SWIM gossip with Phi Accrual failure detection and Lifeguard,
    //! node tags and membership events, driven over the node's rpcnet QUIC endpoint.
    //!
    //! Start a node with [`Cluster::start`] on a bound server; watch membership through
    //! [`Cluster::members`] or [`Cluster::subscribe`]. Route calls to the workers with a
    //! [`WorkerRegistry`] and a [`ClusterClient`].
    //!
    //! The sans-io protocol core (`Swim`, `Transmit`) and its gossip message types are not
    //! listed here: a [`Cluster`] drives them for you. Depend on the `rpcnet-cluster` crate
    //! to run the protocol over another transport or in a simulation.

    pub use rpcnet_cluster::{
        Cluster, ClusterClient, ClusterConfig, ClusterError, ClusterEvent, ClusterEvents, InFlight,
        InvalidNodeId, LoadBalancingStrategy, Member, MemberState, NodeConfig, NodeId,
        PickedWorker, PoolEvent, PoolEvents, RetryBudget, RoutingError, TagFilter, Tags,
        TagsTooLarge, WorkerCall, WorkerClient, WorkerInfo, WorkerRegistry, MAX_NODE_ID_LEN,
        MAX_TAGS_BYTES, WORKER_ROLE,
    };
}

/// Items used by the code `#[rpcnet::service]` generates. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use ::futures::future::BoxFuture;
    pub use ::futures::{Stream, StreamExt};
    pub use ::serde::{de::DeserializeOwned, Serialize};
    pub use rpcnet_runtime::RequestStream as Streaming;
    pub use rpcnet_runtime::{
        BidiStreamingCall, CallError, ClientStreamingCall, FromClient, MethodHandler, MethodTable,
        Never, ResponseStream, RpcClient, RpcConfig, RpcError, ServerStreamingCall, Service,
        ToSocketAddrs, UnaryCall,
    };
}
