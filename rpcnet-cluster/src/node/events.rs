//! [`ClusterEvents`]: a subscription to membership events.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::ClusterEvent;

/// Membership events as one node sees them, from the moment of subscription: use
/// [`recv`](Self::recv) or the `Stream` implementation. Ends when the node stops.
#[derive(Debug)]
pub struct ClusterEvents {
    rx: mpsc::UnboundedReceiver<ClusterEvent>,
}

impl ClusterEvents {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<ClusterEvent>) -> Self {
        ClusterEvents { rx }
    }

    /// The next event, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<ClusterEvent> {
        self.rx.recv().await
    }
}

impl Stream for ClusterEvents {
    type Item = ClusterEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClusterEvent>> {
        self.rx.poll_recv(cx)
    }
}
