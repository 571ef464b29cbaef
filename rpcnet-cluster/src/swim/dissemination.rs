//! Dissemination: applying the updates that arrive (membership changes, suspicions, claims
//! about this node to refute), and the piggyback broadcast queue that spreads them: which
//! updates ride on the next message.
//!
//! At most one update per member waits (a newer one replaces it). Each message takes the
//! updates sent the fewest times so far, newest first among equals, as many as fit its byte
//! budget; an update is dropped after the retransmission limit (`λ·⌈ln(n + 1)⌉`, computed by
//! the caller for the current cluster size).
//!
//! # News before churn, with a bounded share
//!
//! Updates come in two classes. **News** changes what users see: a member joined, left,
//! failed, recovered or changed its tags (the update caused a [`ClusterEvent`] where it was
//! applied, or announces this node's own tags or departure). **Churn** is the protocol's own
//! traffic: suspicions, their confirmations and the refutations that answer them.
//!
//! Under packet loss the churn can need far more piggyback slots than messages offer: at 30%
//! loss in a 1,000-node cluster about one probe in five ends in a (false) suspicion, so a
//! few hundred suspicions and refutations are born every second, each wanting `λ·⌈ln(n + 1)⌉`
//! transmissions from every node. The queue is then always full, and with newest-first
//! selection an update is buried by newer churn after two or three transmissions — too few for
//! an epidemic to reach every node, so a tag change or a join would wait for push-pull at the
//! last few percent of nodes. So each message first takes news, up to half of its byte budget
//! and half of its update slots, then churn, then more news if room is left. News is rare, so
//! it then gets all its transmissions within a couple of seconds; and since it takes more than
//! half of a message only when churn leaves room, a burst of news (a mass join, a healed
//! partition) cannot starve the suspicions and refutations that keep failure detection
//! accurate. Neither class is ever kept waiting while the other leaves room unused.
//!
//! [`ClusterEvent`]: crate::ClusterEvent

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::membership::{is_newer, judge, Room, Suspicion, Verdict};
use super::message::{header_bound, Body, Message, Update, MAX_PIGGYBACK_UPDATES};
use super::{Swim, Transmit, MAX_ADDRESS_CHECKS};
use crate::event::ClusterEvent;
use crate::member::{MemberState, NodeId};

/// The smallest an encoded update can be; below this much budget, stop looking.
const MIN_UPDATE_BYTES: usize = 16;

/// How many updates too large for the remaining budget to skip before the message is
/// considered full (so a long queue is not scanned to the end for every message).
const MAX_MISSES: usize = 4;

/// The selection order: (transmissions so far, newest first, member).
type Key = (u32, Reverse<u64>, NodeId);

/// Which class an update belongs to (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Changes what users see: a join, leave, failure, recovery or tag change.
    News,
    /// Suspicions, confirmations and refutations.
    Churn,
}

#[derive(Debug, Default)]
pub(crate) struct Dissemination {
    items: BTreeMap<NodeId, Item>,
    /// The queued news, in selection order.
    news: BTreeSet<Key>,
    /// The queued churn, in selection order.
    churn: BTreeSet<Key>,
    next_serial: u64,
}

#[derive(Debug)]
struct Item {
    update: Update,
    size: usize,
    transmits: u32,
    serial: u64,
    class: Class,
}

impl Item {
    fn key(&self) -> Key {
        (self.transmits, Reverse(self.serial), self.update.id.clone())
    }
}

