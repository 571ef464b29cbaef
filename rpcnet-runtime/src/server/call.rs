//! One call's life on the server: reading its stream's start, refusing what cannot be
//! served, running the handler against the call's deadline, cancellation and request
//! stream, and ending the stream according to the outcome.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::future::OptionFuture;
use futures::FutureExt;
use s2n_quic::stream::{BidirectionalStream, SendStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, trace, Instrument};

use super::reply::{handler_panicked, send_status_alone, write_reply};
use super::request::{read_single_request, request_stalled, watch_request};
use super::state::{CallGuard, ConnShared, Method, ServerState};
use crate::budget::ConnBudget;
use crate::context::CallContext;
use crate::deadline::{with_deadline, with_timeout};
use crate::error::{Code, ProtocolError, RpcError, Status};
use crate::frame::{FrameType, STREAM_KIND_RPC};
use crate::handler::{Reply, RequestBody, RequestMessages};
use crate::header::{parse_request_header, RequestHeader};
use crate::io::FrameReader;
use crate::transport::app_error;

/// Request messages of a streaming call buffered between the network and the handler.
const REQUEST_QUEUE: usize = 16;

/// Serves one call's stream. A plain function returning the future, so that the stream's
/// halves are stored in the future once (an `async fn` would keep its arguments and the
/// locals made from them side by side): every call allocates this future, and the smaller
/// it is, the less the allocator and the copies of it cost.
pub(super) fn serve_stream(
    stream: BidirectionalStream,
    guard: CallGuard,
    draining: bool,
) -> impl Future<Output = ()> {
    let stream_id = stream.id();
    let (rx, mut tx) = stream.split();
    let limit = guard.conn.shared.config.max_message_size;
    // The receive budget is attached only to a request that does not arrive whole.
    let mut reader = FrameReader::new(rx, limit);
    async move {
        let conn = &*guard.conn;
        // Starting a call and serving it are functions of their own, so that what the one
        // takes is not kept beside what the other takes.
        let Some((ctx, method)) = start_call(&mut reader, &mut tx, stream_id, conn, draining).await
        else {
            return;
        };
        serve_call(&mut reader, &mut tx, stream_id, conn, ctx, method).await;
    }
}

