//! What the core reports to its user about other members.

use crate::member::Member;

/// A change in the membership, as one node sees it.
///
/// Each is emitted at most once per member, incarnation and kind, and the events about one
/// member come in the order the changes happened: `NodeJoined`, then any `TagsChanged`, then
/// `NodeFailed` (possibly followed by `NodeRecovered`) or `NodeLeft` (possibly followed by a
/// new `NodeJoined` when the member comes back). Suspicion is internal and not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A member became known and alive, or came back after leaving.
    NodeJoined(Member),
    /// A member left gracefully.
    NodeLeft(Member),
    /// A member stopped answering and did not refute its suspicion in time; or a live
    /// member that never answered this node's probes was evicted from a full member table
    /// to make room for another (see [`ClusterConfig::max_members`]): this node forgets it,
    /// and reports it `NodeJoined` if it hears of it again.
    ///
    /// [`ClusterConfig::max_members`]: crate::ClusterConfig::max_members
    NodeFailed(Member),
    /// A member that was reported failed is alive again at a higher incarnation (it refuted
    /// a false accusation, or restarted).
    NodeRecovered(Member),
    /// A live member changed its tags.
    TagsChanged(Member),
}

impl ClusterEvent {
    /// The member the event is about, as it is after the change.
    pub fn member(&self) -> &Member {
        match self {
            ClusterEvent::NodeJoined(m)
            | ClusterEvent::NodeLeft(m)
            | ClusterEvent::NodeFailed(m)
            | ClusterEvent::NodeRecovered(m)
            | ClusterEvent::TagsChanged(m) => m,
        }
    }
}
