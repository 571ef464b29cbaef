//! A deterministic network simulator for the SWIM core.
//!
//! One file over the usual size because it is one cohesive state machine: the event queue,
//! the network model and the nodes' timers all advance together on one virtual clock.
//!
//! Many [`Swim`] cores run on one virtual clock: a fixed base `Instant` plus a virtual
//! offset, and a priority queue of timer expiries, message deliveries and stall ends ordered
//! by (time, insertion order). The network draws latency and loss from one seeded RNG and
//! drops messages across partitions (symmetric groups) and blocked links (one-way).
//!
//! Every message is encoded, counted in bytes (with the QUIC shell's gossip envelope) and
//! decoded with the real decoder and its limits before delivery; a message the decoder
//! rejects is not delivered and is counted in [`Sim::rejected`].
//!
//! Loss is either a silent drop ([`LossModel::Drop`], datagrams) or, as over QUIC,
//! retransmission ([`LossModel::Retransmit`]): each lost copy is sent again after a probe
//! timeout that doubles with every loss of the same message, and a message is delivered with
//! the delay of its copies — unless it has not arrived by the shell's send timeout, when the
//! shell gives up on it. Each node, like the shell, holds at most `max_in_flight` sends in
//! flight (from the send until the acknowledgement returns, or until the send timeout for one
//! that never arrives — to a crashed or unreachable node) and drops sends beyond that. Nodes can
//! crash (state dropped, messages to them lost), restart on the same address and id, and
//! stall (no timers or messages processed; what arrives meanwhile is read after the stall,
//! after the node's overdue timers, as a paused process would). One seed gives one event log.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rpcnet_cluster::{
    ClusterConfig, ClusterEvent, Member, MemberState, Message, NodeId, Swim, Tags,
};

/// What a lost packet becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LossModel {
    /// The message is gone (unreliable datagrams).
    Drop,
    /// The message is late (QUIC retransmits it), or gone if it misses the send timeout.
    Retransmit,
}

/// What the network does to each message.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub(crate) latency_min: Duration,
    pub(crate) latency_max: Duration,
    pub(crate) loss: f64,
    pub(crate) model: LossModel,
    /// QUIC's peer ack delay, part of its probe timeout (quinn's default: 25 ms).
    pub(crate) max_ack_delay: Duration,
    /// How long the shell waits for a send before giving up: `max(P, 500 ms)`, as
    /// `src/node/driver.rs` sets it.
    pub(crate) send_timeout: Duration,
    /// Sends a node holds in flight at once; more are dropped (`MAX_SENDS_IN_FLIGHT` of the
    /// shell).
    pub(crate) max_in_flight: usize,
}

impl Net {
    pub(crate) fn lan() -> Self {
        Self {
            latency_min: Duration::from_micros(500),
            latency_max: Duration::from_millis(5),
            loss: 0.0,
            model: LossModel::Drop,
            max_ack_delay: Duration::from_millis(25),
            send_timeout: Duration::from_secs(1),
            max_in_flight: 512,
        }
    }

    /// The network as the QUIC shell sees it with `config`'s timers: loss is
    /// retransmission, sends time out as the shell's do.
    pub(crate) fn quic(config: &ClusterConfig) -> Self {
        Self {
            model: LossModel::Retransmit,
            send_timeout: config
                .health_check_interval()
                .max(Duration::from_millis(500)),
            ..Self::lan()
        }
    }

    pub(crate) fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }
}

/// Bytes of the shell's gossip envelope around an encoded message: version, address length
/// and the simulated address `10.x.y.z:7946`.
fn envelope_len(addr: SocketAddr) -> usize {
    2 + addr.to_string().len()
}

/// The kind of a logged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Joined,
    Left,
    Failed,
    Recovered,
    TagsChanged,
}

/// One event as one node emitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    pub(crate) at: Duration,
    pub(crate) observer: usize,
    /// Which life of the observer (1 for its first start, 2 after a restart, …).
    pub(crate) life: u64,
    pub(crate) kind: Kind,
    pub(crate) member: usize,
    pub(crate) incarnation: u64,
}

struct Node {
    id: NodeId,
    addr: SocketAddr,
    swim: Option<Swim<ChaCha8Rng>>,
    timer: Option<Duration>,
    stalled_until: Option<Duration>,
    /// During a stall, whether timers still fire (only the receive path is stalled).
    timers_run: bool,
    backlog: Vec<(SocketAddr, Message)>,
    starts: u64,
    /// When each send in flight completes (acknowledged or timed out).
    in_flight: BinaryHeap<Reverse<Duration>>,
}

