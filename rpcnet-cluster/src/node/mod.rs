//! The tokio shell: one task owns the [`Swim`](crate::Swim) core and drives it over the
//! node's rpcnet QUIC endpoint; [`Cluster`] is the cheap-to-clone handle to it.
//!
//! Gossip travels as one-way messages (unidirectional QUIC streams of kind `0x10`) on the
//! same QUIC endpoint that serves the node's RPCs: one UDP port per node for everything it
//! receives, encrypted by the same TLS configuration. Gossip streams are not calls: they
//! do not count against the server's calls in flight or its limit on concurrent calls.
//! Outgoing gossip leaves through one client endpoint shared by all of the node's peer
//! connections.
//!
//! With plain TLS the server is authenticated to the client, not the sender of gossip to
//! its receiver: any peer that can complete a handshake can send gossip, in any name. With
//! mutual TLS each message is accepted only if its sender is the node the peer's
//! certificate names (a `URI` subject alternative name `rpcnet://node/<id>`,
//! [`NODE_URI_PREFIX`]); see "Who can gossip" in the crate's `PROTOCOL.md`.

mod driver;
pub(crate) mod envelope;
mod events;
pub mod membership;
mod metrics;
mod peers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rpcnet_runtime::{BoundServer, RpcConfig, RpcError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ClusterConfig;
use crate::lag::{self, Publisher};
use crate::member::{Member, MemberState, NodeId};
use crate::swim::Refusals;
use crate::tags::{Tags, TagsTooLarge};

pub use driver::NODE_URI_PREFIX;
pub use envelope::GOSSIP_STREAM_KIND;
pub use events::ClusterEvents;

/// Received gossip waiting for the node task, at most (bytes); more is dropped.
const MAX_INBOX_BYTES: usize = 16 * 1024 * 1024;

/// Events queued per subscriber by default: as many as one push-pull can announce at once
/// ([`MAX_PUSH_PULL_MEMBERS`](crate::MAX_PUSH_PULL_MEMBERS)), so a subscriber that reads
/// promptly does not lag when its node joins a large cluster.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// What the shell needs to start a node: its identity, tags, seeds and protocol settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub(crate) id: NodeId,
    pub(crate) tags: Tags,
    pub(crate) seeds: Vec<String>,
    pub(crate) cluster: ClusterConfig,
    pub(crate) advertise: Option<SocketAddr>,
    pub(crate) inbox_capacity: usize,
    pub(crate) membership_service: bool,
    pub(crate) event_capacity: usize,
}

impl NodeConfig {
    /// A node named `id` with no tags, no seeds and [`ClusterConfig::default`].
    pub fn new(id: NodeId) -> Self {
        NodeConfig {
            id,
            tags: Tags::new(),
            seeds: Vec::new(),
            cluster: ClusterConfig::default(),
            advertise: None,
            inbox_capacity: 1024,
            membership_service: true,
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }

    /// Does not serve the [membership service](membership) (`rpcnet.Membership`) on the
    /// node's server, which [`Cluster::start`] otherwise adds.
    pub fn without_membership_service(mut self) -> Self {
        self.membership_service = false;
        self
    }

    /// The node's tags (`role=worker`, `label=worker-a`, …), gossiped to every member.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Seed addresses to join through: `ip:port` or `host:port`. Host names are resolved
    /// when the node joins (and again while no seed resolves), so a seed can be a DNS name
    /// such as a Kubernetes headless service. A worker's seed is typically the director.
    pub fn with_seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// The protocol settings.
    pub fn with_cluster_config(mut self, config: ClusterConfig) -> Self {
        self.cluster = config;
        self
    }

    /// The address other nodes should use to reach this one, when it differs from the
    /// server's bound address (binding `0.0.0.0`, NAT, containers).
    pub fn with_advertise_addr(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// How many received gossip messages may wait for the node task (default 1024); more
    /// are dropped, which the protocol tolerates.
    pub fn with_inbox_capacity(mut self, capacity: usize) -> Self {
        self.inbox_capacity = capacity.max(1);
        self
    }

    /// How many events each [`Cluster::subscribe`] subscription queues for its reader
    /// (default [`DEFAULT_EVENT_CAPACITY`], at least 1). The node never waits for a
    /// subscriber: when its queue is full the oldest event is dropped and the subscriber is
    /// told how many it missed ([`Lagged`](crate::Lagged)).
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }
}

/// Errors of the cluster handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The tags exceed the configured limit.
    #[error(transparent)]
    TagsTooLarge(#[from] TagsTooLarge),
    /// The node has left the cluster or its task has stopped.
    #[error("the cluster node has stopped")]
    Stopped,
    /// The node's QUIC client endpoint, or its gossip inbox on the server, could not be
    /// set up.
    #[error("could not set up the node's gossip transport")]
    Transport(#[source] RpcError),
    /// The address to advertise is not usable (for example `0.0.0.0`).
    #[error("cannot advertise {0}: set NodeConfig::with_advertise_addr")]
    Unadvertisable(SocketAddr),
}

/// Requests from handles to the node task.
#[derive(Debug)]
pub(crate) enum Command {
    SetTags(Tags, oneshot::Sender<Result<(), TagsTooLarge>>),
    Subscribe(Publisher<crate::ClusterEvent>),
    Leave(oneshot::Sender<()>),
}

/// A handle to a running cluster node. Cheap to clone; every clone talks to the same
/// node task. The node stops when it [`leave`](Self::leave)s or when the last handle is
/// dropped (without a goodbye: the others will see it fail).
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: NodeId,
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    members: watch::Receiver<Arc<Vec<Member>>>,
    /// This node as it gossips itself.
    local: watch::Receiver<Member>,
    refusals: Arc<std::sync::Mutex<Refusals>>,
    event_capacity: usize,
    counters: Arc<Counters>,
    /// Whether the node's configuration turns metrics on.
    metrics: bool,
}

/// What the node task counts, for [`Cluster::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) gossip_handled: AtomicU64,
    pub(crate) peer_clients: AtomicUsize,
    pub(crate) sends_dropped: AtomicU64,
    pub(crate) confirmed: AtomicUsize,
}

