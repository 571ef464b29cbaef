//! Writing a call's reply: a single message or a stream of them, then the status frame
//! that ends the stream.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::TryFutureExt;
use s2n_quic::stream::SendStream;

use crate::buffers;
use crate::codec::{FrameBuf, Segments};
use crate::deadline::with_timeout;
use crate::error::{Code, RpcError, Status};
use crate::frame::{put_frame_header, FrameType, MAX_FRAME_HEADER_LEN};
use crate::handler::{EncodeStream, Reply};
use crate::header::{put_status, status_len};
use crate::io::stream_error;
use crate::transport::app_error;

fn take_failure(failure: Option<&Mutex<Option<Status>>>) -> Option<Status> {
    failure.and_then(|slot| slot.lock().ok().and_then(|mut slot| slot.take()))
}

/// Writes the reply and ends the stream. Like [`send_status`], a plain function: what is
/// kept across the write is only what the write needs.
pub(super) fn write_reply<'a>(
    tx: &'a mut SendStream,
    reply: Reply,
    limit: usize,
    stall: Duration,
    failure: Option<&'a Mutex<Option<Status>>>,
) -> impl Future<Output = Result<Code, RpcError>> + 'a {
    match reply {
        Reply::Single(result) => {
            let (out, status) = match (take_failure(failure), result) {
                (Some(status), _) | (None, Err(status)) => (Segments::with_capacity(64), status),
                (None, Ok(out)) => (out, Status::new(Code::Ok, "")),
            };
            let code = status.code();
            futures::future::Either::Left(send_status(tx, out, &status).map_ok(move |()| code))
        }
        // Boxed: a single reply, the usual case, then does not carry a stream writer's state.
        Reply::Stream(stream) => futures::future::Either::Right(Box::pin(write_stream(
            tx, stream, limit, stall, failure,
        ))),
    }
}

async fn write_stream(
    tx: &mut SendStream,
    mut stream: Pin<Box<dyn EncodeStream>>,
    limit: usize,
    stall: Duration,
    failure: Option<&Mutex<Option<Status>>>,
) -> Result<Code, RpcError> {
    // Each write goes out in a pooled buffer, which comes back once QUIC has had it
    // acknowledged and drops it.
    let mut buffer = buffers::write_buffer();
    loop {
        match poll_fn(|cx| fill(cx, stream.as_mut(), &mut buffer, limit)).await {
            Fill::Flush => {
                let full = std::mem::replace(&mut buffer, buffers::write_buffer());
                send_or_stall(tx, buffers::share(full), stall).await?;
            }
            Fill::End(status) => {
                let status = take_failure(failure).unwrap_or(status);
                put_status_frame(&mut buffer, &status);
                send_or_stall(tx, buffers::share(buffer), stall).await?;
                tx.finish().map_err(stream_error)?;
                return Ok(status.code());
            }
        }
    }
}

/// Sends one write of a response stream; a client that reads none of it for `stall` has
/// the stream reset (its flow control would otherwise hold the call forever).
async fn send_or_stall(tx: &mut SendStream, bytes: Bytes, stall: Duration) -> Result<(), RpcError> {
    match with_timeout(stall, tx.send(bytes)).await {
        Some(sent) => sent.map_err(stream_error),
        None => {
            let _ = tx.reset(app_error(app_error::CANCELLED));
            Err(RpcError::DeadlineExceeded)
        }
    }
}

enum Fill {
    /// The buffer holds data worth sending.
    Flush,
    /// The stream ended with this status; the buffer may hold its last items.
    End(Status),
}

/// Encodes ready items into `buffer` until it is full or the stream has nothing ready.
fn fill(
    cx: &mut Context<'_>,
    stream: Pin<&mut dyn EncodeStream>,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Poll<Fill> {
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        stream.poll_encode(cx, buffer, buffers::WRITE_CHUNK, limit)
    }));
    let Ok(polled) = polled else {
        // The handler's stream panicked: it is not polled again, and the call ends with
        // `Internal` after the items it produced before.
        return Poll::Ready(Fill::End(handler_panicked()));
    };
    match polled {
        Poll::Ready(Some(Ok(()))) => Poll::Ready(Fill::Flush),
        Poll::Ready(Some(Err(status))) => Poll::Ready(Fill::End(status)),
        Poll::Ready(None) => Poll::Ready(Fill::End(Status::new(Code::Ok, ""))),
        Poll::Pending if buffer.is_empty() => Poll::Pending,
        Poll::Pending => Poll::Ready(Fill::Flush),
    }
}

/// The status of a call whose handler panicked.
pub(super) fn handler_panicked() -> Status {
    Status::new(Code::Internal, "the handler panicked")
}

/// Appends the frame of the status that ends a call.
fn put_status_frame(out: &mut impl FrameBuf, status: &Status) {
    out.reserve(MAX_FRAME_HEADER_LEN + status_len(status));
    put_frame_header(out, FrameType::Status, status_len(status));
    put_status(out, status);
}

/// Ends the stream with `status` and no reply message (a refused or failed call).
pub(super) fn send_status_alone<'a>(
    tx: &'a mut SendStream,
    status: &Status,
) -> impl Future<Output = Result<(), RpcError>> + 'a {
    send_status(tx, Segments::with_capacity(64), status)
}

/// Appends the status frame to `out`, sends it and finishes the stream.
fn send_status<'a>(
    tx: &'a mut SendStream,
    mut out: Segments,
    status: &Status,
) -> impl Future<Output = Result<(), RpcError>> + 'a {
    put_status_frame(out.buf(), status);
    let mut segments = out.freeze();
    async move {
        tx.send_vectored(segments.as_mut_slice())
            .await
            .map_err(stream_error)?;
        tx.finish().map_err(stream_error)
    }
}
