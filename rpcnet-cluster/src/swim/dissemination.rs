//! The piggyback broadcast queue: which updates ride on the next message.
//!
//! At most one update per member waits (a newer one replaces it). Each message takes the
//! updates sent the fewest times so far, newest first among equals, as many as fit its byte
//! budget; an update is dropped after the retransmission limit (`λ·⌈ln(n + 1)⌉`, computed by
//! the caller for the current cluster size).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::message::{Update, MAX_PIGGYBACK_UPDATES};
use crate::member::NodeId;

/// The smallest an encoded update can be; below this much budget, stop looking.
const MIN_UPDATE_BYTES: usize = 16;

/// How many updates too large for the remaining budget to skip before the message is
/// considered full (so a long queue is not scanned to the end for every message).
const MAX_MISSES: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct Dissemination {
    items: BTreeMap<NodeId, Item>,
    /// (transmissions so far, newest first, member): the selection order.
    order: BTreeSet<(u32, Reverse<u64>, NodeId)>,
    next_serial: u64,
}

#[derive(Debug)]
struct Item {
    update: Update,
    size: usize,
    transmits: u32,
    serial: u64,
}

impl Dissemination {
    /// Queues an update, replacing any queued update about the same member.
    pub(crate) fn enqueue(&mut self, update: Update) {
        let id = update.id.clone();
        if let Some(old) = self.items.remove(&id) {
            self.order
                .remove(&(old.transmits, Reverse(old.serial), id.clone()));
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let size = update.encoded_len();
        self.order.insert((0, Reverse(serial), id.clone()));
        self.items.insert(
            id,
            Item {
                update,
                size,
                transmits: 0,
                serial,
            },
        );
    }

    /// Takes the updates for one message: fewest transmissions first, at most `budget`
    /// encoded bytes and [`MAX_PIGGYBACK_UPDATES`] updates; each counts one transmission and
    /// is dropped when it reaches `limit`.
    pub(crate) fn select(&mut self, budget: usize, limit: u32, out: &mut Vec<Update>) {
        let mut remaining = budget;
        let mut taken = Vec::new();
        let mut misses = 0;
        for key in &self.order {
            if remaining < MIN_UPDATE_BYTES
                || misses >= MAX_MISSES
                || out.len() + taken.len() >= MAX_PIGGYBACK_UPDATES
            {
                break;
            }
            let Some(item) = self.items.get(&key.2) else {
                continue;
            };
            if item.size <= remaining {
                remaining -= item.size;
                taken.push(key.clone());
            } else {
                misses += 1;
            }
        }
        for key in taken {
            self.order.remove(&key);
            let (_, serial, id) = key;
            let Some(item) = self.items.get_mut(&id) else {
                continue;
            };
            out.push(item.update.clone());
            item.transmits += 1;
            if item.transmits >= limit {
                self.items.remove(&id);
            } else {
                self.order.insert((item.transmits, serial, id));
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberState;
    use crate::tags::Tags;

    fn update(name: &str, incarnation: u64) -> Update {
        Update {
            id: NodeId::new(name).expect("valid id"),
            addr: ([10, 0, 0, 1], 1).into(),
            incarnation,
            state: MemberState::Alive,
            tags: Tags::new(),
            suspecter: None,
        }
    }

    #[test]
    fn an_update_is_sent_exactly_limit_times() {
        let mut q = Dissemination::default();
        q.enqueue(update("a", 1));
        let mut sent = 0;
        for _ in 0..10 {
            let mut out = Vec::new();
            q.select(1000, 4, &mut out);
            sent += out.len();
        }
        assert_eq!(sent, 4);
        assert!(q.is_empty());
    }

    #[test]
    fn a_newer_update_replaces_the_queued_one_about_the_same_member() {
        let mut q = Dissemination::default();
        q.enqueue(update("a", 1));
        q.enqueue(update("a", 2));
        assert_eq!(q.len(), 1);
        let mut out = Vec::new();
        q.select(1000, 4, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].incarnation, 2);
    }

    #[test]
    fn least_sent_updates_go_first_and_the_budget_is_respected() {
        let mut q = Dissemination::default();
        q.enqueue(update("a", 1));
        let mut out = Vec::new();
        q.select(1000, 10, &mut out);
        q.enqueue(update("b", 1));
        let size = update("b", 1).encoded_len();
        let mut out = Vec::new();
        q.select(size, 10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_str(), "b");
    }

    #[test]
    fn selection_never_exceeds_the_piggyback_limit() {
        let mut q = Dissemination::default();
        for i in 0..200 {
            q.enqueue(update(&format!("m{i}"), 1));
        }
        let mut out = Vec::new();
        q.select(usize::MAX / 2, 10, &mut out);
        assert_eq!(out.len(), MAX_PIGGYBACK_UPDATES);
    }
}
