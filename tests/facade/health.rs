//! The built-in health service over real QUIC: what `check` answers, what `watch` streams
//! as statuses change and when the server begins its graceful shutdown, and the opt-out.

use std::time::Duration;

use futures::StreamExt;
use rpcnet::health::{HealthClient, ServingStatus};
use rpcnet::{CallError, Code, RpcServer};

use crate::loopback::{config, connect, within};

/// A minimal service, to be known to the health service by name.
#[rpcnet::service]
pub(crate) trait Echo {
    async fn echo(&self, text: String) -> String;
}

struct Echoer;

/// A call that stays in flight until released, keeping a shutting-down server draining
/// (and its connections open) while a test reads what the server sends meanwhile.
#[rpcnet::service]
pub(crate) trait Hold {
    async fn hold(&self);
}

struct Holder {
    entered: tokio::sync::mpsc::UnboundedSender<()>,
    release: tokio::sync::watch::Receiver<bool>,
}

impl Hold for Holder {
    async fn hold(&self) {
        let _ = self.entered.send(());
        let _ = self.release.clone().wait_for(|released| *released).await;
    }
}

impl Echo for Echoer {
    async fn echo(&self, text: String) -> String {
        text
    }
}

#[tokio::test]
async fn check_reports_serving_for_the_server_and_its_services_and_unknown_otherwise() {
    let mut server = RpcServer::new(config());
    server.add_service(EchoServer::new(Echoer));
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());

    let health = HealthClient::from_client(connect(addr).await);
    assert_eq!(
        within(health.check(String::new())).await.expect("check"),
        ServingStatus::Serving
    );
    assert_eq!(
        within(health.check("Echo".into())).await.expect("check"),
        ServingStatus::Serving
    );
    assert_eq!(
        within(health.check("Nope".into())).await.expect("check"),
        ServingStatus::ServiceUnknown
    );
}

#[tokio::test]
async fn watch_streams_reporter_changes_then_not_serving_when_shutdown_begins_and_ends() {
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = tokio::sync::watch::channel(false);
    let mut server = RpcServer::new(config());
    server.add_service(EchoServer::new(Echoer));
    server.add_service(HoldServer::new(Holder {
        entered: entered_tx,
        release: release_rx,
    }));
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr();
    let reporter = bound.health();
    let shutdown = bound.shutdown_handle();
    let serving = tokio::spawn(bound.serve());

    let health = HealthClient::from_client(connect(addr).await);
    let mut watch = within(health.watch("Echo".into()))
        .await
        .expect("watch opens");
    assert_eq!(next(&mut watch).await, Some(ServingStatus::Serving));

    reporter.set_not_serving("Echo");
    assert_eq!(next(&mut watch).await, Some(ServingStatus::NotServing));
    reporter.set_serving("Echo");
    assert_eq!(next(&mut watch).await, Some(ServingStatus::Serving));

    // Another call in flight keeps the server draining, connections open, until released.
    let hold = HoldClient::from_client(connect(addr).await);
    let held = tokio::spawn(async move { hold.hold().await });
    within(entered.recv()).await.expect("the held call started");

    // The watch is a call in flight too: with a long grace period, the shutdown only ends
    // quickly if the watch ends on its own after reporting it.
    shutdown.shutdown(Duration::from_secs(60));
    assert_eq!(next(&mut watch).await, Some(ServingStatus::NotServing));
    // The watch ends. Its connection, idle once the watch is over, is closed by the
    // draining server at once, which may overtake the stream's clean end: the runtime
    // reports that as `Unavailable` ("server is shutting down").
    match within(watch.next()).await {
        None => {}
        Some(Err(CallError::Rpc(error))) => assert_eq!(error.code(), Code::Unavailable),
        Some(other) => panic!("the watch should end after NotServing, got {other:?}"),
    }
    release.send_replace(true);
    let _ = within(held).await;
    within(serving)
        .await
        .expect("serve task")
        .expect("serve returns without waiting out the grace period");
}

#[tokio::test]
async fn a_server_without_the_health_service_answers_unimplemented() {
    let mut server = RpcServer::new(config());
    server.without_health_service();
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());

    let health = HealthClient::from_client(connect(addr).await);
    match within(health.check(String::new())).await {
        Err(CallError::Rpc(error)) => assert_eq!(error.code(), Code::Unimplemented),
        other => panic!("expected Unimplemented, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_added_after_binding_is_served_and_reported_serving() {
    let bound = RpcServer::new(config()).bind().expect("binds");
    let addr = bound.local_addr();
    bound
        .add_service(EchoServer::new(Echoer))
        .expect("the service is added");
    assert!(
        bound.add_service(EchoServer::new(Echoer)).is_err(),
        "its methods are taken now"
    );
    tokio::spawn(bound.serve());

    let client = connect(addr).await;
    let echo = EchoClient::from_client(client.clone());
    assert_eq!(within(echo.echo("hi".into())).await.expect("echo"), "hi");
    let health = HealthClient::from_client(client);
    assert_eq!(
        within(health.check("Echo".into())).await.expect("check"),
        ServingStatus::Serving
    );
}

async fn next(
    watch: &mut rpcnet::ResponseStream<ServingStatus, rpcnet::Never>,
) -> Option<ServingStatus> {
    within(watch.next())
        .await
        .map(|item| item.expect("a status, not an error"))
}
