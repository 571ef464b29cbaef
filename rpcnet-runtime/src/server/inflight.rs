//! Counting calls in progress, so that a draining server or connection knows when the last
//! one is done.
//!
//! Hand-written rather than `tokio_util::task::TaskTracker`: a call is counted in two places
//! at once (its connection, which drains on its own, and the server), and this way both
//! counts cost a call one reference count and two atomic updates, where two trackers would
//! cost two reference counts and their tokens.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts calls in progress; `wait_idle` completes when there are none.
#[derive(Debug, Clone, Default)]
pub(super) struct Inflight {
    inner: Arc<InflightState>,
}

#[derive(Debug, Default)]
struct InflightState {
    calls: AtomicUsize,
    /// Tasks in `wait_idle`: a call that ends the last one wakes them only if there are
    /// any (waking takes a lock, which every call at one in flight would otherwise pay).
    waiters: AtomicUsize,
    idle: Notify,
}

/// Counts a task in `wait_idle` while it waits, also if its future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inflight {
    pub(super) fn enter(&self) {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a call out (one counted in by [`enter`](Self::enter)).
    pub(super) fn leave(&self) {
        let state = &self.inner;
        if state.calls.fetch_sub(1, Ordering::SeqCst) == 1
            && state.waiters.load(Ordering::SeqCst) > 0
        {
            state.idle.notify_waiters();
        }
    }

    pub(super) fn count(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    pub(super) async fn wait_idle(&self) {
        self.inner.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner.waiters);
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Sequentially consistent with the guard's decrement and its look at `waiters`:
            // either this sees no calls, or the last call sees this waiter and wakes it.
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}
