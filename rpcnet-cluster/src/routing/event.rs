//! [`PoolEvent`] and [`PoolEvents`]: changes to the registry's pool of workers.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::lag::{Lagged, Subscription};
use crate::routing::worker::WorkerInfo;

/// A change to the pool, fed by the cluster's membership events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A matching live member joined the pool (it joined the cluster, recovered, came back,
    /// or its tags now match the pool's filter).
    WorkerAdded(WorkerInfo),
    /// A worker left the pool (it failed, left the cluster, moved to another address, or
    /// its tags no longer match); calls in flight on it have been failed.
    WorkerRemoved(WorkerInfo),
    /// A worker in the pool changed its tags and still matches.
    WorkerUpdated(WorkerInfo),
}

impl PoolEvent {
    /// The worker the event is about.
    pub fn worker(&self) -> &WorkerInfo {
        match self {
            PoolEvent::WorkerAdded(w)
            | PoolEvent::WorkerRemoved(w)
            | PoolEvent::WorkerUpdated(w) => w,
        }
    }
}

/// A subscription to [`PoolEvent`]s from the moment of subscription (see
/// [`WorkerRegistry::subscribe`](super::WorkerRegistry::subscribe)): use
/// [`recv`](Self::recv) or the `Stream` implementation. Ends when the registry stops.
///
/// Like [`ClusterEvents`](crate::ClusterEvents), each subscription has a queue of its own
/// ([`WorkerRegistry::with_event_capacity`](super::WorkerRegistry::with_event_capacity),
/// [`DEFAULT_EVENT_CAPACITY`](crate::DEFAULT_EVENT_CAPACITY) by default) and the registry
/// never waits for it: a subscriber that falls behind loses the oldest changes and reads
/// [`Lagged`] with their number, then the newest changes. The pool itself
/// ([`WorkerRegistry::workers`](super::WorkerRegistry::workers)) is always current.
#[derive(Debug)]
pub struct PoolEvents {
    rx: Subscription<PoolEvent>,
}

impl PoolEvents {
    pub(crate) fn new(rx: Subscription<PoolEvent>) -> Self {
        PoolEvents { rx }
    }

    /// The next change, [`Lagged`] if changes were dropped since the last read because
    /// this subscriber fell behind, or `None` once the registry has stopped and every
    /// queued change has been read.
    pub async fn recv(&mut self) -> Option<Result<PoolEvent, Lagged>> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }
}

impl Stream for PoolEvents {
    type Item = Result<PoolEvent, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
