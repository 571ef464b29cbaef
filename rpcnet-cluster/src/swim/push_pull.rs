//! Push-pull and joining. Every push-pull interval a node exchanges its full state with one
//! random member that has not left (anti-entropy, which also heals partitions); joining is a
//! push-pull to each seed, retried until some node answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::message::{Body, Message, Update, MAX_PUSH_PULL_MEMBERS};
use super::{random_index, Swim, Transmit};
use crate::member::MemberState;

/// How many join attempts are retried after the initial backoff before it starts doubling.
/// A joining node cannot tell a lost datagram from a seed that is not up yet; the first
/// few quick retries cover the former (at 30% loss five lost attempts in a row happen once in
/// 400 joins), the doubling after them the latter.
const JOIN_QUICK_RETRIES: u32 = 5;

/// A join in progress: the seeds, and when to send them the next push-pull.
#[derive(Debug)]
pub(super) struct Join {
    seeds: Vec<SocketAddr>,
    pub(super) next_attempt: Instant,
    backoff: Duration,
    attempts: u32,
}

impl<R: Rng> Swim<R> {
    /// Joins the cluster through `seeds` (addresses of any members; this node's own address
    /// is skipped): sends each a push-pull, and retries until some node exchanges state with
    /// this one — five times [`ClusterConfig::join_backoff`] apart (the silence may be a lost
    /// datagram), then with exponential backoff (doubling up to
    /// [`ClusterConfig::join_backoff_max`]: no seed is up yet). With no other seed the node simply
    /// starts a new cluster. Host names are the driver's to resolve before calling this.
    ///
    /// [`ClusterConfig::join_backoff`]: crate::ClusterConfig::join_backoff
    /// [`ClusterConfig::join_backoff_max`]: crate::ClusterConfig::join_backoff_max
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

    pub(super) fn push_pull_round(&mut self) {
        let candidates = self
            .members
            .members()
            .filter(|m| m.state != MemberState::Left)
            .count();
        if candidates == 0 {
            return;
        }
        let i = random_index(&mut self.rng, 0..candidates);
        if let Some(addr) = self
            .members
            .nth_where(i, |m| m.state != MemberState::Left)
            .map(|m| m.addr)
        {
            self.send_push_pull(addr, false);
        }
    }

    pub(super) fn send_push_pull(&mut self, to: SocketAddr, reply: bool) {
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

    pub(super) fn retry_join(&mut self, now: Instant) {
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
