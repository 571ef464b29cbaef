//! Reading frames from a QUIC receive stream, and mapping QUIC stream errors to [`RpcError`].

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use s2n_quic::connection::Error as ConnectionError;
use s2n_quic::stream::{BidirectionalStream, Error as StreamError, ReceiveStream};

use serde::de::DeserializeOwned;

use crate::budget::ConnBudget;
use crate::codec::decode_in;
use crate::error::{ProtocolError, RpcError};
use crate::frame::{Frame, FrameDecoder, FrameType};
use crate::transport::app_error;

/// Turns a QUIC stream error into the error a call reports.
pub(crate) fn stream_error(error: StreamError) -> RpcError {
    match error {
        StreamError::StreamReset { error, .. } if error == app_error(app_error::CANCELLED) => {
            RpcError::Cancelled
        }
        StreamError::StreamReset { error, .. } if error == app_error(app_error::SHUTDOWN) => {
            RpcError::unavailable("server is shutting down", None)
        }
        StreamError::ConnectionError { error, .. } => connection_error(error),
        other => RpcError::Stream(Box::new(other)),
    }
}

/// Turns the error that ended a connection into the error a call reports.
pub(crate) fn connection_error(error: ConnectionError) -> RpcError {
    let message = match error {
        ConnectionError::Application { error: code, .. }
            if code == app_error(app_error::TOO_MANY_CONNECTIONS) =>
        {
            "the server refused the connection: it serves as many connections as it may"
        }
        ConnectionError::Application { error: code, .. }
            if code == app_error(app_error::SHUTDOWN) =>
        {
            "server is shutting down"
        }
        _ => "connection lost",
    };
    RpcError::unavailable(message, Some(Box::new(error)))
}

/// What a [`FrameReader`] reads from: a whole stream, when nothing more is sent on it (a
/// call whose request is all sent), or the receive half of a split one. Keeping a stream
/// whole spares a call the split, and the copies and reference counts of a second half.
#[derive(Debug)]
pub(crate) enum Incoming {
    Whole(BidirectionalStream),
    Half(ReceiveStream),
}

impl Incoming {
    fn poll_receive_vectored(
        &mut self,
        chunks: &mut [Bytes],
        cx: &mut Context<'_>,
    ) -> Poll<Result<(usize, bool), StreamError>> {
        match self {
            Incoming::Whole(stream) => stream.poll_receive_vectored(chunks, cx),
            Incoming::Half(stream) => stream.poll_receive_vectored(chunks, cx),
        }
    }

    fn stop_sending(&mut self, code: u32) -> Result<(), StreamError> {
        match self {
            Incoming::Whole(stream) => stream.stop_sending(app_error(code)),
            Incoming::Half(stream) => stream.stop_sending(app_error(code)),
        }
    }
}

impl From<BidirectionalStream> for Incoming {
    fn from(stream: BidirectionalStream) -> Self {
        Incoming::Whole(stream)
    }
}

impl From<ReceiveStream> for Incoming {
    fn from(stream: ReceiveStream) -> Self {
        Incoming::Half(stream)
    }
}

/// A frame-at-a-time reader over a QUIC receive stream.
#[derive(Debug)]
pub(crate) struct FrameReader {
    rx: Incoming,
    decoder: FrameDecoder,
    finished: bool,
}

impl FrameReader {
    pub(crate) fn new(rx: impl Into<Incoming>, max_frame_len: usize) -> Self {
        FrameReader {
            rx: rx.into(),
            decoder: FrameDecoder::new(max_frame_len),
            finished: false,
        }
    }

    /// A reader whose assembled frames count against a server connection's receive budget.
    pub(crate) fn with_budget(
        rx: impl Into<Incoming>,
        max_frame_len: usize,
        budget: Arc<ConnBudget>,
    ) -> Self {
        FrameReader {
            rx: rx.into(),
            decoder: FrameDecoder::with_budget(max_frame_len, Some(budget)),
            finished: false,
        }
    }

    /// Makes the frames this reader assembles from now on count against `budget` (if it
    /// does not yet count against one). Attached only when a request does not arrive whole,
    /// so that the usual call does not pay for sharing the budget.
    pub(crate) fn attach_budget(&mut self, budget: &Arc<ConnBudget>) {
        self.decoder.attach_budget(budget);
    }

    /// Whether a whole frame lies in the bytes already received.
    pub(crate) fn has_whole_frame(&self) -> bool {
        self.decoder.has_whole_frame()
    }

    /// The connection's receive budget, if the reader counts against one.
    pub(crate) fn budget(&self) -> Option<&Arc<ConnBudget>> {
        self.decoder.budget()
    }

