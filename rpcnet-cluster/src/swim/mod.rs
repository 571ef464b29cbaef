//! The SWIM state machine: probing, suspicion, dissemination, push-pull, join and leave.
//!
//! [`Swim`] is sans-io. Every input carries `now`; randomness comes from the RNG the caller
//! injects, and integer draws never depend on the pointer width; all maps are ordered. So
//! with a portable seeded RNG, one seed and one sequence of inputs reproduce one run exactly,
//! which is what the deterministic simulator in `tests/` relies on.
//!
//! This module holds the state and its inputs and outputs; each part of the protocol is an
//! `impl Swim` block in its own module: `probe` (probing and suspicion timers),
//! `dissemination` (applying updates and piggybacking them), `push_pull` (anti-entropy and
//! join), over the member table in `membership` and the wire types in `message`.

mod dissemination;
mod membership;
pub(crate) mod message;
mod probe;
mod push_pull;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand::Rng;

use self::dissemination::{Class, Dissemination};
use self::membership::Membership;
use self::message::{Body, Message, Update};
use self::probe::{LocalHealth, Probe, Relays, Rotation};
use self::push_pull::Join;
use crate::config::ClusterConfig;
use crate::event::ClusterEvent;
use crate::failure_detector::PhiAccrual;
use crate::member::{Member, MemberState, NodeId};
use crate::tags::{self, Tags, TagsTooLarge};

/// How often tombstones older than the configured TTL are forgotten.
const REAP_PERIOD: Duration = Duration::from_secs(60);

/// The most members whose second-hand new address is being checked with the member itself
/// at once; further such claims wait for the member's own word.
const MAX_ADDRESS_CHECKS: usize = 256;

/// How many times a leaving node tells each live member it knows of its departure, one
/// gossip interval apart.
const LEAVE_ROUNDS: u32 = 3;

/// Counts of what a node refused to take at its sender's word (see "Who can gossip" in the
/// crate's `PROTOCOL.md`). They only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// Messages dropped because their sender is not who the transport authenticated
    /// (counted by the shell, see [`Cluster::refusals`](crate::Cluster::refusals)), or
    /// because they claim to come from this node itself.
    pub impersonations: u64,
    /// Updates about a member, from another node, that were not taken at their word: a
    /// different address (ignored; the member is asked directly), a death or a departure
    /// (taken as a suspicion the member can refute).
    pub second_hand_claims: u64,
    /// Acks and nacks for a probe in flight from a node the probe was not sent to.
    pub unexpected_acks: u64,
}

/// Counts of protocol events at one node, for metrics. They only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolCounts {
    /// Times another member became `Suspect` in this node's view (this node's own probe
    /// went unanswered, or it heard of the suspicion), not counting further confirmations
    /// or a suspicion renewed at a higher incarnation.
    pub suspicions: u64,
    /// Times this node refuted a claim that it is suspect, dead or gone, by raising its
    /// incarnation.
    pub refutations: u64,
}

/// How a probe period ended for its target (see [`Swim::last_probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// The target acknowledged the probe itself.
    Ack,
    /// A member asked to probe the target relayed its ack.
    IndirectAck,
    /// No ack: the target is now suspect in this node's view (or already was).
    Suspect,
    /// No ack, and no verdict: this node handled the end of the period too late to judge
    /// (Lifeguard), or the target was no longer live by then.
    NoVerdict,
}

impl ProbeOutcome {
    /// The outcome in snake case (`ack`, `indirect_ack`, `suspect`, `no_verdict`), as span
    /// fields and metric labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Ack => "ack",
            ProbeOutcome::IndirectAck => "indirect_ack",
            ProbeOutcome::Suspect => "suspect",
            ProbeOutcome::NoVerdict => "no_verdict",
        }
    }
}

/// A message to send: the output of [`Swim::poll_transmit`].
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Where to send it.
    pub to: SocketAddr,
    /// What to send ([`Message::encode`] gives the bytes).
    pub msg: Message,
}

