//! Client-side calls: the four call kinds as builders that implement `IntoFuture`, and the
//! machinery under them (request framing, response reading, deadlines, cancellation).

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use s2n_quic::connection::Handle;
use s2n_quic::stream::SendStream;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::cancel::cancel_message;
use crate::client::{put_request_start, CallOptions, RpcClient};
use crate::codec::{decode, put_message, put_message_segments, Frozen, Segments};
use crate::context::{effective_deadline, Deadline};
use crate::error::{CallError, Code, ProtocolError, RpcError, Status};
use crate::frame::{put_frame, FrameType};
use crate::header::parse_status;
use crate::io::{stream_error, FrameReader};
use crate::pool;
use crate::transport::app_error;

/// The send half of a call's stream: reset on drop (cancelling the call on the server)
/// unless the call completed.
#[derive(Debug)]
struct SendGuard {
    tx: Option<SendStream>,
}

impl SendGuard {
    fn new(tx: SendStream) -> Self {
        SendGuard { tx: Some(tx) }
    }

    fn stream(&mut self) -> Result<&mut SendStream, RpcError> {
        self.tx.as_mut().ok_or(RpcError::Cancelled)
    }

    /// The call completed: finish the stream cleanly.
    fn complete(&mut self) {
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
struct CancelGuard {
    handle: Option<Handle>,
    id: u64,
}

impl CancelGuard {
    /// The call completed: nothing to cancel.
    fn complete(&mut self) {
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
fn status_result<E: DeserializeOwned + 'static>(
    status: Status,
    method: &str,
) -> Result<(), CallError<E>> {
    match status.code() {
        Code::Ok => Ok(()),
        Code::Application => Err(CallError::Application(decode::<E>(status.details_bytes())?)),
        _ => Err(RpcError::from_status(status, method).into()),
    }
}

/// Bounds `future` by the call's deadline. A plain function rather than an `async fn`, so
/// the call's future is stored once (an `async fn` would keep its argument and the timeout
/// holding it side by side, doubling what every call allocates and copies).
fn with_deadline<T, E>(
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

/// Opens a call's stream and sends `request` (which already holds the start and, for
/// requests without a stream, the message and end frames). With `finish`, the request side
/// ends right there, in the same packet when it fits, and the stream is read whole;
/// otherwise it is split, and its send half returned for the caller to stream requests on.
async fn open_call(
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
async fn read_single(reader: &mut FrameReader) -> Result<(Option<Bytes>, Status), RpcError> {
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

fn start_single_request(
    client: &RpcClient,
    method: &str,
    deadline: Option<Deadline>,
    options: &CallOptions,
    put_body: impl FnOnce(&mut Segments, usize) -> Result<(), RpcError>,
) -> Result<Frozen, RpcError> {
    let mut out = Segments::with_capacity(256);
    put_request_start(out.buf(), method, deadline, &options.metadata);
    put_body(&mut out, client.config().max_message_size)?;
    put_frame(out.buf(), FrameType::End, &[]);
    Ok(out.freeze())
}

pub(crate) async fn raw_unary(
    client: RpcClient,
    method: &str,
    request: Bytes,
    options: CallOptions,
) -> Result<Bytes, RpcError> {
    let deadline = effective_deadline(options.timeout.or(client.config().default_deadline));
    let call = async {
        let request = start_single_request(&client, method, deadline, &options, |out, limit| {
            if request.len() > limit {
                return Err(RpcError::MessageTooLarge {
                    size: request.len() as u64,
                    limit: limit as u64,
                });
            }
            put_frame(out.buf(), FrameType::Data, &request);
            Ok(())
        })?;
        let (mut reader, _, mut cancel) = open_call(&client, request, true).await?;
        let (message, status) = read_single(&mut reader).await?;
        cancel.complete();
        match status.code() {
            Code::Ok => Ok(message.unwrap_or_default()),
            _ => Err(CallError::<()>::Rpc(RpcError::from_status(status, method))),
        }
    };
    with_deadline(deadline, call).await.map_err(|e| match e {
        CallError::Rpc(e) => e,
        CallError::Application(()) => RpcError::Status(Status::new(Code::Application, "")),
    })
}

macro_rules! call_builder_methods {
    () => {
        /// Sets this call's timeout, overriding the client's default deadline. A call made
        /// while serving another still ends no later than that call's deadline.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.options.timeout = Some(timeout);
            self
        }

        /// Adds a metadata entry to the call's header.
        pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
            self.options.metadata.insert(key, value);
            self
        }

        /// Replaces all of the call's options.
        pub fn options(mut self, options: CallOptions) -> Self {
            self.options = options;
            self
        }
    };
}

/// A unary call: one request, one response. Await it (it implements `IntoFuture`);
/// configure it first with [`timeout`](Self::timeout) or [`metadata`](Self::metadata).
#[must_use = "a call does nothing until it is awaited"]
pub struct UnaryCall<Req, Resp, E> {
    client: RpcClient,
    method: &'static str,
    request: Req,
    options: CallOptions,
    _types: PhantomData<fn() -> (Resp, E)>,
}

impl<Req, Resp, E> std::fmt::Debug for UnaryCall<Req, Resp, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryCall")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp, E> UnaryCall<Req, Resp, E> {
    /// A unary call of `method` (the full `Service.method` name).
    pub fn new(client: RpcClient, method: &'static str, request: Req) -> Self {
        UnaryCall {
            client,
            method,
            request,
            options: CallOptions::default(),
            _types: PhantomData,
        }
    }

    call_builder_methods!();
}

impl<Req, Resp, E> IntoFuture for UnaryCall<Req, Resp, E>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + Send + 'static,
{
    type Output = Result<Resp, CallError<E>>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let UnaryCall {
            client,
            method,
            request,
            options,
            ..
        } = self;
        let deadline = effective_deadline(options.timeout.or(client.config().default_deadline));
        let call = async move {
            let request =
                start_single_request(&client, method, deadline, &options, |out, limit| {
                    put_message_segments(out, FrameType::Data, &request, limit)
                })?;
            let (mut reader, _, mut cancel) = open_call(&client, request, true).await?;
            let (message, status) = read_single(&mut reader).await?;
            cancel.complete();
            status_result::<E>(status, method)?;
            let message = message.ok_or_else(|| {
                RpcError::from(ProtocolError::UnexpectedFrame {
                    expected: "a data frame before an OK status",
                    found: "status",
                })
            })?;
            Ok(decode::<Resp>(&message)?)
        };
        with_deadline(deadline, call).boxed()
    }
}

/// A server-streaming call: one request, a stream of responses. Awaiting it sends the
/// request and gives the [`ResponseStream`].
#[must_use = "a call does nothing until it is awaited"]
pub struct ServerStreamingCall<Req, Resp, E> {
    client: RpcClient,
    method: &'static str,
    request: Req,
    options: CallOptions,
    _types: PhantomData<fn() -> (Resp, E)>,
}

impl<Req, Resp, E> std::fmt::Debug for ServerStreamingCall<Req, Resp, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStreamingCall")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp, E> ServerStreamingCall<Req, Resp, E> {
    /// A server-streaming call of `method`.
    pub fn new(client: RpcClient, method: &'static str, request: Req) -> Self {
        ServerStreamingCall {
            client,
            method,
            request,
            options: CallOptions::default(),
            _types: PhantomData,
        }
    }

    call_builder_methods!();
}

impl<Req, Resp, E> IntoFuture for ServerStreamingCall<Req, Resp, E>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + Send + 'static,
{
    type Output = Result<ResponseStream<Resp, E>, CallError<E>>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let ServerStreamingCall {
            client,
            method,
            request,
            options,
            ..
        } = self;
        let deadline = effective_deadline(options.timeout.or(client.config().default_deadline));
        let call = async move {
            let request =
                start_single_request(&client, method, deadline, &options, |out, limit| {
                    put_message_segments(out, FrameType::Data, &request, limit)
                })?;
            let (reader, _, cancel) = open_call(&client, request, true).await?;
            Ok(ResponseStream::new(
                client,
                reader,
                None,
                cancel,
                deadline.map(|d| d.at),
                method,
            ))
        };
        with_deadline(deadline, call).boxed()
    }
}

