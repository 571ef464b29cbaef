//! Server-side handlers: the untyped [`MethodHandler`] the server dispatches to, and the
//! typed adapters generated code uses to build one from an `async fn` of a service trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::mpsc;

use crate::budget::Charged;
use crate::codec::{decode, encode, put_item, put_message_segments, Segments};
use crate::context::CallContext;
use crate::error::{Code, Status};
use crate::frame::{put_frame, FrameType};

/// The shape of a method: whether requests and responses are single messages or streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    BidiStreaming,
}

impl MethodKind {
    pub(crate) fn streams_requests(self) -> bool {
        matches!(
            self,
            MethodKind::ClientStreaming | MethodKind::BidiStreaming
        )
    }
}

/// The request side of a call, as the server hands it to a handler.
#[derive(Debug)]
pub(crate) enum RequestBody {
    /// The single request message.
    Single(Bytes),
    /// The stream of request messages.
    Stream(RequestMessages),
}

/// The raw request messages of a streaming-request call, fed by the server's reader.
#[derive(Debug)]
pub(crate) struct RequestMessages {
    pub(crate) rx: mpsc::Receiver<Charged>,
    /// Set when a message could not be decoded; the call then fails with this status.
    pub(crate) failure: Arc<Mutex<Option<Status>>>,
}

/// What a handler produces.
pub(crate) enum Reply {
    /// The encoded data frame of a single response, or the status the call ends with.
    Single(Result<Segments, Status>),
    /// A stream of responses that encodes itself into the write buffer.
    Stream(Pin<Box<dyn EncodeStream>>),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Single(r) => f.debug_tuple("Single").field(r).finish(),
            Reply::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A response stream that writes each item as a data frame straight into the buffer that
/// goes to the network (no per-item allocation).
pub(crate) trait EncodeStream: Send {
    /// Encodes ready items into `out` until it holds at least `full` bytes. `Ready(Some(Ok))`
    /// means it is full; `Pending`, that no more items are ready now (`out` may have some);
    /// `Ready(None)`, that the stream ended; `Some(Err)` ends the call with that status.
    fn poll_encode(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
        full: usize,
        limit: usize,
    ) -> Poll<Option<Result<(), Status>>>;
}

/// A handler: the call's context, its request, and the server's message size limit.
type HandlerFn = dyn Fn(CallContext, RequestBody, usize) -> BoxFuture<'static, Reply> + Send + Sync;

/// A method's handler, as registered on an `RpcServer`. Built by the typed adapters in
/// `rpcnet::__private` (for generated services) or by `RpcServer::register`.
#[derive(Clone)]
pub struct MethodHandler {
    pub(crate) kind: MethodKind,
    pub(crate) call: Arc<HandlerFn>,
}

impl std::fmt::Debug for MethodHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodHandler")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The status for an application error value.
fn application_status<E: Serialize>(error: &E) -> Status {
    match encode(error) {
        Ok(details) => Status::application(details),
        Err(e) => Status::new(
            Code::Internal,
            format!("could not encode the application error: {e}"),
        ),
    }
}

fn single_reply<T: Serialize + 'static, E: Serialize>(result: Result<T, E>, limit: usize) -> Reply {
    Reply::Single(match result {
        Ok(value) => {
            let mut out = Segments::with_capacity(128);
            put_message_segments(&mut out, FrameType::Data, &value, limit)
                .map(|()| out)
                .map_err(|e| e.to_status())
        }
        Err(error) => Err(application_status(&error)),
    })
}

fn decode_single<Req: DeserializeOwned + 'static>(body: RequestBody) -> Result<Req, Status> {
    match body {
        RequestBody::Single(bytes) => decode(&bytes).map_err(|e| e.to_status()),
        RequestBody::Stream(_) => Err(Status::new(Code::Internal, "expected a single request")),
    }
}

/// The typed request stream a handler of a streaming-request method receives.
pub type RequestStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

fn decode_stream<Req: DeserializeOwned + Send + 'static>(body: RequestBody) -> RequestStream<Req> {
    match body {
        RequestBody::Single(_) => Box::pin(futures::stream::empty()),
        RequestBody::Stream(RequestMessages { mut rx, failure }) => {
            let mut failed = false;
            Box::pin(futures::stream::poll_fn(move |cx| {
                if failed {
                    return Poll::Ready(None);
                }
                let Some(message) = std::task::ready!(rx.poll_recv(cx)) else {
                    return Poll::Ready(None);
                };
                match decode::<Req>(message.bytes()) {
                    Ok(item) => Poll::Ready(Some(item)),
                    Err(error) => {
                        // The handler sees the stream end; the call fails with this status.
                        failed = true;
                        rx.close();
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(error.to_status());
                        }
                        Poll::Ready(None)
                    }
                }
            }))
        }
    }
}

/// Adapts a stream of `Result<T, E>` into an [`EncodeStream`]; an `Err` item ends the call
/// with the application error.
struct TypedReplyStream<S> {
    inner: S,
}

