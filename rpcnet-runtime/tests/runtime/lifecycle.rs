//! Backpressure, limits, reconnection and graceful shutdown over real QUIC on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{client, config, start, wait_for, DropCounter, PATIENCE};
use bytes::Bytes;
use futures::{stream, StreamExt};
use rpcnet_runtime::{
    CallError, ClientStreamingCall, Code, MethodHandler, RequestStream, RpcClient, RpcError,
    RpcServer, ServerStreamingCall, UnaryCall,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Chunk {
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
}

#[tokio::test]
async fn a_slow_reader_holds_the_server_stream_back() {
    const ITEM: usize = 1024;
    const TOTAL: usize = 200_000; // 200 MiB if nothing held the server back
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let small_windows = config("127.0.0.1:0")
        .with_flow_control_windows(256 * 1024, 1024 * 1024)
        .with_send_buffer_size(256 * 1024);
    let mut server = RpcServer::new(small_windows.clone());
    server.register_handler(
        "Bulk.download",
        MethodHandler::server_streaming(move |(): ()| {
            let counter = Arc::clone(&counter);
            async move {
                let items = stream::iter(0..TOTAL).map(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(Chunk {
                        bytes: vec![7; ITEM],
                    })
                });
                Ok::<_, ()>(items)
            }
        }),
    );
    let server = start(server);
    let client = RpcClient::connect(server.addr, small_windows)
        .await
        .expect("connects");
    let mut items = ServerStreamingCall::<_, Chunk, ()>::new(client, "Bulk.download", ())
        .await
        .expect("call starts");
    for _ in 0..10 {
        assert_eq!(
            items.next().await.expect("item").expect("ok").bytes.len(),
            ITEM
        );
    }
    // Let the server run as far ahead as it can.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let ahead = produced.load(Ordering::SeqCst);
    // Windows + send buffer + one coalesced write is about 600 KiB; allow generous slack
    // but nowhere near the 200 MiB an unbounded server would queue.
    assert!(
        ahead < 3_000,
        "server produced {ahead} items for a reader that took 10"
    );
    // Reading on lets the server go on: it was held back, not stuck.
    for _ in 0..5_000 {
        items.next().await.expect("item").expect("ok");
    }
    assert!(produced.load(Ordering::SeqCst) > ahead + 4_000);
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_before_it_is_sent() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Bulk.upload",
        MethodHandler::unary(|chunk: Chunk| async move { Ok::<_, ()>(chunk.bytes.len()) }),
    );
    let server = start(server);
    let small = RpcClient::connect(
        server.addr,
        config("127.0.0.1:0").with_max_message_size(1024),
    )
    .await
    .expect("connects");
    let error = UnaryCall::<_, usize, ()>::new(
        small.clone(),
        "Bulk.upload",
        Chunk {
            bytes: vec![0; 4096],
        },
    )
    .await
    .expect_err("too large");
    assert!(
        matches!(
            error,
            CallError::Rpc(RpcError::MessageTooLarge { limit: 1024, .. })
        ),
        "{error:?}"
    );
    let len = UnaryCall::<_, usize, ()>::new(
        small,
        "Bulk.upload",
        Chunk {
            bytes: vec![0; 100],
        },
    )
    .await
    .expect("small message goes through");
    assert_eq!(len, 100);
}

#[tokio::test]
async fn a_response_over_the_clients_limit_fails_that_call_with_a_clear_error() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Bulk.get",
        MethodHandler::unary(|len: usize| async move {
            Ok::<_, ()>(Chunk {
                bytes: vec![1; len],
            })
        }),
    );
    let server = start(server);
    let client = RpcClient::connect(
        server.addr,
        config("127.0.0.1:0").with_max_message_size(1024),
    )
    .await
    .expect("connects");
    let error = UnaryCall::<_, Chunk, ()>::new(client.clone(), "Bulk.get", 64 * 1024usize)
        .await
        .expect_err("response too large");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.to_string().contains("protocol error"), "{error}");
    let small = UnaryCall::<_, Chunk, ()>::new(client, "Bulk.get", 10usize)
        .await
        .expect("the connection still serves");
    assert_eq!(small.bytes.len(), 10);
}

