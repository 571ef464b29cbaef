//! [`ClusterEvents`]: a subscription to membership events.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::lag::{Lagged, Subscription};
use crate::ClusterEvent;

/// Membership events as one node sees them, from the moment of subscription: use
/// [`recv`](Self::recv) or the `Stream` implementation. Ends when the node stops.
///
/// Each subscription has a queue of its own, bounded by
/// [`NodeConfig::with_event_capacity`](crate::NodeConfig::with_event_capacity) (4,096 events
/// by default). The node never waits for a subscriber: when the queue is full, the oldest
/// event is dropped, and the subscriber's next read returns [`Lagged`] with the number of
/// events it missed, then the newest events in order. A subscriber that keeps a view of its
/// own rebuilds it from [`Cluster::members`](crate::Cluster::members) when it lags: the view
/// is published before the events that report its changes, so it already holds every event
/// still queued.
#[derive(Debug)]
pub struct ClusterEvents {
    rx: Subscription<ClusterEvent>,
}

impl ClusterEvents {
    pub(crate) fn new(rx: Subscription<ClusterEvent>) -> Self {
        ClusterEvents { rx }
    }

    /// The next event, [`Lagged`] if events were dropped since the last read because this
    /// subscriber fell behind, or `None` once the node has stopped and every queued event
    /// has been read.
    pub async fn recv(&mut self) -> Option<Result<ClusterEvent, Lagged>> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }
}

impl Stream for ClusterEvents {
    type Item = Result<ClusterEvent, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