    /// Polls for the next frame; `Ok(None)` when the peer finished the stream cleanly
    /// between frames.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Frame>, RpcError>> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Poll::Ready(Ok(Some(frame)));
            }
            if ready!(self.poll_more(cx))?.is_none() {
                return Poll::Ready(Ok(None));
            }
        }
    }

    /// Feeds the decoder one more received chunk (or notes the end of the stream).
    /// `Ok(None)` once the stream has ended cleanly between frames.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<()>, RpcError>> {
        if self.finished {
            return Poll::Ready(if self.decoder.is_idle() {
                Ok(None)
            } else {
                Err(ProtocolError::Truncated.into())
            });
        }
        match ready!(self.poll_chunk(cx))? {
            Some(chunk) => self.decoder.push_bytes(chunk),
            None => self.finished = true,
        }
        Poll::Ready(Ok(Some(())))
    }

    /// Receives the next chunk (`None` at the end of the stream). The vectored receive tells
    /// with the last chunk that the stream has ended, which spares the transport a poll
    /// only to learn that.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, RpcError>> {
        if self.finished {
            return Poll::Ready(Ok(None));
        }
        let mut chunk = [Bytes::new()];
        match ready!(self.rx.poll_receive_vectored(&mut chunk, cx)) {
            Ok((count, open)) => {
                self.finished = !open;
                let [chunk] = chunk;
                Poll::Ready(Ok((count > 0).then_some(chunk)))
            }
            Err(error) => Poll::Ready(Err(stream_error(error))),
        }
    }

    /// Decodes the next message in place if it is a data frame lying whole in the chunk at
    /// hand: the per-item fast path of a response stream, which hands back nothing but the
    /// item. `None` leaves everything else, including a message that does not decode, to
    /// [`poll_frame`](Self::poll_frame).
    #[inline]
    pub(crate) fn decode_in_place<T: DeserializeOwned + 'static>(&mut self) -> Option<T> {
        self.decoder
            .decode_data_in_place(|chunk, range| decode_in::<T>(chunk, range).ok())
    }

    /// Whether the peer has finished the stream and every frame of it has been read.
    pub(crate) fn is_closed(&self) -> bool {
        self.finished && self.decoder.is_idle()
    }

    /// The stream's last two frames, of types `first` and `second`, taken in one step if
    /// they are all that is left and the stream has ended (see
    /// [`FrameDecoder::take_last_pair`]).
    pub(crate) fn take_last_pair(
        &mut self,
        first: FrameType,
        second: FrameType,
    ) -> Option<(Bytes, Bytes)> {
        if !self.finished {
            return None;
        }
        self.decoder.take_last_pair(first, second)
    }

    /// Waits for the first bytes of the stream (or its end), so that frames that arrived
    /// together can then be taken together.
    pub(crate) async fn wait_readable(&mut self) -> Result<(), RpcError> {
        poll_fn(|cx| {
            if self.finished || !self.decoder.is_idle() {
                return Poll::Ready(Ok(()));
            }
            self.poll_more(cx).map_ok(drop)
        })
        .await
    }

    /// The next frame.
    pub(crate) async fn next_frame(&mut self) -> Result<Option<Frame>, RpcError> {
        poll_fn(|cx| self.poll_frame(cx)).await
    }

    /// Hands the reader bytes already taken from its stream (the rest of a first chunk whose
    /// kind byte the caller read).
    pub(crate) fn push_received(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.decoder.push_bytes(chunk);
        }
    }

    /// Reads the stream-kind byte that opens every stream.
    pub(crate) async fn read_kind(&mut self) -> Result<Option<u8>, RpcError> {
        loop {
            match poll_fn(|cx| self.poll_chunk(cx)).await? {
                Some(mut chunk) if !chunk.is_empty() => {
                    let kind = chunk.get_u8();
                    self.decoder.push_bytes(chunk);
                    return Ok(Some(kind));
                }
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Waits until the peer finishes (`Ok`) or resets (`Err`) the stream, discarding
    /// nothing: any further frame is a protocol error.
    pub(crate) async fn wait_closed(&mut self) -> Result<(), RpcError> {
        match self.next_frame().await? {
            None => Ok(()),
            Some(frame) => Err(ProtocolError::UnexpectedFrame {
                expected: "end of stream",
                found: frame.kind.name(),
            }
            .into()),
        }
    }

    /// Tells the peer to stop sending on this stream.
    pub(crate) fn stop_sending(&mut self, code: u32) {
        let _ = self.rx.stop_sending(code);
    }
}
