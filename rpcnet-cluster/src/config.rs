//! [`ClusterConfig`]: every knob of the protocol, its presets and the timeouts it implies.

use std::time::Duration;

use crate::tags::MAX_TAGS_BYTES;

/// The protocol's knobs. Start from a preset ([`lan`](Self::lan), which is also the
/// [`Default`], [`wan`](Self::wan) or [`for_tests`](Self::for_tests)) and adjust with the
/// `with_*` setters.
///
/// # Timeouts and the formulas they follow
///
/// Writing `P` for the health check (probe) interval, `G` for the gossip interval, `n` for the
/// number of live members (this node included), `L` for the local health score (0 when healthy,
/// up to [`max_local_health`](Self::max_local_health); always 0 with Lifeguard off):
///
/// - **Probe period** `= P·(1 + L)`: one direct probe of one member per period.
/// - **Direct probe timeout** `= min(T_φ, P/2)·(1 + L)`, where `T_φ = μ + pause + z·max(σ, σ_min)`
///   is the elapsed time at which the Phi Accrual detector over the round-trip times of this
///   node's acknowledged probes reaches [`phi_threshold`](Self::phi_threshold) (`z` solves
///   `φ = threshold` under the detector's normal approximation; `pause` is
///   [`phi_acceptable_pause`](Self::phi_acceptable_pause), `σ_min`
///   [`phi_min_std_dev`](Self::phi_min_std_dev)). Until 4 samples exist `T_φ` is
///   [`probe_timeout`](Self::probe_timeout). When it expires without an ack, `k`
///   ([`indirect_checks`](Self::indirect_checks)) members probe on this node's behalf until the
///   end of the period; no ack by then makes the member suspect.
/// - **Suspicion timeout**: `min = α·max(1, log10 n)·P` ([`suspicion_timeout_min`](Self::suspicion_timeout_min)),
///   `max = β·min` ([`suspicion_timeout_max`](Self::suspicion_timeout_max)), with `α`
///   [`suspicion_mult`](Self::suspicion_mult) and `β`
///   [`suspicion_max_mult`](Self::suspicion_max_mult). With Lifeguard, a suspicion that has
///   gathered `C` independent confirmations times out after
///   `max(min, max − (max − min)·ln(C + 1)/ln(K + 1))` with `K = k` (0 when `n < k + 2`); without
///   Lifeguard it is always `min`.
/// - **Retransmissions**: each update is piggybacked `λ·⌈ln(n + 1)⌉` times by each node that
///   disseminates it ([`retransmit_limit`](Self::retransmit_limit), `λ`
///   [`retransmit_mult`](Self::retransmit_mult)).
/// - **Gossip**: every `G`, while updates are waiting, a gossip message to
///   [`gossip_fanout`](Self::gossip_fanout) random live members (updates also ride on every
///   probe, ack and indirect probe).
/// - **Push-pull**: every [`push_pull_interval`](Self::push_pull_interval) a full-state exchange
///   with one random member that has not left (failed ones included, so a healed partition
///   reconnects by itself).
/// - **Join retries**: `min(b₀·2^max(0, i − 4), b_max)` after the `i`-th unanswered attempt
///   (`i = 0, 1, …`; [`join_backoff`](Self::join_backoff),
///   [`join_backoff_max`](Self::join_backoff_max)): five quick retries, since silence may be
///   a lost datagram, then exponential backoff, since no seed may be up yet.
/// - **Detection bound**: see [`detection_bound`](Self::detection_bound).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    probe_interval: Duration,
    probe_timeout: Duration,
    gossip_interval: Duration,
    gossip_fanout: usize,
    indirect_checks: usize,
    suspicion_mult: u32,
    suspicion_max_mult: u32,
    phi_threshold: f64,
    phi_min_std_dev: Duration,
    phi_acceptable_pause: Duration,
    phi_window: usize,
    push_pull_interval: Duration,
    retransmit_mult: u32,
    lifeguard: bool,
    max_local_health: u32,
    max_tags_bytes: usize,
    join_backoff: Duration,
    join_backoff_max: Duration,
    max_members: usize,
    tombstone_ttl: Duration,
    max_packet_bytes: usize,
    metrics: bool,
}

impl Default for ClusterConfig {
    /// [`ClusterConfig::lan`].
    fn default() -> Self {
        Self::lan()
    }
}

