//! [`Pool`]: one snapshot of the workers in the registry's pool, with the candidates of each
//! filter kept ready; and how a membership view turns into the next snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::member::{Member, NodeId};
use crate::routing::event::PoolEvent;
use crate::routing::filter::TagFilter;
use crate::routing::worker::{Link, Worker};

/// How many filters a snapshot keeps candidates for; calls with further filters compute
/// theirs on each pick.
const MAX_CACHED_FILTERS: usize = 64;

/// The candidates of one filter.
pub(crate) type Candidates = Arc<[Arc<Worker>]>;

/// The pool at one moment. Immutable but for its cache of candidates by filter.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// By id, so a snapshot lists workers in a stable order.
    workers: BTreeMap<NodeId, Arc<Worker>>,
    /// A memo of `workers` by filter, filled by the calls that pick (the snapshot itself is
    /// replaced, never changed, by the registry's task).
    by_filter: RwLock<HashMap<TagFilter, Candidates>>,
}

impl Pool {
    /// The workers matching `filter`, in id order.
    pub(crate) fn candidates(&self, filter: &TagFilter) -> Candidates {
        if let Some(found) = self.read_cache().get(filter) {
            return Arc::clone(found);
        }
        let found: Candidates = self
            .workers
            .values()
            .filter(|w| filter.matches(&w.tags))
            .cloned()
            .collect();
        let mut cache = match self.by_filter.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.len() < MAX_CACHED_FILTERS {
            cache.insert(filter.clone(), Arc::clone(&found));
        }
        found
    }