/// A client-streaming call: a stream of requests, one response.
#[must_use = "a call does nothing until it is awaited"]
pub struct ClientStreamingCall<S, Resp, E> {
    client: RpcClient,
    method: &'static str,
    requests: S,
    options: CallOptions,
    _types: PhantomData<fn() -> (Resp, E)>,
}

impl<S, Resp, E> std::fmt::Debug for ClientStreamingCall<S, Resp, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStreamingCall")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<S, Resp, E> ClientStreamingCall<S, Resp, E> {
    /// A client-streaming call of `method`, sending every item of `requests`.
    pub fn new(client: RpcClient, method: &'static str, requests: S) -> Self {
        ClientStreamingCall {
            client,
            method,
            requests,
            options: CallOptions::default(),
            _types: PhantomData,
        }
    }

    call_builder_methods!();
}

impl<S, Resp, E> IntoFuture for ClientStreamingCall<S, Resp, E>
where
    S: Stream + Send + 'static,
    S::Item: Serialize + Send,
    Resp: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + Send + 'static,
{
    type Output = Result<Resp, CallError<E>>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let ClientStreamingCall {
            client,
            method,
            requests,
            options,
            ..
        } = self;
        let deadline = effective_deadline(options.timeout.or(client.config().default_deadline));
        let call = async move {
            let (mut reader, pump, mut cancel) =
                open_streaming_call(&client, method, deadline, &options, requests).await?;
            let result = read_single(&mut reader).await;
            if result.is_ok() {
                cancel.complete();
            }
            let (message, status) = pump.finish_with(result)?;
            status_result::<E>(status, method)?;
            let message = message.ok_or_else(|| {
                RpcError::from(ProtocolError::UnexpectedFrame {
                    expected: "a data frame before an OK status",
                    found: "status",
                })
            })?;
            Ok(decode::<Resp>(&message)?)
        };
        with_deadline(deadline, call).boxed()
    }
}

