//! The member table, the precedence rules between updates, and suspicion timers.
//!
//! # Precedence
//!
//! An update `(state, incarnation)` about a member is judged against the current belief
//! `(current, known)`:
//!
//! | incoming | applies when | otherwise |
//! |---|---|---|
//! | `Alive(i)` | unknown member, or `i > known` | ignored |
//! | `Suspect(i)` | current is `Alive` and `i ≥ known`, or `Suspect` and `i > known` | `Suspect` at `i = known`: a confirmation; else ignored |
//! | `Dead(i)` | current is `Alive`/`Suspect` and `i ≥ known`, or `Dead` and `i > known` | ignored |
//! | `Left(i)` | current is `Alive`/`Suspect`/`Dead` and `i ≥ known` | ignored |
//!
//! Gossip about unknown members other than `Alive` is ignored (a push-pull entry that is
//! `Suspect` is the exception, see `Swim`), a `Left` member comes back only through `Alive`
//! at a higher incarnation, and a `Dead` one cannot be re-suspected. So, for one member, a
//! node's belief only moves up the order (incarnation, then `Alive < Suspect < Dead < Left`),
//! which is what makes each event happen at most once per incarnation.
//!
//! Every update carries the member's tags and address at its incarnation; they are adopted
//! whenever an update raises the known incarnation, whatever its state, so a suspicion that
//! overtakes the `Alive` announcing new tags still brings them.
//!
//! # Incarnations are compared as serial numbers
//!
//! `i > known` above is [`is_newer`]: serial-number arithmetic modulo 2⁶⁴ (RFC 1982), where
//! `a` is newer than `b` when `a − b` (wrapping) lies in `1..2⁶³`. With plain `u64` order an
//! authenticated but faulty or hostile peer could gossip `Dead(x, u64::MAX)` and pin `x` dead
//! for good, since `x` could never take an incarnation above it. With serial order every claim
//! has a successor: `x` answers any claim about itself that its own incarnation is not newer
//! than — including the antipode, `own + 2⁶³`, which is neither newer nor older — by taking
//! the claim's incarnation plus one (wrapping), which every node holding the claim sees as
//! newer. Since [`is_newer`] depends only on the two numbers, all nodes agree on which of two
//! incarnations wins. Honest incarnations grow by one per refutation, tag change or restart,
//! so they never come near the 2⁶³ window; only garbage does, and it no longer sticks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::message::Update;
use crate::event::ClusterEvent;
use crate::member::{Member, MemberState, NodeId};

/// What to do with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Stale or redundant.
    Ignore,
    /// Newer than the current belief: take it and disseminate it.
    Apply,
    /// The same suspicion from another member: an independent confirmation.
    Confirm,
}

/// Whether incarnation `a` is newer than `b` in serial-number order (RFC 1982, modulo 2⁶⁴):
/// `a − b` (wrapping) is in `1..2⁶³`. See the module docs for why.
pub(crate) fn is_newer(a: u64, b: u64) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 63
}

/// Judges `incoming` at incarnation `inc` against the current belief (see the module docs).
pub(crate) fn judge(
    current: Option<(MemberState, u64)>,
    incoming: MemberState,
    inc: u64,
) -> Verdict {
    use MemberState::*;
    let Some((state, known)) = current else {
        return if incoming == Alive {
            Verdict::Apply
        } else {
            Verdict::Ignore
        };
    };
    let newer = is_newer(inc, known);
    let not_older = newer || inc == known;
    let apply = match (state, incoming) {
        (_, Alive) => newer,
        (Alive, Suspect) => not_older,
        (Suspect, Suspect) if inc == known => return Verdict::Confirm,
        (Suspect, Suspect) => newer,
        (Alive | Suspect, Dead) => not_older,
        (Dead, Dead) => newer,
        (Alive | Suspect | Dead, Left) => not_older,
        (Dead | Left, Suspect) | (Left, Dead | Left) => false,
    };
    if apply {
        Verdict::Apply
    } else {
        Verdict::Ignore
    }
}