async fn serve_call(
    reader: &mut FrameReader,
    tx: &mut SendStream,
    stream_id: u64,
    conn: &ConnShared,
    ctx: CallContext,
    method: &Method,
) {
    let handler = &method.handler;
    // Only with metrics on (a clock reading per call is not free); boxed, so that a call
    // without them carries one pointer for them.
    let meter = method.metrics.as_ref().map(|metrics| {
        metrics.started();
        Box::new((metrics, Instant::now()))
    });
    let span = call_span(&ctx, stream_id);
    // Registered for cancels only once the call has to wait (see `CancelRegistry`).
    let mut registration = None;

    let outcome = async {
        trace!("started");
        let limit = conn.shared.config.max_message_size;
        // The request side: a single message is read before the handler starts; a stream
        // of messages is forwarded to it while it runs.
        let (body, forward) = if handler.kind.streams_requests() {
            let (messages_tx, messages_rx) = mpsc::channel(REQUEST_QUEUE);
            let failure = Arc::new(Mutex::new(None));
            let body = RequestBody::Stream(RequestMessages {
                rx: messages_rx,
                failure: Arc::clone(&failure),
            });
            (body, Some((messages_tx, failure)))
        } else {
            match reader.take_last_pair(FrameType::Data, FrameType::End) {
                // The usual case: the message, its end and the stream's end came with the
                // header.
                Some((message, _)) => (RequestBody::Single(message), None),
                // Otherwise the rest is waited for, bounded by the stall timeout; boxed, so
                // that the usual case's future does not carry this wait's state.
                None => match Box::pin(with_timeout(conn.shared.config.stall_timeout, {
                    reader.attach_budget(&conn.budget);
                    read_single_request(reader)
                }))
                .await
                {
                    Some(Ok(message)) => (RequestBody::Single(message), None),
                    Some(Err(error)) => return outcome_for(error),
                    None => return Outcome::Failed(Box::new(request_stalled())),
                },
            }
        };
        let failure = forward.as_ref().map(|(_, failure)| Arc::clone(failure));
        // The handler's future is made here, so that the reply's future holds it rather
        // than the request body it is made from.
        // A handler that panics, while making its future or while it runs, fails its own
        // call with `Internal`; the server and the connection's other calls carry on.
        let reply = std::panic::catch_unwind(AssertUnwindSafe(|| {
            (handler.call)(ctx.clone(), body, limit)
        }));
        let respond = ctx.clone().scope(async {
            let reply = match reply {
                Ok(reply) => AssertUnwindSafe(reply)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Reply::Single(Err(handler_panicked()))),
                Err(_) => Reply::Single(Err(handler_panicked())),
            };
            let stall = conn.shared.config.stall_timeout;
            write_reply(tx, reply, limit, stall, failure.as_deref()).await
        });
        // Only a stream of requests is watched while the handler runs (a single request
        // was read through its end already); boxed, as few calls need it.
        let watch = forward.map(|(messages, _)| {
            reader.attach_budget(&conn.budget);
            Box::pin(watch_request(&mut *reader, messages))
        });
        // The reply is polled first: a call answered at once is done before anything else
        // (the cancel signal, the request side) has to be watched.
        tokio::select! {
            biased;
            written = with_deadline(ctx.deadline(), respond) => match written {
                Some(Ok(code)) => Outcome::Done(Some(code)),
                Some(Err(error)) => {
                    debug!(error = %error, "could not write the reply");
                    Outcome::Done(None)
                }
                None => Outcome::DeadlineExceeded,
            },
            () = poll_fn(|cx| {
                registration.get_or_insert_with(|| conn.registry.register(stream_id, &ctx));
                ctx.signal().poll_cancelled(cx)
            }) => Outcome::Cancelled,
            // Without a watcher the branch ends at once, matches nothing and is disabled.
            Some(watched) = OptionFuture::from(watch) => match watched {
                Err(error) => outcome_for(error),
                Ok(never) => match never {},
            },
        }
    };
    // Always instrumented (a span nobody subscribes to costs a check per poll): one await
    // instead of two keeps this future, which every call allocates, smaller.
    let outcome = outcome.instrument(span.clone()).await;

    let _enter = span.enter();
    let cancel = ctx.signal();
    let code = match &outcome {
        Outcome::Done(code) => *code,
        Outcome::DeadlineExceeded => Some(Code::DeadlineExceeded),
        Outcome::Cancelled => Some(Code::Cancelled),
        Outcome::Failed(status) => Some(status.code()),
    };
    // A reply that could not be written went to a client that is gone.
    let code = code.unwrap_or(Code::Cancelled);
    span.record("rpc.response.status_code", code.as_u16());
    if let Some(meter) = meter {
        let (metrics, started) = *meter;
        metrics.finished(code, started.elapsed());
    }
    match outcome {
        Outcome::Done(_) => {
            trace!("completed");
            // Read the client's end of stream rather than abandon the receive side: an
            // abandoned side costs a STOP_SENDING frame, while the client's FIN follows the
            // response within a round trip. The QUIC stream counts against the client's
            // stream limit until then anyway, so waiting holds nothing extra.
            // Bounded by the stall timeout, and boxed (see above) as most clients have
            // finished by now.
            // During a shutdown the connection closes as soon as its calls are done, and
            // closing drops what the client has not acknowledged: the reply then waits for
            // its acknowledgement.
            let draining = conn.shared.draining.load(Ordering::Acquire);
            if !reader.is_closed() || draining {
                let stall = conn.shared.config.stall_timeout;
                Box::pin(async move {
                    if !reader.is_closed() {
                        reader.attach_budget(&conn.budget);
                        let _ = with_timeout(stall, reader.wait_closed()).await;
                    }
                    if draining {
                        let _ = with_timeout(stall, poll_fn(|cx| tx.poll_flush(cx))).await;
                    }
                })
                .await;
            }
        }
        Outcome::DeadlineExceeded => {
            debug!("deadline exceeded");
            cancel.cancel();
            reader.stop_sending(app_error::CANCELLED);
            let status = Status::new(Code::DeadlineExceeded, "deadline exceeded on the server");
            let _ = send_status_alone(tx, &status).await;
        }
        Outcome::Cancelled => {
            cancel.cancel();
            // Cancelled by the client, or by a shutdown whose grace period ran out.
            let code = if *conn.shared.state.borrow() == ServerState::Running {
                debug!("cancelled by the client");
                app_error::CANCELLED
            } else {
                debug!("cancelled by the shutdown");
                app_error::SHUTDOWN
            };
            let _ = tx.reset(app_error(code));
        }
        Outcome::Failed(status) => {
            debug!(%status, "failed");
            cancel.cancel();
            reader.stop_sending(app_error::PROTOCOL);
            let _ = send_status_alone(tx, &status).await;
        }
    }
}