/// One node's SWIM protocol core: a pure state machine.
///
/// # Driving it
///
/// Feed it inputs — [`handle_message`](Self::handle_message) for each decoded message,
/// [`handle_timeout`](Self::handle_timeout) when `now` reaches
/// [`poll_timeout`](Self::poll_timeout), and the commands [`join`](Self::join),
/// [`leave`](Self::leave), [`set_tags`](Self::set_tags). After each input, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event) until they
/// return `None` (in either order: they are independent queues), then re-read
/// [`poll_timeout`](Self::poll_timeout) and sleep until it (or until the next message).
/// After [`leave`](Self::leave), keep driving it until `poll_timeout` returns `None`: the
/// leave has then been gossiped as far as the protocol sends it.
///
/// # Randomness
///
/// `R` is the random number generator behind every random choice: the probe order, the
/// members asked to probe indirectly, gossip and push-pull partners, timer jitter and the
/// first sequence number. Any [`Rng`] works; a portable seeded one, such as
/// `rand_chacha::ChaCha8Rng`, makes one seed one run everywhere (see the crate docs).
///
/// # Protocol
///
/// Each probe period (the health check interval, stretched by Lifeguard's local health
/// score) the node pings the next member of a shuffled round-robin. If no ack arrives within
/// the direct probe timeout (derived from a Phi Accrual detector over its probes' round-trip
/// times), `k` random members ping the target on its behalf and relay the ack (or, with
/// Lifeguard, a nack when they hear nothing). No ack by the end of the period makes the target
/// `Suspect`: the suspicion is gossiped, and the target refutes it by raising its incarnation.
/// An unrefuted suspicion becomes `Dead` when its timeout expires; with Lifeguard the timeout
/// starts long and shrinks as other members independently confirm the suspicion.
///
/// Updates ride on every ping, ack and indirect probe, and on gossip messages sent every
/// gossip interval to a few random members while updates are waiting; each node sends each
/// update `λ·⌈ln(n + 1)⌉` times. Updates that change what users see (joins, leaves,
/// failures, recoveries, tag changes) go first, in up to half of each message, so the
/// suspicions and refutations that packet loss multiplies cannot bury them. Every push-pull interval the node exchanges its full state
/// with one random member that has not left — failed members included, which is how the two
/// sides of a healed partition find each other again without a rejoin. In a merged push-pull
/// state, a member the peer believes `Dead` is only suspected (it may be alive on our side and
/// will refute). The formulas of all timeouts are on [`ClusterConfig`].
///
/// # Identity and restarts
///
/// A node's identity is its [`NodeId`], kept across restarts. A restarted node starts at
/// incarnation 0, which loses against everything the cluster remembers about its previous
/// life; the first push-pull (its join) brings back that memory, and the node refutes any
/// belief about itself that is not exactly its own current state by taking the incarnation
/// above it. So the cluster sees it alive again (`NodeRecovered` if it had been reported
/// failed, `NodeJoined` if it had left) at a new incarnation, with its new tags and address.
///
/// # Incarnations
///
/// Incarnations compare as serial numbers modulo 2⁶⁴ (RFC 1982), not as plain integers, so a
/// member can refute any claim about itself, even a forged `Dead` at `u64::MAX`: it takes
/// the claim's incarnation plus one, wrapping (see the `membership` module).
///
/// # Bounded state
///
/// Gossip about unknown members adds at most [`ClusterConfig::max_members`] entries. A full
/// table recycles its oldest tombstone first; then a newcomer that speaks for itself (the
/// update is about the message's sender) or is announced by a member that has answered one
/// of this node's probes may take the place of the live member admitted first among those
/// that never answered one, which is reported [`ClusterEvent::NodeFailed`]; members that
/// answered a probe are never evicted. Admitting or refusing a member costs `O(log n)`.
/// Relays are capped, the probe order is compacted under churn, and the broadcast queue
/// holds at most one update per known member.
///
/// # Lifeguard
///
/// With [`ClusterConfig::lifeguard`] on, the local health score rises when this node's probe
/// fails without the expected nacks, when it has to refute a suspicion of itself, and when one
/// of its own timers is handled more than one probe interval late (the node was stalled); it
/// falls with each acknowledged probe. A raised score stretches the probe period and the probe
/// timeout. A probe concluded late is not held against its target, and a suspicion that
/// expires while this node was stalled gets one more probe interval so refutations that queued
/// up meanwhile are read first.
#[derive(Debug)]
pub struct Swim<R> {
    config: ClusterConfig,
    rng: R,
    local: Member,
    members: Membership,
    broadcasts: Dissemination,
    detector: PhiAccrual,
    health: LocalHealth,
    rotation: Rotation,
    probe: Option<Probe>,
    next_probe: Instant,
    next_seq: u32,
    relays: Relays,
    next_gossip: Instant,
    next_push_pull: Instant,
    next_reap: Instant,
    join: Option<Join>,
    leaving: bool,
    leave_rounds: u32,
    address_checks: BTreeMap<NodeId, u64>,
    refusals: Refusals,
    counts: ProtocolCounts,
    /// The sequence number and outcome of the last probe period that ended.
    last_probe: Option<(u32, ProbeOutcome)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClusterEvent>,
}

