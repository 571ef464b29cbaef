//! The gossip inbox: messages of stream kind `0x02` that a server hands to the cluster
//! layer, bounded both in number and in bytes so that no peer can make it grow.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

/// A gossip message received by a server.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The address of the connection it came on (the sender's client endpoint).
    pub from: Option<SocketAddr>,
    /// The message bytes, exactly as sent.
    pub payload: Bytes,
}

/// The receiving end of a server's gossip inbox (see `BoundServer::gossip_inbox`).
#[derive(Debug)]
pub struct GossipInbox {
    rx: mpsc::Receiver<GossipMessage>,
    queued: Arc<AtomicUsize>,
}

impl GossipInbox {
    /// The next message, or `None` once the server has stopped.
    pub async fn recv(&mut self) -> Option<GossipMessage> {
        let message = self.rx.recv().await?;
        self.queued
            .fetch_sub(message.payload.len(), Ordering::AcqRel);
        Some(message)
    }
}

/// The server's end of the inbox.
#[derive(Debug, Clone)]
pub(crate) struct GossipSender {
    tx: mpsc::Sender<GossipMessage>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// An inbox holding at most `capacity` messages and `max_bytes` bytes of them.
pub(crate) fn inbox(capacity: usize, max_bytes: usize) -> (GossipSender, GossipInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    (
        GossipSender {
            tx,
            queued: Arc::clone(&queued),
            max_bytes,
        },
        GossipInbox { rx, queued },
    )
}

impl GossipSender {
    /// Queues `message` if it fits in both bounds; otherwise drops it (gossip tolerates
    /// loss) and returns `false`.
    pub(crate) fn offer(&self, message: GossipMessage) -> bool {
        let len = message.payload.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_bytes || self.tx.try_send(message).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> GossipMessage {
        GossipMessage {
            from: None,
            payload: Bytes::from(vec![0u8; len]),
        }
    }

    #[tokio::test]
    async fn the_inbox_is_bounded_in_bytes_and_frees_them_as_it_is_read() {
        let (tx, mut rx) = inbox(100, 1000);
        assert!(tx.offer(message(600)));
        assert!(!tx.offer(message(600)), "over the byte budget");
        assert!(tx.offer(message(400)));
        assert_eq!(rx.recv().await.map(|m| m.payload.len()), Some(600));
        assert!(tx.offer(message(500)), "reading freed the budget");
    }

    #[tokio::test]
    async fn the_inbox_is_bounded_in_messages() {
        let (tx, _rx) = inbox(2, 1 << 20);
        assert!(tx.offer(message(1)));
        assert!(tx.offer(message(1)));
        assert!(!tx.offer(message(1)));
    }
}