/// Counters of a node's gossip machinery, for tests and diagnostics. Not part of the
/// stable API: fields may change in any release.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Gossip messages the node task took from its inbox (well-formed or not).
    pub gossip_handled: u64,
    /// Peer clients (one per address gossiped to) the node keeps.
    pub peer_clients: usize,
    /// Gossip sends dropped because too many were in flight.
    pub sends_dropped: u64,
    /// Members in the node's table, failed and left ones included.
    pub members: usize,
    /// Live members that have answered a probe of this node (never evicted to make room).
    pub confirmed: usize,
}

impl Cluster {
    /// Starts a node on `server`'s QUIC endpoint (gossip shares its UDP port) and joins
    /// the cluster through the configured seeds. `rpc` is the TLS configuration used to
    /// reach the other nodes (typically the same certificate the server uses). Call this
    /// before `server.serve()`.
    ///
    /// Unless [`NodeConfig::without_membership_service`] was called, the node's
    /// [membership service](membership) is added to `server`.
    pub fn start(
        server: &BoundServer,
        rpc: &RpcConfig,
        config: NodeConfig,
    ) -> Result<Self, ClusterError> {
        let addr = config.advertise.unwrap_or_else(|| server.local_addr());
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(ClusterError::Unadvertisable(addr));
        }
        let inbox = server
            .one_way_inbox(
                envelope::GOSSIP_STREAM_KIND,
                config.inbox_capacity,
                MAX_INBOX_BYTES,
            )
            .map_err(ClusterError::Transport)?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (members_tx, members) = watch::channel(Arc::new(Vec::new()));
        let id = config.id.clone();
        let membership_service = config.membership_service;
        let (local_tx, local) = watch::channel(Member {
            id: config.id.clone(),
            addr,
            state: MemberState::Alive,
            incarnation: 0,
            tags: config.tags.clone(),
        });
        let refusals = Arc::new(std::sync::Mutex::new(Refusals::default()));
        let event_capacity = config.event_capacity;
        let metrics = config.cluster.metrics();
        let counters = Arc::new(Counters::default());
        let driver = driver::Driver::new(
            config,
            addr,
            rpc.clone(),
            members_tx,
            local_tx,
            Arc::clone(&refusals),
            Arc::clone(&counters),
        )?;
        tokio::spawn(driver.run(inbox, commands_rx));
        let cluster = Cluster {
            inner: Arc::new(Inner {
                id,
                addr,
                commands,
                members,
                local,
                refusals,
                event_capacity,
                counters,
                metrics,
            }),
        };
        if membership_service {
            server
                .add_service(membership::MembershipServer::new(
                    membership::MembershipService::new(&cluster, server.shutdown_handle()),
                ))
                .map_err(ClusterError::Transport)?;
        }
        Ok(cluster)
    }

    /// This node's id.
    pub fn local_id(&self) -> &NodeId {
        &self.inner.id
    }

    /// The address this node advertises (where it serves RPCs and gossip).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Every member this node knows about (itself excluded), with state and tags.
    pub fn members(&self) -> Vec<Member> {
        self.inner.members.borrow().as_ref().clone()
    }

    /// The members currently alive (or suspected but not yet failed).
    pub fn live_members(&self) -> Vec<Member> {
        self.inner
            .members
            .borrow()
            .iter()
            .filter(|m| m.state().is_live())
            .cloned()
            .collect()
    }

    /// The member with this id, if known.
    pub fn member(&self, id: &str) -> Option<Member> {
        self.inner
            .members
            .borrow()
            .iter()
            .find(|m| m.id().as_str() == id)
            .cloned()
    }

    /// Waits until the membership view changes after this call (any state or tag
    /// change), for callers that keep their own view up to date. A change made between
    /// reading the view and calling this is not seen: a caller that must miss none reads
    /// the view after each wake-up and can also use [`subscribe`](Self::subscribe).
    pub async fn changed(&self) -> Result<(), ClusterError> {
        let mut members = self.inner.members.clone();
        // The handle's own receiver never marks a version seen: start from the current one.
        members.mark_unchanged();
        members.changed().await.map_err(|_| ClusterError::Stopped)
    }

    /// Whether the node's configuration turns metrics on (for the registries made from it).
    pub(crate) fn metrics_enabled(&self) -> bool {
        self.inner.metrics
    }

    /// The membership view as a watch: the view is published before the events that
    /// report its changes, so a holder that reads it on each change misses none.
    pub(crate) fn watch_members(&self) -> watch::Receiver<Arc<Vec<Member>>> {
        self.inner.members.clone()
    }

    /// Subscribes to membership events from now on: the node task takes the subscription
    /// before it handles any further gossip or timer (events of the inputs it is handling
    /// at the moment of the call, at most a batch of 64 gossip messages, may come before
    /// it). A subscriber that keeps up gets every
    /// event, exactly once, in order. The node never waits for a subscriber: each has a
    /// queue of [`NodeConfig::with_event_capacity`] events, and one that falls further
    /// behind loses the oldest and is told how many ([`Lagged`](crate::Lagged)); see
    /// [`ClusterEvents`].
    pub fn subscribe(&self) -> ClusterEvents {
        let (tx, rx) = lag::channel(self.inner.event_capacity);
        let _ = self.inner.commands.send(Command::Subscribe(tx));
        ClusterEvents::new(rx)
    }

    /// Replaces this node's tags; they are gossiped at a new incarnation.
    pub async fn set_tags(&self, tags: Tags) -> Result<(), ClusterError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::SetTags(tags, tx))
            .map_err(|_| ClusterError::Stopped)?;
        rx.await
            .map_err(|_| ClusterError::Stopped)?
            .map_err(ClusterError::from)
    }

    /// Leaves the cluster gracefully: the other nodes report this one as left
    /// (`NodeLeft`), not failed. Returns once the departure has been gossiped (bounded by
    /// a few gossip intervals); the node task then stops.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.commands.send(Command::Leave(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(30), rx).await;
        }
    }

    /// What this node has refused to take at its senders' word so far: gossip whose
    /// sender is not the node its certificate names (mutual TLS), second-hand claims of
    /// another member's address, death or departure, acks from nodes not asked (see
    /// "Who can gossip" in `rpcnet-cluster/PROTOCOL.md`). The counts only grow.
    pub fn refusals(&self) -> Refusals {
        self.inner.refusals.lock().map(|r| *r).unwrap_or_default()
    }

    /// Counters of this node's gossip machinery (for tests and diagnostics; not a stable
    /// API).
    #[doc(hidden)]
    pub fn stats(&self) -> NodeStats {
        let counters = &self.inner.counters;
        NodeStats {
            gossip_handled: counters.gossip_handled.load(Ordering::Relaxed),
            peer_clients: counters.peer_clients.load(Ordering::Relaxed),
            sends_dropped: counters.sends_dropped.load(Ordering::Relaxed),
            members: self.inner.members.borrow().len(),
            confirmed: counters.confirmed.load(Ordering::Relaxed),
        }
    }

    /// Whether the member with this id is alive or suspected (not failed, not left) in
    /// this node's view.
    pub fn is_alive(&self, id: &str) -> bool {
        self.member(id)
            .is_some_and(|m| matches!(m.state(), MemberState::Alive | MemberState::Suspect))
    }
}