/// `Service.method` as its service and method parts (all of it the method if it has no
/// dot).
pub(crate) fn service_and_method(full: &str) -> (&str, &str) {
    full.rsplit_once('.').unwrap_or(("", full))
}

/// The call's span, with the OpenTelemetry RPC attributes (the status code is recorded
/// when the call ends) and the trace id the client sent, if any.
fn call_span(ctx: &CallContext, stream_id: u64) -> tracing::Span {
    // Field values are evaluated only when the span is enabled.
    let span = tracing::debug_span!(
        "call",
        otel.name = %ctx.method(),
        otel.kind = "server",
        rpc.system = "rpcnet",
        rpc.service = %service_and_method(ctx.method()).0,
        rpc.method = %service_and_method(ctx.method()).1,
        network.peer.address = tracing::field::Empty,
        network.peer.port = tracing::field::Empty,
        rpc.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        stream_id,
    );
    if !span.is_disabled() {
        if let Some(peer) = ctx.peer() {
            span.record("network.peer.address", tracing::field::display(peer.ip()));
            span.record("network.peer.port", peer.port());
        }
        if let Some(trace) = ctx.trace() {
            span.record("trace_id", tracing::field::display(trace.trace_id()));
        }
    }
    span
}

fn outcome_for(error: RpcError) -> Outcome {
    match error {
        RpcError::Cancelled | RpcError::Unavailable { .. } | RpcError::Stream(_) => {
            Outcome::Cancelled
        }
        other => Outcome::Failed(Box::new(other.to_status())),
    }
}

/// Reads the start of a call's stream: its kind and, for a call, the request header. Answers
/// what cannot be served (a malformed start, an unknown method, a draining server) and
/// returns the call's context and its handler for a call to serve.
async fn start_call<'a>(
    reader: &mut FrameReader,
    tx: &mut SendStream,
    stream_id: u64,
    conn: &'a ConnShared,
    draining: bool,
) -> Option<(CallContext, &'a Method)> {
    let shared = &*conn.shared;
    // A peer that opens a stream and stalls is dropped after the stall timeout. The
    // header nearly always arrives with the stream, so the timer is only armed when the
    // first attempt has to wait.
    let start = with_timeout(
        shared.config.stall_timeout,
        read_start(&mut *reader, &conn.budget),
    );
    let (header, name, method) = match start.await {
        None => {
            debug!(stream_id, "no request header in time");
            let _ = tx.reset(app_error(app_error::PROTOCOL));
            return None;
        }
        Some(Err(StartError::Ignore)) => return None,
        Some(Err(StartError::Reject(status))) => {
            debug!(stream_id, %status, "rejected stream");
            reader.stop_sending(app_error::PROTOCOL);
            let _ = send_status_alone(tx, &status).await;
            return None;
        }
        Some(Ok(header)) => match shared
            .methods
            .get(&header.method[..])
            .or_else(|| shared.late_methods.get(&header.method[..]))
        {
            Some(method) => (header, Arc::clone(&method.name), method),
            None => {
                debug!(stream_id, method = %header.method(), "unimplemented method");
                let status = Status::refused(
                    Code::Unimplemented,
                    format!("method `{}` is not implemented", header.method()),
                );
                reader.stop_sending(app_error::PROTOCOL);
                let _ = send_status_alone(tx, &status).await;
                return None;
            }
        },
    };
    if draining {
        reader.stop_sending(app_error::SHUTDOWN);
        let status = Status::refused(Code::Unavailable, "server is shutting down");
        let _ = send_status_alone(tx, &status).await;
        return None;
    }
    // Every call ends by the server's maximum deadline, whatever the client asked for.
    let max = shared.config.max_deadline;
    let deadline = Some(Instant::now() + header.deadline.map_or(max, |d| d.min(max)));
    let ctx = CallContext::new(name, conn.peer, deadline, header.metadata);
    Some((ctx, method))
}

