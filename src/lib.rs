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
//! - A built-in [`health`] service on every server (`rpcnet.Health`: `check` and a
//!   streaming `watch`), reporting `NotServing` once a graceful shutdown begins.
//! - With the `cluster` feature (on by default): SWIM gossip membership with Phi Accrual
//!   failure detection, node tags and membership events, sharing the node's RPC endpoint
//!   (`cluster::Cluster`); routing of calls to workers by tags and load, with failover
//!   (`cluster::WorkerRegistry`, `cluster::ClusterClient`).
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
//! - `cluster` (default): the `cluster` module (membership, tags, events, routing).
//!
//! The wire format, and which changes to a service's messages older peers still
//! understand, are documented in `PROTOCOL.md` in the repository.

pub use rpcnet_macros::service;
pub use rpcnet_runtime::health;
pub use rpcnet_runtime::RequestStream as Streaming;
pub use rpcnet_runtime::{
    BidiStreamingCall, BoundServer, BoxError, CallContext, CallError, CallOptions, ClientEndpoint,
    ClientStreamingCall, Code, CodecError, FromClient, Metadata, MethodHandler, MethodKind,
    MethodTable, Never, Payload, ProtocolError, ResponseStream, RpcClient, RpcConfig, RpcError,
    RpcServer, ServerStreamingCall, Service, ShutdownHandle, Status, TraceContext, UnaryCall,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DEADLINE, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_MTU,
    DEFAULT_RECEIVE_BUDGET_PER_CONNECTION, DEFAULT_RECEIVE_BUDGET_PER_SERVER, TRACEPARENT,
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
    //! ## Routing calls to workers
    //!
    //! A director and one worker on loopback; the director sends `compute` (a raw byte
    //! method) to a worker chosen by tags. The pool holds the members tagged `role=worker`
    //! (the director, `role=director`, is never picked); a filter narrows it per call, as a
    //! [`TagFilter`] or, as here, the map of required tag values the original API took.
    //!
    //! ```
    //! use std::collections::HashMap;
    //! use std::sync::Arc;
    //! use std::time::Duration;
    //!
    //! use rpcnet::cluster::{Cluster, ClusterConfig, NodeConfig, NodeId, PoolEvent, Tags};
    //! use rpcnet::cluster::{ClusterClient, LoadBalancingStrategy, WorkerRegistry};
    //! use rpcnet::{RpcConfig, RpcServer};
    //!
    //! # #[tokio::main(flavor = "current_thread")]
    //! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    //! let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    //! let rpc = |bind: &str| {
    //!     RpcConfig::new(format!("{certs}/test_cert.pem"), bind)
    //!         .with_key_path(format!("{certs}/test_key.pem"))
    //!         .with_server_name("localhost")
    //! };
    //! let fast = ClusterConfig::default()
    //!     .with_gossip_interval(Duration::from_millis(100))
    //!     .with_health_check_interval(Duration::from_millis(200));
    //!
    //! // The director: a cluster node that routes but serves no worker calls.
    //! let config = rpc("127.0.0.1:0");
    //! let bound = RpcServer::new(config.clone()).bind()?;
    //! let director = NodeConfig::new(NodeId::new("director")?)
    //!     .with_tags(Tags::new().with("role", "director")?)
    //!     .with_cluster_config(fast.clone());
    //! let cluster = Cluster::start(&bound, &config, director)?;
    //! let seed = bound.local_addr().to_string();
    //! tokio::spawn(bound.serve());
    //!
    //! // A worker serving `compute` with a raw byte handler, joining through the director.
    //! let worker_config = rpc("127.0.0.1:0");
    //! let mut server = RpcServer::new(worker_config.clone());
    //! server.register("compute", |_ctx, request| async move {
    //!     Ok(request.iter().rev().copied().collect::<Vec<u8>>().into())
    //! });
    //! let worker_bound = server.bind()?;
    //! let worker = NodeConfig::new(NodeId::new("worker-a")?)
    //!     .with_tags(Tags::new().with("role", "worker")?.with("label", "worker-a")?)
    //!     .with_seeds([seed])
    //!     .with_cluster_config(fast);
    //! let _worker = Cluster::start(&worker_bound, &worker_config, worker)?;
    //! tokio::spawn(worker_bound.serve());
    //!
    //! let registry = Arc::new(WorkerRegistry::new(cluster.clone(), LoadBalancingStrategy::LeastConnections));
    //! let mut pool = registry.subscribe();
    //! registry.start().await;
    //! let cluster_client = Arc::new(ClusterClient::new(registry.clone(), config.clone()));
    //!
    //! // Wait for the worker to join the pool (or give the client a bounded wait with
    //! // `ClusterClient::with_wait_for_worker`).
    //! while registry.workers().is_empty() {
    //!     match tokio::time::timeout(Duration::from_secs(30), pool.recv()).await? {
    //!         Some(Ok(PoolEvent::WorkerAdded(_))) | None => break,
    //!         Some(_) => {} // other changes, or `Lagged`: the loop reads the pool again
    //!     }
    //! }
    //!
    //! let mut wanted = HashMap::new();
    //! wanted.insert("label".to_string(), "worker-a".to_string());
    //! let filter = Some(&wanted);
    //! let data = b"abc".to_vec();
    //! let result: Vec<u8> = cluster_client.call_worker("compute", data, filter).await?;
    //! assert_eq!(result, b"cba");
    //! # Ok(())
    //! # }
    //! ```
    //!
    //! The sans-io protocol core (`Swim`, `Transmit`) and its gossip message types are not
    //! listed here: a [`Cluster`] drives them for you. Depend on the `rpcnet-cluster` crate
    //! to run the protocol over another transport or in a simulation.

    pub use rpcnet_cluster::membership;
    pub use rpcnet_cluster::{
        Cluster, ClusterClient, ClusterConfig, ClusterError, ClusterEvent, ClusterEvents, InFlight,
        InvalidNodeId, Lagged, LoadBalancingStrategy, Member, MemberState, NodeConfig, NodeId,
        PickedWorker, PoolEvent, PoolEvents, RetryBudget, RoutingError, TagFilter, Tags,
        TagsTooLarge, WorkerCall, WorkerClient, WorkerInfo, WorkerRegistry, DEFAULT_EVENT_CAPACITY,
        MAX_NODE_ID_LEN, MAX_TAGS_BYTES, WORKER_ROLE,
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
