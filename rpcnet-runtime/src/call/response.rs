//! [`ResponseStream`]: the responses of a streaming call, read from the network as the
//! stream is polled.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, Sleep};

use super::pump::Pump;
use super::stream::{status_result, CancelGuard};
use crate::client::RpcClient;
use crate::codec::decode;
use crate::error::{CallError, Code, ProtocolError, RpcError};
use crate::frame::FrameType;
use crate::header::parse_status;
use crate::io::FrameReader;

/// The responses of a streaming call, as a `Stream` of `Result<T, CallError<E>>`.
///
/// The stream ends after the server's final status: an OK status ends it quietly, an
/// application error or a failure arrives as a last `Err` item. Dropping the stream before
/// the end cancels the call on the server. The call's deadline covers the whole stream.
/// Messages are read from the network only as the stream is polled, so a slow consumer
/// slows the server down through QUIC flow control instead of buffering without bound.
#[must_use = "streams do nothing unless polled"]
pub struct ResponseStream<T, E> {
    /// Keeps the connection open while the stream is read.
    _client: RpcClient,
    reader: FrameReader,
    /// The request writer of a bidirectional call.
    pump: Option<Pump>,
    cancel: CancelGuard,
    deadline: Option<Pin<Box<Sleep>>>,
    method: &'static str,
    done: bool,
    _types: PhantomData<fn() -> (T, E)>,
}

impl<T, E> std::fmt::Debug for ResponseStream<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("method", &self.method)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T, E> ResponseStream<T, E> {
    pub(super) fn new(
        client: RpcClient,
        reader: FrameReader,
        pump: Option<Pump>,
        cancel: CancelGuard,
        deadline: Option<Instant>,
        method: &'static str,
    ) -> Self {
        ResponseStream {
            _client: client,
            reader,
            pump,
            cancel,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            method,
            done: false,
            _types: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static, E: DeserializeOwned + 'static> ResponseStream<T, E> {
    fn fail(&mut self, error: RpcError) -> Poll<Option<Result<T, CallError<E>>>> {
        self.done = true;
        let error = self
            .pump
            .as_mut()
            .and_then(Pump::local_failure)
            .unwrap_or(error);
        Poll::Ready(Some(Err(CallError::Rpc(error))))
    }
}

// The stream holds no self-references: pinning it is not structural.
impl<T, E> Unpin for ResponseStream<T, E> {}

impl<T: DeserializeOwned + 'static, E: DeserializeOwned + 'static> Stream for ResponseStream<T, E> {
    type Item = Result<T, CallError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // The timer is polled (registering this task with it) only when the stream has to
        // wait; while messages are ready, checking whether it has fired is enough.
        if this.deadline.as_ref().is_some_and(|d| d.is_elapsed()) {
            return this.fail(RpcError::DeadlineExceeded);
        }
        if let Some(item) = this.reader.decode_in_place::<T>() {
            return Poll::Ready(Some(Ok(item)));
        }
        // Anything else (a status, a frame split across chunks, the first frame of a chunk
        // still to be received, or a message that does not decode) comes through the
        // general path.
        let frame = match this.reader.poll_frame(cx) {
            Poll::Ready(Ok(Some(frame))) => frame,
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return this.fail(RpcError::DeadlineExceeded);
                    }
                }
                return Poll::Pending;
            }
            Poll::Ready(Ok(None)) => return this.fail(ProtocolError::Truncated.into()),
            Poll::Ready(Err(error)) => return this.fail(error),
        };
        match frame.kind {
            FrameType::Data => match decode::<T>(&frame.payload) {
                Ok(item) => Poll::Ready(Some(Ok(item))),
                Err(error) => this.fail(error),
            },
            FrameType::Status => {
                this.done = true;
                let status = match parse_status(frame.payload) {
                    Ok(status) => status,
                    Err(error) => return Poll::Ready(Some(Err(CallError::Rpc(error.into())))),
                };
                this.cancel.complete();
                if status.code() == Code::Ok {
                    if let Some(done) = this.pump.as_mut().and_then(|p| p.done.take()) {
                        let _ = done.send(());
                    }
                }
                match status_result::<E>(status, this.method) {
                    Ok(()) => Poll::Ready(None),
                    Err(error) => Poll::Ready(Some(Err(error))),
                }
            }
            other => this.fail(
                ProtocolError::UnexpectedFrame {
                    expected: "data or status",
                    found: other.name(),
                }
                .into(),
            ),
        }
    }
}