enum Action {
    Timer(usize),
    Deliver {
        to: usize,
        from: SocketAddr,
        msg: Message,
    },
    Resume(usize),
}

struct Scheduled {
    at: Duration,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub(crate) struct Sim {
    base: Instant,
    now: Duration,
    seed: u64,
    rng: ChaCha8Rng,
    pub(crate) net: Net,
    pub(crate) config: ClusterConfig,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    pub(crate) log: Vec<LogEntry>,
    groups: Option<Vec<u32>>,
    blocked: BTreeSet<(usize, usize)>,
    /// Messages sent by each node since the last [`Sim::reset_counters`].
    pub(crate) sent: Vec<u64>,
    /// Bytes (encoded message plus gossip envelope) sent by each node since the last
    /// [`Sim::reset_counters`].
    pub(crate) sent_bytes: Vec<u64>,
    /// Sends dropped because `max_in_flight` were in flight, since the last reset.
    pub(crate) dropped_in_flight: u64,
    /// Messages that missed the send timeout after retransmissions, since the last reset.
    pub(crate) timed_out: u64,
    /// Messages the decoder rejected (never delivered), since the start.
    pub(crate) rejected: u64,
    /// Events processed (timers, deliveries, resumes) since the start.
    pub(crate) steps: u64,
}

pub(crate) fn addr_of(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000u32 + i as u32 + 1);
    SocketAddr::new(ip.into(), 7946)
}

pub(crate) fn index_of(addr: SocketAddr) -> Option<usize> {
    match addr {
        SocketAddr::V4(v4) => (u32::from(*v4.ip()) as usize).checked_sub(0x0a00_0001),
        SocketAddr::V6(_) => None,
    }
}

pub(crate) fn name_of(i: usize) -> String {
    format!("n{i:05}")
}

fn index_of_member(m: &Member) -> usize {
    m.id().as_str()[1..]
        .parse()
        .expect("simulated node ids are n<index>")
}

impl Sim {
    /// `n` nodes, none started.
    pub(crate) fn new(seed: u64, n: usize, config: ClusterConfig, net: Net) -> Self {
        let nodes = (0..n)
            .map(|i| Node {
                id: NodeId::new(name_of(i)).expect("valid id"),
                addr: addr_of(i),
                swim: None,
                timer: None,
                stalled_until: None,
                timers_run: false,
                backlog: Vec::new(),
                starts: 0,
                in_flight: BinaryHeap::new(),
            })
            .collect();
        Self {
            base: Instant::now(),
            now: Duration::ZERO,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            net,
            config,
            nodes,
            queue: BinaryHeap::new(),
            next_seq: 0,
            log: Vec::new(),
            groups: None,
            blocked: BTreeSet::new(),
            sent: vec![0; n],
            sent_bytes: vec![0; n],
            dropped_in_flight: 0,
            timed_out: 0,
            rejected: 0,
            steps: 0,
        }
    }

    /// The usual starting point: `n` nodes on a LAN, started 10 ms apart, settled for 20 s.
    pub(crate) fn settled_lan(seed: u64, n: usize, config: ClusterConfig) -> Self {
        Self::bootstrap(
            seed,
            n,
            config,
            Net::lan(),
            Duration::from_millis(10),
            Duration::from_secs(20),
        )
    }

    /// `n` nodes over the QUIC model ([`Net::quic`]) at `loss`, started 10 ms apart,
    /// settled for 20 s (without loss, so the cluster is whole when the test begins).
    pub(crate) fn settled_quic(seed: u64, n: usize, config: ClusterConfig, loss: f64) -> Self {
        let net = Net::quic(&config);
        let mut sim = Self::bootstrap(
            seed,
            n,
            config,
            net,
            Duration::from_millis(10),
            Duration::from_secs(20),
        );
        sim.net.loss = loss;
        sim
    }

