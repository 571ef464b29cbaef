//! The four call kinds, typed errors, deadlines, cancellation and unknown methods, over
//! real QUIC on loopback, using the runtime's typed handler and call builders directly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{client, config, start, wait_for, DropCounter, PATIENCE};
use bytes::Bytes;
use futures::{stream, StreamExt};
use rpcnet_runtime::{
    BidiStreamingCall, CallContext, CallError, CallOptions, ClientStreamingCall, Code,
    MethodHandler, RequestStream, RpcClient, RpcError, RpcServer, ServerStreamingCall, Status,
    UnaryCall,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum MathError {
    Overflow,
    Invalid(String),
}

type Items = futures::stream::BoxStream<'static, Result<u32, MathError>>;

fn math_server() -> RpcServer {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Math.add",
        MethodHandler::unary(|req: Add| async move {
            req.a.checked_add(req.b).ok_or(MathError::Overflow)
        }),
    );
    server.register_handler(
        "Math.count",
        MethodHandler::server_streaming(|n: u32| async move {
            if n > 1_000_000 {
                return Err(MathError::Invalid("too many".into()));
            }
            let items: Items = stream::iter((0..n).map(Ok)).boxed();
            Ok(items)
        }),
    );
    server.register_handler(
        "Math.count_then_fail",
        MethodHandler::server_streaming(|n: u32| async move {
            let items: Items = stream::iter((0..n).map(Ok))
                .chain(stream::once(async { Err(MathError::Overflow) }))
                .chain(stream::iter([Ok(999)]))
                .boxed();
            Ok::<_, MathError>(items)
        }),
    );
    server.register_handler(
        "Math.sum",
        MethodHandler::client_streaming(|mut numbers: RequestStream<i64>| async move {
            let mut total = 0i64;
            while let Some(n) = numbers.next().await {
                total = total.checked_add(n).ok_or(MathError::Overflow)?;
            }
            Ok::<_, MathError>(total)
        }),
    );
    server.register_handler(
        "Math.double",
        MethodHandler::bidi_streaming(|numbers: RequestStream<i64>| async move {
            let doubled: futures::stream::BoxStream<'static, Result<i64, MathError>> =
                numbers.map(|n| Ok(n * 2)).boxed();
            Ok::<_, MathError>(doubled)
        }),
    );
    server
}

#[tokio::test]
async fn server_streaming_error_before_the_stream_arrives_as_the_first_item() {
    let server = start(math_server());
    let client = client(server.addr).await;
    let mut items =
        ServerStreamingCall::<_, u32, MathError>::new(client, "Math.count", 2_000_000u32)
            .await
            .expect("call starts");
    let first = items.next().await.expect("one item");
    assert!(
        matches!(first, Err(CallError::Application(MathError::Invalid(ref m))) if m == "too many")
    );
    assert!(items.next().await.is_none());
}

#[tokio::test]
async fn a_streamed_item_that_does_not_decode_ends_the_stream_with_a_decode_error() {
    /// Streams three numbers from `Math.count` and reads them as `T`.
    async fn count_as<T>(client: rpcnet_runtime::RpcClient) -> Vec<Result<T, CallError<MathError>>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        ServerStreamingCall::<_, T, MathError>::new(client, "Math.count", 3u32)
            .await
            .expect("call starts")
            .collect()
            .await
    }

    let server = start(math_server());
    let client = client(server.addr).await;
    // The server streams numbers; these clients expect strings and byte payloads.
    let strings = count_as::<String>(client.clone()).await;
    assert!(
        matches!(
            strings.as_slice(),
            [Err(CallError::Rpc(RpcError::Decode(_)))]
        ),
        "the error, then the end: {strings:?}"
    );
    let payloads = count_as::<rpcnet_runtime::Payload>(client).await;
    assert!(
        matches!(
            payloads.as_slice(),
            [Err(CallError::Rpc(RpcError::Decode(_)))]
        ),
        "the error, then the end: {payloads:?}"
    );
}

#[tokio::test]
async fn an_error_mid_stream_ends_the_stream_after_the_items_before_it() {
    let server = start(math_server());
    let client = client(server.addr).await;
    let items: Vec<_> =
        ServerStreamingCall::<_, u32, MathError>::new(client, "Math.count_then_fail", 3u32)
            .await
            .expect("call starts")
            .collect()
            .await;
    assert_eq!(
        items.len(),
        4,
        "three items, then the error, then the end: {items:?}"
    );
    assert!(matches!(items[2], Ok(2)));
    assert!(matches!(
        items[3],
        Err(CallError::Application(MathError::Overflow))
    ));
}