fn ping_server(bind: &str) -> RpcServer {
    let mut server = RpcServer::new(config(bind));
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    server
}

#[tokio::test]
async fn the_client_reconnects_after_the_server_restarts_on_the_same_port() {
    let first = start(ping_server("127.0.0.1:0"));
    let addr = first.addr;
    let client = RpcClient::connect(
        addr,
        config("127.0.0.1:0")
            .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .await
    .expect("connects");
    let ping = |n: u32| {
        UnaryCall::<_, u32, ()>::new(client.clone(), "Ping.ping", n).timeout(Duration::from_secs(2))
    };
    assert_eq!(ping(1).await.expect("first server answers"), 2);

    first.shutdown.shutdown(Duration::from_secs(1));
    first.task.await.expect("serve task").expect("clean stop");
    let down = ping(2).await.expect_err("nobody is listening");
    assert!(
        matches!(down.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{down:?}"
    );

    let second = start(ping_server(&addr.to_string()));
    assert_eq!(second.addr, addr);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let answer = loop {
        match ping(3).await {
            Ok(answer) => break answer,
            Err(error) => {
                assert!(
                    matches!(error.code(), Code::Unavailable | Code::DeadlineExceeded),
                    "{error:?}"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never reconnected: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(answer, 4);
}

#[tokio::test]
async fn graceful_shutdown_refuses_new_calls_and_returns_once_the_in_flight_call_is_done() {
    // Far longer than the test's patience: serve() must return because the call drained,
    // not because the grace period ran out.
    const GRACE: Duration = Duration::from_secs(120);
    let started = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let (flag, gate) = (Arc::clone(&started), Arc::clone(&release));
    server.register_handler(
        "Slow.work",
        MethodHandler::unary(move |n: u64| {
            let (flag, gate) = (Arc::clone(&flag), Arc::clone(&gate));
            async move {
                flag.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok::<_, ()>(n)
            }
        }),
    );
    let server = start(server);
    let client = client(server.addr).await;
    let call = tokio::spawn(std::future::IntoFuture::into_future(
        UnaryCall::<_, u64, ()>::new(client.clone(), "Slow.work", 7u64),
    ));
    wait_for(
        || started.load(Ordering::SeqCst) == 1,
        "the handler to start",
    )
    .await;
    server.shutdown.shutdown(GRACE);

    // During the grace period a new call on the same connection is refused, as
    // PROTOCOL.md says: Unavailable, and its handler never runs.
    let refused = UnaryCall::<_, u64, ()>::new(client.clone(), "Slow.work", 8u64)
        .timeout(PATIENCE)
        .await
        .expect_err("refused while draining");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.to_string().contains("server is shutting down"),
        "{refused}"
    );

    // The call in flight finishes, and serve() returns right after it.
    release.notify_one();
    assert_eq!(
        call.await.expect("task").expect("in-flight call completes"),
        7
    );
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("serve returns once the call drained, long before the grace period ends")
        .expect("task")
        .expect("clean stop");
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "no handler started after the shutdown began"
    );
}

#[tokio::test]
async fn a_shutdown_cancels_the_handlers_that_outlast_its_grace_and_returns_once_they_stopped() {
    const GRACE: Duration = Duration::from_millis(200);
    let started = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let (s, c, d) = (
        Arc::clone(&started),
        Arc::clone(&cancelled),
        Arc::clone(&dropped),
    );
    server.register("Slow.forever", move |ctx, _request: Bytes| {
        let (s, c) = (Arc::clone(&s), Arc::clone(&c));
        let guard = DropCounter(Arc::clone(&d));
        async move {
            // Something the handler left running watches its cancellation.
            let watch = ctx.clone();
            tokio::spawn(async move {
                watch.cancelled().await;
                c.fetch_add(1, Ordering::SeqCst);
            });
            s.fetch_add(1, Ordering::SeqCst);
            // Ignores the grace period: only being dropped ends it.
            tokio::time::sleep(Duration::from_secs(600)).await;
            std::mem::forget(guard);
            Ok(Bytes::new())
        }
    });
    let server = start(server);
    let client = client(server.addr).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_raw("Slow.forever", Bytes::new(), Default::default())
                .await
        }
    });
    wait_for(
        || started.load(Ordering::SeqCst) == 1,
        "the handler to start",
    )
    .await;
    let asked = tokio::time::Instant::now();
    server.shutdown.shutdown(GRACE);
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("serve returns")
        .expect("task")
        .expect("clean stop");
    let took = asked.elapsed();
    assert!(
        took >= GRACE && took < GRACE + Duration::from_secs(1),
        "serve returned {took:?} after a shutdown with {GRACE:?} of grace"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "serve returned after the handler was dropped"
    );
    wait_for(
        || cancelled.load(Ordering::SeqCst) == 1,
        "the handler's cancellation to fire",
    )
    .await;
    let error = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the call ends")
        .expect("task")
        .expect_err("cut off");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
}

#[tokio::test]
async fn a_handler_that_stops_reading_holds_the_clients_request_stream_back() {
    const ITEM: usize = 1024;
    const TOTAL: usize = 200_000; // 200 MiB if nothing held the client back
    let read = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let small_windows = config("127.0.0.1:0")
        .with_flow_control_windows(256 * 1024, 1024 * 1024)
        .with_send_buffer_size(256 * 1024);
    let mut server = RpcServer::new(small_windows.clone());
    let (counter, gate) = (Arc::clone(&read), Arc::clone(&release));
    server.register_handler(
        "Bulk.upload",
        MethodHandler::client_streaming(move |mut chunks: RequestStream<Chunk>| {
            let (counter, gate) = (Arc::clone(&counter), Arc::clone(&gate));
            async move {
                // Read ten, stall until released, then read the rest.
                let mut total = 0usize;
                while let Some(chunk) = chunks.next().await {
                    total += chunk.bytes.len();
                    if counter.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                        gate.notified().await;
                    }
                }
                Ok::<_, ()>(total)
            }
        }),
    );
    let server = start(server);
    let client = RpcClient::connect(server.addr, small_windows)
        .await
        .expect("connects");
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let requests = stream::iter(0..TOTAL).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Chunk {
            bytes: vec![7; ITEM],
        }
    });
    let call = tokio::spawn(std::future::IntoFuture::into_future(ClientStreamingCall::<
        _,
        usize,
        (),
    >::new(
        client,
        "Bulk.upload",
        requests,
    )));
    wait_for(
        || read.load(Ordering::SeqCst) == 10,
        "the handler to read ten chunks",
    )
    .await;
    // Let the client run as far ahead as it can. Windows, send buffers, the request queue
    // and one coalesced write come to about 1,200 items; an unbounded client would pull
    // all 200,000.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let ahead = pulled.load(Ordering::SeqCst);
    assert!(
        ahead < 5_000,
        "the client pulled {ahead} items for a handler that read 10"
    );
    release.notify_one();
    let total = tokio::time::timeout(PATIENCE * 3, call)
        .await
        .expect("the upload completes once the handler reads on")
        .expect("task")
        .expect("call succeeds");
    assert_eq!(total, TOTAL * ITEM);
}