/// A bidirectional-streaming call: a stream of requests, a stream of responses, both
/// flowing at once.
#[must_use = "a call does nothing until it is awaited"]
pub struct BidiStreamingCall<S, Resp, E> {
    client: RpcClient,
    method: &'static str,
    requests: S,
    options: CallOptions,
    _types: PhantomData<fn() -> (Resp, E)>,
}

impl<S, Resp, E> std::fmt::Debug for BidiStreamingCall<S, Resp, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BidiStreamingCall")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl<S, Resp, E> BidiStreamingCall<S, Resp, E> {
    /// A bidirectional-streaming call of `method`, sending every item of `requests`.
    pub fn new(client: RpcClient, method: &'static str, requests: S) -> Self {
        BidiStreamingCall {
            client,
            method,
            requests,
            options: CallOptions::default(),
            _types: PhantomData,
        }
    }

    call_builder_methods!();
}

impl<S, Resp, E> IntoFuture for BidiStreamingCall<S, Resp, E>
where
    S: Stream + Send + 'static,
    S::Item: Serialize + Send,
    Resp: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + Send + 'static,
{
    type Output = Result<ResponseStream<Resp, E>, CallError<E>>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let BidiStreamingCall {
            client,
            method,
            requests,
            options,
            ..
        } = self;
        let deadline = effective_deadline(options.timeout.or(client.config().default_deadline));
        let call = async move {
            let (reader, pump, cancel) =
                open_streaming_call(&client, method, deadline, &options, requests).await?;
            Ok(ResponseStream::new(
                client,
                reader,
                Some(pump),
                cancel,
                deadline.map(|d| d.at),
                method,
            ))
        };
        with_deadline(deadline, call).boxed()
    }
}