impl<R: Rng> Swim<R> {
    /// A node `local` gossiping on `addr` with `tags`, alone until [`join`](Self::join).
    ///
    /// # Panics
    ///
    /// If `tags` exceed [`ClusterConfig::max_tags_bytes`]; [`try_new`](Self::try_new) returns
    /// the error instead.
    pub fn new(
        local: NodeId,
        addr: SocketAddr,
        tags: Tags,
        config: ClusterConfig,
        rng: R,
        now: Instant,
    ) -> Self {
        match Self::try_new(local, addr, tags, config, rng, now) {
            Ok(swim) => swim,
            Err(e) => panic!("Swim::new: {e}"),
        }
    }

    /// Like [`new`](Self::new), but returns [`TagsTooLarge`] for tags over the configured
    /// limit.
    pub fn try_new(
        local: NodeId,
        addr: SocketAddr,
        tags: Tags,
        config: ClusterConfig,
        mut rng: R,
        now: Instant,
    ) -> Result<Self, TagsTooLarge> {
        check_tags(&tags, &config)?;
        let jitter = |rng: &mut R, d: Duration| d.mul_f64(rng.gen_range(0.0..1.0));
        let next_probe = now + jitter(&mut rng, config.health_check_interval());
        let next_gossip = now + jitter(&mut rng, config.gossip_interval());
        let next_push_pull = now + jitter(&mut rng, config.push_pull_interval());
        Ok(Self {
            detector: PhiAccrual::new(
                config.phi_window(),
                config.phi_threshold(),
                config.phi_min_std_dev(),
                config.phi_acceptable_pause(),
            ),
            health: LocalHealth::new(config.max_local_health(), config.lifeguard()),
            local: Member {
                id: local,
                addr,
                state: MemberState::Alive,
                incarnation: 0,
                tags,
            },
            members: Membership::default(),
            broadcasts: Dissemination::default(),
            rotation: Rotation::default(),
            probe: None,
            next_probe,
            next_seq: rng.gen(),
            relays: Relays::default(),
            next_gossip,
            next_push_pull,
            next_reap: now + REAP_PERIOD,
            join: None,
            leaving: false,
            leave_rounds: 0,
            address_checks: BTreeMap::new(),
            refusals: Refusals::default(),
            counts: ProtocolCounts::default(),
            last_probe: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
            rng,
        })
    }

    /// Leaves gracefully: the others will report this node as left (`NodeLeft`), not
    /// failed. The node stops probing and joining and tells every live member it knows of
    /// its departure itself (a departure is taken only first-hand), right away and twice
    /// more a gossip interval apart; [`poll_timeout`](Self::poll_timeout) returns `None`
    /// after the last round, or at once when no live member is left to tell.
    pub fn leave(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.local.state = MemberState::Left;
        self.probe = None;
        self.join = None;
        self.leave_rounds = LEAVE_ROUNDS;
        self.leave_round();
        self.next_gossip = now + self.config.gossip_interval();
    }

