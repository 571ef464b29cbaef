//! Who may connect: plain TLS refuses a server it cannot verify (unknown authority, wrong
//! name), and with mutual TLS a server refuses every client without a certificate from the
//! cluster's certificate authority — for calls and for one-way messages alike.

use bytes::Bytes;
use rpcnet_runtime::{MethodHandler, RpcClient, RpcConfig, RpcError, RpcServer, UnaryCall};

use crate::support::{config, start, PATIENCE};

fn cluster_file(name: &str) -> String {
    format!("{}/../certs/cluster/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A node of the development cluster: its certificate and key, the cluster CA, mutual TLS.
fn cluster_node(bind: &str) -> RpcConfig {
    RpcConfig::new(cluster_file("node_cert.pem"), bind)
        .with_key_path(cluster_file("node_key.pem"))
        .with_ca_path(cluster_file("cluster_ca.pem"))
        .with_server_name("localhost")
        .with_mutual_tls(true)
}

fn ping_server(config: RpcConfig) -> RpcServer {
    let mut server = RpcServer::new(config);
    server.register_handler(
        "Ping.ping",
        MethodHandler::unary(|n: u32| async move { Ok::<_, ()>(n + 1) }),
    );
    server
}

/// Connects and makes one call; the error of whichever step failed.
async fn ping(addr: std::net::SocketAddr, config: RpcConfig) -> Result<u32, RpcError> {
    let client = tokio::time::timeout(PATIENCE, RpcClient::connect(addr, config))
        .await
        .expect("the attempt ends in time")?;
    tokio::time::timeout(
        PATIENCE,
        std::future::IntoFuture::into_future(UnaryCall::<_, u32, ()>::new(
            client,
            "Ping.ping",
            1u32,
        )),
    )
    .await
    .expect("the call ends in time")
    .map_err(|e| match e {
        rpcnet_runtime::CallError::Rpc(e) => e,
        other => panic!("unexpected {other:?}"),
    })
}

#[tokio::test]
async fn a_client_refuses_a_server_signed_by_an_authority_it_does_not_trust() {
    let server = start(ping_server(config("127.0.0.1:0")));
    let trusts_the_cluster_ca = config("127.0.0.1:0").with_ca_path(cluster_file("cluster_ca.pem"));
    let error = ping(server.addr, trusts_the_cluster_ca)
        .await
        .expect_err("the server's certificate is not from the cluster CA");
    assert!(matches!(error, RpcError::Connect { .. }), "{error:?}");
    assert_eq!(ping(server.addr, config("127.0.0.1:0")).await.ok(), Some(2));
}

#[tokio::test]
async fn a_client_refuses_a_server_whose_certificate_is_for_another_name() {
    let server = start(ping_server(config("127.0.0.1:0")));
    let error = ping(
        server.addr,
        config("127.0.0.1:0").with_server_name("not-localhost.example"),
    )
    .await
    .expect_err("the certificate is for localhost");
    assert!(matches!(error, RpcError::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn with_mutual_tls_only_clients_with_a_certificate_from_the_cluster_ca_get_in() {
    let server = start(ping_server(cluster_node("127.0.0.1:0")));

    // A node of the cluster calls.
    assert_eq!(
        ping(server.addr, cluster_node("127.0.0.1:0")).await.ok(),
        Some(2)
    );

    // A client that trusts the server but presents no certificate is refused.
    let anonymous =
        RpcConfig::new(cluster_file("cluster_ca.pem"), "127.0.0.1:0").with_server_name("localhost");
    let error = ping(server.addr, anonymous)
        .await
        .expect_err("no client certificate");
    assert!(
        matches!(
            error,
            RpcError::Connect { .. } | RpcError::Unavailable { .. }
        ),
        "{error:?}"
    );

    // A client with a certificate from another authority is refused.
    let rogue = RpcConfig::new(cluster_file("rogue_node_cert.pem"), "127.0.0.1:0")
        .with_key_path(cluster_file("rogue_node_key.pem"))
        .with_ca_path(cluster_file("cluster_ca.pem"))
        .with_server_name("localhost")
        .with_mutual_tls(true);
    let error = ping(server.addr, rogue.clone())
        .await
        .expect_err("a certificate the cluster CA did not sign");
    assert!(
        matches!(
            error,
            RpcError::Connect { .. } | RpcError::Unavailable { .. }
        ),
        "{error:?}"
    );

    // And so are its one-way messages. (In TLS 1.3 a client finishes its side of the
    // handshake before the server has checked its certificate, so the rogue may believe
    // it sent; what counts is that nothing it sends is delivered.)
    let bound = ping_server(cluster_node("127.0.0.1:0"))
        .bind()
        .expect("binds");
    let mut inbox = bound
        .one_way_inbox(rpcnet_runtime::FIRST_ONE_WAY_KIND, 16, 1 << 20)
        .expect("inbox");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    let endpoint = rpcnet_runtime::ClientEndpoint::new(&rogue).expect("endpoint");
    let sender = RpcClient::lazy(&endpoint, addr, rogue);
    let _ = sender
        .send_one_way(
            rpcnet_runtime::FIRST_ONE_WAY_KIND,
            Bytes::from_static(b"forged"),
        )
        .await;
    // A cluster node's message is the first the inbox sees.
    let endpoint =
        rpcnet_runtime::ClientEndpoint::new(&cluster_node("127.0.0.1:0")).expect("endpoint");
    let node = RpcClient::lazy(&endpoint, addr, cluster_node("127.0.0.1:0"));
    node.send_one_way(
        rpcnet_runtime::FIRST_ONE_WAY_KIND,
        Bytes::from_static(b"real"),
    )
    .await
    .expect("sent");
    let message = tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("delivered in time")
        .expect("inbox open");
    assert_eq!(message.payload, Bytes::from_static(b"real"));
}

/// A node of the development cluster with its own certificate (`certs/cluster/nodes/`).
fn named_node(id: &str) -> RpcConfig {
    RpcConfig::new(cluster_file(&format!("nodes/{id}_cert.pem")), "127.0.0.1:0")
        .with_key_path(cluster_file(&format!("nodes/{id}_key.pem")))
        .with_ca_path(cluster_file("cluster_ca.pem"))
        .with_server_name("localhost")
        .with_mutual_tls(true)
}

/// Sends one one-way message from a client configured by `client` to a fresh server
/// configured by `server`, and returns it as the server's inbox delivered it.
async fn deliver_one_way(server: RpcConfig, client: RpcConfig) -> rpcnet_runtime::OneWayMessage {
    let bound = ping_server(server).bind().expect("binds");
    let mut inbox = bound
        .one_way_inbox(rpcnet_runtime::FIRST_ONE_WAY_KIND, 16, 1 << 20)
        .expect("inbox");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    let endpoint = rpcnet_runtime::ClientEndpoint::new(&client).expect("endpoint");
    let sender = RpcClient::lazy(&endpoint, addr, client);
    sender
        .send_one_way(
            rpcnet_runtime::FIRST_ONE_WAY_KIND,
            Bytes::from_static(b"hi"),
        )
        .await
        .expect("sent");
    tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("delivered in time")
        .expect("inbox open")
}

#[tokio::test]
async fn with_mutual_tls_a_one_way_message_carries_the_names_of_the_certificate_its_sender_presented(
) {
    let message = deliver_one_way(cluster_node("127.0.0.1:0"), named_node("b")).await;
    let cert = message
        .peer_certificate
        .expect("mutual TLS: the sender's certificate comes with its message");
    assert_eq!(cert.uris(), ["rpcnet://node/b"]);
    assert_eq!(cert.dns_names(), ["localhost"]);
    assert!(!cert.der().is_empty());
    assert!(message.from.is_some_and(|a| a.ip().is_loopback()));

    let message = deliver_one_way(cluster_node("127.0.0.1:0"), named_node("mallory")).await;
    let cert = message.peer_certificate.expect("a certificate");
    assert_eq!(cert.uris(), ["rpcnet://node/mallory"]);
}

#[tokio::test]
async fn without_mutual_tls_a_one_way_message_carries_no_certificate() {
    let message = deliver_one_way(config("127.0.0.1:0"), config("127.0.0.1:0")).await;
    assert!(message.peer_certificate.is_none());
    assert!(message.from.is_some());
}
