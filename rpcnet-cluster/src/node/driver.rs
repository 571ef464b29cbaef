//! The node task: owns the SWIM core, feeds it gossip, timers and commands, and carries
//! out what it asks for (send messages, emit events).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rpcnet_runtime::{ClientEndpoint, OneWayInbox, OneWayMessage, RpcConfig};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, trace, Instrument, Span};

use super::envelope::{self, GOSSIP_STREAM_KIND};
use super::metrics::NodeMetrics;
use super::peers::PeerClients;
use super::{ClusterError, Command, Counters, NodeConfig};
use crate::lag::Publisher;
use crate::member::Member;
use crate::member::NodeId;
use crate::swim::{Refusals, Swim, Transmit};
use crate::ClusterEvent;

/// Gossip sends to live members in flight at once; beyond this, messages are dropped (SWIM
/// tolerates loss).
const MAX_SENDS_IN_FLIGHT: usize = 512;
/// Gossip sends in flight at once to addresses of no live member (answers to joining nodes,
/// to indirect probes, or to whatever address a message claims), on a budget of their own:
/// a flood of messages claiming addresses cannot take the members' budget.
const MAX_STRANGER_SENDS_IN_FLIGHT: usize = 64;
/// Peer clients kept beyond one per member: room for the seeds.
const MAX_SEEDS: usize = 64;
/// The prefix of the certificate name (a `URI` subject alternative name) that binds a
/// certificate to a node id: `rpcnet://node/<id>`.
pub const NODE_URI_PREFIX: &str = "rpcnet://node/";
/// Gossip messages already in the inbox handled together, before one flush of the core's
/// output.
const GOSSIP_BATCH: usize = 64;
/// How often unresolvable seeds are looked up again.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);

pub(super) struct Driver {
    swim: Swim<SmallRng>,
    addr: SocketAddr,
    seeds: Vec<String>,
    joined: bool,
    peer_config: RpcConfig,
    endpoint: ClientEndpoint,
    peers: PeerClients,
    subscribers: Vec<Publisher<ClusterEvent>>,
    members: watch::Sender<Arc<Vec<Member>>>,
    /// This node as it gossips itself (incarnation, tags).
    local: watch::Sender<Member>,
    sends: Arc<Semaphore>,
    stranger_sends: Arc<Semaphore>,
    /// The addresses of the live members, as of the last published view.
    member_addrs: HashSet<SocketAddr>,
    send_timeout: Duration,
    /// Messages refused here because their sender is not who the certificate names.
    impersonations: u64,
    refusals: Arc<Mutex<Refusals>>,
    counters: Arc<Counters>,
    /// The core's view version when the view was last published.
    published_version: u64,
    /// Its metrics, if the configuration turns them on.
    metrics: Option<NodeMetrics>,
    /// The span of the probe in flight, with its sequence number.
    probe_span: Option<(u32, Span)>,
}

impl Driver {
    pub(super) fn new(
        config: NodeConfig,
        addr: SocketAddr,
        rpc: RpcConfig,
        members: watch::Sender<Arc<Vec<Member>>>,
        local: watch::Sender<Member>,
        refusals: Arc<Mutex<Refusals>>,
        counters: Arc<Counters>,
    ) -> Result<Self, ClusterError> {
        let period = config.cluster.health_check_interval();
        let send_timeout = period.max(Duration::from_millis(500));
        // Connections to peers notice a dead peer within a few probe periods, so a peer
        // that restarts on the same address is reached over a fresh connection.
        let peer_config = rpc
            .with_connect_timeout(send_timeout / 2)
            .with_idle_timeout((period * 4).max(Duration::from_secs(2)))
            .with_keep_alive(true)
            .with_reconnect_backoff(
                Duration::from_millis(100),
                period.max(Duration::from_secs(1)),
            );
        // The endpoint gives up a handshake as soon as the send waiting on it does, so that
        // gossip addressed to where nobody answers holds no connection state beyond that.
        let endpoint = ClientEndpoint::new(&peer_config).map_err(ClusterError::Transport)?;
        let peer_capacity = config.cluster.max_members() + MAX_SEEDS;
        let metrics = config
            .cluster
            .metrics()
            .then(|| NodeMetrics::new(config.id.as_str()));
        let swim = Swim::try_new(
            config.id,
            addr,
            config.tags,
            config.cluster,
            SmallRng::from_entropy(),
            Instant::now(),
        )?;
        local.send_replace(swim.local().clone());
        Ok(Driver {
            swim,
            addr,
            seeds: config.seeds,
            joined: false,
            peer_config,
            endpoint,
            peers: PeerClients::new(peer_capacity),
            subscribers: Vec::new(),
            members,
            local,
            sends: Arc::new(Semaphore::new(MAX_SENDS_IN_FLIGHT)),
            stranger_sends: Arc::new(Semaphore::new(MAX_STRANGER_SENDS_IN_FLIGHT)),
            member_addrs: HashSet::new(),
            send_timeout,
            impersonations: 0,
            refusals,
            counters,
            published_version: 0,
            metrics,
            probe_span: None,
        })
    }

