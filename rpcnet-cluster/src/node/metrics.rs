//! A node's metrics through the [`metrics`] facade, when its configuration turns them on
//! ([`ClusterConfig::with_metrics`](crate::ClusterConfig::with_metrics), where the names
//! are listed). The handles are made once, when the node starts: reporting costs no lookup
//! or allocation. With metrics off the node task holds none and reads nothing.

use metrics::{counter, gauge, Counter, Gauge};

use crate::member::{Member, MemberState};
use crate::swim::ProtocolCounts;

/// The member states in the order of [`NodeMetrics::members`], with their labels.
const STATES: [(MemberState, &str); 4] = [
    (MemberState::Alive, "alive"),
    (MemberState::Suspect, "suspect"),
    (MemberState::Dead, "dead"),
    (MemberState::Left, "left"),
];

/// The handles of one node's metrics.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    members: [Gauge; 4],
    suspicions: Counter,
    refutations: Counter,
    failures: Counter,
    sent: Counter,
    sent_bytes: Counter,
    received: Counter,
    received_bytes: Counter,
    dropped: Counter,
    /// The core's counts when last reported.
    reported: ProtocolCounts,
}

impl NodeMetrics {
    /// The handles of node `node` (its id, the `node` label).
    pub(crate) fn new(node: &str) -> Self {
        let node = || node.to_owned();
        let direction = |name: &'static str, direction: &'static str| counter!(name, "node" => node(), "direction" => direction);
        NodeMetrics {
            members: STATES.map(
                |(_, state)| gauge!("rpcnet_cluster_members", "node" => node(), "state" => state),
            ),
            suspicions: counter!("rpcnet_cluster_suspicions_total", "node" => node()),
            refutations: counter!("rpcnet_cluster_refutations_total", "node" => node()),
            failures: counter!("rpcnet_cluster_failures_total", "node" => node()),
            sent: direction("rpcnet_cluster_gossip_messages_total", "sent"),
            sent_bytes: direction("rpcnet_cluster_gossip_bytes_total", "sent"),
            received: direction("rpcnet_cluster_gossip_messages_total", "received"),
            received_bytes: direction("rpcnet_cluster_gossip_bytes_total", "received"),
            dropped: counter!("rpcnet_cluster_gossip_dropped_total", "node" => node()),
            reported: ProtocolCounts::default(),
        }
    }

    /// The view published: sets the members gauges.
    pub(crate) fn members(&self, members: &[Member]) {
        let mut by_state = [0u32; 4];
        for member in members {
            if let Some(i) = STATES.iter().position(|(s, _)| *s == member.state()) {
                by_state[i] += 1;
            }
        }
        for (gauge, count) in self.members.iter().zip(by_state) {
            gauge.set(f64::from(count));
        }
    }

    /// Adds what the core counted since the last call.
    pub(crate) fn counts(&mut self, now: ProtocolCounts) {
        let before = std::mem::replace(&mut self.reported, now);
        self.suspicions
            .increment(now.suspicions.saturating_sub(before.suspicions));
        self.refutations
            .increment(now.refutations.saturating_sub(before.refutations));
    }

    /// The node reported a member failed.
    pub(crate) fn failure(&self) {
        self.failures.increment(1);
    }

    /// A gossip message of `bytes` was handed to QUIC.
    pub(crate) fn sent(&self, bytes: usize) {
        self.sent.increment(1);
        self.sent_bytes.increment(bytes as u64);
    }

    /// A gossip message of `bytes` was taken from the inbox.
    pub(crate) fn received(&self, bytes: usize) {
        self.received.increment(1);
        self.received_bytes.increment(bytes as u64);
    }

    /// A gossip send was dropped: too many in flight.
    pub(crate) fn dropped(&self) {
        self.dropped.increment(1);
    }
}
