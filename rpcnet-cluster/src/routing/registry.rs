//! [`WorkerRegistry`]: the pool of live workers, kept up to date from the cluster's
//! membership, and the choice of a worker for each call.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, Instrument};

use crate::lag::{self, Publisher};
use crate::member::{Member, MemberState, NodeId};
use crate::node::{Cluster, DEFAULT_EVENT_CAPACITY};
use crate::routing::event::{PoolEvent, PoolEvents};
use crate::routing::filter::TagFilter;
use crate::routing::pool::Pool;
use crate::routing::strategy::LoadBalancingStrategy;
use crate::routing::worker::{InFlight, Link, Worker, WorkerInfo};
use crate::tags::Tags;

/// The tag a member must carry to be in a registry's pool by default: `role=worker`.
pub const WORKER_ROLE: (&str, &str) = ("role", "worker");

/// The live workers of a cluster, chosen among by a [`LoadBalancingStrategy`].
///
/// The pool holds the members that are alive (or suspected but not yet failed) and match
/// the pool filter, by default `role=worker`, so a director (`role=director`) or any other
/// member that does not say it is a worker never receives worker calls. It follows the
/// membership as it changes, without polling: a member joins the pool when it joins the
/// cluster, recovers or comes back after a restart, and leaves it when it fails or leaves
/// (calls in flight on it then fail at once), or when its tags stop matching.
///
/// Call [`start`](Self::start) once, from a tokio runtime; a task then keeps the pool up to
/// date until the registry is dropped or the cluster node stops.
#[derive(Debug)]
pub struct WorkerRegistry {
    source: Option<Cluster>,
    strategy: LoadBalancingStrategy,
    pool_filter: TagFilter,
    pool: watch::Receiver<Arc<Pool>>,
    subscribe: mpsc::UnboundedSender<Publisher<PoolEvent>>,
    pending: Mutex<Option<Pending>>,
    cursor: AtomicUsize,
    event_capacity: usize,
    metrics: bool,
}

/// What [`WorkerRegistry::start`] hands to the task it starts.
#[derive(Debug)]
struct Pending {
    pool: watch::Sender<Arc<Pool>>,
    subscribe: mpsc::UnboundedReceiver<Publisher<PoolEvent>>,
}

impl WorkerRegistry {
    /// A registry of `cluster`'s workers (members tagged `role=worker`; see
    /// [`with_pool_filter`](Self::with_pool_filter)), choosing by `strategy`. Empty until
    /// [`start`](Self::start)ed.
    pub fn new(cluster: Cluster, strategy: LoadBalancingStrategy) -> Self {
        let metrics = cluster.metrics_enabled();
        let (pool_tx, pool) = watch::channel(Arc::new(Pool::default()));
        let (subscribe, subscribe_rx) = mpsc::unbounded_channel();
        WorkerRegistry {
            source: Some(cluster),
            strategy,
            pool_filter: TagFilter::new().with_tag(WORKER_ROLE.0, WORKER_ROLE.1),
            pool,
            subscribe,
            pending: Mutex::new(Some(Pending {
                pool: pool_tx,
                subscribe: subscribe_rx,
            })),
            cursor: AtomicUsize::new(0),
            event_capacity: DEFAULT_EVENT_CAPACITY,
            metrics,
        }
    }

    /// A registry over a fixed list of workers (id, address, tags), with no cluster behind
    /// it: for static deployments, tests and benchmarks. Every worker is in the pool whatever
    /// its tags; the pool never changes, [`start`](Self::start) does nothing and a
    /// [`subscribe`](Self::subscribe)d stream of changes ends at once.
    pub fn fixed(
        workers: impl IntoIterator<Item = (NodeId, SocketAddr, Tags)>,
        strategy: LoadBalancingStrategy,
    ) -> Self {
        let members: Vec<Member> = workers
            .into_iter()
            .map(|(id, addr, tags)| Member {
                id,
                addr,
                state: MemberState::Alive,
                incarnation: 0,
                tags,
            })
            .collect();
        let (pool, _) = Pool::default().next(&members, &TagFilter::new());
        let (_, pool) = watch::channel(Arc::new(pool));
        let (subscribe, _) = mpsc::unbounded_channel();
        WorkerRegistry {
            source: None,
            strategy,
            pool_filter: TagFilter::new(),
            pool,
            subscribe,
            pending: Mutex::new(None),
            cursor: AtomicUsize::new(0),
            event_capacity: DEFAULT_EVENT_CAPACITY,
            metrics: false,
        }
    }

