//! The `rpcnet` binary against real nodes on loopback: a three-node cluster served
//! in-process over QUIC, the command line run as its own process.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rpcnet::cluster::{Cluster, ClusterConfig, NodeConfig, NodeId, Tags};
use rpcnet::{RpcConfig, RpcServer, ShutdownHandle};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const CLI: &str = env!("CARGO_BIN_EXE_rpcnet");
const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs");

/// Generous bound for anything that waits on the network or the protocol.
const PATIENCE: Duration = Duration::from_secs(30);

fn rpc() -> RpcConfig {
    RpcConfig::new(format!("{CERTS}/test_cert.pem"), "127.0.0.1:0")
        .with_key_path(format!("{CERTS}/test_key.pem"))
        .with_server_name("localhost")
}

struct Node {
    cluster: Cluster,
    shutdown: ShutdownHandle,
    addr: SocketAddr,
}

fn start(id: &str, role: &str, seeds: &[String]) -> Node {
    let config = rpc();
    let bound = RpcServer::new(config.clone()).bind().expect("binds");
    let addr = bound.local_addr();
    let node = NodeConfig::new(NodeId::new(id).expect("id"))
        .with_tags(
            Tags::new()
                .with("role", role)
                .and_then(|t| t.with("label", id))
                .expect("tags"),
        )
        .with_seeds(seeds.iter().cloned())
        .with_cluster_config(
            ClusterConfig::default()
                .with_gossip_interval(Duration::from_millis(100))
                .with_health_check_interval(Duration::from_millis(200)),
        );
    let cluster = Cluster::start(&bound, &config, node).expect("node starts");
    let shutdown = bound.shutdown_handle();
    tokio::spawn(bound.serve());
    Node {
        cluster,
        shutdown,
        addr,
    }
}

/// A director and two workers, once the director sees both workers alive.
async fn three_nodes() -> (Node, Node, Node) {
    let director = start("director", "director", &[]);
    let seed = [director.addr.to_string()];
    let a = start("worker-a", "worker", &seed);
    let b = start("worker-b", "worker", &seed);
    tokio::time::timeout(PATIENCE, async {
        while !(director.cluster.is_alive("worker-a") && director.cluster.is_alive("worker-b")) {
            let _ = director.cluster.changed().await;
        }
    })
    .await
    .expect("the workers join within the test's patience");
    (director, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_lists_the_cluster_with_tags_and_watch_reports_a_killed_node_failed() {
    let (director, _a, b) = three_nodes().await;
    let seed = director.addr.to_string();

    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(CLI)
            .args(["members", "--seed", &seed])
            .output(),
    )
    .await
    .expect("members answers in time")
    .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "members failed: {output:?}");
    for (node, tags) in [
        ("director (answering)", "label=director,role=director"),
        ("worker-a", "label=worker-a,role=worker"),
        ("worker-b", "label=worker-b,role=worker"),
    ] {
        let row = stdout
            .lines()
            .find(|l| l.contains(node))
            .unwrap_or_else(|| panic!("no row for {node} in:\n{stdout}"));
        assert!(row.contains(tags), "{node}'s tags missing in {row}");
        assert!(row.contains("alive"), "{node} not alive in {row}");
    }

    let mut watch = Command::new(CLI)
        .args(["watch", "--seed", &seed])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    // The first line is printed once the node has taken the subscription.
    assert!(next_line(&mut lines).await.starts_with("watching"));

    // Kill worker-b: its server stops at once and its node task without a goodbye.
    b.shutdown.shutdown(Duration::ZERO);
    drop(b);
    loop {
        let line = next_line(&mut lines).await;
        if line.starts_with("NodeFailed worker-b ") {
            assert!(line.contains("label=worker-b"), "{line}");
            break;
        }
        assert!(
            !line.contains("worker-a"),
            "nothing happened to worker-a: {line}"
        );
    }
    watch.kill().await.expect("the watch stops");
}

/// Runs the CLI to completion, returning its exit status, stderr and how long it took.
async fn run_failing(args: &[&str]) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    let output = tokio::time::timeout(PATIENCE, Command::new(CLI).args(args).output())
        .await
        .expect("the CLI exits, it does not hang")
        .expect("runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn an_unreachable_address_is_one_line_and_a_failure_exit_within_the_timeout() {
    // A port nothing listens on: bound, then released.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (status, stderr, took) = run_failing(&["--timeout", "1", "health", &addr]).await;
    assert!(!status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with(&format!("rpcnet: cannot connect to {addr}")),
        "{stderr:?}"
    );
    // The timeout is one second; process start-up and exit get generous slack.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn a_certificate_the_server_does_not_match_is_one_line_and_a_failure_exit() {
    let bound = RpcServer::new(rpc()).bind().expect("binds");
    let addr = bound.local_addr().to_string();
    tokio::spawn(bound.serve());
    let rogue = format!("{CERTS}/cluster/rogue_ca.pem");
    let (status, stderr, _) =
        run_failing(&["--timeout", "5", "--cert", &rogue, "health", &addr]).await;
    assert!(!status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("rpcnet: "), "{stderr:?}");
}

#[tokio::test]
async fn health_prints_serving_and_exits_zero_for_a_running_server() {
    let bound = RpcServer::new(rpc()).bind().expect("binds");
    let addr = bound.local_addr().to_string();
    tokio::spawn(bound.serve());
    let output = tokio::time::timeout(PATIENCE, Command::new(CLI).args(["health", &addr]).output())
        .await
        .expect("answers in time")
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
}

#[tokio::test]
async fn call_sends_json_as_messagepack_and_prints_the_json_reply() {
    let mut server = RpcServer::new(rpc());
    // A raw handler that decodes the request as MessagePack, as a typed handler would,
    // and answers with a field computed from it.
    server.register("Calc.add", |_ctx, request| async move {
        let (a, b): (i64, i64) = rmp_serde::from_slice(&request)
            .map_err(|e| rpcnet::Status::new(rpcnet::Code::InvalidArgument, e.to_string()))?;
        let mut reply = std::collections::BTreeMap::new();
        reply.insert("sum", a + b);
        Ok(rmp_serde::to_vec_named(&reply).expect("encodes").into())
    });
    let bound = server.bind().expect("binds");
    let addr = bound.local_addr().to_string();
    tokio::spawn(bound.serve());
    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(CLI)
            .args(["call", &addr, "Calc.add", "[2, 40]"])
            .output(),
    )
    .await
    .expect("answers in time")
    .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the reply is JSON");
    assert_eq!(reply, serde_json::json!({ "sum": 42 }));
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line within the test's patience")
        .expect("reads")
        .expect("the watch goes on")
}