    /// Every worker, in id order.
    pub(crate) fn workers(&self) -> impl Iterator<Item = &Arc<Worker>> {
        self.workers.values()
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TagFilter, Candidates>> {
        match self.by_filter.read() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The pool that `members` (a node's whole view) makes: the live members that match
    /// `pool_filter`. A worker that stays keeps its link (its connection and in-flight
    /// count), also across tag changes; a worker that moved to another address gets a new
    /// one. Returns the pool and what changed; the links of removed workers are lost.
    pub(crate) fn next(
        &self,
        members: &[Member],
        pool_filter: &TagFilter,
    ) -> (Pool, Vec<PoolEvent>) {
        let mut workers = BTreeMap::new();
        let mut events = Vec::new();
        for member in members {
            if !member.state().is_live() || !pool_filter.matches(member.tags()) {
                continue;
            }
            let worker = match self.workers.get(member.id()) {
                Some(old) if old.addr == member.addr() => {
                    if old.tags == *member.tags() && old.incarnation == member.incarnation() {
                        Arc::clone(old)
                    } else {
                        let worker = Arc::new(Worker::new(member, Arc::clone(&old.link)));
                        if old.tags != worker.tags {
                            events.push(PoolEvent::WorkerUpdated(worker.info()));
                        }
                        worker
                    }
                }
                Some(old) => {
                    old.link.lose();
                    events.push(PoolEvent::WorkerRemoved(old.info()));
                    let worker = Arc::new(Worker::new(member, Arc::new(Link::new(member.addr()))));
                    events.push(PoolEvent::WorkerAdded(worker.info()));
                    worker
                }
                None => {
                    let worker = Arc::new(Worker::new(member, Arc::new(Link::new(member.addr()))));
                    events.push(PoolEvent::WorkerAdded(worker.info()));
                    worker
                }
            };
            workers.insert(member.id().clone(), worker);
        }
        for (id, old) in &self.workers {
            if !workers.contains_key(id) {
                old.link.lose();
                events.push(PoolEvent::WorkerRemoved(old.info()));
            }
        }
        let pool = Pool {
            workers,
            by_filter: RwLock::default(),
        };
        (pool, events)
    }

    /// Empties the pool: every link is lost.
    pub(crate) fn drain(&self) -> Vec<PoolEvent> {
        self.workers
            .values()
            .map(|w| {
                w.link.lose();
                PoolEvent::WorkerRemoved(w.info())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::member::MemberState;
    use crate::tags::Tags;

    fn member(name: &str, port: u16, state: MemberState, incarnation: u64, role: &str) -> Member {
        Member {
            id: NodeId::new(name).expect("valid id"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            state,
            incarnation,
            tags: Tags::new().with("role", role).expect("small tags"),
        }
    }

    fn workers() -> TagFilter {
        TagFilter::new().with_tag("role", "worker")
    }

    fn names(events: &[PoolEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let kind = match e {
                    PoolEvent::WorkerAdded(_) => "+",
                    PoolEvent::WorkerRemoved(_) => "-",
                    PoolEvent::WorkerUpdated(_) => "~",
                };
                format!("{kind}{}", e.worker().id())
            })
            .collect()
    }

    #[test]
    fn the_pool_holds_live_workers_only() {
        let view = [
            member("a", 1, MemberState::Alive, 0, "worker"),
            member("b", 2, MemberState::Suspect, 0, "worker"),
            member("c", 3, MemberState::Dead, 0, "worker"),
            member("d", 4, MemberState::Left, 0, "worker"),
            member("director", 5, MemberState::Alive, 0, "director"),
        ];
        let (pool, events) = Pool::default().next(&view, &workers());
        assert_eq!(names(&events), ["+a", "+b"]);
        let ids: Vec<&str> = pool.workers().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_failed_worker_leaves_and_loses_its_link_and_its_return_gets_a_new_one() {
        let (first, _) = Pool::default().next(
            &[member("a", 1, MemberState::Alive, 0, "worker")],
            &workers(),
        );
        let old_link = Arc::clone(&first.candidates(&TagFilter::new())[0].link);
        let (second, events) = first.next(
            &[member("a", 1, MemberState::Dead, 0, "worker")],
            &workers(),
        );
        assert_eq!(names(&events), ["-a"]);
        assert!(old_link.is_lost());
        let (third, events) = second.next(
            &[member("a", 1, MemberState::Alive, 1, "worker")],
            &workers(),
        );
        assert_eq!(names(&events), ["+a"]);
        let new_link = &third.candidates(&TagFilter::new())[0].link;
        assert!(!new_link.is_lost());
        assert!(!Arc::ptr_eq(&old_link, new_link));
    }

    #[test]
    fn tag_changes_keep_the_link_or_take_the_worker_out_of_the_pool() {
        let (first, _) = Pool::default().next(
            &[member("a", 1, MemberState::Alive, 0, "worker")],
            &workers(),
        );
        let link = Arc::clone(&first.candidates(&TagFilter::new())[0].link);
        let mut gpu = member("a", 1, MemberState::Alive, 1, "worker");
        gpu.tags = gpu.tags.with("gpu", "true").expect("small tags");
        let (second, events) = first.next(&[gpu], &workers());
        assert_eq!(names(&events), ["~a"]);
        let filtered = second.candidates(&TagFilter::new().with_tag("gpu", "true"));
        assert!(
            Arc::ptr_eq(&filtered[0].link, &link),
            "same connection and counts"
        );
        let (third, events) = second.next(
            &[member("a", 1, MemberState::Alive, 2, "standby")],
            &workers(),
        );
        assert_eq!(names(&events), ["-a"]);
        assert!(third.candidates(&TagFilter::new()).is_empty());
    }

    #[test]
    fn a_worker_on_a_new_address_gets_a_new_link() {
        let (first, _) = Pool::default().next(
            &[member("a", 1, MemberState::Alive, 0, "worker")],
            &workers(),
        );
        let old_link = Arc::clone(&first.candidates(&TagFilter::new())[0].link);
        let (_, events) = first.next(
            &[member("a", 2, MemberState::Alive, 1, "worker")],
            &workers(),
        );
        assert_eq!(names(&events), ["-a", "+a"]);
        assert!(old_link.is_lost());
    }
}