/// A running suspicion, with Lifeguard's confirmation-shrunk timeout.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    started: Instant,
    /// The first suspecter and up to `expected` confirmers.
    suspecters: BTreeSet<NodeId>,
    expected: usize,
    min: Duration,
    max: Duration,
    pub(crate) deadline: Instant,
    /// Whether a late expiry was already granted its one grace period (Lifeguard).
    pub(crate) graced: bool,
}

impl Suspicion {
    pub(crate) fn new(
        started: Instant,
        suspecter: NodeId,
        expected: usize,
        min: Duration,
        max: Duration,
    ) -> Self {
        let mut s = Self {
            started,
            suspecters: BTreeSet::from([suspecter]),
            expected,
            min,
            max: max.max(min),
            deadline: started,
            graced: false,
        };
        s.deadline = started + s.timeout();
        s
    }

    /// `max(min, max − (max − min)·ln(C + 1)/ln(K + 1))` for `C` confirmations of `K` expected.
    pub(crate) fn timeout(&self) -> Duration {
        if self.expected == 0 {
            return self.min;
        }
        let confirmations = self.suspecters.len().saturating_sub(1) as f64;
        let frac = (confirmations + 1.0).ln() / (self.expected as f64 + 1.0).ln();
        let span = (self.max - self.min).as_secs_f64();
        let timeout = self.max.as_secs_f64() - span * frac;
        Duration::from_secs_f64(timeout.max(self.min.as_secs_f64()))
    }

    /// Counts a confirmation from `who`; `true` if it was new (and the deadline moved).
    pub(crate) fn confirm(&mut self, who: &NodeId) -> bool {
        if self.suspecters.len() > self.expected || self.suspecters.contains(who) {
            return false;
        }
        self.suspecters.insert(who.clone());
        self.deadline = self.started + self.timeout();
        true
    }
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) member: Member,
    pub(crate) suspicion: Option<Suspicion>,
    pub(crate) changed_at: Instant,
    /// Whether the member has answered one of this node's probes.
    confirmed: bool,
    /// When the member entered the table, as a serial number (the eviction order of
    /// unconfirmed members).
    admitted: u64,
}

/// How a full table made room for one more member ([`Membership::make_room`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// The table was not full.
    Free,
    /// The oldest tombstone, of this member, was forgotten.
    Recycled(NodeId),
    /// This live member, which never answered a probe of this node and entered the table
    /// before every other such member, was evicted (as it was: its state is still live).
    Evicted(Member),
}

/// The remote members this node knows, failed and left ones included.
///
/// A full table ([`make_room`](Self::make_room)) gives up, in this order: the oldest
/// tombstone; then, for a newcomer the caller vouches for, the live member admitted first
/// among those that never answered a probe of this node. Members that answered a probe are
/// never evicted. Each eviction candidate is kept in an ordered index, so finding one, or
/// finding that there is none, costs `O(log n)`.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    entries: BTreeMap<NodeId, Entry>,
    deadlines: BTreeSet<(Instant, NodeId)>,
    /// Failed and left members, by the time of their last change.
    tombstones: BTreeSet<(Instant, NodeId)>,
    /// Live members that have not answered a probe, by admission.
    unconfirmed: BTreeSet<(u64, NodeId)>,
    next_admission: u64,
    live: usize,
    /// Counts the changes to the table (see [`Membership::version`]).
    version: u64,
    /// Index entries looked at by `make_room`, for the tests of its cost.
    #[cfg(test)]
    pub(crate) examined: usize,
}