    /// Starts every node, one every `stagger`, each joining through nodes 0–2, then runs
    /// until `settle` after the last start.
    pub(crate) fn bootstrap(
        seed: u64,
        n: usize,
        config: ClusterConfig,
        net: Net,
        stagger: Duration,
        settle: Duration,
    ) -> Self {
        let mut sim = Self::new(seed, n, config, net);
        let seeds: Vec<usize> = (0..n.min(3)).collect();
        for i in 0..n {
            sim.start(i, &seeds);
            let next = sim.now + stagger;
            sim.run_until(next);
        }
        let end = sim.now + settle;
        sim.run_until(end);
        sim
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn now(&self) -> Duration {
        self.now
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// Starts (or restarts) node `i` with empty tags and joins through `seeds`.
    pub(crate) fn start(&mut self, i: usize, seeds: &[usize]) {
        self.start_with_tags(i, seeds, Tags::new());
    }

    pub(crate) fn start_with_tags(&mut self, i: usize, seeds: &[usize], tags: Tags) {
        let now = self.instant();
        let node = &mut self.nodes[i];
        node.starts += 1;
        let rng_seed = self
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((i as u64) << 20)
            .wrapping_add(node.starts);
        let mut swim = Swim::new(
            node.id.clone(),
            node.addr,
            tags,
            self.config.clone(),
            ChaCha8Rng::seed_from_u64(rng_seed),
            now,
        );
        let seeds: Vec<SocketAddr> = seeds.iter().map(|&s| addr_of(s)).collect();
        swim.join(&seeds, now);
        node.swim = Some(swim);
        node.timer = None;
        node.stalled_until = None;
        node.backlog.clear();
        node.in_flight.clear();
        self.flush(i);
    }

    /// Node `i` stops abruptly: its state is gone, messages to it are lost.
    pub(crate) fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.swim = None;
        node.timer = None;
        node.stalled_until = None;
        node.backlog.clear();
    }

    /// Node `i` processes nothing for `span` (a paused process): no timers, and what
    /// arrives meanwhile is read after the pause, after its overdue timers.
    pub(crate) fn stall(&mut self, i: usize, span: Duration) {
        self.stall_with(i, span, false);
    }

    /// Node `i`'s receive path stalls for `span` (a CPU-starved or congested node, as in the
    /// Lifeguard paper): its timers keep firing and it keeps sending, but what arrives is read
    /// only when the stall ends.
    pub(crate) fn stall_receive(&mut self, i: usize, span: Duration) {
        self.stall_with(i, span, true);
    }

    fn stall_with(&mut self, i: usize, span: Duration, timers_run: bool) {
        if self.nodes[i].swim.is_none() || self.nodes[i].stalled_until.is_some() {
            return;
        }
        let until = self.now + span;
        self.nodes[i].stalled_until = Some(until);
        self.nodes[i].timers_run = timers_run;
        self.schedule(until, Action::Resume(i));
    }

    pub(crate) fn is_up(&self, i: usize) -> bool {
        self.nodes[i].swim.is_some()
    }

    /// Splits the network: messages pass only between nodes of the same group.
    pub(crate) fn partition(&mut self, groups: Vec<u32>) {
        self.groups = Some(groups);
    }

    pub(crate) fn heal(&mut self) {
        self.groups = None;
        self.blocked.clear();
    }

    /// Drops every message from `from` to `to` (not the other way).
    pub(crate) fn block(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
    }

    /// Changes node `i`'s tags through the core.
    pub(crate) fn set_tags(&mut self, i: usize, tags: Tags) {
        if let Some(swim) = self.nodes[i].swim.as_mut() {
            swim.set_tags(tags).expect("test tags fit");
        }
        self.flush(i);
    }

    pub(crate) fn leave(&mut self, i: usize) {
        let now = self.instant();
        if let Some(swim) = self.nodes[i].swim.as_mut() {
            swim.leave(now);
        }
        self.flush(i);
    }

    /// What node `observer` believes about node `member`.
    pub(crate) fn state(&self, observer: usize, member: usize) -> Option<&Member> {
        let swim = self.nodes[observer].swim.as_ref()?;
        swim.member(&self.nodes[member].id)
    }

    /// Whether `observer` holds `member` as `Alive` (not merely suspect).
    pub(crate) fn sees_alive(&self, observer: usize, member: usize) -> bool {
        self.state(observer, member)
            .is_some_and(|m| m.state() == MemberState::Alive)
    }

    /// Whether `observer` counts `member` in the cluster (alive or merely suspect).
    pub(crate) fn sees_live(&self, observer: usize, member: usize) -> bool {
        self.state(observer, member)
            .is_some_and(|m| matches!(m.state(), MemberState::Alive | MemberState::Suspect))
    }

    pub(crate) fn sees_dead(&self, observer: usize, member: usize) -> bool {
        self.state(observer, member)
            .is_some_and(|m| m.state() == MemberState::Dead)
    }

    pub(crate) fn reset_counters(&mut self) {
        self.sent.iter_mut().for_each(|c| *c = 0);
        self.sent_bytes.iter_mut().for_each(|c| *c = 0);
        self.dropped_in_flight = 0;
        self.timed_out = 0;
    }

    fn schedule(&mut self, at: Duration, action: Action) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq, action }));
    }

    /// Drains node `i`'s outputs into the network and the log, and re-arms its timer.
    fn flush(&mut self, i: usize) {
        let Some(swim) = self.nodes[i].swim.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = swim.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = swim.poll_event() {
            events.push(e);
        }
        let deadline = swim
            .poll_timeout()
            .map(|t| t.saturating_duration_since(self.base).max(self.now));
        for e in events {
            let (kind, m) = match &e {
                ClusterEvent::NodeJoined(m) => (Kind::Joined, m),
                ClusterEvent::NodeLeft(m) => (Kind::Left, m),
                ClusterEvent::NodeFailed(m) => (Kind::Failed, m),
                ClusterEvent::NodeRecovered(m) => (Kind::Recovered, m),
                ClusterEvent::TagsChanged(m) => (Kind::TagsChanged, m),
                _ => continue,
            };
            self.log.push(LogEntry {
                at: self.now,
                observer: i,
                life: self.nodes[i].starts,
                kind,
                member: index_of_member(m),
                incarnation: m.incarnation(),
            });
        }
        let from = self.nodes[i].addr;
        for t in out {
            self.transmit(i, from, t.to, &t.msg);
        }
        if deadline != self.nodes[i].timer {
            self.nodes[i].timer = deadline;
            if let Some(at) = deadline {
                self.schedule(at, Action::Timer(i));
            }
        }
    }

    /// Sends one message from node `i` through the network model.
    fn transmit(&mut self, i: usize, from: SocketAddr, to_addr: SocketAddr, msg: &Message) {
        let now = self.now;
        let retransmit = self.net.model == LossModel::Retransmit;
        if retransmit {
            let in_flight = &mut self.nodes[i].in_flight;
            while in_flight.peek().is_some_and(|Reverse(done)| *done <= now) {
                in_flight.pop();
            }
            if in_flight.len() >= self.net.max_in_flight {
                self.dropped_in_flight += 1;
                return;
            }
        }
        let bytes = msg.encode();
        let size = (bytes.len() + envelope_len(from)) as u64;
        self.sent[i] += 1;
        let to = index_of(to_addr).filter(|&to| to < self.nodes.len());
        let reachable = to.is_some_and(|to| {
            !self.blocked.contains(&(i, to)) && self.groups.as_ref().is_none_or(|g| g[i] == g[to])
        });
        let latency = self
            .rng
            .gen_range(self.net.latency_min..=self.net.latency_max);
        // When the message arrives, if it does.
        let arrival = if retransmit {
            // QUIC's probe timeout: smoothed RTT (2·latency) + 4·RTT variance (about one
            // latency) + the peer's ack delay, doubling after each loss. Every copy sent
            // counts in the bytes.
            let mut pto = latency * 2 + latency * 4 + self.net.max_ack_delay;
            let mut waited = Duration::ZERO;
            loop {
                if waited + latency > self.net.send_timeout {
                    break None;
                }
                self.sent_bytes[i] += size;
                if !(self.net.loss > 0.0 && self.rng.gen_bool(self.net.loss)) {
                    break Some(waited + latency);
                }
                waited += pto;
                pto *= 2;
            }
        } else {
            self.sent_bytes[i] += size;
            if self.net.loss > 0.0 && self.rng.gen_bool(self.net.loss) {
                None
            } else {
                Some(latency)
            }
        };
        let arrival = arrival.filter(|_| reachable);
        if retransmit {
            // A send holds its slot until acknowledged (one latency after arrival), or until
            // the shell's timeout when it never arrives; one past the timeout is cut short.
            let done = match arrival {
                Some(at) => (at + latency).min(self.net.send_timeout),
                None => {
                    self.timed_out += 1;
                    self.net.send_timeout
                }
            };
            self.nodes[i].in_flight.push(Reverse(now + done));
        }
        let (Some(to), Some(arrival)) = (to, arrival) else {
            return;
        };
        match Message::decode(&bytes) {
            Ok(msg) => self.schedule(now + arrival, Action::Deliver { to, from, msg }),
            Err(_) => self.rejected += 1,
        }
    }

    /// Processes everything scheduled up to and including `end`, then sets the clock to it.
    pub(crate) fn run_until(&mut self, end: Duration) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > end {
                break;
            }
            let Some(Reverse(item)) = self.queue.pop() else {
                break;
            };
            self.now = item.at;
            self.steps += 1;
            let now = self.instant();
            match item.action {
                Action::Timer(i) => {
                    let node = &mut self.nodes[i];
                    if node.timer != Some(item.at)
                        || (node.stalled_until.is_some() && !node.timers_run)
                    {
                        continue;
                    }
                    node.timer = None;
                    if let Some(swim) = node.swim.as_mut() {
                        swim.handle_timeout(now);
                    }
                    self.flush(i);
                }
                Action::Deliver { to, from, msg } => {
                    let node = &mut self.nodes[to];
                    let Some(swim) = node.swim.as_mut() else {
                        continue;
                    };
                    if node.stalled_until.is_some() {
                        node.backlog.push((from, msg));
                        continue;
                    }
                    swim.handle_message(from, msg, now);
                    self.flush(to);
                }
                Action::Resume(i) => {
                    let node = &mut self.nodes[i];
                    if node.stalled_until != Some(item.at) {
                        continue;
                    }
                    node.stalled_until = None;
                    let backlog = std::mem::take(&mut node.backlog);
                    let Some(swim) = node.swim.as_mut() else {
                        continue;
                    };
                    // A paused process first finds its timers overdue, then reads its socket.
                    if swim.poll_timeout().is_some_and(|t| t <= now) {
                        swim.handle_timeout(now);
                    }
                    for (from, msg) in backlog {
                        swim.handle_message(from, msg, now);
                    }
                    node.timer = None;
                    self.flush(i);
                }
            }
        }
        self.now = self.now.max(end);
    }

    pub(crate) fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        self.run_until(end);
    }

    /// Runs in steps of `step` until `done(self)` or `limit` has passed; returns the time
    /// it took, or `None`.
    pub(crate) fn run_until_true(
        &mut self,
        step: Duration,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if self.now - start >= limit {
                return None;
            }
            self.run_for(step);
        }
    }

    /// `NodeFailed` events about `member` logged after `since`, by observer.
    pub(crate) fn failures_about(&self, member: usize, since: Duration) -> Vec<&LogEntry> {
        self.log
            .iter()
            .filter(|e| e.kind == Kind::Failed && e.member == member && e.at >= since)
            .collect()
    }
}

