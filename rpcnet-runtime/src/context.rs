//! [`CallContext`]: what a handler can learn about the call it serves (method, peer,
//! deadline, metadata, cancellation), reachable through [`CallContext::current`] without
//! changing the handler's signature.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::header::Metadata;
use crate::trace::{TraceContext, TRACEPARENT};

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The context of one call on the server.
///
/// Inside a handler, [`CallContext::current`] returns it. Calls the handler makes with any
/// rpcnet client while serving inherit its deadline: their own deadline is never later
/// than the remaining time of the call being served. The context lives in a task-local, so
/// work the handler moves to a `tokio::spawn`ed task should take a clone along.
#[derive(Clone, Debug)]
pub struct CallContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    method: Arc<str>,
    peer: Option<SocketAddr>,
    deadline: Option<Instant>,
    metadata: Metadata,
    signal: CallSignal,
}

/// The cancellation flag of one call, inside its [`CallContext`], which the server's call
/// task, the connection's cancel registry and the handler share.
#[derive(Debug, Default)]
pub(crate) struct CallSignal {
    cancelled: AtomicBool,
    /// The server's call task (one waiter, lock-free).
    task: AtomicWaker,
    /// Handlers awaiting [`CallContext::cancelled`] (any number).
    notify: Notify,
}

impl CallSignal {
    /// Marks the call cancelled and wakes whoever waits for it.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.task.wake();
        self.notify.notify_waiters();
    }

    /// Polls for cancellation from the one task that serves the call.
    pub(crate) fn poll_cancelled(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.is_cancelled() {
            return std::task::Poll::Ready(());
        }
        self.task.register(cx.waker());
        if self.is_cancelled() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the call is cancelled.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl CallContext {
    pub(crate) fn new(
        method: Arc<str>,
        peer: Option<SocketAddr>,
        deadline: Option<Instant>,
        metadata: Metadata,
    ) -> Self {
        CallContext {
            inner: Arc::new(Inner {
                method,
                peer,
                deadline,
                metadata,
                signal: CallSignal::default(),
            }),
        }
    }

    /// The context of the call the current task is serving, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with this context as the current one.
    pub fn scope<F: std::future::Future>(
        self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }

    /// The full method name (`Service.method`).
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// The address of the client.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.inner.peer
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.inner
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The metadata the client sent.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// The trace the call belongs to, if the client sent a valid `traceparent` (see
    /// [`TraceContext`]). Calls the handler makes continue it.
    pub fn trace(&self) -> Option<TraceContext> {
        self.inner
            .metadata
            .get_str(TRACEPARENT)
            .and_then(TraceContext::parse)
    }

    /// The call's cancellation flag.
    pub(crate) fn signal(&self) -> &CallSignal {
        &self.inner.signal
    }

    /// Whether the client cancelled the call (reset its stream or went away).
    pub fn is_cancelled(&self) -> bool {
        self.inner.signal.is_cancelled()
    }

    /// Completes when the client cancels the call (or the server gives up on it: deadline,
    /// shutdown). The handler's own future is dropped on cancellation anyway; this is for
    /// work it handed to other tasks.
    pub async fn cancelled(&self) {
        self.inner.signal.cancelled().await;
    }
}

/// An outgoing call's deadline: when it passes, and the time left until then when it was
/// set (what the request header carries), both from one reading of the clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) remaining: Duration,
}

/// The deadline a new outgoing call gets: its own (or the client default), but never later
/// than `inherited`, the deadline of the call the current task is serving.
pub(crate) fn effective_deadline(
    own: Option<Duration>,
    inherited: Option<Instant>,
) -> Option<Deadline> {
    if own.is_none() && inherited.is_none() {
        return None;
    }
    let now = Instant::now();
    let at = match (own.map(|d| now + d), inherited) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(Deadline {
        at,
        remaining: at.saturating_duration_since(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outgoing_calls_inherit_the_served_calls_deadline() {
        let ctx = CallContext::new(
            Arc::from("A.b"),
            None,
            Some(Instant::now() + Duration::from_millis(100)),
            Metadata::new(),
        );
        let served = || CallContext::current().and_then(|c| c.deadline());
        let inside = ctx
            .scope(async { effective_deadline(Some(Duration::from_secs(10)), served()) })
            .await
            .expect("has a deadline");
        assert_eq!(inside.at - Instant::now(), Duration::from_millis(100));
        assert_eq!(inside.remaining, Duration::from_millis(100));
        let outside =
            effective_deadline(Some(Duration::from_secs(10)), served()).expect("own deadline");
        assert_eq!(outside.at - Instant::now(), Duration::from_secs(10));
        assert_eq!(outside.remaining, Duration::from_secs(10));
        assert!(effective_deadline(None, served()).is_none());
    }

    #[tokio::test]
    async fn cancellation_is_observable_through_the_context() {
        let ctx = CallContext::new(Arc::from("A.b"), None, None, Metadata::new());
        assert!(!ctx.is_cancelled());
        let waiter = tokio::spawn({
            let ctx = ctx.clone();
            async move { ctx.cancelled().await }
        });
        ctx.signal().cancel();
        waiter.await.expect("waiter completes");
        assert!(ctx.is_cancelled());
    }
}
