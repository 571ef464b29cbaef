//! Probing: each probe period's direct probe, the indirect probes when it times out, the
//! suspicion an unanswered probe raises and the expiry of suspicions; and their bookkeeping:
//! the round-robin probe order, the probe in flight, the indirect probes this node relays for
//! others, and Lifeguard's local health score.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;

use super::membership::Membership;
use super::message::{Body, Update};
use super::{random_index, ProbeOutcome, Swim};
use crate::member::{MemberState, NodeId};

/// The most indirect probes this node relays at once; further requests are dropped.
pub(crate) const MAX_RELAYS: usize = 256;

/// Lifeguard's local health multiplier `L ∈ [0, max]`: raised by evidence that this node
/// itself is slow or cut off, lowered by each acknowledged probe. Always 0 when disabled.
#[derive(Debug, Clone)]
pub(crate) struct LocalHealth {
    score: u32,
    max: u32,
    enabled: bool,
}

impl LocalHealth {
    pub(crate) fn new(max: u32, enabled: bool) -> Self {
        Self {
            score: 0,
            max,
            enabled,
        }
    }

    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    pub(crate) fn raise(&mut self) {
        if self.enabled {
            self.score = (self.score + 1).min(self.max);
        }
    }

    pub(crate) fn lower(&mut self) {
        self.score = self.score.saturating_sub(1);
    }
}

/// The direct probe in flight.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) target: NodeId,
    pub(crate) seq: u32,
    pub(crate) sent: Instant,
    pub(crate) direct_deadline: Instant,
    pub(crate) indirect_sent: bool,
    pub(crate) acked: bool,
    /// Whether the ack came through a member asked to probe indirectly.
    pub(crate) relayed: bool,
    pub(crate) nacks: usize,
    pub(crate) expected_nacks: usize,
    /// The members asked to probe the target indirectly: with the target, the only nodes
    /// whose ack (or nack) for this probe counts.
    pub(crate) helpers: Vec<NodeId>,
}

/// Round-robin over the live members in a random order, reshuffled each round (SWIM's
/// time-bounded completeness: every live member is probed within one round).
#[derive(Debug, Default)]
pub(crate) struct Rotation {
    order: Vec<NodeId>,
    cursor: usize,
}

impl Rotation {
    /// The next live member to probe, reshuffling when a round ends.
    pub(crate) fn next(&mut self, rng: &mut impl Rng, members: &Membership) -> Option<NodeId> {
        let mut rebuilt = false;
        loop {
            if self.cursor >= self.order.len() {
                if rebuilt {
                    return None;
                }
                self.order = members
                    .members()
                    .filter(|m| m.state.is_live())
                    .map(|m| m.id.clone())
                    .collect();
                self.order.shuffle(rng);
                self.cursor = 0;
                rebuilt = true;
                continue;
            }
            let id = &self.order[self.cursor];
            self.cursor += 1;
            if members.get(id).is_some_and(|m| m.state.is_live()) {
                return Some(id.clone());
            }
        }
    }

    /// Adds a member that became live at a random place among those not yet probed this
    /// round. The order is compacted (members no longer live dropped) whenever it has grown
    /// to twice the live members, so churn cannot grow it without bound.
    pub(crate) fn insert(&mut self, rng: &mut impl Rng, members: &Membership, id: NodeId) {
        if self.order.len() >= 2 * members.live() + 16 {
            let live = |id: &NodeId| members.get(id).is_some_and(|m| m.state.is_live());
            let probed = self.order[..self.cursor.min(self.order.len())]
                .iter()
                .filter(|id| live(id))
                .count();
            self.order.retain(|id| live(id));
            self.cursor = probed;
        }
        self.order.push(id);
        let last = self.order.len() - 1;
        let at = random_index(rng, self.cursor.min(last)..self.order.len());
        self.order.swap(at, last);
    }

    /// Up to `count` distinct random live members, none of them `exclude`.
    pub(crate) fn sample(
        &self,
        rng: &mut impl Rng,
        members: &Membership,
        count: usize,
        exclude: Option<&NodeId>,
    ) -> Vec<NodeId> {
        let mut picked: Vec<NodeId> = Vec::with_capacity(count);
        if self.order.is_empty() || count == 0 {
            return picked;
        }
        for _ in 0..count * 4 {
            if picked.len() == count {
                break;
            }
            let id = &self.order[random_index(rng, 0..self.order.len())];
            if Some(id) == exclude || picked.contains(id) {
                continue;
            }
            if members.get(id).is_some_and(|m| m.state.is_live()) {
                picked.push(id.clone());
            }
        }
        picked
    }
}

