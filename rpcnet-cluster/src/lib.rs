//! Cluster membership for rpcnet: a sans-io SWIM core with Phi Accrual failure detection,
//! Lifeguard, tags and membership events.
//!
//! # What and why
//!
//! [`Swim`] is the protocol as a pure state machine: it takes messages, timer expiries and
//! commands with `now` passed in and an injected RNG, and returns messages to send, its next
//! deadline and [`ClusterEvent`]s. It never touches sockets, tokio or the clock, which is what
//! lets the simulator in `tests/` run a thousand nodes for ten virtual minutes
//! deterministically, with loss, partitions, crashes, restarts and stalls. The QUIC shell (the
//! `quic` feature) drives it over the node's RPC endpoint.
//!
//! # Determinism
//!
//! [`Swim`] is generic over its random number generator (any [`rand::Rng`]) and draws all its
//! randomness from it; it keeps only ordered maps, reads time only from its inputs, and draws
//! random indices at a fixed width, never at the pointer width. So with a portable seeded
//! generator one seed is one run everywhere: the same inputs give the same outputs on every
//! platform and in every build. `ChaCha8Rng` from the `rand_chacha` crate is such a generator,
//! and the simulator and the tests use it. `rand`'s `SmallRng` and `StdRng` are not (rand may
//! change their algorithms between versions and platforms), so they suit production nodes
//! (the QUIC shell seeds a `SmallRng` from the OS) but not reproducible runs. The one
//! exception is floating point: the Phi Accrual and suspicion timeouts use `exp`, `ln` and
//! `log10`, whose last bit Rust leaves to the platform's math library.
//!
//! # Quick start
//!
//! ```
//! use std::time::Instant;
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use rpcnet_cluster::{ClusterConfig, NodeId, Swim, Tags};
//!
//! let now = Instant::now();
//! let tags = Tags::new().with("role", "worker").expect("small tags fit");
//! let mut node = Swim::new(
//!     NodeId::new("worker-a").expect("valid id"),
//!     "10.0.0.2:7000".parse().expect("valid address"),
//!     tags,
//!     ClusterConfig::lan(),
//!     ChaCha8Rng::seed_from_u64(1), // one seed, one run
//!     now,
//! );
//! node.join(&["10.0.0.1:7000".parse().expect("valid address")], now);
//! while let Some(transmit) = node.poll_transmit() {
//!     let _bytes = transmit.msg.encode(); // send to transmit.to
//! }
//! let _wake_at = node.poll_timeout();
//! ```
//!
//! # Measured behaviour
//!
//! The simulator in `tests/cluster/sim.rs` runs many cores on one virtual clock. Every
//! message is encoded, decoded by [`Message::decode`] with its limits and counted in bytes
//! (with the shell's gossip envelope). Loss is either a silent drop or, as over QUIC,
//! retransmission: a lost copy is sent again after a probe timeout (six one-way latencies
//! plus a 25 ms ack delay) that doubles with each loss, the message arrives late, and it is
//! lost only when it misses the shell's send timeout (`max(P, 500 ms)`); each node holds at
//! most 512 sends in flight, as the shell does, and drops the rest. Latency is 0.5–5 ms.
//! With [`ClusterConfig::lan`] (`P` = 1 s), in release builds:
//!
//! - **Detection** of a crashed member by all other nodes, 100 nodes, 100 seeds: p50 10 s,
//!   p99 12.6 s without loss, and the same at 10% loss as retransmission; 1,000 nodes,
//!   20 seeds: p50 14.3 s, p99 16.7 s, without loss and at 10% loss as retransmission.
//!   The tests assert p99 within the confirmed-suspicion path
//!   (`suspicion_timeout_min(n) + 6·P`: 14 s at 100 nodes, 18 s at 1,000) and every run
//!   within [`ClusterConfig::detection_bound`] (61.8 s and 87 s).
//! - **Accuracy**: no healthy node declared failed at 50% loss for 30 s at 100 nodes over 20
//!   seeds, with loss as retransmission and with loss as silent drop, counting until every
//!   suspicion begun in the lossy span has resolved (and every node then holds every other
//!   `Alive`).
//! - **Restarts**: half of 200 nodes restarting with new tags over 30 s, 10 seeds: after
//!   60 s every node holds every other `Alive` with its new tags, and each survivor reported
//!   each restart exactly once.
//! - **Combined faults** at 10% loss as retransmission (a partition, restarts) and one-way
//!   links during churn, 2 seeds each: no member that stays healthy is reported failed, and
//!   the split heals within three push-pull intervals.
//! - **Lifeguard**: with 5% of 100 nodes stalling their receive path for 1–5 s at a time
//!   ([`ClusterConfig::for_tests`] timers, 5 simulated minutes, 2 seeds), 4 false failures
//!   with Lifeguard and 2,692 without; at 10% loss as retransmission, 4 and 2,742.
//! - **Load** of a settled cluster (seed 1, 300 s): 2.07 messages per node per second at
//!   100 and at 1,000 nodes, without loss and at 10% loss as retransmission; bytes per node
//!   per second (retransmitted copies included) 285 at 100 nodes and 2,118 at 1,000 without
//!   loss, 316 and 2,358 at 10% loss. Bytes grow with the cluster because a push-pull
//!   carries the whole membership; no message was rejected by the decoder and no send was
//!   dropped at the in-flight cap.
//!
//! Commands: `cargo test --release -p rpcnet-cluster --test cluster -- --ignored
//! --nocapture swim_detection` (likewise `swim_accuracy`, `swim_restart`, `swim_lifeguard`,
//! `swim_load`); the default `cargo test` runs smaller versions of each.
//!
//! # Routing
//!
//! With the `quic` feature, [`WorkerRegistry`] turns membership into a pool of live workers
//! (members tagged `role=worker` by default), and [`ClusterClient`] routes each call to one
//! of them by a [`LoadBalancingStrategy`] and a [`TagFilter`], failing over when a worker
//! fails.
//!
//! # Metrics and spans
//!
//! With the `quic` feature, a node reports metrics through the
//! [`metrics`](https://docs.rs/metrics) facade when its configuration turns them on
//! ([`ClusterConfig::with_metrics`], off by default; the names and labels are listed
//! there): members by state, suspicions, refutations, failures, gossip messages and bytes
//! in each direction, and sends dropped; and its [`WorkerRegistry`] and [`ClusterClient`]s
//! report picks per worker, retries, retries the budget refused and calls that found no
//! worker. Whatever recorder the application installs receives them; the crate installs
//! none. With metrics off, the node and the pick path only test a flag.
//!
//! The node's task runs in a `debug` span `cluster_node` (fields `id`, `addr`); each probe
//! period has a `debug` span `probe_round` inside it, from the probe's start to the start
//! of the next (fields `target`, `seq`, and `outcome`, recorded at its end: `ack`,
//! `indirect_ack`, `suspect`, `no_verdict` when this node was too late to judge or the
//! target was no longer live, or `abandoned` when the node left first). The registry's
//! task runs in a `debug` span `worker_registry` (field `node`). The crate never installs
//! a subscriber. The core ([`Swim`]) reports neither: it exposes counts
//! ([`Swim::counts`]) and its probes ([`Swim::probe_in_flight`], [`Swim::last_probe`])
//! for a shell to report.
//!
//! # Feature flags
//!
//! - `quic` (default): the tokio shell over rpcnet's QUIC endpoint. The core builds and is
//!   fully tested without it (`--no-default-features`).