    /// Sends this node's departure to every live member it knows.
    fn leave_round(&mut self) {
        let Some(rounds) = self.leave_rounds.checked_sub(1) else {
            return;
        };
        self.leave_rounds = rounds;
        let departure = Update::of(&self.local, true);
        let live: Vec<SocketAddr> = self
            .members
            .members()
            .filter(|m| m.state.is_live())
            .map(|m| m.addr)
            .collect();
        for to in live {
            self.transmits.push_back(Transmit {
                to,
                msg: Message {
                    from: self.local.id.clone(),
                    body: Body::Gossip,
                    updates: vec![departure.clone()],
                },
            });
        }
    }

    /// Replaces this node's tags and gossips them at a new incarnation. Fails, changing
    /// nothing, if they exceed [`ClusterConfig::max_tags_bytes`].
    pub fn set_tags(&mut self, tags: Tags) -> Result<(), TagsTooLarge> {
        check_tags(&tags, &self.config)?;
        if tags == self.local.tags || self.leaving {
            self.local.tags = tags;
            return Ok(());
        }
        self.local.tags = tags;
        self.local.incarnation = self.local.incarnation.wrapping_add(1);
        self.broadcasts
            .enqueue(Update::of(&self.local, true), Class::News);
        Ok(())
    }

    /// Handles a message received from `from` (the source address of the datagram or
    /// stream it came on).
    pub fn handle_message(&mut self, from: SocketAddr, msg: Message, now: Instant) {
        let Message {
            from: sender,
            body,
            updates,
        } = msg;
        if sender == self.local.id {
            // Nobody else may speak for this node.
            self.refusals.impersonations += 1;
            return;
        }
        if self.leaving {
            // Still answer probes, so nobody suspects us before our departure reaches them.
            if let Body::Ping { seq, target } = body {
                if target == self.local.id {
                    self.send(from, Body::Ack { seq }, Some(Update::of(&self.local, true)));
                }
            }
            return;
        }
        match body {
            Body::Ping { seq, target } => {
                self.apply_all(updates, &sender, now);
                if target == self.local.id {
                    // An ack carries our own state, first-hand: a prober that has only heard
                    // of a new address of ours learns it from us.
                    self.send(from, Body::Ack { seq }, Some(Update::of(&self.local, true)));
                }
            }
            Body::Ack { seq } => {
                self.apply_all(updates, &sender, now);
                self.on_ack(seq, &sender, now);
            }
            Body::Nack { seq } => self.on_nack(seq, &sender),
            Body::PingReq {
                seq,
                target,
                target_addr,
            } => {
                self.apply_all(updates, &sender, now);
                let own_seq = self.next_seq();
                let deadline = now + self.config.health_check_interval().mul_f64(0.4);
                if self
                    .relays
                    .start(own_seq, from, seq, target.clone(), deadline)
                {
                    let body = Body::Ping {
                        seq: own_seq,
                        target,
                    };
                    self.send(target_addr, body, None);
                }
            }
            Body::Gossip => self.apply_all(updates, &sender, now),
            Body::PushPull { reply, state } => {
                self.apply_all(updates, &sender, now);
                for u in state {
                    self.apply_update(u, &sender, true, now);
                }
                if !reply {
                    self.send_push_pull(from, true);
                }
                self.join = None;
            }
        }
    }