/// An indirect probe relayed for another node.
#[derive(Debug, Clone)]
pub(crate) struct Relay {
    pub(crate) requester: SocketAddr,
    pub(crate) seq: u32,
    /// The member pinged: the only node whose ack is relayed.
    pub(crate) target: NodeId,
    deadline: Instant,
}

/// The indirect probes this node is relaying, by the sequence number of its own ping.
#[derive(Debug, Default)]
pub(crate) struct Relays {
    pending: BTreeMap<u32, Relay>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl Relays {
    /// Records a relay; `false` (and nothing recorded) when [`MAX_RELAYS`] are pending.
    pub(crate) fn start(
        &mut self,
        own_seq: u32,
        requester: SocketAddr,
        seq: u32,
        target: NodeId,
        deadline: Instant,
    ) -> bool {
        if self.pending.len() >= MAX_RELAYS {
            return false;
        }
        self.pending.insert(
            own_seq,
            Relay {
                requester,
                seq,
                target,
                deadline,
            },
        );
        self.deadlines.insert((deadline, own_seq));
        true
    }

    /// The relay answered by `sender`'s ack to our ping `own_seq`: `Err(())` if a relay
    /// waits for that ack from another node (it stays pending), `Ok(None)` if none does.
    pub(crate) fn take(&mut self, own_seq: u32, sender: &NodeId) -> Result<Option<Relay>, ()> {
        match self.pending.get(&own_seq) {
            None => return Ok(None),
            Some(relay) if relay.target != *sender => return Err(()),
            Some(_) => {}
        }
        let Some(relay) = self.pending.remove(&own_seq) else {
            return Ok(None);
        };
        self.deadlines.remove(&(relay.deadline, own_seq));
        Ok(Some(relay))
    }

    /// A relay whose target did not answer by `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Relay> {
        let &(at, seq) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.pop_first();
        self.pending.remove(&seq)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }
}

impl<R: Rng> Swim<R> {
    pub(super) fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// The direct probe timeout: `min(T_φ, P/2)·(1 + L)`.
    fn direct_timeout(&self) -> Duration {
        let base = self
            .detector
            .timeout()
            .unwrap_or(self.config.probe_timeout());
        base.min(self.config.health_check_interval() / 2) * (1 + self.health.score())
    }

    pub(super) fn start_probe(&mut self, now: Instant) {
        let Some(target) = self.rotation.next(&mut self.rng, &self.members) else {
            return;
        };
        let Some(member) = self.members.get(&target) else {
            return;
        };
        let addr = member.addr;
        // Lifeguard's buddy system: a suspect learns of its suspicion from its prober first.
        let buddy = (member.state == MemberState::Suspect).then(|| {
            let mut u = Update::of(member, true);
            u.suspecter = Some(self.local.id.clone());
            u
        });
        let seq = self.next_seq();
        self.probe = Some(Probe {
            target: target.clone(),
            seq,
            sent: now,
            direct_deadline: now + self.direct_timeout(),
            indirect_sent: false,
            acked: false,
            relayed: false,
            nacks: 0,
            expected_nacks: 0,
            helpers: Vec::new(),
        });
        self.send(addr, Body::Ping { seq, target }, buddy);
    }

    pub(super) fn probe_indirectly(&mut self, now: Instant) {
        let Some(p) = self.probe.as_ref() else {
            return;
        };
        if p.acked || p.indirect_sent || now < p.direct_deadline {
            return;
        }
        let (seq, target) = (p.seq, p.target.clone());
        let Some(target_addr) = self.members.get(&target).map(|m| m.addr) else {
            return;
        };
        let helpers = self.rotation.sample(
            &mut self.rng,
            &self.members,
            self.config.indirect_checks(),
            Some(&target),
        );
        for helper in &helpers {
            if let Some(addr) = self.members.get(helper).map(|m| m.addr) {
                let body = Body::PingReq {
                    seq,
                    target: target.clone(),
                    target_addr,
                };
                self.send(addr, body, None);
            }
        }
        if let Some(p) = self.probe.as_mut() {
            p.indirect_sent = true;
            p.expected_nacks = helpers.len();
            p.helpers = helpers;
        }
    }