#[tokio::test]
async fn client_streaming_sums_every_request() {
    let server = start(math_server());
    let client = client(server.addr).await;
    let numbers = stream::iter(1..=10_000i64);
    let total = ClientStreamingCall::<_, i64, MathError>::new(client, "Math.sum", numbers)
        .await
        .expect("call succeeds");
    assert_eq!(total, 50_005_000);
}

#[tokio::test]
async fn bidirectional_streaming_answers_while_requests_still_flow() {
    let server = start(math_server());
    let client = client(server.addr).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<i64>(1);
    let requests = ReceiverStream(rx);
    let mut responses =
        BidiStreamingCall::<_, i64, MathError>::new(client, "Math.double", requests)
            .await
            .expect("call starts");
    for n in 1..=50 {
        tx.send(n).await.expect("request accepted");
        // Each answer arrives before the next request is even sent: true interleaving.
        let answer = tokio::time::timeout(PATIENCE, responses.next())
            .await
            .expect("answer in time")
            .expect("an item")
            .expect("ok");
        assert_eq!(answer, n * 2);
    }
    drop(tx);
    assert!(
        responses.next().await.is_none(),
        "stream ends after the requests do"
    );
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn a_call_past_its_deadline_fails_with_deadline_exceeded_and_its_handler_is_dropped() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let counter = Arc::clone(&dropped);
    server.register_handler(
        "Slow.sleep",
        MethodHandler::unary(move |ms: u64| {
            let guard = DropCounter(Arc::clone(&counter));
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                std::mem::forget(guard);
                Ok::<_, ()>(ms)
            }
        }),
    );
    let server = start(server);
    let client = client(server.addr).await;
    let error = UnaryCall::<_, u64, ()>::new(client.clone(), "Slow.sleep", 600_000u64)
        .timeout(Duration::from_millis(100))
        .await
        .expect_err("deadline passes first");
    assert!(
        matches!(error, CallError::Rpc(RpcError::DeadlineExceeded)),
        "{error:?}"
    );
    // The handler would sleep for ten minutes: it is dropped, not run to the end. (Which
    // side ended it, the client's cancel or the server's own deadline, this test cannot
    // tell; `wire::the_server_answers_deadline_exceeded_on_its_own` shows the server's.)
    wait_for(
        || dropped.load(Ordering::SeqCst) == 1,
        "the handler to be dropped",
    )
    .await;
    // A call with room to finish succeeds on the same client.
    let ms = UnaryCall::<_, u64, ()>::new(client, "Slow.sleep", 10u64)
        .timeout(PATIENCE)
        .await
        .expect("fits in its deadline");
    assert_eq!(ms, 10);
}

/// Registers `Ctx.remaining`, which answers the time its handler sees left to its deadline.
fn register_remaining(server: &mut RpcServer) {
    server.register("Ctx.remaining", |ctx: CallContext, _req| async move {
        let micros = ctx.remaining().map_or(0, |r| r.as_micros() as u64);
        Ok(Bytes::from(micros.to_be_bytes().to_vec()))
    });
}

/// Calls `Ctx.remaining` with `options`: the time the handler saw left.
async fn remaining_seen(client: &RpcClient, options: CallOptions) -> Duration {
    let reply = client
        .call_raw("Ctx.remaining", Bytes::new(), options)
        .await
        .expect("call succeeds");
    Duration::from_micros(u64::from_be_bytes(
        reply[..].try_into().expect("eight bytes"),
    ))
}

