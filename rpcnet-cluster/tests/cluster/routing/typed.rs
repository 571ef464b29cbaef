//! The typed path: a generated client bound to a picked worker, holding its in-flight
//! count while it lives.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnet_cluster::{ClusterClient, LoadBalancingStrategy, TagFilter};
use rpcnet_runtime::RpcServer;

use super::support::*;

#[rpcnet::service]
pub(crate) trait Echo {
    /// The worker's name.
    async fn who(&self) -> String;
    /// Never answers.
    async fn wait(&self) -> String;
}

struct Named(String);

impl Echo for Named {
    async fn who(&self) -> String {
        self.0.clone()
    }

    async fn wait(&self) -> String {
        std::future::pending().await
    }
}

fn add_echo(server: &mut RpcServer, name: &str) {
    server.add_service(EchoServer::new(Named(name.to_owned())));
}

fn echo_worker(name: &str, seed: std::net::SocketAddr) -> Worker {
    let behaviour = Behaviour {
        services: Some(add_echo),
        ..Behaviour::default()
    };
    start_worker(
        name,
        tags(&[("role", "worker")]),
        "127.0.0.1:0",
        seed,
        behaviour,
        Arc::default(),
    )
}

fn in_flight(client: &ClusterClient, name: &str) -> usize {
    client
        .registry()
        .workers()
        .iter()
        .find(|w| w.id().as_str() == name)
        .map_or(0, |w| w.in_flight())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_holds_its_workers_in_flight_count_until_dropped() {
    let director = start_director();
    let _a = echo_worker("echo-a", director.addr);
    let _b = echo_worker("echo-b", director.addr);
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::LeastConnections).await;
    wait_for_pool(&registry, &mut events, &["echo-a", "echo-b"]).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());

    let first = client
        .client::<EchoClient>(TagFilter::new())
        .await
        .expect("a worker");
    let second = client
        .client::<EchoClient>(TagFilter::new())
        .await
        .expect("a worker");
    let (a, b) = (
        first.worker().id().to_string(),
        second.worker().id().to_string(),
    );
    assert_ne!(
        a, b,
        "least connections sends the second to the idle worker"
    );
    assert_eq!(first.who().await.expect("call"), a);
    assert_eq!(second.who().await.expect("call"), b);
    assert_eq!(in_flight(&client, &a), 1);
    drop(first);
    assert_eq!(in_flight(&client, &a), 0);
    assert_eq!(in_flight(&client, &b), 1);
    drop(second);
    assert_eq!(in_flight(&client, &b), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_call_on_a_killed_worker_ends_within_two_seconds() {
    let director = start_director();
    let victim = echo_worker("victim", director.addr);
    let (registry, mut events) = registry(&director, LoadBalancingStrategy::LeastConnections).await;
    wait_for_pool(&registry, &mut events, &["victim"]).await;
    let client = ClusterClient::new(Arc::clone(&registry), director.config.clone());
    let echo = client
        .client::<EchoClient>(TagFilter::new())
        .await
        .expect("a worker");
    assert_eq!(echo.who().await.expect("call"), "victim");

    let waiting = tokio::spawn(echo.wait().timeout(Duration::from_secs(30)).into_future());
    // `who` answered, so the connection is up; give `wait` its stream before the kill.
    tokio::task::yield_now().await;
    let killed_at = Instant::now();
    tokio::task::spawn_blocking(move || victim.kill())
        .await
        .expect("killed");
    let result = waiting.await.expect("task");
    let took = killed_at.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(
        took < Duration::from_secs(2),
        "the call ended {took:?} after the kill"
    );
}
