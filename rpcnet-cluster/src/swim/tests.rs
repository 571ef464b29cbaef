//! Unit tests of the whole state machine, a few nodes wired to each other directly.

use super::*;
use crate::member::MAX_NODE_ID_LEN;
use crate::swim::message::{MessageKind, MAX_MESSAGE_BYTES, MAX_PIGGYBACK_UPDATES};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

fn node(i: u8, config: ClusterConfig, now: Instant) -> Swim<ChaCha8Rng> {
    Swim::new(
        NodeId::new(format!("n{i}")).expect("valid id"),
        addr(i),
        Tags::new(),
        config,
        ChaCha8Rng::seed_from_u64(u64::from(i)),
        now,
    )
}

/// Delivers every queued message instantly (dropping those to `down` nodes) until quiet.
fn pump(nodes: &mut [Swim<ChaCha8Rng>], down: &[usize], now: Instant) {
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
fn run(nodes: &mut [Swim<ChaCha8Rng>], down: &[usize], start: Instant, span: Duration) -> Instant {
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

fn events(node: &mut Swim<ChaCha8Rng>) -> Vec<ClusterEvent> {
    std::iter::from_fn(|| node.poll_event()).collect()
}

fn state_of(node: &Swim<ChaCha8Rng>, i: u8) -> Option<MemberState> {
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
    assert_eq!(n.counts().refutations, 1);
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
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=4).map(|i| node(i, c.clone(), now)).collect();
    for n in &mut nodes[1..] {
        n.join(&[addr(1)], now);
    }
    let now = run(&mut nodes, &[], now, Duration::from_secs(3));
    for n in nodes.iter_mut() {
        events(n);
    }
    let bound = c.detection_bound(4);
    // Step through detection, noting who held node 4 as Suspect before it was Dead.
    let mut suspected = [false; 3];
    let mut now = now;
    let end = now + bound;
    while now < end {
        now = run(&mut nodes, &[3], now, Duration::from_millis(10));
        for (seen, n) in suspected.iter_mut().zip(&nodes[..3]) {
            match state_of(n, 4) {
                Some(MemberState::Suspect) => *seen = true,
                Some(MemberState::Dead) => assert!(*seen, "Dead without Suspect first"),
                _ => {}
            }
        }
    }
    assert_eq!(suspected, [true; 3], "every observer went through Suspect");
    for n in &mut nodes[..3] {
        assert_eq!(state_of(n, 4), Some(MemberState::Dead));
        assert_eq!(n.counts().suspicions, 1, "one suspicion of node 4 each");
        let failed: Vec<_> = events(n)
            .into_iter()
            .filter(|e| matches!(e, ClusterEvent::NodeFailed(_)))
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].member().addr(), addr(4));
    }
}

#[test]
fn each_probe_period_ends_with_the_outcome_of_its_probe() {
    let now = Instant::now();
    let c = ClusterConfig::for_tests();
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
    for n in &mut nodes[1..] {
        n.join(&[addr(1)], now);
    }
    let mut now = run(&mut nodes, &[], now, Duration::from_secs(2));
    // Node 1 records each probe in flight and how it ended once the next one starts.
    let mut outcomes: Vec<(NodeId, ProbeOutcome)> = Vec::new();
    let mut in_flight = nodes[0].probe_in_flight().map(|(t, s)| (t.clone(), s));
    let mut look = |nodes: &[Swim<ChaCha8Rng>], outcomes: &mut Vec<(NodeId, ProbeOutcome)>| {
        let now_in_flight = nodes[0].probe_in_flight().map(|(t, s)| (t.clone(), s));
        if now_in_flight.as_ref().map(|p| p.1) != in_flight.as_ref().map(|p| p.1) {
            if let Some((target, seq)) = in_flight.take() {
                let (ended, outcome) = nodes[0].last_probe().expect("an ended probe");
                assert_eq!(ended, seq);
                outcomes.push((target, outcome));
            }
            in_flight = now_in_flight;
        }
    };
    let end = now + Duration::from_secs(2);
    while now < end {
        now = run(&mut nodes, &[], now, Duration::from_millis(10));
        look(&nodes, &mut outcomes);
    }
    assert!(outcomes.len() >= 5, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|(_, o)| *o == ProbeOutcome::Ack),
        "{outcomes:?}"
    );
    // Node 3 crashes: its next probe ends with a suspicion.
    outcomes.clear();
    let end = now + Duration::from_secs(2);
    while now < end {
        now = run(&mut nodes, &[2], now, Duration::from_millis(10));
        look(&nodes, &mut outcomes);
    }
    assert!(
        outcomes.contains(&(nid(3), ProbeOutcome::Suspect)),
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .all(|(t, o)| (*t == nid(3)) == (*o == ProbeOutcome::Suspect)));
    assert!(nodes[0].counts().suspicions >= 1);
}

