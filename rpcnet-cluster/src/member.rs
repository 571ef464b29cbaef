//! Who a member is ([`NodeId`]) and what the cluster believes about it ([`Member`]).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tags::Tags;

/// The longest [`NodeId`] accepted, in bytes of UTF-8.
pub const MAX_NODE_ID_LEN: usize = 128;

/// The stable name of a node, unique in its cluster.
///
/// A node keeps its id across restarts: a restarted node announces itself under the same id
/// with a higher incarnation (see [`Swim`](crate::Swim) on restarts). Cloning is cheap (the
/// name is reference counted). Ids order lexicographically, which keeps the core's maps and
/// so its runs deterministic.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Makes an id from a name of 1 to [`MAX_NODE_ID_LEN`] bytes.
    pub fn new(name: impl AsRef<str>) -> Result<Self, InvalidNodeId> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(InvalidNodeId::Empty);
        }
        if name.len() > MAX_NODE_ID_LEN {
            return Err(InvalidNodeId::TooLong {
                len: name.len(),
                max: MAX_NODE_ID_LEN,
            });
        }
        Ok(Self(Arc::from(name)))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        NodeId::new(&*name).map_err(serde::de::Error::custom)
    }
}

/// Why a name cannot be a [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidNodeId {
    /// The name was empty.
    #[error("a node id cannot be empty")]
    Empty,
    /// The name was longer than [`MAX_NODE_ID_LEN`] bytes.
    #[error("a node id of {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// The length of the rejected name, in bytes.
        len: usize,
        /// The limit, [`MAX_NODE_ID_LEN`].
        max: usize,
    },
}

/// What a node believes about a member's liveness.
///
/// For one incarnation the states rank `Alive < Suspect < Dead < Left`; an update wins over the
/// current belief when its incarnation is higher, or equal with a higher rank (with the
/// exceptions listed on [`Swim`](crate::Swim)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MemberState {
    /// Answering probes, or not yet accused.
    Alive,
    /// A probe failed; the member has until its suspicion timeout to refute.
    Suspect,
    /// The suspicion timed out without refutation: the member is considered failed.
    Dead,
    /// The member announced a graceful leave.
    Left,
}

impl MemberState {
    /// `true` for [`Alive`](Self::Alive) and [`Suspect`](Self::Suspect): a member that is
    /// still part of the cluster (a suspect may yet refute).
    pub fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }
}

/// A member of the cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) state: MemberState,
    pub(crate) incarnation: u64,
    pub(crate) tags: Tags,
}

impl Member {
    /// The member's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The address the member gossips (and serves RPC) on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What this node believes about the member's liveness.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The member's incarnation: raised by the member itself to refute a suspicion, change its
    /// tags or come back after a restart. Versions the member's state and tags.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The member's tags at this incarnation.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_rejects_empty_and_overlong_names() {
        assert_eq!(NodeId::new(""), Err(InvalidNodeId::Empty));
        assert!(NodeId::new("a".repeat(MAX_NODE_ID_LEN)).is_ok());
        assert_eq!(
            NodeId::new("a".repeat(MAX_NODE_ID_LEN + 1)),
            Err(InvalidNodeId::TooLong {
                len: MAX_NODE_ID_LEN + 1,
                max: MAX_NODE_ID_LEN
            })
        );
    }
}
