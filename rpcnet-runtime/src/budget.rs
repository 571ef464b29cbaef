//! The server's receive budget: how many bytes of requests it holds in its own buffers,
//! per connection and in all, while they arrive or wait for a handler.
//!
//! A request frame that arrives whole in one received chunk is handed on as a slice of that
//! chunk and costs nothing here. What the budget counts is what a peer can make the server
//! keep on its behalf: a frame spanning chunks, assembled in a buffer of its own (counted by
//! the buffer's capacity, as it grows with the bytes that arrive), and messages of a
//! streaming request queued for a handler that has not taken them yet. A stream that would
//! take its connection or the server past its limit fails its call with
//! `ResourceExhausted` and gives back everything it held; the other calls go on.
//!
//! Without the budget, QUIC flow control alone would not bound this: reading a stream
//! returns its credit to the peer, and a frame is up to the maximum message size, so 1,024
//! streams that each send all but the last byte of a 4 MiB frame pin 4 GiB per connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// A limit and what is counted against it.
#[derive(Debug)]
struct Counter {
    used: AtomicUsize,
    limit: usize,
}

impl Counter {
    fn new(limit: usize) -> Self {
        Counter {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    fn try_add(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A server's receive budget, shared by its connections.
#[derive(Debug)]
pub(crate) struct ServerBudget(Counter);

impl ServerBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(ServerBudget(Counter::new(limit)))
    }

    /// Bytes counted against the server's limit now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.0.used.load(Ordering::Acquire)
    }
}

/// One connection's receive budget, within its server's.
#[derive(Debug)]
pub(crate) struct ConnBudget {
    own: Counter,
    server: Arc<ServerBudget>,
}

impl ConnBudget {
    pub(crate) fn new(limit: usize, server: &Arc<ServerBudget>) -> Arc<Self> {
        Arc::new(ConnBudget {
            own: Counter::new(limit),
            server: Arc::clone(server),
        })
    }

    /// Counts `bytes` more against the connection and the server, if both have room.
    pub(crate) fn try_charge(&self, bytes: usize) -> Result<(), BudgetExhausted> {
        if bytes == 0 {
            return Ok(());
        }
        if !self.own.try_add(bytes) {
            return Err(BudgetExhausted {
                scope: "connection",
                limit: self.own.limit,
            });
        }
        if !self.server.0.try_add(bytes) {
            self.own.sub(bytes);
            return Err(BudgetExhausted {
                scope: "server",
                limit: self.server.0.limit,
            });
        }
        Ok(())
    }

    /// Gives back `bytes` counted earlier with [`try_charge`](Self::try_charge).
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.own.sub(bytes);
            self.server.0.sub(bytes);
        }
    }
}

/// Which limit a charge would have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetExhausted {
    /// `"connection"` or `"server"`.
    pub(crate) scope: &'static str,
    /// That limit, in bytes.
    pub(crate) limit: usize,
}

/// Bytes that count against a connection's budget for as long as they are held: a
/// streaming request's message waiting in its handler's queue.
#[derive(Debug)]
pub(crate) struct Charged {
    bytes: Bytes,
    budget: Option<Arc<ConnBudget>>,
}

impl Charged {
    /// Counts `bytes` against `budget` (if any) until the result is dropped.
    pub(crate) fn new(
        bytes: Bytes,
        budget: Option<&Arc<ConnBudget>>,
    ) -> Result<Self, BudgetExhausted> {
        if let Some(budget) = budget {
            budget.try_charge(bytes.len())?;
        }
        Ok(Charged {
            bytes,
            budget: budget.cloned(),
        })
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl Drop for Charged {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_past_the_connections_limit_is_refused_and_counts_nothing() {
        let server = ServerBudget::new(1000);
        let conn = ConnBudget::new(100, &server);
        conn.try_charge(60).expect("fits");
        assert_eq!(
            conn.try_charge(41),
            Err(BudgetExhausted {
                scope: "connection",
                limit: 100
            })
        );
        assert_eq!(server.used(), 60);
        conn.release(60);
        assert_eq!(server.used(), 0);
        conn.try_charge(100).expect("fits again once released");
    }

    #[test]
    fn connections_share_the_servers_limit() {
        let server = ServerBudget::new(150);
        let a = ConnBudget::new(100, &server);
        let b = ConnBudget::new(100, &server);
        a.try_charge(100).expect("fits");
        assert_eq!(
            b.try_charge(51),
            Err(BudgetExhausted {
                scope: "server",
                limit: 150
            })
        );
        // The refused charge was not left on the connection either.
        b.try_charge(50).expect("the rest of the server's room");
        assert_eq!(server.used(), 150);
    }

    #[test]
    fn charged_bytes_are_given_back_when_dropped() {
        let server = ServerBudget::new(100);
        let conn = ConnBudget::new(100, &server);
        let held = Charged::new(Bytes::from(vec![0u8; 80]), Some(&conn)).expect("fits");
        assert!(Charged::new(Bytes::from(vec![0u8; 30]), Some(&conn)).is_err());
        assert_eq!(held.bytes().len(), 80);
        drop(held);
        assert_eq!(server.used(), 0);
    }
}