    /// Which members make up the pool (default: `role=worker`). An empty filter takes every
    /// live member. Set it before [`start`](Self::start).
    pub fn with_pool_filter(mut self, filter: impl Into<TagFilter>) -> Self {
        self.pool_filter = filter.into();
        self
    }

    /// How many changes each [`subscribe`](Self::subscribe)d stream queues for its reader
    /// (default [`DEFAULT_EVENT_CAPACITY`], at least 1); a reader that falls further behind
    /// loses the oldest and is told how many ([`Lagged`](crate::Lagged)).
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Whether this registry, and the [`ClusterClient`](crate::ClusterClient)s made on it,
    /// report routing metrics through the [`metrics`](https://docs.rs/metrics) facade
    /// (the `rpcnet_routing_*` names listed on
    /// [`ClusterConfig::with_metrics`](crate::ClusterConfig::with_metrics)). By default
    /// they do when the cluster node's configuration turns metrics on; a
    /// [`fixed`](Self::fixed) registry does not. Set it before making clients on it.
    pub fn with_metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Whether this registry reports routing metrics.
    pub(crate) fn metrics_enabled(&self) -> bool {
        self.metrics
    }

    /// Fills the pool from the cluster's current view and starts the task that keeps it up
    /// to date. Calling it again does nothing.
    pub async fn start(&self) {
        let pending = match self.pending.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let (Some(pending), Some(cluster)) = (pending, &self.source) else {
            return;
        };
        let mut members = cluster.watch_members();
        let view = Arc::clone(&members.borrow_and_update());
        let (pool, _) = Pool::default().next(&view, &self.pool_filter);
        pending.pool.send_replace(Arc::new(pool));
        let span = tracing::debug_span!("worker_registry", node = %cluster.local_id());
        tokio::spawn(maintain(members, self.pool_filter.clone(), pending).instrument(span));
    }

    /// The strategy the registry chooses by.
    pub fn strategy(&self) -> LoadBalancingStrategy {
        self.strategy
    }

    /// The workers in the pool now, in id order, with their calls in flight.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.snapshot().workers().map(|w| w.info()).collect()
    }

    /// Subscribes to changes of the pool from now on. The registry never waits for a
    /// subscriber: one that falls more than [`with_event_capacity`](Self::with_event_capacity)
    /// changes behind loses the oldest and is told how many (see [`PoolEvents`]).
    pub fn subscribe(&self) -> PoolEvents {
        let (tx, rx) = lag::channel(self.event_capacity);
        let _ = self.subscribe.send(tx);
        PoolEvents::new(rx)
    }

    /// Chooses a worker matching `filter` by the registry's strategy and counts a call in
    /// flight on it until the returned [`PickedWorker`] is dropped. `None` when no worker
    /// matches.
    pub fn pick(&self, filter: &TagFilter) -> Option<PickedWorker> {
        self.pick_excluding(filter, &[])
    }

    /// Waits until a worker matches `filter`, at most `patience`; returns whether one does.
    pub async fn wait_for_worker(&self, filter: &TagFilter, patience: Duration) -> bool {
        self.wait_for_candidate_excluding(filter, &[], patience)
            .await
    }

    /// Whether a worker matching `filter` is in the pool besides those in `excluded` (as
    /// they were when picked: the same worker at a new incarnation or address, as after a
    /// restart, is not excluded).
    pub(crate) fn has_candidate_excluding(
        &self,
        filter: &TagFilter,
        excluded: &[Arc<Worker>],
    ) -> bool {
        has_candidate(&self.snapshot(), filter, excluded)
    }

    /// Waits until a worker matching `filter` other than those in `excluded` is in the
    /// pool, at most `patience`; returns whether one is.
    pub(crate) async fn wait_for_candidate_excluding(
        &self,
        filter: &TagFilter,
        excluded: &[Arc<Worker>],
        patience: Duration,
    ) -> bool {
        let mut pool = self.pool.clone();
        let found = {
            let wait = pool.wait_for(|pool| has_candidate(pool, filter, excluded));
            matches!(tokio::time::timeout(patience, wait).await, Ok(Ok(_)))
        };
        found
    }

    /// As [`pick`](Self::pick), skipping the workers in `excluded` (see
    /// [`has_candidate_excluding`](Self::has_candidate_excluding)).
    pub(crate) fn pick_excluding(
        &self,
        filter: &TagFilter,
        excluded: &[Arc<Worker>],
    ) -> Option<PickedWorker> {
        let candidates = self.snapshot().candidates(filter);
        let mut rng = rand::thread_rng();
        let worker = if excluded.is_empty() {
            let i = self.strategy.pick(
                candidates.len(),
                |i| candidates[i].link.load(),
                &self.cursor,
                &mut rng,
            )?;
            Arc::clone(&candidates[i])
        } else {
            let left: Vec<&Arc<Worker>> = candidates
                .iter()
                .filter(|w| !is_excluded(w, excluded))
                .collect();
            let i =
                self.strategy
                    .pick(left.len(), |i| left[i].link.load(), &self.cursor, &mut rng)?;
            Arc::clone(left[i])
        };
        if self.metrics {
            worker.count_pick();
        }
        let in_flight = InFlight::new(Arc::clone(&worker.link));
        Some(PickedWorker { worker, in_flight })
    }

    fn snapshot(&self) -> Arc<Pool> {
        Arc::clone(&self.pool.borrow())
    }
}

