//! A call's QUIC stream on the client: opening it with the request's start, the guards that
//! cancel the call when it is dropped, and reading a single-message reply.

use bytes::Bytes;
use s2n_quic::connection::Handle;
use s2n_quic::stream::SendStream;
use serde::de::DeserializeOwned;

use super::spec::CallOptions;
use crate::cancel::cancel_message;
use crate::client::RpcClient;
use crate::codec::{decode, Frozen, Segments};
use crate::context::Deadline;
use crate::error::{CallError, Code, ProtocolError, RpcError, Status};
use crate::frame::{put_frame, FrameType};
use crate::header::{parse_status, put_request_start};
use crate::io::{stream_error, FrameReader};
use crate::transport::app_error;

/// The send half of a call's stream: reset on drop (cancelling the call on the server)
/// unless the call completed.
#[derive(Debug)]
pub(super) struct SendGuard {
    tx: Option<SendStream>,
}

impl SendGuard {
    pub(super) fn new(tx: SendStream) -> Self {
        SendGuard { tx: Some(tx) }
    }

    pub(super) fn stream(&mut self) -> Result<&mut SendStream, RpcError> {
        self.tx.as_mut().ok_or(RpcError::Cancelled)
    }

    /// The call completed: finish the stream cleanly.
    pub(super) fn complete(&mut self) {
        if let Some(mut tx) = self.tx.take() {
            let _ = tx.finish();
        }
    }
}

impl Drop for SendGuard {
    fn drop(&mut self) {
        if let Some(mut tx) = self.tx.take() {
            let _ = tx.reset(app_error(app_error::CANCELLED));
        }
    }
}

/// Cancels the call on the server when dropped before the call completed: the request
/// side is already finished, so the cancel travels on a stream of its own (kind `0x03`).
#[derive(Debug)]
pub(super) struct CancelGuard {
    handle: Option<Handle>,
    id: u64,
}

impl CancelGuard {
    /// The call completed: nothing to cancel.
    pub(super) fn complete(&mut self) {
        self.handle = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(mut handle) = self.handle.take() else {
            return;
        };
        let message = cancel_message(self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(mut stream) = handle.open_send_stream().await {
                    if stream.send(message).await.is_ok() {
                        let _ = stream.finish();
                    }
                }
            });
        }
    }
}

/// The outcome of reading a response to its status frame.
pub(super) fn status_result<E: DeserializeOwned + 'static>(
    status: Status,
    method: &str,
) -> Result<(), CallError<E>> {
    match status.code() {
        Code::Ok => Ok(()),
        Code::Application => Err(CallError::Application(decode::<E>(status.details_bytes())?)),
        _ => Err(RpcError::from_status(status, method).into()),
    }
}

/// Opens a call's stream and sends `request` (which already holds the start and, for
/// requests without a stream, the message and end frames). With `finish`, the request side
/// ends right there, in the same packet when it fits, and the stream is read whole;
/// otherwise it is split, and its send half returned for the caller to stream requests on.
pub(super) async fn open_call(
    client: &RpcClient,
    mut request: Frozen,
    finish: bool,
) -> Result<(FrameReader, Option<SendGuard>, CancelGuard), RpcError> {
    let (mut stream, handle) = client.open_stream().await?;
    let id = stream.id();
    stream
        .send_vectored(request.as_mut_slice())
        .await
        .map_err(stream_error)?;
    let cancel = CancelGuard {
        handle: Some(handle),
        id,
    };
    let limit = client.config().max_message_size;
    if finish {
        stream.finish().map_err(stream_error)?;
        Ok((FrameReader::new(stream, limit), None, cancel))
    } else {
        let (rx, tx) = stream.split();
        Ok((
            FrameReader::new(rx, limit),
            Some(SendGuard::new(tx)),
            cancel,
        ))
    }
}

/// Reads a single-message response: at most one data frame, then the status.
pub(super) async fn read_single(
    reader: &mut FrameReader,
) -> Result<(Option<Bytes>, Status), RpcError> {
    // The usual case: the reply, the status and the stream's end come together.
    reader.wait_readable().await?;
    if let Some((message, status)) = reader.take_last_pair(FrameType::Data, FrameType::Status) {
        return Ok((Some(message), parse_status(status)?));
    }
    let mut message = None;
    loop {
        let frame = reader.next_frame().await?.ok_or(ProtocolError::Truncated)?;
        match frame.kind {
            FrameType::Data if message.is_none() => message = Some(frame.payload),
            FrameType::Status => {
                let status = parse_status(frame.payload)?;
                // The server finishes right after the status, usually in the same packet:
                // reading the end of stream avoids sending it a STOP_SENDING.
                reader.wait_closed().await?;
                return Ok((message, status));
            }
            other => {
                return Err(ProtocolError::UnexpectedFrame {
                    expected: "one data frame then status",
                    found: other.name(),
                }
                .into())
            }
        }
    }
}

pub(super) fn start_single_request(
    client: &RpcClient,
    method: &str,
    deadline: Option<Deadline>,
    options: &CallOptions,
    put_body: impl FnOnce(&mut Segments, usize) -> Result<(), RpcError>,
) -> Result<Frozen, RpcError> {
    let mut out = Segments::with_capacity(256);
    put_request_start(
        out.buf(),
        method,
        deadline.map(|d| d.remaining),
        &options.metadata,
    )?;
    put_body(&mut out, client.config().max_message_size)?;
    put_frame(out.buf(), FrameType::End, &[]);
    Ok(out.freeze())
}

/// The reply of a call answered with a single message: its status's verdict, then the
/// message, which an OK status must follow.
pub(super) fn single_reply<Resp: DeserializeOwned + 'static, E: DeserializeOwned + 'static>(
    message: Option<Bytes>,
    status: Status,
    method: &str,
) -> Result<Resp, CallError<E>> {
    status_result::<E>(status, method)?;
    let message = message.ok_or_else(|| {
        RpcError::from(ProtocolError::UnexpectedFrame {
            expected: "a data frame before an OK status",
            found: "status",
        })
    })?;
    Ok(decode::<Resp>(&message)?)
}
