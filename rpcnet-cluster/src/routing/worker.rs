//! A worker in the pool: its identity, its connection and its calls in flight
//! ([`WorkerInfo`], [`InFlight`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::Counter;
use rpcnet_runtime::{ClientEndpoint, RpcClient, RpcConfig};
use tokio::sync::watch;

use crate::member::{Member, NodeId};
use crate::routing::strategy::Load;
use crate::tags::Tags;

/// A worker as one pool snapshot sees it. A tag change makes a new `Worker` that shares
/// the old one's [`Link`].
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) tags: Tags,
    pub(crate) link: Arc<Link>,
}

impl Worker {
    pub(crate) fn new(member: &Member, link: Arc<Link>) -> Self {
        Worker {
            id: member.id().clone(),
            addr: member.addr(),
            incarnation: member.incarnation(),
            tags: member.tags().clone(),
            link,
        }
    }

    /// Counts a pick of this worker (`rpcnet_routing_picks_total`), making the counter's
    /// handle on the first.
    pub(crate) fn count_pick(&self) {
        self.link
            .picks
            .get_or_init(|| {
                metrics::counter!("rpcnet_routing_picks_total", "worker" => self.id.as_str().to_owned())
            })
            .increment(1);
    }

    pub(crate) fn info(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.id.clone(),
            addr: self.addr,
            tags: self.tags.clone(),
            in_flight: self.link.in_flight(),
        }
    }
}

/// What lives as long as a worker stays in the pool: its connection (made on first use and
/// shared by every call and typed client), its calls in flight, and the signal that it
/// left the pool.
#[derive(Debug)]
pub(crate) struct Link {
    addr: SocketAddr,
    client: OnceLock<RpcClient>,
    in_flight: AtomicUsize,
    /// Moving average of successful calls' latency (µs); 0 until the first.
    latency_us: AtomicU64,
    lost: watch::Sender<bool>,
    /// The worker's pick counter, made on its first pick with metrics on.
    picks: OnceLock<Counter>,
}

impl Link {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Link {
            addr,
            client: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
            lost: watch::Sender::new(false),
            picks: OnceLock::new(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The load strategies weigh: calls in flight and recent latency.
    pub(crate) fn load(&self) -> Load {
        Load {
            in_flight: self.in_flight(),
            latency_us: self.latency_us.load(Ordering::Relaxed),
        }
    }

    /// Folds a successful call's latency into the moving average (weight 1/8). Concurrent
    /// updates may lose a sample, which an average can afford.
    pub(crate) fn record_latency(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.latency_us.store(new.max(1), Ordering::Relaxed);
    }

    /// The worker's connection, made (lazily: it connects on its first call) through
    /// `endpoint` with `config` the first time it is asked for.
    pub(crate) fn client(&self, endpoint: &ClientEndpoint, config: &RpcConfig) -> RpcClient {
        let client = self
            .client
            .get_or_init(|| RpcClient::lazy(endpoint, self.addr, config.clone()))
            .clone();
        if self.is_lost() {
            // Lost between the pick and now: make sure no call goes out on it.
            client.close();
        }
        client
    }

    /// The worker left the pool: closes its connection, which fails the calls in flight on
    /// it at once, and wakes every call waiting on [`lost`](Self::lost).
    pub(crate) fn lose(&self) {
        self.lost.send_replace(true);
        if let Some(client) = self.client.get() {
            client.close();
        }
    }

    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once the worker has left the pool.
    pub(crate) async fn lost(&self) {
        let mut lost = self.lost.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the value turns true.
        let _ = lost.wait_for(|lost| *lost).await;
    }
}

/// A call (or a typed client) in flight on a worker: counts towards the worker's load
/// until dropped, on every path (success, error, timeout, cancellation, panic).
#[derive(Debug)]
pub struct InFlight {
    link: Arc<Link>,
}

impl InFlight {
    pub(crate) fn new(link: Arc<Link>) -> Self {
        link.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { link }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.link.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker in the registry's pool, as [`WorkerRegistry::workers`](super::WorkerRegistry::workers)
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    id: NodeId,
    addr: SocketAddr,
    tags: Tags,
    in_flight: usize,
}

impl WorkerInfo {
    /// The worker's node id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The address it serves calls on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its tags.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// Calls (and typed clients) this registry has in flight on it, when listed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}