/// Node 1 learns nodes 2 and 3, sends one probe, then handles its timers `pause` late
/// without having read any answer. Returns whether it suspects anyone.
fn suspects_after_a_pause(lifeguard: bool, pause: Duration) -> (bool, u32) {
    let now = Instant::now();
    let c = ClusterConfig::for_tests().with_lifeguard(lifeguard);
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
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
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
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
fn a_leave_with_no_live_member_to_tell_is_over_at_once() {
    let now = Instant::now();
    let c = ClusterConfig::for_tests();
    // Alone, never joined.
    let mut alone = node(1, c.clone(), now);
    alone.leave(now);
    assert_eq!(alone.poll_timeout(), None);
    // In a cluster whose other member has failed.
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=2).map(|i| node(i, c.clone(), now)).collect();
    nodes[1].join(&[addr(1)], now);
    let now = run(&mut nodes, &[], now, Duration::from_secs(2));
    let now = run(&mut nodes, &[1], now, Duration::from_secs(60));
    assert!(matches!(state_of(&nodes[0], 2), Some(MemberState::Dead)));
    nodes[0].leave(now);
    assert_eq!(nodes[0].poll_timeout(), None);
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
        .set_tags(big)
        .expect_err("over the configured 32 bytes");
    assert_eq!(err.limit(), 32);
    assert_eq!(nodes[1].local().incarnation(), 0);
    let small = Tags::new().with("role", "worker").expect("small tags");
    nodes[1].set_tags(small.clone()).expect("fits");
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
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=3).map(|i| node(i, c.clone(), now)).collect();
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
fn gossip_about_unknown_members_cannot_grow_the_table_past_max_members_nor_evict_live_ones() {
    let now = Instant::now();
    let config = ClusterConfig::for_tests().with_max_members(50);
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=4).map(|i| node(i, config.clone(), now)).collect();
    for n in &mut nodes[1..] {
        n.join(&[addr(1)], now);
    }
    let now = run(&mut nodes, &[], now, Duration::from_secs(2));
    let n = &mut nodes[0];
    for i in 2..=4 {
        assert_eq!(
            state_of(n, i),
            Some(MemberState::Alive),
            "n{i} known before"
        );
    }
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
    // The real members are still there, alive, at their own incarnation.
    for i in 2..=4 {
        let real = n
            .members()
            .find(|m| m.addr() == addr(i))
            .unwrap_or_else(|| panic!("n{i} evicted by bogus gossip"));
        assert_eq!(real.state(), MemberState::Alive, "n{i}");
        assert_eq!(real.id().as_str(), format!("n{i}"));
    }
    assert_eq!(n.local().addr(), addr(1));
}

#[test]
fn a_table_full_of_fake_members_still_admits_a_real_join_and_never_evicts_members_that_answer_probes(
) {
    let now = Instant::now();
    let config = ClusterConfig::for_tests().with_max_members(50);
    let mut nodes: Vec<Swim<ChaCha8Rng>> = (1..=4).map(|i| node(i, config.clone(), now)).collect();
    for n in &mut nodes[1..] {
        n.join(&[addr(1)], now);
    }
    // Long enough for n1 to probe each of the others.
    let now = run(&mut nodes, &[], now, Duration::from_secs(3));
    let real: Vec<NodeId> = (2..=4)
        .map(|i| NodeId::new(format!("n{i}")).expect("valid id"))
        .collect();
    for id in &real {
        assert!(nodes[0].members.is_confirmed(id), "{id:?} answered a probe");
    }
    let _ = events(&mut nodes[0]);
    let fake = |name: String| Update {
        id: NodeId::new(name).expect("valid id"),
        addr: addr(9),
        incarnation: 1,
        state: MemberState::Alive,
        tags: Tags::new(),
        suspecter: None,
    };
    // Fakes announced second-hand fill the table, and then are refused.
    for batch in 0..10u32 {
        let updates = (0..MAX_PIGGYBACK_UPDATES as u32)
            .map(|i| fake(format!("fake-{batch}-{i}")))
            .collect();
        let msg = Message {
            from: NodeId::new("attacker").expect("valid id"),
            body: Body::Gossip,
            updates,
        };
        nodes[0].handle_message(addr(9), msg, now);
    }
    assert_eq!(nodes[0].members().count(), 50);
    // Fakes that speak for themselves take the place of fakes, never of a real member.
    for i in 0..1000u32 {
        let name = format!("self-announced-{i}");
        let msg = Message {
            from: NodeId::new(name.clone()).expect("valid id"),
            body: Body::Gossip,
            updates: vec![fake(name)],
        };
        nodes[0].handle_message(addr(9), msg, now);
        assert_eq!(nodes[0].members().count(), 50);
    }
    let evicted = events(&mut nodes[0]);
    assert!(!evicted.is_empty());
    for event in &evicted {
        let id = event.member().id();
        assert!(
            matches!(
                event,
                ClusterEvent::NodeFailed(_) | ClusterEvent::NodeJoined(_)
            ) && !real.contains(id),
            "{event:?}"
        );
    }
    for id in &real {
        assert_eq!(
            nodes[0].member(id).map(Member::state),
            Some(MemberState::Alive)
        );
    }
    // A real node joining through n1 gets in, and the protocol carries on with it.
    nodes.push(node(5, config.clone(), now));
    nodes[4].join(&[addr(1)], now);
    pump(&mut nodes, &[], now);
    assert_eq!(state_of(&nodes[0], 5), Some(MemberState::Alive));
    assert_eq!(nodes[0].members().count(), 50);
    let _ = run(&mut nodes, &[], now, Duration::from_secs(1));
    for i in 2..=5 {
        assert_eq!(state_of(&nodes[0], i), Some(MemberState::Alive), "n{i}");
    }
}

