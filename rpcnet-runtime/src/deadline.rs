//! Bounding futures by a call's deadline, on both sides of a call.
//!
//! The two sides wait differently, so they bound their futures differently:
//!
//! - A server's handler often answers at once. [`with_deadline`] and [`with_timeout`] make
//!   their timer only once the future has to wait (and box it, keeping every call's future
//!   small), so such a call costs no timer at all.
//! - A client's call always waits for the network, so [`bound_call`] keeps tokio's timer
//!   inline and maps its expiry to [`RpcError::DeadlineExceeded`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use crate::context::Deadline;
use crate::error::{CallError, RpcError};

/// Bounds a client's call by its deadline: past it the call ends with
/// [`RpcError::DeadlineExceeded`]. A plain function rather than an `async fn`, so the call's
/// future is stored once (an `async fn` would keep its argument and the timeout holding it
/// side by side, doubling what every call allocates and copies).
pub(crate) fn bound_call<T, E>(
    deadline: Option<Deadline>,
    future: impl Future<Output = Result<T, CallError<E>>>,
) -> impl Future<Output = Result<T, CallError<E>>> {
    match deadline {
        Some(deadline) => futures::future::Either::Left(
            tokio::time::timeout_at(deadline.at, future)
                .map(|r| r.unwrap_or(Err(CallError::Rpc(RpcError::DeadlineExceeded)))),
        ),
        None => futures::future::Either::Right(future),
    }
}

/// Bounds `future` by the call's deadline (`None` once it passed). The timer is made only if
/// the future has to wait: a handler that answers at once costs no timer at all.
pub(crate) fn with_deadline<F: Future>(deadline: Option<Instant>, future: F) -> WithDeadline<F> {
    WithDeadline {
        future,
        bound: deadline.map_or(Bound::Unbounded, Bound::At),
        sleep: None,
    }
}

/// Bounds `future` to `timeout` from when it first has to wait (`None` once that passed).
pub(crate) fn with_timeout<F: Future>(timeout: Duration, future: F) -> WithDeadline<F> {
    WithDeadline {
        future,
        bound: Bound::After(timeout),
        sleep: None,
    }
}

/// When a [`WithDeadline`] gives up.
enum Bound {
    Unbounded,
    At(Instant),
    /// This long after the future first has to wait.
    After(Duration),
}

pin_project_lite::pin_project! {
    /// A future bounded in time, whose timer is made (and boxed, keeping the future small)
    /// only once the future has to wait. `None` once the time is up.
    pub(crate) struct WithDeadline<F> {
        #[pin]
        future: F,
        bound: Bound,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: Future> Future for WithDeadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let sleep = match (this.sleep, &*this.bound) {
            (_, Bound::Unbounded) => return Poll::Pending,
            (Some(sleep), _) => sleep,
            (sleep, Bound::At(deadline)) => {
                sleep.insert(Box::pin(tokio::time::sleep_until(*deadline)))
            }
            (sleep, Bound::After(timeout)) => sleep.insert(Box::pin(tokio::time::sleep(*timeout))),
        };
        sleep.as_mut().poll(cx).map(|()| None)
    }
}