/// Checks the event log's order rules for every (observer life, member) pair: each (member,
/// incarnation, kind) at most once, and kinds only in their valid order. Returns the first
/// violation. (A restarted observer is a new core and reports the cluster afresh.)
pub(crate) fn check_event_order(log: &[LogEntry]) -> Result<(), String> {
    use std::collections::BTreeMap;
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        Up,
        Failed,
        Left,
    }
    let mut status: BTreeMap<(usize, u64, usize), (Seen, u64)> = BTreeMap::new();
    let mut once: BTreeSet<(usize, u64, usize, u64, Kind)> = BTreeSet::new();
    for e in log {
        if !once.insert((e.observer, e.life, e.member, e.incarnation, e.kind)) {
            return Err(format!("repeated event {e:?}"));
        }
        let key = (e.observer, e.life, e.member);
        let prev = status.get(&key).copied();
        if let Some((_, inc)) = prev {
            if e.incarnation < inc {
                return Err(format!("incarnation went back in {e:?}"));
            }
        }
        let next = match (prev.map(|p| p.0), e.kind) {
            (None | Some(Seen::Left), Kind::Joined) => Seen::Up,
            (Some(Seen::Up), Kind::TagsChanged) => Seen::Up,
            (Some(Seen::Up), Kind::Failed) => Seen::Failed,
            (Some(Seen::Up), Kind::Left) => Seen::Left,
            (Some(Seen::Failed), Kind::Recovered) => Seen::Up,
            _ => return Err(format!("{:?} after {:?}: {e:?}", e.kind, prev.map(|p| p.1))),
        };
        status.insert(key, (next, e.incarnation));
    }
    Ok(())
}

/// The `q`-quantile (0..=1) of `values` (nearest rank).
pub(crate) fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