impl Membership {
    /// A number that changes whenever a member is added, changed or forgotten.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&Member> {
        self.entries.get(id).map(|e| &e.member)
    }

    pub(crate) fn belief(&self, id: &NodeId) -> Option<(MemberState, u64)> {
        self.get(id).map(|m| (m.state, m.incarnation))
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.entries.values().map(|e| &e.member)
    }

    /// Remote members that are alive or suspect.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// How many live members have answered a probe of this node. `O(1)`.
    pub(crate) fn confirmed(&self) -> usize {
        self.live - self.unconfirmed.len()
    }

    /// Whether `id` is a live member that has answered a probe of this node.
    pub(crate) fn is_confirmed(&self, id: &NodeId) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| e.confirmed && e.member.state.is_live())
    }

    /// Records that `id` answered a probe of this node: it is no longer evicted to make room.
    pub(crate) fn confirm_reachable(&mut self, id: &NodeId) {
        if let Some(entry) = self.entries.get_mut(id) {
            if !entry.confirmed {
                self.unconfirmed.remove(&(entry.admitted, id.clone()));
                entry.confirmed = true;
            }
        }
    }

    /// Takes an update the caller judged [`Verdict::Apply`]; returns the event it causes.
    pub(crate) fn apply(&mut self, u: &Update, now: Instant) -> Option<ClusterEvent> {
        self.version += 1;
        let previous = self.entries.get(&u.id).map(|e| e.member.state);
        if let Some(entry) = self.entries.get(&u.id) {
            unindex(&mut self.tombstones, &mut self.unconfirmed, &u.id, entry);
        }
        let admitted = self.next_admission;
        let entry = self.entries.entry(u.id.clone()).or_insert_with(|| Entry {
            member: Member {
                id: u.id.clone(),
                addr: u.addr,
                state: u.state,
                incarnation: u.incarnation,
                tags: u.tags.clone(),
            },
            suspicion: None,
            changed_at: now,
            confirmed: false,
            admitted,
        });
        if previous.is_none() {
            self.next_admission += 1;
        }
        // Tags and address are versioned by incarnation: whatever update first brings a
        // higher incarnation brings the member's tags and address at that incarnation (a
        // suspicion can overtake the `Alive` that announced new tags).
        let newer = previous.is_some() && is_newer(u.incarnation, entry.member.incarnation);
        let tags_changed = newer && entry.member.tags != u.tags;
        if newer {
            entry.member.tags = u.tags.clone();
            if entry.member.addr != u.addr {
                // What answered at the old address says nothing about the new one.
                entry.confirmed = false;
            }
            entry.member.addr = u.addr;
        }
        entry.member.state = u.state;
        entry.member.incarnation = u.incarnation;
        entry.changed_at = now;
        if !u.state.is_live() {
            // A member that comes back must answer a probe again to be kept over others.
            entry.confirmed = false;
        }
        index(&mut self.tombstones, &mut self.unconfirmed, &u.id, entry);
        if u.state != MemberState::Suspect {
            if let Some(s) = entry.suspicion.take() {
                self.deadlines.remove(&(s.deadline, u.id.clone()));
            }
        }
        let was_live = previous.is_some_and(MemberState::is_live);
        match (was_live, u.state.is_live()) {
            (false, true) => self.live += 1,
            (true, false) => self.live -= 1,
            _ => {}
        }
        let member = entry.member.clone();
        use MemberState::*;
        match (previous, u.state) {
            (None, Alive | Suspect) | (Some(Left), Alive) => Some(ClusterEvent::NodeJoined(member)),
            (Some(Alive | Suspect), Alive | Suspect) if tags_changed => {
                Some(ClusterEvent::TagsChanged(member))
            }
            (Some(Alive | Suspect), Dead) => Some(ClusterEvent::NodeFailed(member)),
            (Some(Alive | Suspect), Left) => Some(ClusterEvent::NodeLeft(member)),
            (Some(Dead), Alive) => Some(ClusterEvent::NodeRecovered(member)),
            _ => None,
        }
    }

    /// Starts (or replaces) the suspicion timer of a member that is now `Suspect`.
    pub(crate) fn suspect(&mut self, id: &NodeId, suspicion: Suspicion) {
        if let Some(entry) = self.entries.get_mut(id) {
            if let Some(old) = entry.suspicion.take() {
                self.deadlines.remove(&(old.deadline, id.clone()));
            }
            self.deadlines.insert((suspicion.deadline, id.clone()));
            entry.suspicion = Some(suspicion);
        }
    }

    /// Counts a confirmation of a running suspicion; `true` if it was new.
    pub(crate) fn confirm(&mut self, id: &NodeId, who: &NodeId) -> bool {
        let Some(s) = self.entries.get_mut(id).and_then(|e| e.suspicion.as_mut()) else {
            return false;
        };
        let before = s.deadline;
        if !s.confirm(who) {
            return false;
        }
        self.deadlines.remove(&(before, id.clone()));
        self.deadlines.insert((s.deadline, id.clone()));
        true
    }

    /// The earliest suspicion deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Removes and returns a suspicion that expired by `now`, leaving the member `Suspect`
    /// without a timer.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(NodeId, Suspicion)> {
        loop {
            let (at, _) = self.deadlines.first()?;
            if *at > now {
                return None;
            }
            let (_, id) = self.deadlines.pop_first()?;
            if let Some(s) = self.entries.get_mut(&id).and_then(|e| e.suspicion.take()) {
                return Some((id, s));
            }
        }
    }

    /// Re-arms an expired suspicion once, at `deadline` (Lifeguard's grace for a late timer).
    pub(crate) fn grace(&mut self, id: &NodeId, mut suspicion: Suspicion, deadline: Instant) {
        suspicion.deadline = deadline;
        suspicion.graced = true;
        self.suspect(id, suspicion);
    }

    /// Makes room for one more member under `max`, or returns `None` if the table is full
    /// of members it keeps. It gives up the oldest tombstone first; then, if
    /// `may_evict_live` (the caller vouches for the newcomer), the live member admitted
    /// first among those that never answered a probe of this node. `O(log n)`.
    pub(crate) fn make_room(&mut self, max: usize, may_evict_live: bool) -> Option<Room> {
        if self.entries.len() < max {
            return Some(Room::Free);
        }
        #[cfg(test)]
        {
            self.examined += 1;
        }
        if let Some((_, id)) = self.tombstones.pop_first() {
            self.remove(&id);
            return Some(Room::Recycled(id));
        }
        if !may_evict_live {
            return None;
        }
        #[cfg(test)]
        {
            self.examined += 1;
        }
        let (_, id) = self.unconfirmed.pop_first()?;
        self.remove(&id).map(Room::Evicted)
    }

    /// Forgets a member (its index entries already removed by the caller, or removed here).
    fn remove(&mut self, id: &NodeId) -> Option<Member> {
        let entry = self.entries.remove(id)?;
        self.version += 1;
        unindex(&mut self.tombstones, &mut self.unconfirmed, id, &entry);
        if let Some(s) = &entry.suspicion {
            self.deadlines.remove(&(s.deadline, id.clone()));
        }
        if entry.member.state.is_live() {
            self.live -= 1;
        }
        Some(entry.member)
    }

    /// Forgets failed and left members whose state is older than `ttl`.
    pub(crate) fn reap(&mut self, now: Instant, ttl: Duration) {
        while let Some((at, _)) = self.tombstones.first() {
            if now.saturating_duration_since(*at) < ttl {
                break;
            }
            if let Some((_, id)) = self.tombstones.pop_first() {
                self.remove(&id);
            }
        }
    }

    /// The `i`-th member (in id order) satisfying `keep`, for random picks.
    pub(crate) fn nth_where(&self, i: usize, keep: impl Fn(&Member) -> bool) -> Option<&Member> {
        self.members().filter(|m| keep(m)).nth(i)
    }
}