macro_rules! knob {
    ($(#[$doc:meta])* $field:ident, $setter:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $field(&self) -> $ty {
            self.$field
        }

        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
        pub fn $setter(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    };
}

impl ClusterConfig {
    /// A local network: 1 s probe period, 500 ms initial probe timeout, 200 ms gossip,
    /// 30 s push-pull; round-trips of a few milliseconds.
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_mult: 6,
            phi_threshold: 8.0,
            phi_min_std_dev: Duration::from_millis(50),
            phi_acceptable_pause: Duration::from_millis(100),
            phi_window: 64,
            push_pull_interval: Duration::from_secs(30),
            retransmit_mult: 6,
            lifeguard: true,
            max_local_health: 8,
            max_tags_bytes: MAX_TAGS_BYTES,
            join_backoff: Duration::from_secs(1),
            join_backoff_max: Duration::from_secs(30),
            max_members: 4096,
            tombstone_ttl: Duration::from_secs(3600),
            max_packet_bytes: 1200,
            metrics: false,
        }
    }

    /// A wide-area network: 5 s probe period, 3 s initial probe timeout, 500 ms gossip,
    /// 60 s push-pull, more patient suspicion and a wider Phi Accrual margin.
    pub fn wan() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_interval: Duration::from_millis(500),
            gossip_fanout: 4,
            suspicion_mult: 6,
            phi_min_std_dev: Duration::from_millis(300),
            phi_acceptable_pause: Duration::from_millis(500),
            push_pull_interval: Duration::from_secs(60),
            ..Self::lan()
        }
    }

    /// Fast timers for tests of real nodes on loopback: 200 ms probe period, 100 ms initial
    /// probe timeout, 50 ms gossip, 5 s push-pull, short join backoff.
    pub fn for_tests() -> Self {
        Self {
            probe_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(100),
            gossip_interval: Duration::from_millis(50),
            suspicion_mult: 3,
            phi_min_std_dev: Duration::from_millis(10),
            phi_acceptable_pause: Duration::from_millis(20),
            push_pull_interval: Duration::from_secs(5),
            join_backoff: Duration::from_millis(200),
            join_backoff_max: Duration::from_secs(2),
            ..Self::lan()
        }
    }

    /// The health check interval: the probe period `P`, in which this node directly probes
    /// one member (stretched to `P·(1 + L)` while its local health score `L` is raised).
    pub fn health_check_interval(&self) -> Duration {
        self.probe_interval
    }

    /// Sets the [`health_check_interval`](Self::health_check_interval).
    pub fn with_health_check_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    knob!(
        /// How often (`G`) this node sends gossip messages to
        /// [`gossip_fanout`](Self::gossip_fanout) random members while it has updates to spread.
        gossip_interval, with_gossip_interval, Duration
    );
    knob!(
        /// The direct probe timeout used until the Phi Accrual detector has 4 samples.
        probe_timeout, with_probe_timeout, Duration
    );
    knob!(
        /// How many random members receive each gossip message.
        gossip_fanout, with_gossip_fanout, usize
    );
    knob!(
        /// `k`: how many members are asked to probe a member that missed its direct probe.
        indirect_checks, with_indirect_checks, usize
    );
    knob!(
        /// `α` in the minimum suspicion timeout `α·max(1, log10 n)·P`.
        suspicion_mult, with_suspicion_mult, u32
    );
    knob!(
        /// `β`: with Lifeguard, an unconfirmed suspicion lasts `β` times the minimum.
        suspicion_max_mult, with_suspicion_max_mult, u32
    );
    knob!(
        /// The Phi Accrual level at which a direct probe is deemed unanswered.
        phi_threshold, with_phi_threshold, f64
    );
    knob!(
        /// The floor of the standard deviation the Phi Accrual detector assumes, so a very
        /// regular network does not make it hair-triggered.
        phi_min_std_dev, with_phi_min_std_dev, Duration
    );
    knob!(
        /// Added to the mean round-trip time before computing phi: the pause a healthy but
        /// momentarily quiet member is allowed.
        phi_acceptable_pause, with_phi_acceptable_pause, Duration
    );
    knob!(
        /// How many recent round-trip samples the Phi Accrual detector keeps.
        phi_window, with_phi_window, usize
    );
    knob!(
        /// How often this node exchanges its full state with one random member.
        push_pull_interval, with_push_pull_interval, Duration
    );
    knob!(
        /// `λ` in the retransmission limit `λ·⌈ln(n + 1)⌉` (6 by default: at 50% loss each
        /// node still receives an update about 15 times on average, so refutations beat
        /// suspicion timeouts; without churn this costs nothing, since gossip messages are
        /// only sent while updates wait).
        retransmit_mult, with_retransmit_mult, u32
    );
    knob!(
        /// Whether Lifeguard is on: local health awareness (a node that misses acks, nacks
        /// or its own timer deadlines probes more slowly with longer timeouts, and does not
        /// accuse members of its own lateness) and suspicion timeouts that shrink with
        /// independent confirmations.
        lifeguard, with_lifeguard, bool
    );
    knob!(
        /// The highest local health score `L`; probing slows to at most `(1 + L)·P`.
        max_local_health, with_max_local_health, u32
    );
    knob!(
        /// The largest tags this node accepts for itself, in encoded bytes (at most
        /// [`MAX_TAGS_BYTES`]).
        max_tags_bytes, with_max_tags_bytes, usize
    );
    knob!(
        /// The wait after each of the first five unanswered join attempts; doubles after
        /// each further one.
        join_backoff, with_join_backoff, Duration
    );
    knob!(
        /// The longest wait between join attempts.
        join_backoff_max, with_join_backoff_max, Duration
    );
    knob!(
        /// The most members (failed and left ones included) this node remembers (default
        /// 4,096). A full table recycles its oldest tombstone for a newcomer; failing that, a
        /// newcomer that speaks for itself, or is announced by a member that has answered
        /// this node's probes, takes the place of the live member admitted first among those
        /// that never answered one (reported `NodeFailed`); any other newcomer is dropped.
        /// Members that answered a probe are never evicted. See `PROTOCOL.md`.
        max_members, with_max_members, usize
    );
    knob!(
        /// How long a failed or left member is remembered, so late gossip about its old
        /// incarnation cannot resurrect it and push-pull can reach it after a partition heals.
        tombstone_ttl, with_tombstone_ttl, Duration
    );
    knob!(
        /// The largest gossip message (everything but push-pull) this node builds, in bytes.
        max_packet_bytes, with_max_packet_bytes, usize
    );

    /// Whether metrics are on (see [`with_metrics`](Self::with_metrics)).
    pub fn metrics(&self) -> bool {
        self.metrics
    }

    /// Whether a node started with this configuration (the `quic` shell), the
    /// `WorkerRegistry` made from it and the `ClusterClient`s routing through that
    /// registry report metrics through the [`metrics`](https://docs.rs/metrics) facade
    /// (default: off; the SWIM core itself reports nothing). Whatever recorder the
    /// application installs receives them; install it before starting the node, since
    /// the handles are made once: when the node starts, when a `ClusterClient` is made,
    /// and on each worker's first pick.
    ///
    /// | name | kind | labels | counts |
    /// |---|---|---|---|
    /// | `rpcnet_cluster_members` | gauge | `node`, `state` | the members the node knows (itself excluded) by state |
    /// | `rpcnet_cluster_suspicions_total` | counter | `node` | members that became suspect in its view |
    /// | `rpcnet_cluster_refutations_total` | counter | `node` | claims that it is suspect, dead or gone that it refuted |
    /// | `rpcnet_cluster_failures_total` | counter | `node` | members it reported failed (`NodeFailed`) |
    /// | `rpcnet_cluster_gossip_messages_total` | counter | `node`, `direction` | gossip messages |
    /// | `rpcnet_cluster_gossip_bytes_total` | counter | `node`, `direction` | their bytes, envelopes included |
    /// | `rpcnet_cluster_gossip_dropped_total` | counter | `node` | gossip sends dropped: too many in flight |
    /// | `rpcnet_routing_picks_total` | counter | `worker` | picks of the worker, for a call or a typed client |
    /// | `rpcnet_routing_retries_total` | counter | | attempts sent to another worker after one failed |
    /// | `rpcnet_routing_retries_exhausted_total` | counter | | retries the retry budget refused |
    /// | `rpcnet_routing_no_workers_total` | counter | | calls and typed clients that found no matching worker |
    ///
    /// `node` is the reporting node's id; `state` is `alive`, `suspect`, `dead` or
    /// `left`; `direction` is `sent` (handed to QUIC) or `received` (taken from the
    /// node's inbox, malformed messages included); `worker` is the worker's node id.
    /// The routing metrics are on for a registry made with `WorkerRegistry::new` from a
    /// node with metrics on, and can be set per registry with
    /// `WorkerRegistry::with_metrics`.
    pub fn with_metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// The minimum suspicion timeout for `n` live members: `α·max(1, log10 n)·P`.
    pub fn suspicion_timeout_min(&self, n: usize) -> Duration {
        let scale = (n.max(1) as f64).log10().max(1.0);
        self.probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * scale)
    }

    /// The maximum suspicion timeout for `n` live members: `β·min` with Lifeguard, `min`
    /// without.
    pub fn suspicion_timeout_max(&self, n: usize) -> Duration {
        let min = self.suspicion_timeout_min(n);
        if self.lifeguard {
            min * self.suspicion_max_mult.max(1)
        } else {
            min
        }
    }

    /// How many independent confirmations bring a suspicion down to its minimum timeout:
    /// `K = k`, or 0 (no shrinking) when `n < k + 2`.
    pub fn expected_confirmations(&self, n: usize) -> usize {
        if n < self.indirect_checks + 2 {
            0
        } else {
            self.indirect_checks
        }
    }

    /// How many times each node piggybacks an update, for `n` live members:
    /// `λ·⌈ln(n + 1)⌉`.
    pub fn retransmit_limit(&self, n: usize) -> u32 {
        let rounds = ((n as f64) + 1.0).ln().ceil().max(1.0) as u32;
        self.retransmit_mult.max(1).saturating_mul(rounds)
    }

    /// A bound on the time from a member's crash until every other node marks it failed, in
    /// a cluster of `n` healthy members with no packet loss:
    ///
    /// `(10 + 1)·P + suspicion_timeout_max(n) + 2·⌈log2 n⌉·G`
    ///
    /// - `10·P`: every period each of the `n − 1` others probes the member with probability
    ///   about `1/(n − 1)`, so the chance nobody has probed it after 10 periods is `≤ e^−10`;
    /// - `1·P`: that probe's direct and indirect attempts fail by the end of its period;
    /// - `suspicion_timeout_max(n)`: the suspecter's timer expires even without confirmations
    ///   (every other node's timer runs too, and the first expiry broadcasts the failure);
    /// - `2·⌈log2 n⌉·G`: the suspicion and then the failure reach every node by gossip, each
    ///   round at least doubling the informed nodes.
    pub fn detection_bound(&self, n: usize) -> Duration {
        let log2n = (n.max(2) as f64).log2().ceil() as u32;
        self.probe_interval * 11
            + self.suspicion_timeout_max(n)
            + self.gossip_interval * (2 * log2n)
    }

    /// The local-health-scaled probe period `P·(1 + L)`.
    pub(crate) fn probe_period(&self, health: u32) -> Duration {
        self.probe_interval * (1 + health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicion_timeouts_follow_their_formulas() {
        let c = ClusterConfig::lan();
        assert_eq!(c.suspicion_timeout_min(5), Duration::from_secs(4));
        assert_eq!(c.suspicion_timeout_min(100), Duration::from_secs(8));
        assert_eq!(c.suspicion_timeout_max(100), Duration::from_secs(48));
        let off = c.clone().with_lifeguard(false);
        assert_eq!(off.suspicion_timeout_max(100), Duration::from_secs(8));
        assert_eq!(c.expected_confirmations(4), 0);
        assert_eq!(c.expected_confirmations(100), 3);
    }

    #[test]
    fn retransmit_limit_grows_with_the_log_of_the_cluster() {
        let c = ClusterConfig::lan();
        assert_eq!(c.retransmit_limit(1), 6);
        assert_eq!(c.retransmit_limit(100), 30);
        assert_eq!(c.retransmit_limit(1000), 42);
    }

    #[test]
    fn setters_change_only_their_knob() {
        let base = ClusterConfig::lan();
        // Each setter, given a value unlike the preset's, equals the preset with exactly that
        // field replaced (`PartialEq` compares every field).
        macro_rules! only {
            ($setter:ident, $field:ident, $value:expr) => {{
                let value = $value;
                assert_ne!(
                    base.$field,
                    value,
                    "{}: pick a value unlike the preset's",
                    stringify!($field)
                );
                assert_eq!(
                    base.clone().$setter(value),
                    ClusterConfig {
                        $field: value,
                        ..base.clone()
                    },
                    "{} changed more than {}",
                    stringify!($setter),
                    stringify!($field)
                );
            }};
        }
        only!(
            with_health_check_interval,
            probe_interval,
            Duration::from_millis(700)
        );
        only!(
            with_probe_timeout,
            probe_timeout,
            Duration::from_millis(123)
        );
        only!(
            with_gossip_interval,
            gossip_interval,
            Duration::from_millis(100)
        );
        only!(with_gossip_fanout, gossip_fanout, 7);
        only!(with_indirect_checks, indirect_checks, 5);
        only!(with_suspicion_mult, suspicion_mult, 9);
        only!(with_suspicion_max_mult, suspicion_max_mult, 11);
        only!(with_phi_threshold, phi_threshold, 3.5);
        only!(
            with_phi_min_std_dev,
            phi_min_std_dev,
            Duration::from_millis(77)
        );
        only!(
            with_phi_acceptable_pause,
            phi_acceptable_pause,
            Duration::from_millis(333)
        );
        only!(with_phi_window, phi_window, 17);
        only!(
            with_push_pull_interval,
            push_pull_interval,
            Duration::from_secs(91)
        );
        only!(with_retransmit_mult, retransmit_mult, 2);
        only!(with_lifeguard, lifeguard, false);
        only!(with_max_local_health, max_local_health, 3);
        only!(with_max_tags_bytes, max_tags_bytes, 100);
        only!(with_join_backoff, join_backoff, Duration::from_millis(250));
        only!(
            with_join_backoff_max,
            join_backoff_max,
            Duration::from_secs(7)
        );
        only!(with_max_members, max_members, 99);
        only!(with_tombstone_ttl, tombstone_ttl, Duration::from_secs(5));
        only!(with_max_packet_bytes, max_packet_bytes, 1400);
    }
}
