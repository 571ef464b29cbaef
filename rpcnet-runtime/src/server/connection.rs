//! One connection: accepts its streams until it closes or the server stops, a task per
//! call; reads its unidirectional streams (cancels and one-way messages).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use s2n_quic::stream::{PeerStream, ReceiveStream};
use tracing::{debug, trace, Instrument};

use super::call::serve_stream;
use super::inflight::Inflight;
use super::state::{Admitted, CallGuard, ConnShared, ServerState, Shared};
use crate::budget::ConnBudget;
use crate::cancel::{parse_cancel, CancelRegistry};
use crate::error::{ProtocolError, RpcError};
use crate::frame::{FrameType, STREAM_KIND_CANCEL};
use crate::io::{stream_error, FrameReader};
use crate::one_way::OneWayMessage;
use crate::transport::app_error;

/// The most bytes of a cancel stream: its kind and a stream id.
const CANCEL_LEN: usize = 9;

pub(super) async fn serve_connection(
    connection: s2n_quic::Connection,
    shared: Arc<Shared>,
    admitted: Admitted,
) {
    let peer = connection.remote_addr().ok();
    let peer_certificate = crate::peer::peer_certificate(&connection);
    let span = tracing::debug_span!("connection", id = connection.id(), peer = ?peer);
    let serve = async move {
        debug!("accepted");
        let (handle, mut acceptor) = connection.split();
        let conn = Arc::new(ConnShared {
            shared: Arc::clone(&shared),
            peer,
            peer_certificate,
            inflight: Inflight::default(),
            registry: CancelRegistry::default(),
            budget: ConnBudget::new(shared.config.receive_budget.0, &shared.budget),
        });
        shared.add_connection(&conn);
        let mut state = shared.state.subscribe();
        'serving: loop {
            let current = *state.borrow_and_update();
            if current == ServerState::Closed {
                break;
            }
            let draining = current == ServerState::Draining;
            // One wait for a change of the server's state serves every stream accepted until
            // it fires (making it anew per stream cost a waiter registration per call).
            let changed = state.changed();
            tokio::pin!(changed);
            loop {
                // A change of the server's state comes first: a stream that arrives after a
                // shutdown began is refused even when both are ready at once.
                tokio::select! {
                    biased;
                    changed = &mut changed => {
                        if changed.is_err() {
                            break 'serving;
                        }
                        continue 'serving;
                    }
                    accepted = acceptor.accept() => match accepted {
                        Ok(Some(PeerStream::Bidirectional(stream))) => {
                            let guard = CallGuard::new(&conn, !draining);
                            // Boxed: tokio moves a task's future several times while
                            // spawning and finishing it.
                            tokio::spawn(Box::pin(serve_stream(stream, guard, draining)));
                        }
                        Ok(Some(PeerStream::Receive(stream))) => {
                            tokio::spawn(read_one_way(stream, Arc::clone(&conn)));
                        }
                        Ok(None) => break 'serving,
                        Err(error) => {
                            debug!(%error, "connection closed");
                            return;
                        }
                    },
                    () = conn.inflight.wait_idle(), if draining => break 'serving,
                }
            }
        }
        debug!("closing");
        handle.close(app_error(app_error::SHUTDOWN));
        drop(admitted);
    };
    // The connection's task is polled for every stream it accepts: without a subscriber
    // that wants the span, entering and leaving it each time is pure cost.
    if span.is_disabled() {
        serve.await;
    } else {
        serve.instrument(span).await;
    }
}

/// Reads a unidirectional stream: a cancel (kind `0x03`) or a one-way message of a kind
/// with an open inbox. A stream of any other kind is refused with STOP_SENDING. A peer that
/// dawdles over its stream is not waited for longer than a handshake may take.
async fn read_one_way(mut stream: ReceiveStream, conn: Arc<ConnShared>) {
    let stall = conn.shared.config.stall_timeout;
    let read = async {
        let mut first = loop {
            match stream.receive().await.map_err(stream_error)? {
                Some(chunk) if chunk.is_empty() => continue,
                Some(chunk) => break chunk,
                None => return Ok(()),
            }
        };
        let kind = first[0];
        if kind == STREAM_KIND_CANCEL {
            return read_cancel(stream, first, &conn.registry).await;
        }
        let Some(inbox) = conn.shared.one_way_inbox(kind) else {
            let _ = stream.stop_sending(app_error(app_error::PROTOCOL));
            return Err(RpcError::from(ProtocolError::UnknownStreamKind(kind)));
        };
        first.advance(1);
        let mut reader = FrameReader::with_budget(
            stream,
            conn.shared.config.max_message_size,
            Arc::clone(&conn.budget),
        );
        reader.push_received(first);
        let payload = match reader.next_frame().await {
            Ok(Some(frame)) if frame.kind == FrameType::Data => frame.payload,
            Ok(Some(frame)) => {
                reader.stop_sending(app_error::PROTOCOL);
                return Err(ProtocolError::UnexpectedFrame {
                    expected: "data",
                    found: frame.kind.name(),
                }
                .into());
            }
            Ok(None) => return Err(ProtocolError::Truncated.into()),
            Err(error) => {
                reader.stop_sending(app_error::PROTOCOL);
                return Err(error);
            }
        };
        reader.wait_closed().await?;
        let message = OneWayMessage {
            from: conn.peer,
            peer_certificate: conn.peer_certificate.clone(),
            payload,
        };
        if !inbox.offer(message) {
            trace!(kind, "one-way inbox full or closed; message dropped");
        }
        Ok(())
    };
    match tokio::time::timeout(stall, read).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%error, "one-way stream failed"),
        Err(_) => debug!("one-way stream timed out"),
    }
}

/// Reads the rest of a cancel stream (`first` holds its first bytes, kind included) and
/// cancels that call.
async fn read_cancel(
    mut stream: ReceiveStream,
    first: Bytes,
    registry: &CancelRegistry,
) -> Result<(), RpcError> {
    let mut bytes = BytesMut::with_capacity(CANCEL_LEN);
    let mut chunk = Some(first);
    while let Some(part) = chunk {
        if bytes.len() + part.len() > CANCEL_LEN {
            let _ = stream.stop_sending(app_error(app_error::PROTOCOL));
            return Err(ProtocolError::Malformed("cancel").into());
        }
        bytes.put_slice(&part);
        chunk = stream.receive().await.map_err(stream_error)?;
    }
    match parse_cancel(&bytes) {
        Some(id) => {
            trace!(stream_id = id, "cancel received");
            registry.cancel(id);
            Ok(())
        }
        None => Err(ProtocolError::Malformed("cancel").into()),
    }
}
