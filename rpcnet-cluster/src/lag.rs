//! A bounded single-consumer queue that never makes its producer wait: when it is full, the
//! oldest item is dropped and counted, and the consumer is told how many it missed
//! ([`Lagged`]) before it gets the items that are left, the newest ones.
//!
//! The subscriptions to membership events ([`ClusterEvents`](crate::ClusterEvents)) and to
//! pool changes ([`PoolEvents`](crate::PoolEvents)) are such queues, one per subscriber, so
//! a subscriber that stops reading costs at most its queue's capacity, and the task that
//! publishes never blocks on it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

/// A subscriber fell behind: its queue was full, and this many of the oldest items were
/// dropped to make room for newer ones. The items it receives next are the newest; a
/// subscriber that keeps a view of its own should rebuild it from the current state (for
/// example [`Cluster::members`](crate::Cluster::members)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber fell behind and missed {missed} events")]
pub struct Lagged {
    /// How many items were dropped since the subscriber last received one (or since it last
    /// heard of a lag).
    pub missed: u64,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    missed: u64,
    closed: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    waker: AtomicWaker,
    capacity: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; should a poisoned lock ever be seen, its
        // queue is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A bounded queue of capacity `capacity` (at least 1): the producer's and the consumer's
/// ends.
pub(crate) fn channel<T>(capacity: usize) -> (Publisher<T>, Subscription<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            missed: 0,
            closed: false,
        }),
        waker: AtomicWaker::new(),
        capacity,
    });
    (
        Publisher {
            shared: Arc::clone(&shared),
        },
        Subscription { shared },
    )
}

/// The producer's end. Dropping it ends the subscription once its queue is read.
#[derive(Debug)]
pub(crate) struct Publisher<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Publisher<T> {
    /// Queues `item`, dropping the oldest queued item if the queue is full. Never waits.
    /// Returns `false` once the subscription has been dropped (the publisher can forget it).
    pub(crate) fn publish(&self, item: T) -> bool {
        if Arc::strong_count(&self.shared) < 2 {
            return false;
        }
        {
            let mut state = self.shared.lock();
            if state.queue.len() >= self.shared.capacity {
                state.queue.pop_front();
                state.missed += 1;
            }
            state.queue.push_back(item);
        }
        self.shared.waker.wake();
        true
    }
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.waker.wake();
    }
}

/// The consumer's end.
#[derive(Debug)]
pub(crate) struct Subscription<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Subscription<T> {
    /// The next item: first a [`Lagged`] if items were dropped since the last call, then the
    /// queued items oldest first; `None` once the publisher is gone and the queue is empty.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Lagged>>> {
        if let Some(ready) = self.try_recv() {
            return Poll::Ready(ready);
        }
        self.shared.waker.register(cx.waker());
        // An item published between the first look and the registration woke nobody.
        match self.try_recv() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    fn try_recv(&self) -> Option<Option<Result<T, Lagged>>> {
        let mut state = self.shared.lock();
        if state.missed > 0 {
            let missed = std::mem::take(&mut state.missed);
            return Some(Some(Err(Lagged { missed })));
        }
        if let Some(item) = state.queue.pop_front() {
            return Some(Some(Ok(item)));
        }
        state.closed.then_some(None)
    }

    /// How many items wait in the queue.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    async fn recv<T>(sub: &Subscription<T>) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| sub.poll_recv(cx)).await
    }

    #[test]
    fn a_subscriber_that_does_not_read_holds_at_most_the_capacity_then_hears_of_its_lag() {
        let (tx, rx) = channel(8);
        for i in 0..10_000u32 {
            assert!(tx.publish(i));
            assert!(rx.len() <= 8);
        }
        assert_eq!(
            recv(&rx).now_or_never(),
            Some(Some(Err(Lagged { missed: 10_000 - 8 })))
        );
        for i in 10_000 - 8..10_000 {
            assert_eq!(recv(&rx).now_or_never(), Some(Some(Ok(i))), "the newest");
        }
        assert_eq!(
            recv(&rx).now_or_never(),
            None,
            "empty and still open: waits"
        );
        drop(tx);
        assert_eq!(recv(&rx).now_or_never(), Some(None), "closed");
    }

    #[test]
    fn a_prompt_subscriber_misses_nothing_and_sees_the_queue_drain_before_the_end() {
        let (tx, rx) = channel(2);
        for i in 0..100u32 {
            assert!(tx.publish(i));
            assert_eq!(recv(&rx).now_or_never(), Some(Some(Ok(i))));
        }
        assert!(tx.publish(100));
        drop(tx);
        assert_eq!(recv(&rx).now_or_never(), Some(Some(Ok(100))));
        assert_eq!(recv(&rx).now_or_never(), Some(None));
    }

    #[tokio::test]
    async fn a_waiting_subscriber_is_woken_by_a_publish_from_another_task() {
        let (tx, rx) = channel(4);
        let publisher = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.publish(7u8)
        });
        assert_eq!(recv(&rx).await, Some(Ok(7)));
        assert!(publisher.await.expect("publisher"));
    }

    #[test]
    fn the_publisher_learns_that_the_subscription_was_dropped() {
        let (tx, rx) = channel(4);
        assert!(tx.publish(1u8));
        drop(rx);
        assert!(!tx.publish(2));
    }
}
