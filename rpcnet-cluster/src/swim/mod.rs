//! The SWIM state machine: probing, suspicion, dissemination, push-pull, join and leave.
//!
//! [`Swim`] is sans-io. Every input carries `now`; randomness comes from the `SmallRng` the
//! caller seeds; all maps are ordered. So one seed and one sequence of inputs reproduce one
//! run exactly, which is what the deterministic simulator in `tests/` relies on.

mod dissemination;
mod membership;
pub(crate) mod message;
mod probe;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use self::dissemination::{Class, Dissemination};
use self::membership::{is_newer, judge, Membership, Suspicion, Verdict};
use self::message::{header_bound, Body, Message, Update, MAX_PUSH_PULL_MEMBERS};
use self::probe::{LocalHealth, Probe, Relays, Rotation};
use crate::config::ClusterConfig;
use crate::event::ClusterEvent;
use crate::failure_detector::PhiAccrual;
use crate::member::{Member, MemberState, NodeId};
use crate::tags::{self, Tags, TagsTooLarge};

/// How often tombstones older than the configured TTL are forgotten.
const REAP_PERIOD: Duration = Duration::from_secs(60);

/// How many join attempts are retried after the initial backoff before it starts doubling.
/// A joining node cannot tell a lost datagram from a seed that is not up yet; the first
/// few quick retries cover the former (at 30% loss five lost attempts in a row happen once in
/// 400 joins), the doubling after them the latter.
const JOIN_QUICK_RETRIES: u32 = 5;

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
/// Gossip about unknown members adds at most [`ClusterConfig::max_members`] entries
/// (tombstones are recycled first, live members never evicted), relays are capped, and the
/// broadcast queue holds at most one update per known member.
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
pub struct Swim {
    config: ClusterConfig,
    rng: SmallRng,
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
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClusterEvent>,
}

#[derive(Debug)]
struct Join {
    seeds: Vec<SocketAddr>,
    next_attempt: Instant,
    backoff: Duration,
    attempts: u32,
}