mod config;
mod event;
mod failure_detector;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "quic")]
mod lag;
mod member;
#[cfg(feature = "quic")]
mod node;
#[cfg(feature = "quic")]
mod routing;
mod swim;
mod tags;

pub use crate::config::ClusterConfig;
pub use crate::event::ClusterEvent;
#[cfg(feature = "quic")]
pub use crate::lag::Lagged;
pub use crate::member::{InvalidNodeId, Member, MemberState, NodeId, MAX_NODE_ID_LEN};
#[cfg(feature = "quic")]
pub use crate::node::membership;
#[cfg(feature = "quic")]
#[doc(hidden)]
pub use crate::node::NodeStats;
#[cfg(feature = "quic")]
pub use crate::node::{
    Cluster, ClusterError, ClusterEvents, NodeConfig, DEFAULT_EVENT_CAPACITY, GOSSIP_STREAM_KIND,
    NODE_URI_PREFIX,
};
#[cfg(feature = "quic")]
pub use crate::routing::{
    ClusterClient, InFlight, LoadBalancingStrategy, PickedWorker, PoolEvent, PoolEvents,
    RetryBudget, RoutingError, TagFilter, WorkerCall, WorkerClient, WorkerInfo, WorkerRegistry,
    WORKER_ROLE,
};
pub use crate::swim::message::{
    DecodeError, Message, MessageKind, MAX_MESSAGE_BYTES, MAX_PIGGYBACK_UPDATES,
    MAX_PUSH_PULL_MEMBERS, PROTOCOL_VERSION,
};
pub use crate::swim::{ProbeOutcome, ProtocolCounts, Refusals, Swim, Transmit};
pub use crate::tags::{Tags, TagsTooLarge, MAX_TAGS_BYTES};