    pub(super) async fn run(
        mut self,
        mut inbox: OneWayInbox,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let span =
            tracing::debug_span!("cluster_node", id = %self.swim.local().id(), addr = %self.addr);
        async move {
            debug!(seeds = ?self.seeds, "node started");
            let mut next_resolve = tokio::time::Instant::now();
            let mut leaving: Option<oneshot::Sender<()>> = None;
            loop {
                self.flush();
                if leaving.is_some() && self.swim.poll_timeout().is_none() {
                    break;
                }
                let wake = self
                    .swim
                    .poll_timeout()
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                let must_join = !self.joined && leaving.is_none();
                // Commands first: a subscription taken by `Cluster::subscribe` is in place
                // before any gossip or timer that arrives after the call is handled.
                tokio::select! {
                    biased;
                    command = commands.recv(), if leaving.is_none() => match command {
                        Some(Command::SetTags(tags, reply)) => {
                            let _ = reply.send(self.swim.set_tags(tags));
                            self.publish_members();
                        }
                        Some(Command::Subscribe(subscriber)) => self.subscribers.push(subscriber),
                        Some(Command::Leave(reply)) => {
                            debug!("leaving");
                            self.swim.leave(Instant::now());
                            self.track_probe();
                            leaving = Some(reply);
                        }
                        None => {
                            debug!("every handle dropped; node stops");
                            break;
                        }
                    },
                    // Due timers before gossip: a flood that keeps the inbox full cannot stop
                    // the node from probing, gossiping and refuting.
                    () = tokio::time::sleep_until(wake) => {
                        self.swim.handle_timeout(Instant::now());
                        self.track_probe();
                    }
                    () = tokio::time::sleep_until(next_resolve), if must_join => {
                        self.resolve_and_join().await;
                        next_resolve = tokio::time::Instant::now() + RESOLVE_RETRY;
                    }
                    message = inbox.recv() => match message {
                        Some(message) => {
                            self.on_gossip(message);
                            // Messages already waiting are handled before the next flush:
                            // a burst costs one publication of the view, not one each.
                            for _ in 1..GOSSIP_BATCH {
                                match inbox.recv().now_or_never() {
                                    Some(Some(message)) => self.on_gossip(message),
                                    _ => break,
                                }
                            }
                        }
                        None => {
                            debug!("server stopped; node stops");
                            break;
                        }
                    },
                }
            }
            if let Some(reply) = leaving {
                let _ = reply.send(());
            }
            debug!("node stopped");
        }
        .instrument(span)
        .await;
    }

    /// Resolves the seeds (host names included) and joins through those that resolve.
    async fn resolve_and_join(&mut self) {
        if self.seeds.is_empty() {
            self.joined = true;
            return;
        }
        let mut addrs = Vec::new();
        for seed in &self.seeds {
            match tokio::net::lookup_host(seed.as_str()).await {
                Ok(resolved) => addrs.extend(resolved),
                Err(error) => debug!(%seed, %error, "seed does not resolve yet"),
            }
        }
        if addrs.is_empty() {
            return;
        }
        debug!(?addrs, "joining");
        self.swim.join(&addrs, Instant::now());
        self.joined = true;
    }

    /// Closes the span of a probe that has ended, recording its outcome, and opens one for
    /// the probe now in flight. Probes start and end only on timers (and a leave).
    fn track_probe(&mut self) {
        let in_flight = self.swim.probe_in_flight();
        let seq = in_flight.map(|(_, seq)| seq);
        if self.probe_span.as_ref().map(|(seq, _)| *seq) == seq {
            return;
        }
        if let Some((ended, span)) = self.probe_span.take() {
            let outcome = match self.swim.last_probe() {
                Some((seq, outcome)) if seq == ended => outcome.as_str(),
                _ => "abandoned",
            };
            span.record("outcome", outcome);
        }
        if let Some((target, seq)) = in_flight {
            let span = tracing::debug_span!(
                "probe_round",
                target = %target,
                seq,
                outcome = tracing::field::Empty,
            );
            self.probe_span = Some((seq, span));
        }
    }