    /// Handles every timer due at `now`: probe periods and timeouts, indirect probes,
    /// suspicion expiries, gossip, push-pull, join retries and tombstone expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.leaving {
            if now >= self.next_gossip && self.leave_rounds > 0 {
                self.leave_round();
                self.next_gossip = now + self.config.gossip_interval();
            }
            return;
        }
        self.retry_join(now);
        while let Some(relay) = self.relays.pop_expired(now) {
            if self.config.lifeguard() {
                self.send(relay.requester, Body::Nack { seq: relay.seq }, None);
            }
        }
        if now >= self.next_probe {
            let late = now.saturating_duration_since(self.next_probe)
                > self.config.health_check_interval();
            self.conclude_probe(late && self.config.lifeguard(), now);
            self.start_probe(now);
            self.next_probe = now + self.config.probe_period(self.health.score());
        }
        self.probe_indirectly(now);
        if now >= self.next_gossip {
            if !self.broadcasts.is_empty() {
                self.gossip_round();
            }
            self.next_gossip = now + self.config.gossip_interval();
        }
        if now >= self.next_push_pull {
            self.push_pull_round();
            self.next_push_pull = now + self.config.push_pull_interval();
        }
        self.expire_suspicions(now);
        if now >= self.next_reap {
            self.members.reap(now, self.config.tombstone_ttl());
            self.next_reap = now + REAP_PERIOD;
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` once a
    /// leave has been fully gossiped.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.leaving {
            // With nobody live left to tell, the departure is over at once.
            let audience = self.members.live() > 0;
            return (audience && self.leave_rounds > 0).then_some(self.next_gossip);
        }
        let mut at = self.next_probe.min(self.next_push_pull).min(self.next_reap);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = at.min(t);
            }
        };
        consider(
            self.probe
                .as_ref()
                .filter(|p| !p.acked && !p.indirect_sent)
                .map(|p| p.direct_deadline),
        );
        consider((!self.broadcasts.is_empty()).then_some(self.next_gossip));
        consider(self.join.as_ref().map(|j| j.next_attempt));
        consider(self.members.next_deadline());
        consider(self.relays.next_deadline());
        Some(at)
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next membership event, if any.
    pub fn poll_event(&mut self) -> Option<ClusterEvent> {
        self.events.pop_front()
    }

    /// Every other member this node knows, in id order, failed and left ones included (until
    /// their tombstones expire).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.members()
    }

    /// A number that changes whenever this node's view of the members changes (a member
    /// added, forgotten, or changed in state, incarnation, address or tags), events or
    /// not: a shell that publishes the view publishes it again when this moves.
    pub fn view_version(&self) -> u64 {
        self.members.version()
    }

    /// What this node believes about the member `id` (not itself), if it knows it.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// This node as it gossips itself.
    pub fn local(&self) -> &Member {
        &self.local
    }

    /// What this node refused to take at its senders' word so far.
    pub fn refusals(&self) -> Refusals {
        self.refusals
    }

    /// Counts of suspicions and refutations at this node so far.
    pub fn counts(&self) -> ProtocolCounts {
        self.counts
    }

    /// The probe in flight: its target and sequence number. A new one starts each probe
    /// period, when [`handle_timeout`](Self::handle_timeout) ends the previous one.
    pub fn probe_in_flight(&self) -> Option<(&NodeId, u32)> {
        self.probe.as_ref().map(|p| (&p.target, p.seq))
    }

    /// The sequence number and outcome of the last probe that ended (a probe dropped by
    /// [`leave`](Self::leave) does not end: it has no outcome).
    pub fn last_probe(&self) -> Option<(u32, ProbeOutcome)> {
        self.last_probe
    }

    /// How many live members have answered a probe of this node: those a full member table
    /// never evicts to make room.
    #[doc(hidden)]
    pub fn confirmed_members(&self) -> usize {
        self.members.confirmed()
    }

    /// Lifeguard's local health score `L` (0 when healthy).
    pub fn local_health(&self) -> u32 {
        self.health.score()
    }

    /// The number of live members (alive or suspect), this node included: the `n` of the
    /// formulas on [`ClusterConfig`].
    pub fn cluster_size(&self) -> usize {
        self.members.live() + 1
    }
}

fn check_tags(tags: &Tags, config: &ClusterConfig) -> Result<(), TagsTooLarge> {
    let limit = config.max_tags_bytes().min(tags::MAX_TAGS_BYTES);
    let size = tags.encoded_len();
    if size > limit {
        Err(TagsTooLarge::new(size, limit))
    } else {
        Ok(())
    }
}

/// A uniform random index in `range` (not empty), drawn as a `u64`. Rand draws a `usize` at
/// the pointer width, so drawing one would give a seed different runs on 32- and 64-bit
/// targets; on 64-bit targets this draws exactly what a `usize` draw would.
fn random_index(rng: &mut impl Rng, range: Range<usize>) -> usize {
    // Both ends fit in a u64 and the draw lies between them, so neither cast loses anything.
    rng.gen_range(range.start as u64..range.end as u64) as usize
}

#[cfg(test)]
mod tests;