#[tokio::test]
async fn the_clients_default_deadline_bounds_calls_without_a_timeout_of_their_own() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    register_remaining(&mut server);
    server.register("Ctx.hang", |_ctx, _req: Bytes| async move {
        std::future::pending::<()>().await;
        Ok(Bytes::new())
    });
    let server = start(server);
    let client = RpcClient::connect(
        server.addr,
        config("127.0.0.1:0").with_default_deadline(Duration::from_secs(3)),
    )
    .await
    .expect("connects");
    let remaining = remaining_seen(&client, CallOptions::default()).await;
    assert!(
        remaining > Duration::from_secs(1) && remaining <= Duration::from_secs(3),
        "the server sees the default deadline: {remaining:?} left"
    );
    // A per-call timeout overrides the default.
    let remaining = remaining_seen(
        &client,
        CallOptions::default().timeout(Duration::from_secs(60)),
    )
    .await;
    assert!(
        remaining > Duration::from_secs(30),
        "the per-call timeout wins: {remaining:?} left"
    );
    let error = client
        .call_raw("Ctx.hang", Bytes::new(), CallOptions::default())
        .await
        .expect_err("the default deadline ends the call");
    assert!(matches!(error, RpcError::DeadlineExceeded), "{error:?}");
}

#[tokio::test]
async fn dropping_a_call_drops_its_handler_on_the_server() {
    let started = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let (s, d) = (Arc::clone(&started), Arc::clone(&dropped));
    server.register_handler(
        "Slow.work",
        MethodHandler::unary(move |(): ()| {
            let guard = DropCounter(Arc::clone(&d));
            let s = Arc::clone(&s);
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                // Only a cancel ends this handler within the test's patience.
                tokio::time::sleep(Duration::from_secs(600)).await;
                std::mem::forget(guard);
                Ok::<_, ()>(())
            }
        }),
    );
    let server = start(server);
    let client = client(server.addr).await;
    let call = tokio::spawn(std::future::IntoFuture::into_future(
        UnaryCall::<_, (), ()>::new(client.clone(), "Slow.work", ()),
    ));
    wait_for(
        || started.load(Ordering::SeqCst) == 1,
        "the handler to start",
    )
    .await;
    call.abort();
    wait_for(
        || dropped.load(Ordering::SeqCst) == 1,
        "the handler to be dropped",
    )
    .await;
}

#[tokio::test]
async fn dropping_a_response_stream_drops_the_handlers_stream_on_the_server() {
    let produced = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let (counter, gone) = (Arc::clone(&produced), Arc::clone(&dropped));
    server.register_handler(
        "Gen.forever",
        MethodHandler::server_streaming(move |(): ()| {
            let counter = Arc::clone(&counter);
            let guard = DropCounter(Arc::clone(&gone));
            async move {
                // The stream owns the guard: it counts once the server drops the stream.
                let items = stream::unfold((0u64, guard), move |(n, guard)| {
                    let counter = Arc::clone(&counter);
                    async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        counter.fetch_add(1, Ordering::SeqCst);
                        Some((Ok::<_, ()>(n), (n + 1, guard)))
                    }
                });
                Ok::<_, ()>(items)
            }
        }),
    );
    let server = start(server);
    let client = client(server.addr).await;
    let mut items = ServerStreamingCall::<_, u64, ()>::new(client, "Gen.forever", ())
        .await
        .expect("call starts");
    for expected in 0..5 {
        assert_eq!(items.next().await.expect("item").expect("ok"), expected);
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "still streaming");
    drop(items);
    wait_for(
        || dropped.load(Ordering::SeqCst) == 1,
        "the server to drop the handler's stream",
    )
    .await;
    let after = produced.load(Ordering::SeqCst);
    assert!(after >= 5, "{after} items produced");
}

#[tokio::test]
async fn unknown_method_is_unimplemented_and_the_connection_keeps_serving() {
    let server = start(math_server());
    let client = client(server.addr).await;
    let error =
        UnaryCall::<_, i64, MathError>::new(client.clone(), "Math.divide", Add { a: 1, b: 1 })
            .await
            .expect_err("no such method");
    match error {
        CallError::Rpc(RpcError::Unimplemented { method }) => assert_eq!(method, "Math.divide"),
        other => panic!("expected Unimplemented, got {other:?}"),
    }
    let sum = UnaryCall::<_, i64, MathError>::new(client, "Math.add", Add { a: 1, b: 1 })
        .await
        .expect("same connection still works");
    assert_eq!(sum, 2);
}

