//! One-way messages: unidirectional streams of a kind a layer above the runtime registers
//! (a cluster's membership protocol, for example), delivered to a bounded inbox without
//! an answer.
//!
//! A one-way stream is the kind byte, one DATA frame and the end of the stream. Kinds below
//! [`FIRST_ONE_WAY_KIND`] are the runtime's own (calls, cancels); every other kind belongs
//! to whoever registers an inbox for it on a server with
//! [`BoundServer::one_way_inbox`](crate::BoundServer::one_way_inbox), and is sent with
//! [`RpcClient::send_one_way`](crate::RpcClient::send_one_way). The runtime knows nothing of
//! what the messages mean.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::RpcError;
use crate::peer::PeerCertificate;

/// The lowest stream kind a layer above the runtime may use for one-way messages; the
/// kinds below it are reserved for the runtime.
pub const FIRST_ONE_WAY_KIND: u8 = 0x10;

/// Refuses a kind the runtime reserves for itself.
pub(crate) fn check_kind(kind: u8) -> Result<(), RpcError> {
    if kind < FIRST_ONE_WAY_KIND {
        return Err(RpcError::Config {
            message: format!(
                "stream kind {kind:#04x} is reserved for the runtime (one-way kinds start at \
                 {FIRST_ONE_WAY_KIND:#04x})"
            ),
            source: None,
        });
    }
    Ok(())
}

/// A one-way message received by a server.
#[derive(Debug, Clone)]
pub struct OneWayMessage {
    /// The address of the connection it came on (the sender's client endpoint).
    pub from: Option<SocketAddr>,
    /// The certificate the sender presented in its handshake, verified against the
    /// server's certificate authority: always set with mutual TLS, `None` without.
    pub peer_certificate: Option<Arc<PeerCertificate>>,
    /// The message bytes, exactly as sent.
    pub payload: Bytes,
}

/// The receiving end of a server's inbox for one kind of one-way message (see
/// [`BoundServer::one_way_inbox`](crate::BoundServer::one_way_inbox)).
#[derive(Debug)]
pub struct OneWayInbox {
    rx: mpsc::Receiver<OneWayMessage>,
    queued: Arc<AtomicUsize>,
}

impl OneWayInbox {
    /// The next message, or `None` once the server has stopped.
    pub async fn recv(&mut self) -> Option<OneWayMessage> {
        let message = self.rx.recv().await?;
        self.queued
            .fetch_sub(message.payload.len(), Ordering::AcqRel);
        Some(message)
    }
}

/// The server's end of an inbox.
#[derive(Debug, Clone)]
pub(crate) struct OneWaySender {
    tx: mpsc::Sender<OneWayMessage>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// An inbox holding at most `capacity` messages and `max_bytes` bytes of them.
pub(crate) fn inbox(capacity: usize, max_bytes: usize) -> (OneWaySender, OneWayInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    (
        OneWaySender {
            tx,
            queued: Arc::clone(&queued),
            max_bytes,
        },
        OneWayInbox { rx, queued },
    )
}

impl OneWaySender {
    /// Queues `message` if it fits in both bounds; otherwise drops it and returns `false`
    /// (one-way messages carry no promise of delivery).
    pub(crate) fn offer(&self, message: OneWayMessage) -> bool {
        let len = message.payload.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_bytes || self.tx.try_send(message).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Whether the inbox's receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> OneWayMessage {
        OneWayMessage {
            from: None,
            peer_certificate: None,
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

    #[test]
    fn kinds_below_the_first_one_way_kind_are_refused() {
        assert!(check_kind(0x01).is_err());
        assert!(check_kind(0x03).is_err());
        assert!(check_kind(FIRST_ONE_WAY_KIND - 1).is_err());
        assert!(check_kind(FIRST_ONE_WAY_KIND).is_ok());
        assert!(check_kind(0xff).is_ok());
    }
}