/// Whether `worker` is one of `excluded`, as it was when picked.
fn is_excluded(worker: &Arc<Worker>, excluded: &[Arc<Worker>]) -> bool {
    excluded.iter().any(|e| Arc::ptr_eq(e, worker))
}

/// Whether `pool` has a worker matching `filter` that is not one of `excluded`.
fn has_candidate(pool: &Pool, filter: &TagFilter, excluded: &[Arc<Worker>]) -> bool {
    pool.candidates(filter)
        .iter()
        .any(|w| !is_excluded(w, excluded))
}

/// A worker chosen for a call: counts one call in flight on it until dropped.
#[derive(Debug)]
pub struct PickedWorker {
    worker: Arc<Worker>,
    in_flight: InFlight,
}

impl PickedWorker {
    /// The worker's node id.
    pub fn id(&self) -> &NodeId {
        &self.worker.id
    }

    /// The address it serves calls on.
    pub fn addr(&self) -> SocketAddr {
        self.worker.addr
    }

    /// The worker's id, address, tags and current calls in flight.
    pub fn info(&self) -> WorkerInfo {
        self.worker.info()
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.worker.link
    }

    /// The pool's entry for the worker as it was when picked.
    pub(crate) fn entry(&self) -> &Arc<Worker> {
        &self.worker
    }

    /// The guard that holds the in-flight count.
    pub(crate) fn into_in_flight(self) -> InFlight {
        self.in_flight
    }
}

/// The registry's task: rebuilds the pool on each change of the cluster's view and tells
/// subscribers what changed. Stops when the registry is dropped or the node stops (then the
/// pool is emptied).
async fn maintain(
    mut members: watch::Receiver<Arc<Vec<Member>>>,
    pool_filter: TagFilter,
    pending: Pending,
) {
    let Pending {
        pool,
        mut subscribe,
    } = pending;
    let mut subscribers: Vec<Publisher<PoolEvent>> = Vec::new();
    loop {
        tokio::select! {
            changed = members.changed() => {
                let events = match changed {
                    Ok(()) => {
                        let view = Arc::clone(&members.borrow_and_update());
                        let (next, events) = pool.borrow().next(&view, &pool_filter);
                        pool.send_replace(Arc::new(next));
                        events
                    }
                    Err(_) => {
                        debug!("cluster node stopped; the pool is emptied");
                        let events = pool.borrow().drain();
                        pool.send_replace(Arc::new(Pool::default()));
                        events
                    }
                };
                for event in events {
                    debug!(?event, "pool changed");
                    subscribers.retain(|s| s.publish(event.clone()));
                }
                if changed.is_err() {
                    break;
                }
            }
            Some(subscriber) = subscribe.recv() => subscribers.push(subscriber),
            () = pool.closed() => break,
        }
    }
}