impl<S, T, E> EncodeStream for TypedReplyStream<S>
where
    S: Stream<Item = Result<T, E>> + Send + Unpin,
    T: Serialize + 'static,
    E: Serialize,
{
    fn poll_encode(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
        full: usize,
        limit: usize,
    ) -> Poll<Option<Result<(), Status>>> {
        // The loop runs here, in the typed code, so each item costs one poll of the
        // handler's stream and one append, with no dynamic call per item.
        while out.len() < full {
            // The item is encoded where the poll left it: moving it first costs a stall
            // per item (its halves were just stored separately, and are read back as one).
            match &self.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Ok(item))) => {
                    if let Err(error) = put_item(out, FrameType::Data, item, limit) {
                        return Poll::Ready(Some(Err(error.to_status())));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(application_status(error))))
                }
            }
        }
        Poll::Ready(Some(Ok(())))
    }
}

fn stream_reply<S, T, E>(result: Result<S, E>) -> Reply
where
    S: Stream<Item = Result<T, E>> + Send + 'static,
    T: Serialize + 'static,
    E: Serialize + 'static,
{
    match result {
        Ok(stream) => Reply::Stream(Box::pin(TypedReplyStream {
            inner: Box::pin(stream),
        })),
        Err(error) => Reply::Single(Err(application_status(&error))),
    }
}

impl MethodHandler {
    fn new<F>(kind: MethodKind, call: F) -> Self
    where
        F: Fn(CallContext, RequestBody, usize) -> BoxFuture<'static, Reply> + Send + Sync + 'static,
    {
        MethodHandler {
            kind,
            call: Arc::new(call),
        }
    }

    /// The method's kind.
    pub fn kind(&self) -> MethodKind {
        self.kind
    }

    /// An untyped unary handler over raw message bytes.
    pub fn raw_unary<F, Fut>(handler: F) -> Self
    where
        F: Fn(CallContext, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        MethodHandler::new(MethodKind::Unary, move |ctx, body, _limit| {
            let handler = Arc::clone(&handler);
            async move {
                let request = match body {
                    RequestBody::Single(bytes) => bytes,
                    RequestBody::Stream(_) => Bytes::new(),
                };
                Reply::Single(handler(ctx, request).await.map(|payload| {
                    let mut out = BytesMut::with_capacity(payload.len() + 5);
                    put_frame(&mut out, FrameType::Data, &payload);
                    Segments::from(out)
                }))
            }
            .boxed()
        })
    }

    /// A typed unary handler.
    pub fn unary<Req, Resp, E, F, Fut>(handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        MethodHandler::new(MethodKind::Unary, move |_ctx, body, limit| {
            let handler = Arc::clone(&handler);
            async move {
                match decode_single::<Req>(body) {
                    Ok(request) => single_reply(handler(request).await, limit),
                    Err(status) => Reply::Single(Err(status)),
                }
            }
            .boxed()
        })
    }

    /// A typed server-streaming handler.
    pub fn server_streaming<Req, Resp, E, S, F, Fut>(handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        S: Stream<Item = Result<Resp, E>> + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        MethodHandler::new(MethodKind::ServerStreaming, move |_ctx, body, _limit| {
            let handler = Arc::clone(&handler);
            async move {
                match decode_single::<Req>(body) {
                    Ok(request) => stream_reply(handler(request).await),
                    Err(status) => Reply::Single(Err(status)),
                }
            }
            .boxed()
        })
    }

    /// A typed client-streaming handler.
    pub fn client_streaming<Req, Resp, E, F, Fut>(handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(RequestStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        MethodHandler::new(MethodKind::ClientStreaming, move |_ctx, body, limit| {
            let handler = Arc::clone(&handler);
            async move { single_reply(handler(decode_stream(body)).await, limit) }.boxed()
        })
    }

    /// A typed bidirectional-streaming handler.
    pub fn bidi_streaming<Req, Resp, E, S, F, Fut>(handler: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        S: Stream<Item = Result<Resp, E>> + Send + 'static,
        F: Fn(RequestStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        MethodHandler::new(MethodKind::BidiStreaming, move |_ctx, body, _limit| {
            let handler = Arc::clone(&handler);
            async move { stream_reply(handler(decode_stream(body)).await) }.boxed()
        })
    }
}

/// The methods a service contributes to a server, by full wire name.
#[derive(Debug, Default)]
pub struct MethodTable {
    pub(crate) methods: Vec<(String, MethodHandler)>,
}

impl MethodTable {
    /// Adds a method under its full wire name (`Service.method`).
    pub fn add(&mut self, name: impl Into<String>, handler: MethodHandler) {
        self.methods.push((name.into(), handler));
    }
}

/// A service that can be added to an `RpcServer`: implemented by the `XServer` types that
/// `#[rpcnet::service]` generates.
pub trait Service: Send + Sync + 'static {
    /// The service's wire name (the part before the dot in method names).
    fn name(&self) -> &str;

    /// Registers the service's methods.
    fn register(self, methods: &mut MethodTable);
}