#[tokio::test]
async fn handlers_see_metadata_peer_and_deadline_through_the_context() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register("Ctx.inspect", |ctx: CallContext, _req| async move {
        let current =
            CallContext::current().ok_or_else(|| Status::new(Code::Internal, "no context"))?;
        let tenant = current
            .metadata()
            .get_str("tenant")
            .unwrap_or("")
            .to_owned();
        // Sent with 5 s to go: a unit mix-up (milliseconds read as microseconds, say) would
        // leave far less, or far more.
        let has_deadline = current
            .remaining()
            .is_some_and(|r| r > Duration::from_secs(1) && r <= Duration::from_secs(5));
        let same = current.method() == ctx.method() && ctx.peer().is_some();
        Ok(Bytes::from(format!("{tenant}:{has_deadline}:{same}")))
    });
    let server = start(server);
    let client = client(server.addr).await;
    let reply = client
        .call_raw(
            "Ctx.inspect",
            Bytes::new(),
            CallOptions::default()
                .timeout(Duration::from_secs(5))
                .metadata("tenant", Bytes::from_static(b"acme")),
        )
        .await
        .expect("call succeeds");
    assert_eq!(&reply[..], b"acme:true:true");
}

#[tokio::test]
async fn a_panicking_handler_fails_its_own_call_with_internal_and_the_connection_keeps_serving() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Boom.while_running",
        MethodHandler::unary(|n: u32| async move {
            if n > 0 {
                panic!("a handler bug");
            }
            Ok::<_, ()>(n)
        }),
    );
    server.register("Boom.before_its_future", |_ctx, request: Bytes| {
        if !request.is_empty() {
            panic!("a handler bug before any await");
        }
        async move { Ok(request) }
    });
    server.register_handler(
        "Boom.mid_stream",
        MethodHandler::server_streaming(|(): ()| async move {
            let items = stream::iter(0..3u32).map(|n| {
                if n == 2 {
                    panic!("a stream bug");
                }
                Ok::<_, ()>(n)
            });
            Ok::<_, ()>(items)
        }),
    );
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    let server = start(server);
    let client = client(server.addr).await;

    let error = UnaryCall::<_, u32, ()>::new(client.clone(), "Boom.while_running", 1u32)
        .await
        .expect_err("the handler panicked");
    assert_eq!(error.code(), Code::Internal, "{error:?}");
    assert!(
        error.to_string().contains("the handler panicked"),
        "{error}"
    );

    let error = client
        .call_raw(
            "Boom.before_its_future",
            Bytes::from_static(b"x"),
            CallOptions::default(),
        )
        .await
        .expect_err("the handler panicked");
    assert_eq!(error.code(), Code::Internal, "{error:?}");

    let items: Vec<_> =
        ServerStreamingCall::<_, u32, ()>::new(client.clone(), "Boom.mid_stream", ())
            .await
            .expect("the stream starts")
            .collect()
            .await;
    assert_eq!(items.len(), 3, "two items, then the error: {items:?}");
    assert!(matches!(items[0], Ok(0)) && matches!(items[1], Ok(1)));
    assert!(
        matches!(&items[2], Err(e) if e.code() == Code::Internal),
        "{:?}",
        items[2]
    );

    // The same connection serves the next call.
    let answer = UnaryCall::<_, u32, ()>::new(client, "Ping.ping", 41u32)
        .await
        .expect("the server keeps serving");
    assert_eq!(answer, 42);
}

#[tokio::test]
async fn the_servers_maximum_deadline_bounds_calls_that_set_none_or_a_longer_one() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server =
        RpcServer::new(config("127.0.0.1:0").with_max_deadline(Duration::from_millis(300)));
    let counter = Arc::clone(&dropped);
    server.register("Slow.forever", move |_ctx, _request: Bytes| {
        let guard = DropCounter(Arc::clone(&counter));
        async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            std::mem::forget(guard);
            Ok(Bytes::new())
        }
    });
    register_remaining(&mut server);
    let server = start(server);
    let client = client(server.addr).await;
    // No deadline from the client: the server's ends the call.
    let error = client
        .call_raw("Slow.forever", Bytes::new(), CallOptions::default())
        .await
        .expect_err("the server's maximum deadline passes");
    assert!(matches!(error, RpcError::DeadlineExceeded), "{error:?}");
    wait_for(
        || dropped.load(Ordering::SeqCst) == 1,
        "the handler to be dropped",
    )
    .await;
    // A longer deadline from the client is cut to the server's.
    let remaining = remaining_seen(
        &client,
        CallOptions::default().timeout(Duration::from_secs(60)),
    )
    .await;
    assert!(
        remaining <= Duration::from_millis(300),
        "the handler sees the server's maximum: {remaining:?} left"
    );
}
