//! The streaming call kinds: server streaming, client streaming and bidirectional, as
//! builders that implement `IntoFuture`.

use std::future::IntoFuture;
use std::marker::PhantomData;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::oneshot;

use super::pump::{pump_requests, Pump};
use super::response::ResponseStream;
use super::spec::{call_builder, CallOptions, CallSpec};
use super::stream::{open_call, read_single, single_reply, start_single_request, CancelGuard};
use crate::client::RpcClient;
use crate::codec::{put_message_segments, Frozen};
use crate::context::Deadline;
use crate::deadline::bound_call;
use crate::error::{CallError, RpcError};
use crate::frame::FrameType;
use crate::header::put_request_start;
use crate::io::FrameReader;

/// A server-streaming call: one request, a stream of responses. Awaiting it sends the
/// request and gives the [`ResponseStream`].
#[must_use = "a call does nothing until it is awaited"]
pub struct ServerStreamingCall<Req, Resp, E> {
    spec: CallSpec,
    request: Req,
    _types: PhantomData<fn() -> (Resp, E)>,
}

call_builder!(ServerStreamingCall<Req, Resp, E>);

impl<Req, Resp, E> ServerStreamingCall<Req, Resp, E> {
    /// A server-streaming call of `method`.
    pub fn new(client: RpcClient, method: &'static str, request: Req) -> Self {
        ServerStreamingCall {
            spec: CallSpec::new(client, method),
            request,
            _types: PhantomData,
        }
    }
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
        let ServerStreamingCall { spec, request, .. } = self;
        let (client, method, options, deadline) = spec.start();
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
        bound_call(deadline, call).boxed()
    }
}

/// A client-streaming call: a stream of requests, one response.
#[must_use = "a call does nothing until it is awaited"]
pub struct ClientStreamingCall<S, Resp, E> {
    spec: CallSpec,
    requests: S,
    _types: PhantomData<fn() -> (Resp, E)>,
}

call_builder!(ClientStreamingCall<S, Resp, E>);

impl<S, Resp, E> ClientStreamingCall<S, Resp, E> {
    /// A client-streaming call of `method`, sending every item of `requests`.
    pub fn new(client: RpcClient, method: &'static str, requests: S) -> Self {
        ClientStreamingCall {
            spec: CallSpec::new(client, method),
            requests,
            _types: PhantomData,
        }
    }
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
        let ClientStreamingCall { spec, requests, .. } = self;
        let (client, method, options, deadline) = spec.start();
        let call = async move {
            let (mut reader, pump, mut cancel) =
                open_streaming_call(&client, method, deadline, &options, requests).await?;
            let result = read_single(&mut reader).await;
            if result.is_ok() {
                cancel.complete();
            }
            let (message, status) = pump.finish_with(result)?;
            single_reply::<Resp, E>(message, status, method)
        };
        bound_call(deadline, call).boxed()
    }
}

/// A bidirectional-streaming call: a stream of requests, a stream of responses, both
/// flowing at once.
#[must_use = "a call does nothing until it is awaited"]
pub struct BidiStreamingCall<S, Resp, E> {
    spec: CallSpec,
    requests: S,
    _types: PhantomData<fn() -> (Resp, E)>,
}

call_builder!(BidiStreamingCall<S, Resp, E>);

impl<S, Resp, E> BidiStreamingCall<S, Resp, E> {
    /// A bidirectional-streaming call of `method`, sending every item of `requests`.
    pub fn new(client: RpcClient, method: &'static str, requests: S) -> Self {
        BidiStreamingCall {
            spec: CallSpec::new(client, method),
            requests,
            _types: PhantomData,
        }
    }
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
        let BidiStreamingCall { spec, requests, .. } = self;
        let (client, method, options, deadline) = spec.start();
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
        bound_call(deadline, call).boxed()
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
    let mut start = crate::buffers::message_buffer(256);
    put_request_start(
        &mut start,
        method,
        deadline.map(|d| d.remaining),
        &options.metadata,
    )?;
    let (reader, guard, cancel) = open_call(client, Frozen::One([start.freeze()]), false).await?;
    let guard = guard.ok_or(RpcError::Cancelled)?;
    let (done_tx, done_rx) = oneshot::channel();
    let (failed_tx, failed_rx) = oneshot::channel();
    let limit = client.config().max_message_size;
    tokio::spawn(pump_requests(guard, requests, limit, done_rx, failed_tx));
    Ok((reader, Pump::new(done_tx, failed_rx), cancel))
}
