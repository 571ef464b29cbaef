//! Unary calls: the typed [`UnaryCall`] builder, and untyped calls of raw message bytes
//! ([`RpcClient::call_raw`]).

use std::future::IntoFuture;
use std::marker::PhantomData;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::time::Instant;
use tracing::Instrument;

use super::spec::{call_builder, CallOptions, CallSpec};
use super::stream::{open_call, read_single, single_reply, start_single_request};
use crate::client::RpcClient;
use crate::codec::put_message_segments;
use crate::deadline::bound_call;
use crate::error::{CallError, Code, RpcError, Status};
use crate::frame::{put_frame, FrameType};
use crate::metrics::ClientMethodMetrics;
use crate::server::service_and_method;

impl RpcClient {
    /// Makes an untyped unary call: `request` is sent as the message payload as is and the
    /// response payload is returned as is. Typed clients are the usual way to call; this is
    /// for bridges, proxies and tests of the wire.
    pub async fn call_raw(
        &self,
        method: &str,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, RpcError> {
        raw_unary(self.clone(), method, request, options).await
    }
}

/// A unary call: one request, one response. Await it (it implements `IntoFuture`);
/// configure it first with [`timeout`](Self::timeout) or [`metadata`](Self::metadata).
#[must_use = "a call does nothing until it is awaited"]
pub struct UnaryCall<Req, Resp, E> {
    spec: CallSpec,
    request: Req,
    _types: PhantomData<fn() -> (Resp, E)>,
}

call_builder!(UnaryCall<Req, Resp, E>);

impl<Req, Resp, E> UnaryCall<Req, Resp, E> {
    /// A unary call of `method` (the full `Service.method` name).
    pub fn new(client: RpcClient, method: &'static str, request: Req) -> Self {
        UnaryCall {
            spec: CallSpec::new(client, method),
            request,
            _types: PhantomData,
        }
    }
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
        let UnaryCall { spec, request, .. } = self;
        let span = client_span(spec.method);
        let (client, method, options, deadline) = span.in_scope(|| spec.start());
        let metrics = client.method_metrics(method);
        let started = metrics.as_ref().map(|_| Instant::now());
        let call = async move {
            let request =
                start_single_request(&client, method, deadline, &options, |out, limit| {
                    put_message_segments(out, FrameType::Data, &request, limit)
                })?;
            let (mut reader, _, mut cancel) = open_call(&client, request, true).await?;
            let (message, status) = read_single(&mut reader).await?;
            cancel.complete();
            single_reply::<Resp, E>(message, status, method)
        };
        bound_call(deadline, call)
            .map(move |result| {
                record_client_status(&result, metrics.as_deref(), started);
                result
            })
            .instrument(span)
            .boxed()
    }
}

async fn raw_unary(
    client: RpcClient,
    method: &str,
    request: Bytes,
    mut options: CallOptions,
) -> Result<Bytes, RpcError> {
    let span = client_span(method);
    let deadline = span.in_scope(|| options.prepare(&client));
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
    let metrics = client.method_metrics(method);
    let started = metrics.as_ref().map(|_| Instant::now());
    let result = bound_call(deadline, call)
        .map(|result| {
            record_client_status(&result, metrics.as_deref(), started);
            result
        })
        .instrument(span)
        .await;
    result.map_err(|e| match e {
        CallError::Rpc(e) => e,
        CallError::Application(()) => RpcError::Status(Status::new(Code::Application, "")),
    })
}

/// A unary call's span on the client, with the OpenTelemetry RPC attributes (the status
/// code is recorded when the call ends).
fn client_span(method: &str) -> tracing::Span {
    // Field values are evaluated only when the span is enabled.
    tracing::debug_span!(
        "call",
        otel.name = %method,
        otel.kind = "client",
        rpc.system = "rpcnet",
        rpc.service = %service_and_method(method).0,
        rpc.method = %service_and_method(method).1,
        rpc.response.status_code = tracing::field::Empty,
    )
}

/// Records how a unary call ended on its span (the current one) and in its metrics.
fn record_client_status<T, E>(
    result: &Result<T, CallError<E>>,
    metrics: Option<&ClientMethodMetrics>,
    started: Option<Instant>,
) {
    let code = || match result {
        Ok(_) => Code::Ok,
        Err(error) => error.code(),
    };
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("rpc.response.status_code", code().as_u16());
    }
    if let (Some(metrics), Some(started)) = (metrics, started) {
        metrics.finished(code(), started.elapsed());
    }
}