impl Swim {
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
        rng: SmallRng,
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
        mut rng: SmallRng,
        now: Instant,
    ) -> Result<Self, TagsTooLarge> {
        check_tags(&tags, &config)?;
        let jitter = |rng: &mut SmallRng, d: Duration| d.mul_f64(rng.gen_range(0.0..1.0));
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
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
            rng,
        })
    }

    /// Joins the cluster through `seeds` (addresses of any members; this node's own address
    /// is skipped): sends each a push-pull, and retries until some node exchanges state with
    /// this one — five times [`ClusterConfig::join_backoff`] apart (the silence may be a lost
    /// datagram), then with exponential backoff (doubling up to
    /// [`ClusterConfig::join_backoff_max`]: no seed is up yet). With no other seed the node simply
    /// starts a new cluster. Host names are the driver's to resolve before calling this.
    pub fn join(&mut self, seeds: &[SocketAddr], now: Instant) {
        let mut seeds: Vec<SocketAddr> = seeds
            .iter()
            .copied()
            .filter(|s| *s != self.local.addr)
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.is_empty() || self.leaving {
            self.join = None;
            return;
        }
        for &seed in &seeds {
            self.send_push_pull(seed, false);
        }
        let backoff = self.config.join_backoff();
        self.join = Some(Join {
            seeds,
            next_attempt: now + backoff,
            backoff,
            attempts: 1,
        });
    }

    /// Leaves gracefully: the others will report this node as left (`NodeLeft`), not
    /// failed. The node stops probing and joining, gossips its departure right away, and
    /// keeps gossiping it until [`poll_timeout`](Self::poll_timeout) returns `None`.
    pub fn leave(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.local.state = MemberState::Left;
        self.probe = None;
        self.join = None;
        self.broadcasts
            .enqueue(Update::of(&self.local, true), Class::News);
        self.gossip_round();
        self.next_gossip = now + self.config.gossip_interval();
    }

    /// Replaces this node's tags and gossips them at a new incarnation. Fails, changing
    /// nothing, if they exceed [`ClusterConfig::max_tags_bytes`].
    pub fn set_tags(&mut self, tags: Tags, _now: Instant) -> Result<(), TagsTooLarge> {
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
        if self.leaving {
            // Still answer probes, so nobody suspects us before our departure reaches them.
            if let Body::Ping { seq, target } = body {
                if target == self.local.id {
                    self.send(from, Body::Ack { seq }, None);
                }
            }
            return;
        }
        match body {
            Body::Ping { seq, target } => {
                self.apply_all(updates, &sender, now);
                if target == self.local.id {
                    self.send(from, Body::Ack { seq }, None);
                }
            }
            Body::Ack { seq } => {
                self.apply_all(updates, &sender, now);
                self.on_ack(seq, &sender, now);
            }
            Body::Nack { seq } => {
                if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
                    p.nacks += 1;
                }
            }
            Body::PingReq {
                seq,
                target,
                target_addr,
            } => {
                self.apply_all(updates, &sender, now);
                let own_seq = self.next_seq();
                let deadline = now + self.config.health_check_interval().mul_f64(0.4);
                if self.relays.start(own_seq, from, seq, deadline) {
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
            if now >= self.next_gossip && !self.broadcasts.is_empty() {
                self.gossip_round();
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
            return (!self.broadcasts.is_empty()).then_some(self.next_gossip);
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

    /// What this node believes about the member `id` (not itself), if it knows it.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// This node as it gossips itself.
    pub fn local(&self) -> &Member {
        &self.local
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

    // ---- probing ------------------------------------------------------------------------

    fn next_seq(&mut self) -> u32 {
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

    fn start_probe(&mut self, now: Instant) {
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
            nacks: 0,
            expected_nacks: 0,
        });
        self.send(addr, Body::Ping { seq, target }, buddy);
    }

    fn probe_indirectly(&mut self, now: Instant) {
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
        }
    }

    /// Ends the probe period: an ack lowers the local health score; no ack suspects the
    /// target, unless this node itself was too late to tell (Lifeguard).
    fn conclude_probe(&mut self, late: bool, now: Instant) {
        let Some(p) = self.probe.take() else {
            return;
        };
        if p.acked {
            self.health.lower();
            return;
        }
        if late {
            self.health.raise();
            return;
        }
        if p.expected_nacks == 0 || p.nacks < p.expected_nacks {
            self.health.raise();
        }
        let Some(member) = self.members.get(&p.target).filter(|m| m.state.is_live()) else {
            return;
        };
        let mut u = Update::of(member, true);
        u.state = MemberState::Suspect;
        u.suspecter = Some(self.local.id.clone());
        let me = self.local.id.clone();
        self.apply_update(u, &me, false, now);
    }

    fn on_ack(&mut self, seq: u32, sender: &NodeId, now: Instant) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
            if !p.acked {
                p.acked = true;
                if *sender == p.target {
                    self.detector.record(now.saturating_duration_since(p.sent));
                }
            }
            return;
        }
        if let Some(relay) = self.relays.take(seq) {
            self.send(relay.requester, Body::Ack { seq: relay.seq }, None);
        }
    }

    fn expire_suspicions(&mut self, now: Instant) {
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

    // ---- dissemination ------------------------------------------------------------------

    fn apply_all(&mut self, updates: Vec<Update>, sender: &NodeId, now: Instant) {
        for u in updates {
            self.apply_update(u, sender, false, now);
        }
    }

    /// Judges one update and applies it: events, suspicion timers, re-dissemination.
    fn apply_update(&mut self, mut u: Update, sender: &NodeId, push_pull: bool, now: Instant) {
        if u.id == self.local.id {
            self.about_self(&u);
            return;
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
                if current.is_none() && !self.members.make_room(self.config.max_members()) {
                    return;
                }
                let event = self.members.apply(&u, now);
                if u.state == MemberState::Suspect {
                    self.start_suspicion(&u, now);
                }
                if matches!(
                    event,
                    Some(ClusterEvent::NodeJoined(_) | ClusterEvent::NodeRecovered(_))
                ) {
                    self.rotation.insert(&mut self.rng, u.id.clone());
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

    fn gossip_round(&mut self) {
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
    fn send(&mut self, to: SocketAddr, body: Body, first: Option<Update>) {
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

    // ---- push-pull and join -------------------------------------------------------------

    fn push_pull_round(&mut self) {
        let candidates = self
            .members
            .members()
            .filter(|m| m.state != MemberState::Left)
            .count();
        if candidates == 0 {
            return;
        }
        let i = self.rng.gen_range(0..candidates);
        if let Some(addr) = self
            .members
            .nth_where(i, |m| m.state != MemberState::Left)
            .map(|m| m.addr)
        {
            self.send_push_pull(addr, false);
        }
    }

    fn send_push_pull(&mut self, to: SocketAddr, reply: bool) {
        let state: Vec<Update> = std::iter::once(Update::of(&self.local, true))
            .chain(self.members.members().map(|m| Update::of(m, true)))
            .take(MAX_PUSH_PULL_MEMBERS)
            .collect();
        self.transmits.push_back(Transmit {
            to,
            msg: Message {
                from: self.local.id.clone(),
                body: Body::PushPull { reply, state },
                updates: Vec::new(),
            },
        });
    }

    fn retry_join(&mut self, now: Instant) {
        let Some(join) = self.join.as_mut() else {
            return;
        };
        if now < join.next_attempt {
            return;
        }
        join.attempts += 1;
        if join.attempts > JOIN_QUICK_RETRIES {
            join.backoff = (join.backoff * 2).min(self.config.join_backoff_max());
        }
        join.next_attempt = now + join.backoff;
        let seeds = join.seeds.clone();
        for seed in seeds {
            self.send_push_pull(seed, false);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MAX_NODE_ID_LEN;
    use crate::swim::message::{MessageKind, MAX_MESSAGE_BYTES, MAX_PIGGYBACK_UPDATES};
    use rand::SeedableRng;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7946))
    }

    fn node(i: u8, config: ClusterConfig, now: Instant) -> Swim {
        Swim::new(
            NodeId::new(format!("n{i}")).expect("valid id"),
            addr(i),
            Tags::new(),
            config,
            SmallRng::seed_from_u64(u64::from(i)),
            now,
        )
    }

    /// Delivers every queued message instantly (dropping those to `down` nodes) until quiet.
    fn pump(nodes: &mut [Swim], down: &[usize], now: Instant) {
        loop {
            let mut moved = false;
            for i in 0..nodes.len() {
                while let Some(t) = nodes[i].poll_transmit() {
                    moved = true;
                    let from = nodes[i].local().addr();
                    if let Some(j) = nodes.iter().position(|n| n.local().addr() == t.to) {
                        if !down.contains(&j) {
                            nodes[j].handle_message(from, t.msg, now);
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs the nodes' timers in 10 ms steps for `span`.
    fn run(nodes: &mut [Swim], down: &[usize], start: Instant, span: Duration) -> Instant {
        let mut now = start;
        while now < start + span {
            now += Duration::from_millis(10);
            for (i, n) in nodes.iter_mut().enumerate() {
                if !down.contains(&i) && n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
            pump(nodes, down, now);
        }
        now
    }

    fn events(node: &mut Swim) -> Vec<ClusterEvent> {
        std::iter::from_fn(|| node.poll_event()).collect()
    }

    fn state_of(node: &Swim, i: u8) -> Option<MemberState> {
        node.members()
            .find(|m| m.addr() == addr(i))
            .map(Member::state)
    }

    #[test]
    fn joining_through_a_seed_makes_both_nodes_see_each_other() {
        let now = Instant::now();
        let c = ClusterConfig::for_tests();
        let mut nodes = vec![node(1, c.clone(), now), node(2, c, now)];
        nodes[1].join(&[addr(1)], now);
        pump(&mut nodes, &[], now);
        assert_eq!(state_of(&nodes[0], 2), Some(MemberState::Alive));
        assert_eq!(state_of(&nodes[1], 1), Some(MemberState::Alive));
        assert!(matches!(
            events(&mut nodes[0])[..],
            [ClusterEvent::NodeJoined(_)]
        ));
        assert!(matches!(
            events(&mut nodes[1])[..],
            [ClusterEvent::NodeJoined(_)]
        ));
    }

    #[test]
    fn join_retries_quickly_then_with_backoff_until_a_seed_answers() {
        let now = Instant::now();
        let c = ClusterConfig::for_tests()
            .with_join_backoff(Duration::from_millis(100))
            .with_join_backoff_max(Duration::from_millis(400));
        let mut n = node(2, c, now);
        n.join(&[addr(1), addr(2)], now);
        let mut attempts = vec![now];
        while attempts.len() < 9 {
            let Some(t) = n.poll_timeout() else { break };
            n.handle_timeout(t);
            let sent: Vec<_> = std::iter::from_fn(|| n.poll_transmit()).collect();
            if sent
                .iter()
                .any(|s| s.msg.kind() == MessageKind::PushPull && s.to == addr(1))
            {
                attempts.push(t);
            }
            assert!(sent.iter().all(|s| s.to != addr(2)), "never joins itself");
        }
        let gaps: Vec<u128> = attempts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert_eq!(gaps, vec![100, 100, 100, 100, 100, 200, 400, 400]);
    }

    #[test]
    fn suspect_refutes_by_bumping_incarnation() {
        let now = Instant::now();
        let mut n = node(1, ClusterConfig::for_tests(), now);
        let accusation = Message {
            from: NodeId::new("n2").expect("valid id"),
            body: Body::Gossip,
            updates: vec![Update {
                state: MemberState::Suspect,
                incarnation: 4,
                ..Update::of(n.local(), false)
            }],
        };
        n.handle_message(addr(2), accusation, now);
        assert_eq!(n.local().incarnation(), 5);
        assert_eq!(n.local().state(), MemberState::Alive);
        assert_eq!(
            n.local_health(),
            1,
            "a refutation raises local health (Lifeguard)"
        );
        // The refutation is the next thing the node piggybacks.
        n.join(&[addr(2)], now);
        n.handle_timeout(now + Duration::from_secs(1));
        let me = n.local.id.clone();
        let carried = std::iter::from_fn(|| n.poll_transmit()).any(|t| {
            t.msg
                .updates
                .iter()
                .any(|u| u.id == me && u.incarnation == 5)
                || matches!(&t.msg.body, Body::PushPull { state, .. }
                    if state.iter().any(|u| u.id == me && u.incarnation == 5))
        });
        assert!(carried);
    }

    #[test]
    fn a_crashed_member_is_suspected_then_failed_and_reported_once() {
        let now = Instant::now();
        let c = ClusterConfig::for_tests();
        let mut nodes: Vec<Swim> = (1..=4).map(|i| node(i, c.clone(), now)).collect();
        for n in &mut nodes[1..] {
            n.join(&[addr(1)], now);
        }
        let now = run(&mut nodes, &[], now, Duration::from_secs(3));
        for n in nodes.iter_mut() {
            events(n);
        }
        let bound = c.detection_bound(4);
        run(&mut nodes, &[3], now, bound);
        for n in &mut nodes[..3] {
            assert_eq!(state_of(n, 4), Some(MemberState::Dead));
            let failed: Vec<_> = events(n)
                .into_iter()
                .filter(|e| matches!(e, ClusterEvent::NodeFailed(_)))
                .collect();
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].member().addr(), addr(4));
        }
    }

    /// Node 1 learns nodes 2 and 3, sends one probe, then handles its timers `pause` late
    /// without having read any answer. Returns whether it suspects anyone.
    fn suspects_after_a_pause(lifeguard: bool, pause: Duration) -> (bool, u32) {
        let now = Instant::now();
        let c = ClusterConfig::for_tests().with_lifeguard(lifeguard);
        let mut nodes: Vec<Swim> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
        nodes[1].join(&[addr(1)], now);
        nodes[2].join(&[addr(1)], now);
        pump(&mut nodes, &[], now);
        let a = &mut nodes[0];
        while a.probe.is_none() {
            let next = a.poll_timeout().expect("running");
            a.handle_timeout(next);
            std::iter::from_fn(|| a.poll_transmit()).for_each(drop);
        }
        let probe_at = a.next_probe;
        let t = probe_at + pause;
        a.handle_timeout(t);
        let suspects = a.members().any(|m| m.state() == MemberState::Suspect);
        (suspects, a.local_health())
    }

    #[test]
    fn a_node_handling_its_timers_late_does_not_accuse_its_probe_target_with_lifeguard() {
        let late = ClusterConfig::for_tests().health_check_interval() * 5;
        let (suspects, health) = suspects_after_a_pause(true, late);
        assert!(!suspects);
        assert!(health >= 1, "lateness raises local health");
        let (suspects, _) = suspects_after_a_pause(false, late);
        assert!(
            suspects,
            "without Lifeguard the unanswered probe is held against the target"
        );
        let (suspects, _) = suspects_after_a_pause(true, Duration::ZERO);
        assert!(
            suspects,
            "a probe concluded on time is held against the target"
        );
    }

    #[test]
    fn a_graceful_leave_is_reported_as_left_not_failed() {
        let now = Instant::now();
        let c = ClusterConfig::for_tests();
        let mut nodes: Vec<Swim> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
        nodes[1].join(&[addr(1)], now);
        nodes[2].join(&[addr(1)], now);
        let now = run(&mut nodes, &[], now, Duration::from_secs(2));
        for n in nodes.iter_mut() {
            events(n);
        }
        nodes[2].leave(now);
        let mut t = now;
        while let Some(next) = nodes[2].poll_timeout() {
            t = next;
            nodes[2].handle_timeout(t);
            pump(&mut nodes, &[], t);
        }
        run(&mut nodes, &[2], t, Duration::from_secs(20));
        for n in &mut nodes[..2] {
            assert_eq!(state_of(n, 3), Some(MemberState::Left));
            let evs = events(n);
            assert!(matches!(evs[..], [ClusterEvent::NodeLeft(_)]), "{evs:?}");
        }
    }

    #[test]
    fn set_tags_rejects_oversized_tags_and_gossips_accepted_ones_at_a_new_incarnation() {
        let now = Instant::now();
        let c = ClusterConfig::for_tests().with_max_tags_bytes(32);
        let mut nodes = vec![node(1, c.clone(), now), node(2, c, now)];
        nodes[1].join(&[addr(1)], now);
        let now = run(&mut nodes, &[], now, Duration::from_secs(1));
        events(&mut nodes[0]);
        let big = Tags::new()
            .with("label", "x".repeat(40))
            .expect("under 512 bytes");
        let err = nodes[1]
            .set_tags(big, now)
            .expect_err("over the configured 32 bytes");
        assert_eq!(err.limit(), 32);
        assert_eq!(nodes[1].local().incarnation(), 0);
        let small = Tags::new().with("role", "worker").expect("small tags");
        nodes[1].set_tags(small.clone(), now).expect("fits");
        assert_eq!(nodes[1].local().incarnation(), 1);
        run(&mut nodes, &[], now, Duration::from_secs(1));
        let evs = events(&mut nodes[0]);
        assert!(
            matches!(&evs[..], [ClusterEvent::TagsChanged(m)] if *m.tags() == small),
            "{evs:?}"
        );
    }

    /// Three settled nodes; a peer tells node 1 that node 3 is `state` at `incarnation`.
    /// Returns how every node sees node 3 a while later, and node 1's events about it.
    fn after_a_forged_claim_about_node_3(
        state: MemberState,
        incarnation: impl Fn(u64) -> u64,
    ) -> (Vec<Option<MemberState>>, Vec<ClusterEvent>) {
        let now = Instant::now();
        let c = ClusterConfig::for_tests();
        let mut nodes: Vec<Swim> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
        nodes[1].join(&[addr(1)], now);
        nodes[2].join(&[addr(1)], now);
        let now = run(&mut nodes, &[], now, Duration::from_secs(2));
        for n in nodes.iter_mut() {
            events(n);
        }
        let victim = nodes[2].local().clone();
        let forged = Message {
            from: NodeId::new("n9").expect("valid id"),
            body: Body::Gossip,
            updates: vec![Update {
                state,
                incarnation: incarnation(victim.incarnation()),
                tags: Tags::new().with("forged", "yes").expect("small tags"),
                ..Update::of(&victim, true)
            }],
        };
        nodes[0].handle_message(addr(9), forged, now);
        run(&mut nodes, &[], now, c.push_pull_interval() * 3);
        let seen = nodes[..2].iter().map(|n| state_of(n, 3)).collect();
        (seen, events(&mut nodes[0]))
    }

    #[test]
    fn a_garbage_huge_incarnation_cannot_permanently_kill_a_live_node() {
        type Claim = (MemberState, fn(u64) -> u64);
        let claims: [Claim; 6] = [
            (MemberState::Dead, |_| u64::MAX),
            (MemberState::Left, |_| u64::MAX),
            (MemberState::Suspect, |_| u64::MAX),
            (MemberState::Alive, |_| u64::MAX),
            (MemberState::Dead, |own| own.wrapping_add(1 << 63)),
            (MemberState::Dead, |own| own.wrapping_add((1 << 63) - 1)),
        ];
        for (state, incarnation) in claims {
            let (seen, evs) = after_a_forged_claim_about_node_3(state, incarnation);
            assert_eq!(
                seen,
                vec![Some(MemberState::Alive); 2],
                "after a forged {state:?} at {}",
                incarnation(0)
            );
            let last = evs.iter().rev().find(|e| e.member().addr() == addr(3));
            assert!(
                last.is_none_or(|e| *e.member().tags() == Tags::new()
                    && matches!(
                        e,
                        ClusterEvent::NodeRecovered(_)
                            | ClusterEvent::NodeJoined(_)
                            | ClusterEvent::TagsChanged(_)
                    )),
                "after a forged {state:?}: {evs:?}"
            );
        }
    }

    #[test]
    fn gossip_about_unknown_members_cannot_grow_the_table_past_max_members() {
        let now = Instant::now();
        let mut n = node(1, ClusterConfig::for_tests().with_max_members(50), now);
        for batch in 0..100u32 {
            let updates = (0..MAX_PIGGYBACK_UPDATES as u32)
                .map(|i| Update {
                    id: NodeId::new(format!("bogus-{batch}-{i}")).expect("valid id"),
                    addr: addr(9),
                    incarnation: u64::MAX,
                    state: MemberState::Alive,
                    tags: Tags::new(),
                    suspecter: None,
                })
                .collect();
            let msg = Message {
                from: NodeId::new("attacker").expect("valid id"),
                body: Body::Gossip,
                updates,
            };
            n.handle_message(addr(9), msg, now);
        }
        assert_eq!(n.members().count(), 50);
    }

    #[test]
    fn gossip_messages_stay_within_the_packet_budget_with_the_largest_fields() {
        let now = Instant::now();
        let c = ClusterConfig::lan();
        let long = |i: usize| {
            NodeId::new(format!("{i:0>width$}", width = MAX_NODE_ID_LEN)).expect("valid id")
        };
        let mut big_tags = Tags::new();
        let _ = big_tags.insert("k", "v".repeat(400));
        let mut n = Swim::new(
            long(0),
            addr(1),
            big_tags.clone(),
            c.clone(),
            SmallRng::seed_from_u64(1),
            now,
        );
        // Learn many members with maximal ids and tags, so the queue is full of big updates.
        for i in 1..200 {
            let msg = Message {
                from: long(i),
                body: Body::Gossip,
                updates: vec![Update {
                    id: long(i),
                    addr: SocketAddr::from(([10, 1, (i / 256) as u8, (i % 256) as u8], 65535)),
                    incarnation: u64::MAX - 1,
                    state: MemberState::Alive,
                    tags: big_tags.clone(),
                    suspecter: None,
                }],
            };
            n.handle_message(addr(2), msg, now);
        }
        let mut t = now;
        let mut checked = 0;
        for _ in 0..200 {
            t = n.poll_timeout().expect("running");
            n.handle_timeout(t);
            while let Some(tx) = n.poll_transmit() {
                let len = tx.msg.encode().len();
                if tx.msg.kind() != MessageKind::PushPull {
                    checked += 1;
                    assert!(
                        len <= c.max_packet_bytes(),
                        "{:?} of {len} bytes",
                        tx.msg.kind()
                    );
                } else {
                    assert!(len <= MAX_MESSAGE_BYTES);
                }
            }
        }
        assert!(checked > 50, "only {checked} messages checked by {t:?}");
    }
}