    /// Ends the probe period: an ack lowers the local health score; no ack suspects the
    /// target, unless this node itself was too late to tell (Lifeguard).
    pub(super) fn conclude_probe(&mut self, late: bool, now: Instant) {
        let Some(p) = self.probe.take() else {
            return;
        };
        if p.acked {
            self.health.lower();
            let outcome = if p.relayed {
                ProbeOutcome::IndirectAck
            } else {
                ProbeOutcome::Ack
            };
            self.last_probe = Some((p.seq, outcome));
            return;
        }
        if late {
            self.health.raise();
            self.last_probe = Some((p.seq, ProbeOutcome::NoVerdict));
            return;
        }
        if p.expected_nacks == 0 || p.nacks < p.expected_nacks {
            self.health.raise();
        }
        let Some(member) = self.members.get(&p.target).filter(|m| m.state.is_live()) else {
            self.last_probe = Some((p.seq, ProbeOutcome::NoVerdict));
            return;
        };
        self.last_probe = Some((p.seq, ProbeOutcome::Suspect));
        let mut u = Update::of(member, true);
        u.state = MemberState::Suspect;
        u.suspecter = Some(self.local.id.clone());
        let me = self.local.id.clone();
        self.apply_update(u, &me, false, now);
    }

    /// An ack counts only from the node asked: the probe's target (directly) or one of the
    /// members asked to probe it (relayed); a relay's ack only from the member it pinged.
    pub(super) fn on_ack(&mut self, seq: u32, sender: &NodeId, now: Instant) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
            if *sender != p.target && !p.helpers.contains(sender) {
                self.refusals.unexpected_acks += 1;
                return;
            }
            if !p.acked {
                p.acked = true;
                p.relayed = *sender != p.target;
                let target = p.target.clone();
                self.members.confirm_reachable(&target);
                if *sender == p.target {
                    self.detector.record(now.saturating_duration_since(p.sent));
                }
            }
            return;
        }
        match self.relays.take(seq, sender) {
            Ok(Some(relay)) => self.send(relay.requester, Body::Ack { seq: relay.seq }, None),
            Ok(None) => {}
            Err(()) => self.refusals.unexpected_acks += 1,
        }
    }

    /// A nack counts only from a member asked to probe indirectly.
    pub(super) fn on_nack(&mut self, seq: u32, sender: &NodeId) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
            if p.helpers.contains(sender) {
                p.nacks += 1;
            } else {
                self.refusals.unexpected_acks += 1;
            }
        }
    }

    pub(super) fn expire_suspicions(&mut self, now: Instant) {
        let interval = self.config.health_check_interval();
        while let Some((id, suspicion)) = self.members.pop_expired(now) {
            let late = now.saturating_duration_since(suspicion.deadline) > interval;
            if self.config.lifeguard() && late && !suspicion.graced {
                self.health.raise();
                self.members.grace(&id, suspicion, now + interval);
                continue;
            }
            let Some(member) = self
                .members
                .get(&id)
                .filter(|m| m.state == MemberState::Suspect)
            else {
                continue;
            };
            let mut u = Update::of(member, true);
            u.state = MemberState::Dead;
            let me = self.local.id.clone();
            self.apply_update(u, &me, false, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_health_saturates_and_stays_zero_when_disabled() {
        let mut on = LocalHealth::new(3, true);
        for _ in 0..10 {
            on.raise();
        }
        assert_eq!(on.score(), 3);
        on.lower();
        assert_eq!(on.score(), 2);
        let mut off = LocalHealth::new(3, false);
        off.raise();
        assert_eq!(off.score(), 0);
    }

    #[test]
    fn relays_are_bounded() {
        let mut relays = Relays::default();
        let now = Instant::now();
        let addr: SocketAddr = ([10, 0, 0, 1], 1).into();
        let target = NodeId::new("t").expect("valid id");
        let other = NodeId::new("o").expect("valid id");
        for i in 0..MAX_RELAYS as u32 {
            assert!(relays.start(i, addr, i, target.clone(), now));
        }
        assert!(!relays.start(u32::MAX, addr, 0, target.clone(), now));
        assert!(
            relays.take(3, &other).is_err(),
            "only the target's ack is relayed"
        );
        assert!(relays.take(3, &target).is_ok_and(|r| r.is_some()));
        assert!(relays.take(3, &target).is_ok_and(|r| r.is_none()));
        let mut expired = 0;
        while relays.pop_expired(now).is_some() {
            expired += 1;
        }
        assert_eq!(expired, MAX_RELAYS - 1);
    }
}
