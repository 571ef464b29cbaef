//! Gossip streams (kind `0x02`) share the server's endpoint with RPC calls.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{config, start, PATIENCE};
use rpcnet_runtime::{ClientEndpoint, MethodHandler, RpcClient, RpcServer, UnaryCall};

#[tokio::test]
async fn gossip_reaches_the_inbox_next_to_rpc_calls_through_a_shared_endpoint() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    let bound = server.bind().expect("binds");
    let mut inbox = bound.gossip_inbox(16, 1 << 20);
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());

    let endpoint = ClientEndpoint::new(&config("127.0.0.1:0")).expect("endpoint");
    let gossip = RpcClient::lazy(&endpoint, addr, config("127.0.0.1:0"));
    let rpc = RpcClient::connect_via(&endpoint, addr, config("127.0.0.1:0"))
        .await
        .expect("connects");

    gossip
        .send_gossip(Bytes::from_static(b"hello"))
        .await
        .expect("sent");
    gossip
        .send_gossip(Bytes::from_static(b"world"))
        .await
        .expect("sent");
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(PATIENCE, inbox.recv())
            .await
            .expect("gossip in time")
            .expect("inbox open");
        assert_eq!(
            message.from.map(|a| a.port()),
            Some(endpoint.local_addr().expect("bound").port()),
            "the message names the sender's endpoint"
        );
        got.push(message.payload);
    }
    got.sort();
    assert_eq!(
        got,
        vec![Bytes::from_static(b"hello"), Bytes::from_static(b"world")]
    );
    let answer = UnaryCall::<_, u32, ()>::new(rpc, "Ping.ping", 1u32)
        .await
        .expect("rpc still works");
    assert_eq!(answer, 2);
}

#[tokio::test]
async fn a_server_without_an_inbox_refuses_gossip_and_keeps_serving() {
    let mut server = RpcServer::new(config("127.0.0.1:0"));
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    let running = start(server);
    let client = RpcClient::connect(running.addr, config("127.0.0.1:0"))
        .await
        .expect("connects");
    client
        .send_gossip(Bytes::from_static(b"nobody listens"))
        .await
        .expect("handed to QUIC");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = UnaryCall::<_, u32, ()>::new(client, "Ping.ping", 41u32)
        .await
        .expect("rpc works");
    assert_eq!(answer, 42);
}
