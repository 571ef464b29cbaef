//! What a server's connections and calls share: the configuration, the method table, the
//! server's state, the counts of calls in progress and the inboxes of one-way messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ::metrics::Gauge;
use rustc_hash::FxBuildHasher;
use tokio::sync::watch;

use super::inflight::Inflight;
use super::late::LateMethods;
use crate::budget::{ConnBudget, ServerBudget};
use crate::cancel::CancelRegistry;
use crate::config::RpcConfig;
use crate::handler::MethodHandler;
use crate::metrics::{self, ServerMethodMetrics};
use crate::one_way::OneWaySender;

/// How long a shutdown waits for calls in progress when no grace period was given.
pub(super) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long a shutdown waits, after the grace period, for the calls it cancelled to stop.
pub(super) const CANCEL_PATIENCE: Duration = Duration::from_millis(500);

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    Running,
    /// Stop taking calls; let in-flight ones finish.
    Draining,
    /// Close every connection now.
    Closed,
}

/// A method a server serves.
#[derive(Debug)]
pub(super) struct Method {
    /// Its full name, `Service.method`.
    pub(super) name: Arc<str>,
    pub(super) handler: MethodHandler,
    /// Its metrics, if the server's configuration turns them on.
    pub(super) metrics: Option<ServerMethodMetrics>,
}

/// What every connection and call of a server shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: RpcConfig,
    /// Handlers by method name, looked up by the name's bytes as they arrive.
    pub(super) methods: HashMap<Box<[u8]>, Method, FxBuildHasher>,
    /// Methods added after binding, looked up when `methods` has no such name.
    pub(super) late_methods: LateMethods,
    pub(super) inflight: Inflight,
    pub(super) state: watch::Sender<ServerState>,
    /// The grace period of the shutdown under way (the first one asked for wins).
    pub(super) grace: Mutex<Option<Duration>>,
    /// Inboxes of one-way messages, by stream kind.
    pub(super) one_way: Mutex<HashMap<u8, OneWaySender, FxBuildHasher>>,
    /// The connections being served, so that a shutdown can cancel their calls.
    pub(super) connections: Mutex<Vec<Weak<ConnShared>>>,
    /// How many connections are being served.
    pub(super) connection_count: Arc<AtomicUsize>,
    /// Bytes of requests the server holds for all its connections.
    pub(super) budget: Arc<ServerBudget>,
    /// Set once a shutdown begins (the state says so too; this is what a call's task
    /// reads, without the state's lock).
    pub(super) draining: AtomicBool,
}

/// A connection's place among those a server serves; given up when dropped.
#[derive(Debug)]
pub(super) struct Admitted(Arc<AtomicUsize>, Option<Gauge>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        if let Some(gauge) = &self.1 {
            gauge.decrement(1.0);
        }
    }
}

impl Shared {
    /// A place for one more connection, unless the server serves as many as it may.
    pub(super) fn admit(&self) -> Option<Admitted> {
        let limit = self.config.max_connections;
        self.connection_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| {
                let gauge = self.config.metrics.then(metrics::connections);
                if let Some(gauge) = &gauge {
                    gauge.increment(1.0);
                }
                Admitted(Arc::clone(&self.connection_count), gauge)
            })
    }

    /// Keeps track of a new connection (and forgets the ones that have ended).
    pub(super) fn add_connection(&self, conn: &Arc<ConnShared>) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.retain(|c| c.strong_count() > 0);
            connections.push(Arc::downgrade(conn));
        }
    }

    /// Cancels every call in progress that waits (for its handler, its requests or its
    /// deadline): the end of a shutdown's grace period.
    pub(super) fn cancel_calls(&self) {
        let connections: Vec<Arc<ConnShared>> = match self.connections.lock() {
            Ok(connections) => connections.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        for conn in connections {
            conn.registry.cancel_all();
        }
    }

    /// The inbox for one-way messages of `kind`, if one is open.
    pub(super) fn one_way_inbox(&self, kind: u8) -> Option<OneWaySender> {
        let inboxes = self.one_way.lock().ok()?;
        inboxes
            .get(&kind)
            .filter(|inbox| !inbox.is_closed())
            .cloned()
    }
}

/// What the calls of one connection share.
#[derive(Debug)]
pub(super) struct ConnShared {
    pub(super) shared: Arc<Shared>,
    /// The client's address.
    pub(super) peer: Option<SocketAddr>,
    /// The certificate the client presented (mutual TLS only).
    pub(super) peer_certificate: Option<Arc<crate::PeerCertificate>>,
    /// This connection's calls in progress.
    pub(super) inflight: Inflight,
    pub(super) registry: CancelRegistry,
    /// Bytes of requests the server holds for this connection.
    pub(super) budget: Arc<ConnBudget>,
}

/// A call's place in the counts of calls in progress, its connection's and the server's,
/// given up when the call's task ends. It holds the connection's shared state, so a call
/// costs one reference count and two counter updates each way.
#[derive(Debug)]
pub(super) struct CallGuard {
    pub(super) conn: Arc<ConnShared>,
    counted: bool,
}

impl CallGuard {
    /// Counts a new call in, unless the server is draining (the call is then refused and
    /// nothing waits for it).
    pub(super) fn new(conn: &Arc<ConnShared>, counted: bool) -> Self {
        if counted {
            conn.shared.inflight.enter();
            conn.inflight.enter();
        }
        CallGuard {
            conn: Arc::clone(conn),
            counted,
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.counted {
            self.conn.inflight.leave();
            self.conn.shared.inflight.leave();
        }
    }
}