impl Dissemination {
    /// Queues an update, replacing any queued update about the same member.
    pub(crate) fn enqueue(&mut self, update: Update, class: Class) {
        let id = update.id.clone();
        if let Some(old) = self.items.remove(&id) {
            let key = old.key();
            self.set(old.class).remove(&key);
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let item = Item {
            size: update.encoded_len(),
            update,
            transmits: 0,
            serial,
            class,
        };
        self.set(class).insert(item.key());
        self.items.insert(id, item);
    }

    /// Takes the updates for one message, at most `budget` encoded bytes and
    /// [`MAX_PIGGYBACK_UPDATES`] updates in all (with those already in `out`), each class
    /// fewest transmissions first: news up to half the bytes and half the slots, then churn
    /// up to the rest, then more news if room is left. Each counts one transmission and is
    /// dropped when it reaches `limit`.
    pub(crate) fn select(&mut self, budget: usize, limit: u32, out: &mut Vec<Update>) {
        let slots = MAX_PIGGYBACK_UPDATES.saturating_sub(out.len());
        let mut taken = Vec::new();
        let mut used = fill(&self.news, &self.items, budget / 2, slots / 2, &mut taken);
        used += fill(&self.churn, &self.items, budget - used, slots, &mut taken);
        fill(&self.news, &self.items, budget - used, slots, &mut taken);
        for key in taken {
            let (_, serial, id) = key;
            let Some(item) = self.items.get_mut(&id) else {
                continue;
            };
            let (old, class) = (item.key(), item.class);
            out.push(item.update.clone());
            item.transmits += 1;
            let next = (item.transmits < limit).then(|| (item.transmits, serial, id.clone()));
            let set = self.set(class);
            set.remove(&old);
            match next {
                Some(key) => {
                    set.insert(key);
                }
                None => {
                    self.items.remove(&id);
                }
            }
        }
    }

    fn set(&mut self, class: Class) -> &mut BTreeSet<Key> {
        match class {
            Class::News => &mut self.news,
            Class::Churn => &mut self.churn,
        }
    }

    /// Drops the queued update about `id`, if any (the member was forgotten).
    pub(crate) fn forget(&mut self, id: &NodeId) {
        if let Some(old) = self.items.remove(id) {
            let key = old.key();
            self.set(old.class).remove(&key);
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

/// Adds to `taken` the keys of `order`, in order, whose updates fit in `budget` bytes, until
/// `taken` holds `slots` keys; skips keys already taken. Returns the bytes used.
fn fill(
    order: &BTreeSet<Key>,
    items: &BTreeMap<NodeId, Item>,
    budget: usize,
    slots: usize,
    taken: &mut Vec<Key>,
) -> usize {
    let mut remaining = budget;
    let mut misses = 0;
    for key in order {
        if remaining < MIN_UPDATE_BYTES || misses >= MAX_MISSES || taken.len() >= slots {
            break;
        }
        if taken.contains(key) {
            continue;
        }
        let Some(item) = items.get(&key.2) else {
            continue;
        };
        if item.size <= remaining {
            remaining -= item.size;
            taken.push(key.clone());
        } else {
            misses += 1;
        }
    }
    budget - remaining
}

impl<R: Rng> Swim<R> {
    pub(super) fn apply_all(&mut self, updates: Vec<Update>, sender: &NodeId, now: Instant) {
        for u in updates {
            self.apply_update(u, sender, false, now);
        }
    }

    /// Judges one update and applies it: events, suspicion timers, re-dissemination.
    pub(super) fn apply_update(
        &mut self,
        mut u: Update,
        sender: &NodeId,
        push_pull: bool,
        now: Instant,
    ) {
        if u.id == self.local.id {
            self.about_self(&u);
            return;
        }
        // First-hand: the member speaking of itself, or this node's own conclusion. Anyone
        // else's word cannot move a known member's address, nor make it dead or gone.
        let first_hand = u.id == *sender || *sender == self.local.id;
        if !first_hand {
            if let Some((addr, incarnation)) =
                self.members.get(&u.id).map(|m| (m.addr, m.incarnation))
            {
                if u.addr != addr {
                    self.refusals.second_hand_claims += 1;
                    if is_newer(u.incarnation, incarnation) {
                        self.check_address(&u.id, u.addr, u.incarnation);
                    }
                    return;
                }
            }
            if matches!(u.state, MemberState::Dead | MemberState::Left) {
                self.refusals.second_hand_claims += 1;
                u.state = MemberState::Suspect;
                u.suspecter = Some(sender.clone());
            }
        } else if *sender != self.local.id {
            self.address_checks.remove(&u.id);
        }
        if push_pull && u.state == MemberState::Dead {
            // The peer's verdict is second-hand here: suspect, and let the member refute.
            u.state = MemberState::Suspect;
        }
        if u.state == MemberState::Suspect && (push_pull || u.suspecter.is_none()) {
            u.suspecter = Some(sender.clone());
        }
        let current = self.members.belief(&u.id);
        let verdict = match current {
            None if push_pull && u.state == MemberState::Suspect => Verdict::Apply,
            _ => judge(current, u.state, u.incarnation),
        };
        match verdict {
            Verdict::Ignore => {}
            Verdict::Confirm => {
                let confirmed = self.config.lifeguard()
                    && u.suspecter
                        .as_ref()
                        .is_some_and(|who| self.members.confirm(&u.id, who));
                if confirmed {
                    self.broadcasts.enqueue(u, Class::Churn);
                }
            }
            Verdict::Apply => {
                if current.is_none() && !self.admit(&u, sender) {
                    return;
                }
                let event = self.members.apply(&u, now);
                if u.state == MemberState::Suspect {
                    if current.map(|(state, _)| state) != Some(MemberState::Suspect) {
                        self.counts.suspicions += 1;
                    }
                    self.start_suspicion(&u, now);
                }
                if matches!(
                    event,
                    Some(ClusterEvent::NodeJoined(_) | ClusterEvent::NodeRecovered(_))
                ) {
                    self.rotation
                        .insert(&mut self.rng, &self.members, u.id.clone());
                }
                if u.state != MemberState::Suspect {
                    u.suspecter = None;
                }
                let class = if event.is_some() {
                    Class::News
                } else {
                    Class::Churn
                };
                self.broadcasts.enqueue(u, class);
                self.events.extend(event);
            }
        }
    }

    /// Asks `id` directly whether it is at `addr`, as another node claims: a ping there
    /// for `id`, whose ack (from `id` only) carries its state first-hand. One check per
    /// member and incarnation; the checks are forgotten when too many are pending.
    fn check_address(&mut self, id: &NodeId, addr: SocketAddr, incarnation: u64) {
        if self
            .address_checks
            .get(id)
            .is_some_and(|&checked| !is_newer(incarnation, checked))
        {
            return;
        }
        if self.address_checks.len() >= MAX_ADDRESS_CHECKS {
            self.address_checks.clear();
        }
        self.address_checks.insert(id.clone(), incarnation);
        let seq = self.next_seq();
        let target = id.clone();
        self.send(addr, Body::Ping { seq, target }, None);
    }

    /// Makes room in the member table for `u`'s unknown member, if there is room to make
    /// (see `Membership::make_room`). The newcomer may take the place of a live member that
    /// never answered a probe only if it speaks for itself (`u` is about `sender`) or comes
    /// from a member that has answered one; a member evicted that way is reported failed.
    fn admit(&mut self, u: &Update, sender: &NodeId) -> bool {
        let vouched = u.id == *sender || self.members.is_confirmed(sender);
        match self.members.make_room(self.config.max_members(), vouched) {
            None => false,
            Some(Room::Free) => true,
            Some(Room::Recycled(id)) => {
                self.broadcasts.forget(&id);
                true
            }
            Some(Room::Evicted(mut member)) => {
                self.broadcasts.forget(&member.id);
                member.state = MemberState::Dead;
                self.events.push_back(ClusterEvent::NodeFailed(member));
                true
            }
        }
    }

    fn start_suspicion(&mut self, u: &Update, now: Instant) {
        let n = self.cluster_size();
        let suspecter = u.suspecter.clone().unwrap_or_else(|| self.local.id.clone());
        let suspicion = Suspicion::new(
            now,
            suspecter,
            if self.config.lifeguard() {
                self.config.expected_confirmations(n)
            } else {
                0
            },
            self.config.suspicion_timeout_min(n),
            self.config.suspicion_timeout_max(n),
        );
        self.members.suspect(&u.id, suspicion);
    }

    /// Gossip about this node: refute anything but our exact current state at an
    /// incarnation ours is not newer than, by taking the incarnation above it. Incarnations
    /// compare as serial numbers ([`is_newer`]), so there always is one above it: a garbage
    /// `Dead(self, u64::MAX)` is refuted by incarnation 0.
    fn about_self(&mut self, u: &Update) {
        if self.leaving || is_newer(self.local.incarnation, u.incarnation) {
            return;
        }
        let accused = u.state != MemberState::Alive;
        if !accused
            && u.incarnation == self.local.incarnation
            && u.addr == self.local.addr
            && u.tags == self.local.tags
        {
            return;
        }
        if accused {
            self.health.raise();
            self.counts.refutations += 1;
        }
        self.local.incarnation = u.incarnation.wrapping_add(1);
        // Refuting a suspicion is churn; anything else (we were reported failed or left, or
        // with a stale address or tags) changes what the others see.
        let class = if u.state == MemberState::Suspect {
            Class::Churn
        } else {
            Class::News
        };
        self.broadcasts
            .enqueue(Update::of(&self.local, true), class);
    }

    pub(super) fn gossip_round(&mut self) {
        let targets = self.rotation.sample(
            &mut self.rng,
            &self.members,
            self.config.gossip_fanout(),
            None,
        );
        for target in targets {
            if self.broadcasts.is_empty() {
                break;
            }
            if let Some(addr) = self.members.get(&target).map(|m| m.addr) {
                self.send(addr, Body::Gossip, None);
            }
        }
    }

    /// Builds a message with as many piggybacked updates as fit the packet budget.
    pub(super) fn send(&mut self, to: SocketAddr, body: Body, first: Option<Update>) {
        let limit = self.config.retransmit_limit(self.cluster_size());
        let mut budget = self
            .config
            .max_packet_bytes()
            .saturating_sub(header_bound(&self.local.id, &body));
        let mut updates = Vec::new();
        if let Some(u) = first {
            budget = budget.saturating_sub(u.encoded_len());
            updates.push(u);
        }
        if !matches!(body, Body::Nack { .. }) {
            self.broadcasts.select(budget, limit, &mut updates);
        }
        self.transmits.push_back(Transmit {
            to,
            msg: Message {
                from: self.local.id.clone(),
                body,
                updates,
            },
        });
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
        q.enqueue(update("a", 1), Class::Churn);
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
        q.enqueue(update("a", 1), Class::Churn);
        q.enqueue(update("a", 2), Class::Churn);
        assert_eq!(q.len(), 1);
        let mut out = Vec::new();
        q.select(1000, 4, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].incarnation, 2);
    }

    #[test]
    fn least_sent_updates_go_first_and_the_budget_is_respected() {
        let mut q = Dissemination::default();
        q.enqueue(update("a", 1), Class::Churn);
        let mut out = Vec::new();
        q.select(1000, 10, &mut out);
        q.enqueue(update("b", 1), Class::Churn);
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
            q.enqueue(update(&format!("m{i}"), 1), Class::Churn);
        }
        let mut out = Vec::new();
        q.select(usize::MAX / 2, 10, &mut out);
        assert_eq!(out.len(), MAX_PIGGYBACK_UPDATES);
    }

    #[test]
    fn news_keeps_its_transmissions_under_a_flood_of_fresher_churn() {
        let mut q = Dissemination::default();
        for i in 0..1000 {
            q.enqueue(update(&format!("m{i}"), 1), Class::Churn);
        }
        q.enqueue(update("news", 1), Class::News);
        let mut carried = 0;
        for round in 0..60 {
            // Fresher churn than the news arrives before every message.
            for i in 0..40 {
                q.enqueue(
                    update(&format!("m{}", (round * 40 + i) % 1000), 2),
                    Class::Churn,
                );
            }
            let mut out = Vec::new();
            q.select(1100, 42, &mut out);
            carried += usize::from(out.iter().any(|u| u.id.as_str() == "news"));
        }
        assert_eq!(carried, 42, "sent on each message until the limit");
    }

    #[test]
    fn news_takes_at_most_half_of_a_message_while_churn_waits() {
        let mut q = Dissemination::default();
        for i in 0..200 {
            q.enqueue(update(&format!("c{i:03}"), 1), Class::Churn);
            q.enqueue(update(&format!("n{i:03}"), 1), Class::News);
        }
        let budget = update("n000", 1).encoded_len() * 20;
        let news = |out: &[Update]| {
            out.iter()
                .filter(|u| u.id.as_str().starts_with('n'))
                .count()
        };
        let mut out = Vec::new();
        q.select(budget, 10, &mut out);
        assert_eq!(out.len(), 20);
        assert_eq!(news(&out), 10, "half the bytes");
        let mut out = Vec::new();
        q.select(usize::MAX / 2, 10, &mut out);
        assert_eq!(out.len(), MAX_PIGGYBACK_UPDATES);
        assert_eq!(news(&out), MAX_PIGGYBACK_UPDATES / 2, "half the slots");
    }

    #[test]
    fn either_class_fills_the_room_the_other_leaves() {
        let mut q = Dissemination::default();
        for i in 0..100 {
            q.enqueue(update(&format!("news{i}"), 1), Class::News);
        }
        q.enqueue(update("churn", 1), Class::Churn);
        let mut out = Vec::new();
        q.select(usize::MAX / 2, 10, &mut out);
        assert_eq!(out.len(), MAX_PIGGYBACK_UPDATES);
        assert!(out.iter().any(|u| u.id.as_str() == "churn"));
    }
}
