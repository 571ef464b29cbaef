//! Reading a call's requests: the single message of a unary or server-streaming call, or
//! the stream of messages forwarded to a streaming handler.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::budget::Charged;
use crate::error::{Code, ProtocolError, RpcError, Status};
use crate::frame::FrameType;
use crate::io::FrameReader;

/// The status of a call whose client stopped sending its request for longer than the
/// server's stall timeout.
pub(super) fn request_stalled() -> Status {
    Status::new(
        Code::DeadlineExceeded,
        "the request stalled: nothing more arrived within the server's stall timeout",
    )
}

/// Reads the one message of a unary or server-streaming request, its end frame and the end
/// of the client's side of the stream.
pub(super) async fn read_single_request(reader: &mut FrameReader) -> Result<Bytes, RpcError> {
    // The usual case: the message, its end and the stream's end came with the header.
    if let Some((message, _)) = reader.take_last_pair(FrameType::Data, FrameType::End) {
        return Ok(message);
    }
    let message = match reader.next_frame().await?.ok_or(ProtocolError::Truncated)? {
        frame if frame.kind == FrameType::Data => frame.payload,
        frame => {
            return Err(ProtocolError::UnexpectedFrame {
                expected: "data",
                found: frame.kind.name(),
            }
            .into())
        }
    };
    match reader.next_frame().await?.ok_or(ProtocolError::Truncated)? {
        frame if frame.kind == FrameType::End => {}
        frame => {
            return Err(ProtocolError::UnexpectedFrame {
                expected: "end",
                found: frame.kind.name(),
            }
            .into())
        }
    }
    // The client finishes its side with the end frame (usually in the same packet). After
    // that nothing can arrive on it; a cancel comes on a cancel stream.
    reader.wait_closed().await?;
    Ok(message)
}

/// Forwards streamed request messages to the handler, then watches the request side until
/// the call ends: it returns only with an error (reset, protocol violation, a message the
/// receive budget has no room for).
pub(super) async fn watch_request(
    reader: &mut FrameReader,
    messages: mpsc::Sender<Charged>,
) -> Result<std::convert::Infallible, RpcError> {
    loop {
        let frame = reader.next_frame().await?.ok_or(ProtocolError::Truncated)?;
        match frame.kind {
            // A message waiting for the handler counts against the receive budget until
            // the handler takes it. A handler that stopped reading its requests simply
            // misses the rest.
            FrameType::Data => {
                let message = Charged::new(frame.payload, reader.budget()).map_err(|e| {
                    ProtocolError::ReceiveBudgetExhausted {
                        scope: e.scope,
                        limit: e.limit as u64,
                    }
                })?;
                let _ = messages.send(message).await;
            }
            FrameType::End => break,
            other => {
                return Err(ProtocolError::UnexpectedFrame {
                    expected: "data or end",
                    found: other.name(),
                }
                .into())
            }
        }
    }
    // The handler's request stream ends here.
    drop(messages);
    reader.wait_closed().await?;
    // The client finished its side cleanly; nothing more can happen on it.
    std::future::pending().await
}
