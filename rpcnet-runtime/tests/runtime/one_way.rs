//! One-way messages (unidirectional streams of a kind a higher layer registers) share the
//! server's endpoint with calls without taking the calls' stream slots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rpcnet_runtime::{
    ClientEndpoint, MethodHandler, OneWayInbox, RpcClient, RpcError, RpcServer, UnaryCall,
    FIRST_ONE_WAY_KIND,
};
use tokio::sync::Notify;

use crate::support::{client, config, start, wait_for, PATIENCE};

const KIND_A: u8 = FIRST_ONE_WAY_KIND;
const KIND_B: u8 = FIRST_ONE_WAY_KIND + 1;

fn ping_server() -> RpcServer {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    server
}

async fn next(inbox: &mut OneWayInbox) -> rpcnet_runtime::OneWayMessage {
    tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("one-way message in time")
        .expect("inbox open")
}

#[tokio::test]
async fn one_way_messages_reach_the_inbox_of_their_kind_next_to_calls() {
    let bound = ping_server().bind().expect("binds");
    let mut inbox_a = bound.one_way_inbox(KIND_A, 16, 1 << 20).expect("kind A");
    let mut inbox_b = bound.one_way_inbox(KIND_B, 16, 1 << 20).expect("kind B");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());

    let endpoint = ClientEndpoint::new(&config("127.0.0.1:0")).expect("endpoint");
    let sender = RpcClient::lazy(&endpoint, addr, config("127.0.0.1:0"));
    let rpc = RpcClient::connect_via(&endpoint, addr, config("127.0.0.1:0"))
        .await
        .expect("connects");

    sender
        .send_one_way(KIND_A, Bytes::from_static(b"for a"))
        .await
        .expect("sent");
    sender
        .send_one_way(KIND_B, Bytes::from_static(b"for b"))
        .await
        .expect("sent");
    let a = next(&mut inbox_a).await;
    let b = next(&mut inbox_b).await;
    assert_eq!(a.payload, Bytes::from_static(b"for a"));
    assert_eq!(b.payload, Bytes::from_static(b"for b"));
    assert_eq!(
        a.from.map(|a| a.port()),
        Some(endpoint.local_addr().expect("bound").port()),
        "the message names the sender's endpoint"
    );
    let answer = UnaryCall::<_, u32, ()>::new(rpc, "Ping.ping", 1u32)
        .await
        .expect("calls still work");
    assert_eq!(answer, 2);
}

#[tokio::test]
async fn a_kind_without_an_inbox_reaches_no_inbox_and_calls_keep_working() {
    let bound = ping_server().bind().expect("binds");
    let mut inbox = bound.one_way_inbox(KIND_A, 16, 1 << 20).expect("kind A");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    let client = client(addr).await;
    client
        .send_one_way(KIND_B, Bytes::from_static(b"nobody listens"))
        .await
        .expect("handed to QUIC");
    client
        .send_one_way(KIND_A, Bytes::from_static(b"listened to"))
        .await
        .expect("handed to QUIC");
    assert_eq!(
        next(&mut inbox).await.payload,
        Bytes::from_static(b"listened to")
    );
    let answer = UnaryCall::<_, u32, ()>::new(client, "Ping.ping", 41u32)
        .await
        .expect("calls work");
    assert_eq!(answer, 42);
}

#[tokio::test]
async fn one_way_messages_arrive_while_calls_hold_every_stream_slot() {
    const SLOTS: u64 = 4;
    let started = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mut server = RpcServer::new(config("127.0.0.1:0").with_max_concurrent_streams(SLOTS));
    {
        let (started, release) = (Arc::clone(&started), Arc::clone(&release));
        server.register("Block.wait", move |_ctx, _request: Bytes| {
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                Ok(Bytes::new())
            }
        });
    }
    let bound = server.bind().expect("binds");
    let mut inbox = bound.one_way_inbox(KIND_A, 16, 1 << 20).expect("inbox");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    let client = RpcClient::connect(
        addr,
        config("127.0.0.1:0").with_max_concurrent_streams(SLOTS),
    )
    .await
    .expect("connects");

    // One call more than there are slots: the last one waits for a slot.
    let mut calls = Vec::new();
    for _ in 0..=SLOTS {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client
                .call_raw("Block.wait", Bytes::new(), Default::default())
                .await
        }));
    }
    wait_for(
        || started.load(Ordering::SeqCst) == SLOTS as usize,
        "every stream slot taken by a call",
    )
    .await;

    client
        .send_one_way(KIND_A, Bytes::from_static(b"still gets through"))
        .await
        .expect("sent");
    assert_eq!(
        next(&mut inbox).await.payload,
        Bytes::from_static(b"still gets through")
    );
    assert_eq!(
        started.load(Ordering::SeqCst),
        SLOTS as usize,
        "the call beyond the limit is still waiting for a slot"
    );

    release.notify_waiters();
    wait_for(
        || started.load(Ordering::SeqCst) == SLOTS as usize + 1,
        "the waiting call gets a slot",
    )
    .await;
    release.notify_waiters();
    for call in calls {
        tokio::time::timeout(PATIENCE, call)
            .await
            .expect("calls end once released")
            .expect("task")
            .expect("call succeeds");
    }
}

#[tokio::test]
async fn kinds_reserved_for_the_runtime_and_oversized_messages_are_refused() {
    let bound = ping_server().bind().expect("binds");
    assert!(matches!(
        bound.one_way_inbox(0x03, 16, 1 << 20),
        Err(RpcError::Config { .. })
    ));
    let running = start(ping_server());
    let client = client(running.addr).await;
    assert!(matches!(
        client.send_one_way(0x01, Bytes::new()).await,
        Err(RpcError::Config { .. })
    ));
    let limit = client.config().max_message_size();
    assert!(matches!(
        client
            .send_one_way(KIND_A, Bytes::from(vec![0u8; limit + 1]))
            .await,
        Err(RpcError::MessageTooLarge { .. })
    ));
}