/// Removes `entry`'s eviction-index key, if it has one.
fn unindex(
    tombstones: &mut BTreeSet<(Instant, NodeId)>,
    unconfirmed: &mut BTreeSet<(u64, NodeId)>,
    id: &NodeId,
    entry: &Entry,
) {
    if entry.member.state.is_live() {
        unconfirmed.remove(&(entry.admitted, id.clone()));
    } else {
        tombstones.remove(&(entry.changed_at, id.clone()));
    }
}

/// Adds `entry`'s eviction-index key: tombstones by last change, live members that never
/// answered a probe by admission; confirmed live members have none.
fn index(
    tombstones: &mut BTreeSet<(Instant, NodeId)>,
    unconfirmed: &mut BTreeSet<(u64, NodeId)>,
    id: &NodeId,
    entry: &Entry,
) {
    if !entry.member.state.is_live() {
        tombstones.insert((entry.changed_at, id.clone()));
    } else if !entry.confirmed {
        unconfirmed.insert((entry.admitted, id.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::Tags;
    use MemberState::*;

    #[test]
    fn alive_with_a_higher_incarnation_overrides_everything() {
        for state in [Alive, Suspect, Dead, Left] {
            assert_eq!(
                judge(Some((state, 3)), Alive, 4),
                Verdict::Apply,
                "{state:?}"
            );
            assert_eq!(
                judge(Some((state, 3)), Alive, 3),
                Verdict::Ignore,
                "{state:?}"
            );
        }
    }

    #[test]
    fn suspect_overrides_alive_at_the_same_incarnation_but_not_an_older_one() {
        assert_eq!(judge(Some((Alive, 3)), Suspect, 3), Verdict::Apply);
        assert_eq!(judge(Some((Alive, 3)), Suspect, 2), Verdict::Ignore);
        assert_eq!(judge(Some((Suspect, 3)), Suspect, 4), Verdict::Apply);
    }

    #[test]
    fn incarnations_compare_as_serial_numbers_so_every_one_has_a_successor() {
        assert!(is_newer(4, 3));
        assert!(!is_newer(3, 4));
        assert!(!is_newer(3, 3));
        assert!(is_newer(0, u64::MAX), "u64::MAX is refuted by 0");
        assert!(!is_newer(u64::MAX, 0));
        assert!(is_newer((u64::MAX - 5).wrapping_add(1 << 62), u64::MAX - 5));
        // The antipode is neither newer nor older; its successor is newer than it.
        let antipode = 7u64.wrapping_add(1 << 63);
        assert!(!is_newer(antipode, 7) && !is_newer(7, antipode));
        assert!(is_newer(antipode.wrapping_add(1), antipode));
        for claim in [0, 1, 1 << 62, 1 << 63, u64::MAX - 1, u64::MAX] {
            let refutation = claim.wrapping_add(1);
            assert!(is_newer(refutation, claim), "{claim}");
            assert_eq!(
                judge(Some((Dead, claim)), Alive, refutation),
                Verdict::Apply
            );
            assert_eq!(
                judge(Some((Left, claim)), Alive, refutation),
                Verdict::Apply
            );
        }
    }

    #[test]
    fn a_second_suspicion_at_the_same_incarnation_is_a_confirmation() {
        assert_eq!(judge(Some((Suspect, 3)), Suspect, 3), Verdict::Confirm);
    }

    #[test]
    fn dead_overrides_alive_and_suspect_and_cannot_be_resuspected() {
        assert_eq!(judge(Some((Alive, 3)), Dead, 3), Verdict::Apply);
        assert_eq!(judge(Some((Suspect, 3)), Dead, 3), Verdict::Apply);
        assert_eq!(judge(Some((Alive, 3)), Dead, 2), Verdict::Ignore);
        assert_eq!(judge(Some((Dead, 3)), Suspect, 9), Verdict::Ignore);
        assert_eq!(judge(Some((Dead, 3)), Dead, 3), Verdict::Ignore);
    }

    #[test]
    fn left_is_final_until_the_member_comes_back_alive() {
        assert_eq!(judge(Some((Dead, 3)), Left, 3), Verdict::Apply);
        assert_eq!(judge(Some((Suspect, 3)), Left, 3), Verdict::Apply);
        assert_eq!(judge(Some((Left, 3)), Dead, 9), Verdict::Ignore);
        assert_eq!(judge(Some((Left, 3)), Suspect, 9), Verdict::Ignore);
        assert_eq!(judge(Some((Left, 3)), Alive, 4), Verdict::Apply);
    }

    #[test]
    fn only_alive_introduces_an_unknown_member() {
        assert_eq!(judge(None, Alive, 0), Verdict::Apply);
        for state in [Suspect, Dead, Left] {
            assert_eq!(judge(None, state, 5), Verdict::Ignore, "{state:?}");
        }
    }

    #[test]
    fn beliefs_only_move_up_so_each_state_is_entered_once_per_incarnation() {
        // Exhaustively: whenever judge applies, (incarnation, rank) strictly increases.
        for cur in [Alive, Suspect, Dead, Left] {
            for inc in [Alive, Suspect, Dead, Left] {
                for (known, i) in [(3, 2), (3, 3), (3, 4)] {
                    if judge(Some((cur, known)), inc, i) == Verdict::Apply {
                        assert!((i, inc) > (known, cur), "{cur:?}@{known} -> {inc:?}@{i}");
                    }
                }
            }
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn suspicion_timeout_shrinks_from_max_to_min_with_confirmations() {
        let t0 = Instant::now();
        let id = |s: &str| NodeId::new(s).expect("valid id");
        let mut s = Suspicion::new(t0, id("a"), 3, secs(10), secs(60));
        assert_eq!(s.timeout(), secs(60));
        let mut last = s.timeout();
        for who in ["b", "c", "d"] {
            assert!(s.confirm(&id(who)));
            assert!(s.timeout() < last);
            last = s.timeout();
        }
        assert_eq!(s.timeout(), secs(10));
        assert_eq!(s.deadline, t0 + secs(10));
        assert!(
            !s.confirm(&id("e")),
            "confirmations beyond K are not stored"
        );
        assert!(
            !s.confirm(&id("a")),
            "the same suspecter does not confirm twice"
        );
    }

    #[test]
    fn without_expected_confirmations_suspicion_lasts_the_minimum() {
        let s = Suspicion::new(
            Instant::now(),
            NodeId::new("a").expect("valid id"),
            0,
            secs(4),
            secs(24),
        );
        assert_eq!(s.timeout(), secs(4));
    }

    #[test]
    fn a_suspicion_at_a_higher_incarnation_brings_the_new_tags_with_it() {
        let now = Instant::now();
        let mut table = Membership::default();
        let mut u = Update {
            id: NodeId::new("a").expect("valid id"),
            addr: ([10, 0, 0, 1], 1).into(),
            incarnation: 0,
            state: Alive,
            tags: Tags::new(),
            suspecter: None,
        };
        table.apply(&u, now);
        // The Alive(1) announcing the tags is overtaken by a Suspect(1).
        u.incarnation = 1;
        u.state = Suspect;
        u.tags = Tags::new().with("role", "worker").expect("small tags");
        let event = table.apply(&u, now);
        assert!(
            matches!(event, Some(ClusterEvent::TagsChanged(_))),
            "{event:?}"
        );
        assert_eq!(
            table.get(&u.id).map(|m| m.tags.get("role")),
            Some(Some("worker"))
        );
        // The late Alive(1) is then stale, and nothing is lost.
        assert_eq!(judge(table.belief(&u.id), Alive, 1), Verdict::Ignore);
    }

    #[test]
    fn applying_updates_emits_the_matching_events() {
        let now = Instant::now();
        let mut table = Membership::default();
        let mut u = Update {
            id: NodeId::new("a").expect("valid id"),
            addr: ([10, 0, 0, 1], 1).into(),
            incarnation: 0,
            state: Alive,
            tags: Tags::new(),
            suspecter: None,
        };
        let kind = |e: Option<ClusterEvent>| {
            e.map(|e| format!("{e:?}").split('(').next().map(str::to_owned))
        };
        assert_eq!(kind(table.apply(&u, now)), Some(Some("NodeJoined".into())));
        assert_eq!(table.live(), 1);
        u.incarnation = 1;
        u.tags = Tags::new().with("role", "worker").expect("small tags");
        assert_eq!(kind(table.apply(&u, now)), Some(Some("TagsChanged".into())));
        u.state = Suspect;
        assert_eq!(table.apply(&u, now), None);
        u.state = Dead;
        assert_eq!(kind(table.apply(&u, now)), Some(Some("NodeFailed".into())));
        assert_eq!(table.live(), 0);
        u.state = Alive;
        u.incarnation = 2;
        assert_eq!(
            kind(table.apply(&u, now)),
            Some(Some("NodeRecovered".into()))
        );
        assert_eq!(table.get(&u.id).map(|m| m.tags.len()), Some(1));
        u.state = Left;
        assert_eq!(kind(table.apply(&u, now)), Some(Some("NodeLeft".into())));
    }

    fn alive(name: &str) -> Update {
        Update {
            id: NodeId::new(name).expect("valid id"),
            addr: ([10, 0, 0, 1], 1).into(),
            incarnation: 0,
            state: Alive,
            tags: Tags::new(),
            suspecter: None,
        }
    }

    /// A full table of `n` live members that all answered probes, and how many index
    /// entries `make_room` looked at to refuse 1,000 newcomers.
    fn examined_refusing_1000_in_a_full_table_of(n: usize) -> usize {
        let now = Instant::now();
        let mut table = Membership::default();
        for i in 0..n {
            let u = alive(&format!("m{i}"));
            table.apply(&u, now);
            table.confirm_reachable(&u.id);
        }
        for vouched in [false, true] {
            for _ in 0..500 {
                assert_eq!(table.make_room(n, vouched), None);
            }
        }
        assert_eq!(table.members().count(), n);
        table.examined
    }

    #[test]
    fn refusing_a_member_when_the_table_is_full_costs_the_same_at_64_and_at_4096_members() {
        let small = examined_refusing_1000_in_a_full_table_of(64);
        let large = examined_refusing_1000_in_a_full_table_of(4096);
        // Two index lookups at most per refusal (tombstones, then unconfirmed members), each
        // O(log n), whatever the size; a scan would look at every member.
        assert_eq!(small, large);
        assert!(large <= 2 * 1000, "{large}");
    }

    #[test]
    fn a_full_table_gives_up_the_oldest_tombstone_then_the_first_unconfirmed_member_never_a_confirmed_one(
    ) {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut table = Membership::default();
        // confirmed-0..2 answered probes; unconfirmed-0..2 did not; two tombstones, the
        // second older than the first.
        for i in 0..3 {
            let u = alive(&format!("confirmed-{i}"));
            table.apply(&u, now);
            table.confirm_reachable(&u.id);
            table.apply(&alive(&format!("unconfirmed-{i}")), now);
        }
        for (name, at) in [("dead-new", later), ("dead-old", now)] {
            let mut u = alive(name);
            table.apply(&u, now);
            u.state = Dead;
            table.apply(&u, at);
        }
        let max = 8;
        let id = |s: &str| NodeId::new(s).expect("valid id");
        assert_eq!(
            table.make_room(max, false),
            Some(Room::Recycled(id("dead-old")))
        );
        table.apply(&alive("x"), now);
        assert_eq!(
            table.make_room(max, true),
            Some(Room::Recycled(id("dead-new")))
        );
        table.apply(&alive("y"), now);
        // No tombstone left: a newcomer nobody vouches for is refused...
        assert_eq!(table.make_room(max, false), None);
        // ...one that is vouched for takes the place of the unconfirmed members, first
        // admitted first, and then nothing more can be evicted.
        let mut evicted = Vec::new();
        while let Some(room) = table.make_room(max, true) {
            let Room::Evicted(member) = room else {
                panic!("{room:?}");
            };
            evicted.push(member.id.as_str().to_owned());
            table.apply(&alive(&format!("new-{}", evicted.len())), now);
            table.confirm_reachable(&id(&format!("new-{}", evicted.len())));
        }
        assert_eq!(
            evicted,
            ["unconfirmed-0", "unconfirmed-1", "unconfirmed-2", "x", "y"]
        );
        assert_eq!(table.members().count(), max);
        assert_eq!(table.live(), max);
        for i in 0..3 {
            assert!(table.is_confirmed(&id(&format!("confirmed-{i}"))));
        }
    }
}