#[test]
fn gossip_messages_stay_within_the_packet_budget_with_the_largest_fields() {
    let now = Instant::now();
    let c = ClusterConfig::lan();
    let long =
        |i: usize| NodeId::new(format!("{i:0>width$}", width = MAX_NODE_ID_LEN)).expect("valid id");
    let mut big_tags = Tags::new();
    let _ = big_tags.insert("k", "v".repeat(400));
    let mut n = Swim::new(
        long(0),
        addr(1),
        big_tags.clone(),
        c.clone(),
        ChaCha8Rng::seed_from_u64(1),
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

/// Three joined nodes n1, n2, n3, quiet (nothing queued).
fn three(now: Instant) -> Vec<Swim<ChaCha8Rng>> {
    let c = ClusterConfig::for_tests();
    let mut nodes = vec![
        node(1, c.clone(), now),
        node(2, c.clone(), now),
        node(3, c, now),
    ];
    nodes[1].join(&[addr(1)], now);
    nodes[2].join(&[addr(1)], now);
    pump(&mut nodes, &[], now);
    nodes[0].join(&[addr(2)], now);
    pump(&mut nodes, &[], now);
    for n in &mut nodes {
        events(n);
    }
    nodes
}

fn nid(i: u8) -> NodeId {
    NodeId::new(format!("n{i}")).expect("valid id")
}

fn gossip(from: u8, updates: Vec<Update>) -> Message {
    Message {
        from: nid(from),
        body: Body::Gossip,
        updates,
    }
}

#[test]
fn a_second_hand_death_or_departure_is_only_a_suspicion_and_a_first_hand_departure_is_taken() {
    let now = Instant::now();
    let mut nodes = three(now);
    let n3 = nodes[0].member(&nid(3)).cloned().expect("n1 knows n3");
    let mut dead = Update::of(&n3, true);
    dead.state = MemberState::Dead;
    let mut left = Update::of(&n3, true);
    left.state = MemberState::Left;
    nodes[0].handle_message(addr(2), gossip(2, vec![dead, left.clone()]), now);
    assert_eq!(state_of(&nodes[0], 3), Some(MemberState::Suspect));
    assert_eq!(nodes[0].refusals().second_hand_claims, 2);
    assert!(events(&mut nodes[0]).is_empty(), "no failure, no departure");

    nodes[0].handle_message(addr(3), gossip(3, vec![left]), now);
    assert_eq!(state_of(&nodes[0], 3), Some(MemberState::Left));
    assert!(matches!(
        events(&mut nodes[0])[..],
        [ClusterEvent::NodeLeft(_)]
    ));
}

#[test]
fn a_second_hand_address_is_ignored_and_checked_with_the_member_whose_own_word_moves_it() {
    let now = Instant::now();
    let mut nodes = three(now);
    while nodes[0].poll_transmit().is_some() {}
    let n3 = nodes[0].member(&nid(3)).cloned().expect("n1 knows n3");
    let elsewhere = addr(9);
    let mut moved = Update::of(&n3, true);
    moved.addr = elsewhere;
    moved.incarnation += 1;
    nodes[0].handle_message(addr(2), gossip(2, vec![moved.clone()]), now);
    assert_eq!(nodes[0].member(&nid(3)).map(|m| m.addr()), Some(addr(3)));
    assert_eq!(nodes[0].refusals().second_hand_claims, 1);
    // n1 asks n3 at the claimed address, once.
    let check = nodes[0].poll_transmit().expect("a check");
    assert_eq!(check.to, elsewhere);
    assert!(matches!(&check.msg.body, Body::Ping { target, .. } if *target == nid(3)));
    nodes[0].handle_message(addr(2), gossip(2, vec![moved.clone()]), now);
    assert!(
        nodes[0].poll_transmit().is_none(),
        "one check per incarnation"
    );

    // n3's own word moves it.
    nodes[0].handle_message(elsewhere, gossip(3, vec![moved]), now);
    assert_eq!(nodes[0].member(&nid(3)).map(|m| m.addr()), Some(elsewhere));
}

#[test]
fn an_ack_counts_only_from_the_node_probed_and_a_relay_relays_only_the_targets_ack() {
    let now = Instant::now();
    let mut nodes = three(now);
    let n1 = &mut nodes[0];
    // Probe until the probe in flight is n3's.
    let mut at = now;
    while n1.probe.as_ref().is_none_or(|p| p.target != nid(3)) {
        at += Duration::from_millis(1);
        n1.start_probe(at);
    }
    let seq = n1.probe.as_ref().map(|p| p.seq).expect("a probe");
    let ack = |from: u8| Message {
        from: nid(from),
        body: Body::Ack { seq },
        updates: Vec::new(),
    };
    n1.handle_message(addr(2), ack(2), at);
    assert!(
        n1.probe.as_ref().is_some_and(|p| !p.acked),
        "n2 was not asked"
    );
    assert_eq!(n1.refusals().unexpected_acks, 1);
    n1.handle_message(addr(3), ack(3), at);
    assert!(n1.probe.as_ref().is_some_and(|p| p.acked));

    // n2 relays n1's indirect probe of n3: an ack from n1 for n2's ping is not n3's.
    let n2 = &mut nodes[1];
    while n2.poll_transmit().is_some() {}
    let req = Message {
        from: nid(1),
        body: Body::PingReq {
            seq: 77,
            target: nid(3),
            target_addr: addr(3),
        },
        updates: Vec::new(),
    };
    n2.handle_message(addr(1), req, at);
    let ping = n2.poll_transmit().expect("n2 pings n3");
    let Body::Ping { seq: own, .. } = ping.msg.body else {
        panic!("{:?}", ping.msg.body)
    };
    let relayed_ack = |from: u8| Message {
        from: nid(from),
        body: Body::Ack { seq: own },
        updates: Vec::new(),
    };
    n2.handle_message(addr(1), relayed_ack(1), at);
    assert!(n2.poll_transmit().is_none(), "nothing relayed");
    assert_eq!(n2.refusals().unexpected_acks, 1);
    n2.handle_message(addr(3), relayed_ack(3), at);
    let relayed = n2.poll_transmit().expect("n3's ack relayed");
    assert_eq!(relayed.to, addr(1));
    assert!(matches!(relayed.msg.body, Body::Ack { seq: 77 }));
}

#[test]
fn a_probe_acked_by_its_target_ends_ack_and_one_acked_through_a_helper_ends_indirect_ack() {
    let now = Instant::now();
    let mut nodes = three(now);
    let n1 = &mut nodes[0];
    let mut at = now;
    let mut outcomes = Vec::new();
    for relayed in [false, true] {
        while n1.probe.as_ref().is_none_or(|p| p.target != nid(3)) {
            at += Duration::from_millis(1);
            n1.start_probe(at);
        }
        let seq = n1.probe.as_ref().map(|p| p.seq).expect("a probe");
        assert_eq!(n1.probe_in_flight(), Some((&nid(3), seq)));
        let from = if relayed {
            // n2 was asked to probe n3 and relays its ack.
            if let Some(p) = n1.probe.as_mut() {
                p.helpers = vec![nid(2)];
                p.indirect_sent = true;
            }
            2
        } else {
            3
        };
        let ack = Message {
            from: nid(from),
            body: Body::Ack { seq },
            updates: Vec::new(),
        };
        n1.handle_message(addr(from), ack, at);
        n1.conclude_probe(false, at);
        let (ended, outcome) = n1.last_probe().expect("the probe ended");
        assert_eq!(ended, seq);
        outcomes.push(outcome);
    }
    assert_eq!(outcomes, [ProbeOutcome::Ack, ProbeOutcome::IndirectAck]);
}

#[test]
fn a_message_claiming_to_come_from_the_node_itself_is_refused() {
    let now = Instant::now();
    let mut nodes = three(now);
    let n3 = nodes[0].member(&nid(3)).cloned().expect("n1 knows n3");
    let mut dead = Update::of(&n3, true);
    dead.state = MemberState::Dead;
    nodes[0].handle_message(addr(2), gossip(1, vec![dead]), now);
    assert_eq!(state_of(&nodes[0], 3), Some(MemberState::Alive));
    assert_eq!(nodes[0].refusals().impersonations, 1);
}
