//! [`PoolEvent`] and [`PoolEvents`]: changes to the registry's pool of workers.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

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
#[derive(Debug)]
pub struct PoolEvents {
    rx: mpsc::UnboundedReceiver<PoolEvent>,
}

impl PoolEvents {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<PoolEvent>) -> Self {
        PoolEvents { rx }
    }

    /// The next change, or `None` once the registry has stopped.
    pub async fn recv(&mut self) -> Option<PoolEvent> {
        self.rx.recv().await
    }
}

impl Stream for PoolEvents {
    type Item = PoolEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PoolEvent>> {
        self.rx.poll_recv(cx)
    }
}