#[tokio::test]
async fn while_a_server_is_unreachable_calls_fail_fast_until_the_backoff_has_passed() {
    // A UDP socket that never answers: handshakes to it time out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let addr = silent.local_addr().expect("bound");
    let config = config("127.0.0.1:0")
        .with_connect_timeout(Duration::from_millis(300))
        .with_reconnect_backoff(Duration::from_secs(600), Duration::from_secs(600));
    let endpoint = rpcnet_runtime::ClientEndpoint::new(&config).expect("endpoint");
    let client = RpcClient::lazy(&endpoint, addr, config);
    let first = client
        .call_raw("Ping.ping", bytes::Bytes::new(), Default::default())
        .await
        .expect_err("nobody answers");
    assert!(matches!(first, RpcError::Connect { .. }), "{first:?}");
    // The next attempt is ten minutes away: this call does not try, it fails at once.
    let second = client
        .call_raw("Ping.ping", bytes::Bytes::new(), Default::default())
        .await
        .expect_err("still unreachable");
    match &second {
        RpcError::Unavailable { message, .. } => {
            assert!(message.contains("next reconnect attempt"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    drop(silent);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_those_admitted_keep_working() {
    let mut server = RpcServer::new(config("127.0.0.1:0").with_max_connections(2));
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    let server = start(server);
    let first = client(server.addr).await;
    let second = client(server.addr).await;
    for client in [&first, &second] {
        let answer = UnaryCall::<_, u32, ()>::new(client.clone(), "Ping.ping", 1u32)
            .await
            .expect("an admitted connection is served");
        assert_eq!(answer, 2);
    }
    let third = client(server.addr).await;
    let refused = UnaryCall::<_, u32, ()>::new(third, "Ping.ping", 1u32)
        .timeout(PATIENCE)
        .await
        .expect_err("a third connection is refused");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused
            .to_string()
            .contains("serves as many connections as it may"),
        "{refused}"
    );
    for client in [first, second] {
        let answer = UnaryCall::<_, u32, ()>::new(client, "Ping.ping", 2u32)
            .await
            .expect("the admitted connections keep working");
        assert_eq!(answer, 3);
    }
}

#[tokio::test]
async fn a_response_stream_its_client_stops_reading_is_reset_after_the_stall_timeout() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let stalling = config("127.0.0.1:0")
        .with_flow_control_windows(64 * 1024, 256 * 1024)
        .with_send_buffer_size(64 * 1024)
        .with_stall_timeout(Duration::from_millis(500));
    let mut server = RpcServer::new(stalling.clone());
    let gone = Arc::clone(&dropped);
    server.register_handler(
        "Bulk.forever",
        MethodHandler::server_streaming(move |(): ()| {
            let guard = DropCounter(Arc::clone(&gone));
            async move {
                let items = stream::repeat(()).map(move |()| {
                    let _owned = &guard;
                    Ok::<_, ()>(Chunk {
                        bytes: vec![7; 1024],
                    })
                });
                Ok::<_, ()>(items)
            }
        }),
    );
    let server = start(server);
    let client = RpcClient::connect(server.addr, stalling)
        .await
        .expect("connects");
    let mut items = ServerStreamingCall::<_, Chunk, ()>::new(client, "Bulk.forever", ())
        .await
        .expect("call starts");
    items.next().await.expect("an item").expect("ok");
    // The client holds the stream but reads no more: flow control stops the server's
    // writes, and after the stall timeout the server gives the call up.
    wait_for(
        || dropped.load(Ordering::SeqCst) == 1,
        "the server to drop the unread stream",
    )
    .await;
    drop(items);
}

#[tokio::test]
async fn every_call_in_flight_when_a_shutdown_begins_gets_its_reply() {
    const CALLS: usize = 64;
    let started = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    let (flag, gate) = (Arc::clone(&started), Arc::clone(&release));
    server.register_handler(
        "Slow.work",
        MethodHandler::unary(move |n: u64| {
            let (flag, gate) = (Arc::clone(&flag), Arc::clone(&gate));
            async move {
                let notified = gate.notified();
                flag.fetch_add(1, Ordering::SeqCst);
                notified.await;
                // A reply large enough to take several packets.
                Ok::<_, ()>(vec![n; 2048])
            }
        }),
    );
    let server = start(server);
    let client = client(server.addr).await;
    let calls: Vec<_> = (0..CALLS as u64)
        .map(|n| {
            tokio::spawn(std::future::IntoFuture::into_future(UnaryCall::<
                _,
                Vec<u64>,
                (),
            >::new(
                client.clone(),
                "Slow.work",
                n,
            )))
        })
        .collect();
    wait_for(
        || started.load(Ordering::SeqCst) == CALLS,
        "every handler to start",
    )
    .await;
    server.shutdown.shutdown(Duration::from_secs(120));
    // The shutdown has begun once new calls are refused.
    let refused = UnaryCall::<_, Vec<u64>, ()>::new(client.clone(), "Slow.work", 0)
        .timeout(PATIENCE)
        .await
        .expect_err("refused while draining");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    // Each handler is waiting (its `notified` was made before it counted itself in).
    release.notify_waiters();
    for (n, call) in calls.into_iter().enumerate() {
        let reply = call
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("call {n} lost its reply to the shutdown: {e:?}"));
        assert_eq!(reply, vec![n as u64; 2048]);
    }
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("serve returns once the calls drained")
        .expect("task")
        .expect("clean stop");
}