/// How a call ended, decided while its reply and its request stream race.
enum Outcome {
    /// The reply went out with this status (or, `None`, the client is gone and there is
    /// no one to tell).
    Done(Option<Code>),
    /// The server enforced the deadline.
    DeadlineExceeded,
    /// The client reset the stream.
    Cancelled,
    /// The request broke the protocol or a limit. (Boxed: a rare case, which would
    /// otherwise make every call's future larger.)
    Failed(Box<Status>),
}

enum StartError {
    /// The peer went away before sending anything: nothing to answer.
    Ignore,
    /// Answer with this status.
    Reject(Status),
}

/// Reads the kind byte and the request header that open a call's stream.
async fn read_start(
    reader: &mut FrameReader,
    budget: &Arc<ConnBudget>,
) -> Result<RequestHeader, StartError> {
    match reader.read_kind().await {
        Ok(Some(STREAM_KIND_RPC)) => {}
        Ok(Some(kind)) => {
            return Err(StartError::Reject(
                RpcError::from(ProtocolError::UnknownStreamKind(kind)).to_status(),
            ))
        }
        Ok(None) | Err(_) => return Err(StartError::Ignore),
    }
    // A header that did not arrive whole is assembled within the receive budget.
    if !reader.has_whole_frame() {
        reader.attach_budget(budget);
    }
    match reader.next_frame().await {
        Ok(Some(frame)) if frame.kind == FrameType::Header => parse_request_header(frame.payload)
            .map_err(|e| StartError::Reject(RpcError::from(e).to_status())),
        Ok(Some(frame)) => Err(StartError::Reject(
            RpcError::from(ProtocolError::UnexpectedFrame {
                expected: "header",
                found: frame.kind.name(),
            })
            .to_status(),
        )),
        Ok(None) => Err(StartError::Ignore),
        Err(error @ RpcError::Protocol(_)) => Err(StartError::Reject(error.to_status())),
        Err(_) => Err(StartError::Ignore),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use tokio::sync::watch;

    use super::*;
    use crate::budget::{ConnBudget, ServerBudget};
    use crate::config::RpcConfig;
    use crate::server::state::Shared;
    use crate::transport;

    /// Every call allocates its future (boxed, see `serve_connection`); glibc serves
    /// requests up to about 1 KiB from its per-thread cache and larger ones from its large
    /// bins, which first consolidate the fast bins. A call's future stays in the cache.
    const CALL_FUTURE_BUDGET: usize = 1024;

    #[tokio::test]
    async fn a_calls_future_fits_the_allocators_per_thread_cache() {
        let config = RpcConfig::new(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem"),
            "127.0.0.1:0",
        )
        .with_key_path(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../certs/test_key.pem"
        ))
        .with_server_name("localhost");
        let mut server = transport::start_server(&config).expect("server endpoint");
        let addr = server.local_addr().expect("bound");
        let client = transport::start_client(&config, addr).expect("client endpoint");
        let connect = s2n_quic::client::Connect::new(addr).with_server_name("localhost");
        let mut connection = client.connect(connect).await.expect("connects");
        let mut opened = connection
            .open_bidirectional_stream()
            .await
            .expect("stream");
        opened
            .send(Bytes::from_static(&[STREAM_KIND_RPC]))
            .await
            .expect("sent");
        let mut accepted = server.accept().await.expect("a connection");
        let stream = accepted
            .accept_bidirectional_stream()
            .await
            .expect("accepts")
            .expect("a stream");

        let (state, _) = watch::channel(ServerState::Running);
        let shared = Arc::new(Shared {
            config,
            methods: HashMap::default(),
            late_methods: Default::default(),
            inflight: Default::default(),
            state,
            grace: Mutex::new(None),
            one_way: Mutex::default(),
            connections: Mutex::default(),
            connection_count: Default::default(),
            draining: Default::default(),
            budget: ServerBudget::new(1 << 20),
        });
        let conn = Arc::new(ConnShared {
            budget: ConnBudget::new(1 << 20, &shared.budget),
            shared,
            peer: None,
            peer_certificate: None,
            inflight: Default::default(),
            registry: Default::default(),
        });
        let future = serve_stream(stream, CallGuard::new(&conn, false), false);
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= CALL_FUTURE_BUDGET,
            "a call's future is {size} bytes, over {CALL_FUTURE_BUDGET}"
        );
    }
}