    fn on_gossip(&mut self, message: OneWayMessage) {
        self.counters.gossip_handled.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.received(message.payload.len());
        }
        match envelope::open(&message.payload) {
            Ok((from, msg)) => {
                trace!(%from, kind = ?msg.kind(), "gossip received");
                let vouched = message
                    .peer_certificate
                    .as_deref()
                    .is_none_or(|cert| speaks_for(cert.uris(), &msg.from));
                if vouched {
                    self.swim.handle_message(from, msg, Instant::now());
                } else {
                    self.impersonations += 1;
                    debug!(
                        peer = ?message.from,
                        claimed = %msg.from,
                        names = ?message.peer_certificate.as_deref().map(|c| c.uris()),
                        "gossip refused: its sender is not the node its certificate names"
                    );
                }
                self.publish_refusals();
            }
            Err(error) => {
                debug!(from = ?message.from, %error, len = message.payload.len(), "ignored gossip")
            }
        }
    }

    fn publish_refusals(&self) {
        let mut refusals = self.swim.refusals();
        refusals.impersonations += self.impersonations;
        if let Ok(mut shared) = self.refusals.lock() {
            *shared = refusals;
        }
    }

    /// Sends what the core wants sent and publishes its events.
    fn flush(&mut self) {
        self.counters
            .confirmed
            .store(self.swim.confirmed_members(), Ordering::Relaxed);
        while let Some(transmit) = self.swim.poll_transmit() {
            self.send(transmit);
        }
        let mut events = Vec::new();
        if let Some(metrics) = &mut self.metrics {
            metrics.counts(self.swim.counts());
        }
        while let Some(event) = self.swim.poll_event() {
            debug!(?event, "membership event");
            if let (Some(metrics), ClusterEvent::NodeFailed(_)) = (&self.metrics, &event) {
                metrics.failure();
            }
            if let ClusterEvent::NodeFailed(m) | ClusterEvent::NodeLeft(m) = &event {
                // Its connection is dead or unwanted; a return gets a fresh one.
                self.peers.remove(&m.addr());
                self.counters
                    .peer_clients
                    .store(self.peers.len(), Ordering::Relaxed);
            }
            events.push(event);
        }
        // A change that makes no event (a refutation's new incarnation, say) still goes
        // into the published view.
        if events.is_empty() && self.swim.view_version() == self.published_version {
            return;
        }
        // The view first, then the events: a subscriber that reacts to an event by reading
        // `Cluster::members` sees the change it was told about.
        self.publish_members();
        for event in events {
            self.subscribers.retain(|s| s.publish(event.clone()));
        }
    }

    fn publish_members(&mut self) {
        self.published_version = self.swim.view_version();
        let members: Vec<Member> = self.swim.members().cloned().collect();
        if let Some(metrics) = &self.metrics {
            metrics.members(&members);
        }
        self.member_addrs = members
            .iter()
            .filter(|m| m.state().is_live())
            .map(Member::addr)
            .collect();
        self.members.send_replace(Arc::new(members));
        self.local.send_if_modified(|local| {
            let now = self.swim.local();
            let changed = local != now;
            if changed {
                *local = now.clone();
            }
            changed
        });
    }

    fn send(&mut self, transmit: Transmit) {
        let budget = if self.member_addrs.contains(&transmit.to) {
            &self.sends
        } else {
            &self.stranger_sends
        };
        let Ok(permit) = Arc::clone(budget).try_acquire_owned() else {
            self.counters.sends_dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = &self.metrics {
                metrics.dropped();
            }
            trace!(to = %transmit.to, "too many gossip sends in flight; dropped");
            return;
        };
        let Some(client) = self
            .peers
            .get(transmit.to, &self.endpoint, &self.peer_config)
        else {
            trace!(to = %transmit.to, "not a dialable address; dropped");
            return;
        };
        self.counters
            .peer_clients
            .store(self.peers.len(), Ordering::Relaxed);
        let payload = envelope::seal(self.addr, &transmit.msg);
        if let Some(metrics) = &self.metrics {
            metrics.sent(payload.len());
        }
        let timeout = self.send_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, client.send_one_way(GOSSIP_STREAM_KIND, payload))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => trace!(to = %client.server_addr(), %error, "gossip send failed"),
                Err(_) => trace!(to = %client.server_addr(), "gossip send timed out"),
            }
            drop(permit);
        });
    }
}

/// Whether a certificate with these `URI` names may speak for node `id`: one of them is
/// `rpcnet://node/<id>`.
fn speaks_for(uris: &[String], id: &NodeId) -> bool {
    uris.iter()
        .any(|uri| uri.strip_prefix(NODE_URI_PREFIX) == Some(id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_speaks_only_for_the_node_ids_it_names() {
        let id = |s: &str| NodeId::new(s).expect("valid id");
        let names = ["rpcnet://node/a".to_owned(), "https://b.example".to_owned()];
        assert!(speaks_for(&names, &id("a")));
        assert!(!speaks_for(&names, &id("b")));
        assert!(!speaks_for(&names, &id("https://b.example")));
        assert!(!speaks_for(&names, &id("rpcnet://node/a")));
        assert!(!speaks_for(&[], &id("a")));
        let prefix_only = ["rpcnet://node/a-b".to_owned()];
        assert!(!speaks_for(&prefix_only, &id("a")));
    }
}
