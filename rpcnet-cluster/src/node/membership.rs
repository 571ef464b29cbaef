//! The membership service a cluster node serves unless turned off
//! ([`NodeConfig::without_membership_service`](super::NodeConfig::without_membership_service)):
//! `rpcnet.Membership.members()` lists the cluster as this node sees it (itself included),
//! `rpcnet.Membership.watch()` streams its membership events as they happen. Tools such
//! as the `rpcnet` command line ask a node through it instead of joining the cluster.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use rpcnet_runtime::ShutdownHandle;
use serde::{Deserialize, Serialize};

use super::{Cluster, Inner};
use crate::member::{Member, MemberState};
use crate::ClusterEvent;

/// The wire name of the membership service.
pub const MEMBERSHIP_SERVICE: &str = "rpcnet.Membership";

/// A member of the cluster as the node asked sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member's node id.
    pub node: String,
    /// The address it gossips and serves RPCs on.
    pub addr: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: String,
    /// The member's incarnation.
    pub incarnation: u64,
    /// The member's tags.
    pub tags: BTreeMap<String, String>,
    /// When the node asked last saw this member change (milliseconds since the Unix
    /// epoch; for the node itself, when it started), if it has seen a change.
    pub last_change_ms: Option<u64>,
    /// Whether this is the node that answered.
    pub local: bool,
}

/// What happened to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipEventKind {
    /// `ClusterEvent::NodeJoined`.
    NodeJoined,
    /// `ClusterEvent::NodeLeft`.
    NodeLeft,
    /// `ClusterEvent::NodeFailed`.
    NodeFailed,
    /// `ClusterEvent::NodeRecovered`.
    NodeRecovered,
    /// `ClusterEvent::TagsChanged`.
    TagsChanged,
}

/// A membership event as the node asked sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipEvent {
    /// What happened.
    pub kind: MembershipEventKind,
    /// The member, as it is after the change.
    pub member: MemberInfo,
}

/// Why the membership service cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// The node has left the cluster or stopped.
    #[error("the cluster node has stopped")]
    Stopped,
}

/// The cluster as one node sees it, and its changes.
#[rpcnet_macros::service(crate = "rpcnet_runtime", name = "rpcnet.Membership")]
pub trait Membership {
    /// Every member this node knows about, itself first.
    async fn members(&self) -> Result<Vec<MemberInfo>, MembershipError>;

    /// The membership events this node sees from now on. Ends when the node stops, its
    /// server begins shutting down, or the watcher fell so far behind that events were
    /// dropped (list the members and watch again).
    async fn watch(
        &self,
    ) -> Result<Pin<Box<dyn Stream<Item = MembershipEvent> + Send>>, MembershipError>;
}

/// The node's membership service. Holds the node weakly: serving it does not keep a node
/// running whose handles are all dropped.
#[derive(Debug)]
pub(crate) struct MembershipService {
    node: Weak<Inner>,
    /// When each member last changed, in milliseconds since the Unix epoch.
    changes: Arc<Mutex<HashMap<String, u64>>>,
    started: u64,
    shutdown: ShutdownHandle,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Dead => "dead",
        MemberState::Left => "left",
    }
}

fn info(member: &Member, last_change_ms: Option<u64>, local: bool) -> MemberInfo {
    MemberInfo {
        node: member.id().as_str().to_owned(),
        addr: member.addr().to_string(),
        state: state_name(member.state()).to_owned(),
        incarnation: member.incarnation(),
        tags: member
            .tags()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        last_change_ms,
        local,
    }
}

fn event(event: &ClusterEvent) -> Option<MembershipEvent> {
    let kind = match event {
        ClusterEvent::NodeJoined(_) => MembershipEventKind::NodeJoined,
        ClusterEvent::NodeLeft(_) => MembershipEventKind::NodeLeft,
        ClusterEvent::NodeFailed(_) => MembershipEventKind::NodeFailed,
        ClusterEvent::NodeRecovered(_) => MembershipEventKind::NodeRecovered,
        ClusterEvent::TagsChanged(_) => MembershipEventKind::TagsChanged,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    Some(MembershipEvent {
        kind,
        member: info(event.member(), Some(now_ms()), false),
    })
}

impl MembershipService {
    /// The service for `cluster`, keeping track of when members change (from a
    /// subscription that ends with the node).
    pub(crate) fn new(cluster: &Cluster, shutdown: ShutdownHandle) -> Self {
        let changes = Arc::new(Mutex::new(HashMap::new()));
        let mut events = cluster.subscribe();
        let recorded = Arc::clone(&changes);
        tokio::spawn(async move {
            // After a lag the missed members' last change times stay as they were.
            while let Some(event) = events.next().await {
                if let (Ok(event), Ok(mut changes)) = (event, recorded.lock()) {
                    changes.insert(event.member().id().as_str().to_owned(), now_ms());
                }
            }
        });
        MembershipService {
            node: Arc::downgrade(&cluster.inner),
            changes,
            started: now_ms(),
            shutdown,
        }
    }

    fn cluster(&self) -> Result<Cluster, MembershipError> {
        self.node
            .upgrade()
            .map(|inner| Cluster { inner })
            .ok_or(MembershipError::Stopped)
    }
}

impl Membership for MembershipService {
    async fn members(&self) -> Result<Vec<MemberInfo>, MembershipError> {
        let cluster = self.cluster()?;
        let local = cluster.inner.local.borrow().clone();
        let members = cluster.members();
        let changes = self.changes.lock().map(|c| c.clone()).unwrap_or_default();
        let mut list = Vec::with_capacity(members.len() + 1);
        list.push(info(&local, Some(self.started), true));
        list.extend(
            members
                .iter()
                .map(|m| info(m, changes.get(m.id().as_str()).copied(), false)),
        );
        Ok(list)
    }

    async fn watch(
        &self,
    ) -> Result<Pin<Box<dyn Stream<Item = MembershipEvent> + Send>>, MembershipError> {
        let events = self.cluster()?.subscribe();
        let shutdown = self.shutdown.clone();
        let stopped = async move { shutdown.shutting_down().await };
        // A watcher that fell so far behind that events were dropped sees its watch end
        // (rather than a gap it cannot notice), and can list the members and watch again.
        Ok(events
            .take_while(|e| std::future::ready(e.is_ok()))
            .filter_map(|e| std::future::ready(e.ok().as_ref().and_then(event)))
            .take_until(stopped)
            .boxed())
    }
}