/// The request side of a streaming-request call, written by a task of its own so requests
/// and responses flow at the same time.
#[derive(Debug)]
struct Pump {
    /// Completed (`send(())`) when the call ends well; dropped when it is abandoned, which
    /// makes the task reset the stream.
    done: Option<oneshot::Sender<()>>,
    /// A local failure of the request side (an item that cannot be encoded or is too large).
    failed: oneshot::Receiver<RpcError>,
}

impl Pump {
    /// Ends the call: on success the stream is finished cleanly; a local request-side
    /// failure takes precedence over what the response side saw (it caused it).
    fn finish_with<T>(mut self, result: Result<T, RpcError>) -> Result<T, RpcError> {
        if let Ok(error) = self.failed.try_recv() {
            return Err(error);
        }
        if result.is_ok() {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
        result
    }

    fn local_failure(&mut self) -> Option<RpcError> {
        self.failed.try_recv().ok()
    }
}

async fn open_streaming_call<S>(
    client: &RpcClient,
    method: &str,
    deadline: Option<Deadline>,
    options: &CallOptions,
    requests: S,
) -> Result<(FrameReader, Pump, CancelGuard), RpcError>
where
    S: Stream + Send + 'static,
    S::Item: Serialize + Send,
{
    let mut start = crate::codec::message_buffer(256);
    put_request_start(&mut start, method, deadline, &options.metadata);
    let (reader, guard, cancel) = open_call(client, Frozen::One([start.freeze()]), false).await?;
    let guard = guard.ok_or(RpcError::Cancelled)?;
    let (done_tx, done_rx) = oneshot::channel();
    let (failed_tx, failed_rx) = oneshot::channel();
    let limit = client.config().max_message_size;
    tokio::spawn(pump_requests(guard, requests, limit, done_rx, failed_tx));
    Ok((
        reader,
        Pump {
            done: Some(done_tx),
            failed: failed_rx,
        },
        cancel,
    ))
}

async fn pump_requests<S>(
    mut guard: SendGuard,
    requests: S,
    limit: usize,
    mut done: oneshot::Receiver<()>,
    failed: oneshot::Sender<RpcError>,
) where
    S: Stream + Send + 'static,
    S::Item: Serialize + Send,
{
    let requests = std::pin::pin!(requests);
    let write = write_requests(&mut guard, requests, limit);
    tokio::select! {
        written = write => match written {
            // The end frame is out: finish the request side.
            Ok(()) => guard.complete(),
            // The guard resets the stream on the way out.
            Err(error) => {
                let _ = failed.send(error);
            }
        },
        // The response side ended first (the server answered early, or the call was
        // dropped): stop sending, resetting the stream if the call was abandoned.
        outcome = &mut done => {
            if outcome.is_ok() {
                guard.complete();
            }
        }
    }
}

async fn write_requests<S>(
    guard: &mut SendGuard,
    mut requests: Pin<&mut S>,
    limit: usize,
) -> Result<(), RpcError>
where
    S: Stream,
    S::Item: Serialize,
{
    // Writes go out in pooled buffers (see `pool`), taken once there is something to send.
    loop {
        let mut next = requests.next().await;
        let mut buffer = pool::write_buffer();
        // Coalesce the items that are already available into one write.
        let ended = loop {
            match next {
                Some(item) => put_message(&mut buffer, FrameType::Data, &item, limit)?,
                None => {
                    put_frame(&mut buffer, FrameType::End, &[]);
                    break true;
                }
            }
            if buffer.len() >= pool::WRITE_CHUNK {
                break false;
            }
            match requests.next().now_or_never() {
                Some(ready) => next = ready,
                None => break false,
            }
        };
        let stream = guard.stream()?;
        stream
            .send(pool::share(buffer))
            .await
            .map_err(stream_error)?;
        if ended {
            return Ok(());
        }
    }
}

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
    fn new(
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
