//! A hostile client against a server in a process of its own, whose memory is measured:
//! requests that announce large frames and send all of them but the last byte must not make
//! the server hold what they send, and must not stop a well-behaved client's calls.
//!
//! The server runs in a child process, this test binary started again with only
//! [`hostile_server_process`] selected, so that its resident memory is its own.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use rpcnet_runtime::{CallOptions, Code, RpcServer};
use tokio::task::JoinSet;

use crate::support::{client, config, PATIENCE};
use crate::wire::{header, raw_connection, read_status, FrameType};

/// Set in the environment of the child process that serves.
const SERVER_ROLE: &str = "RPCNET_TEST_HOSTILE_SERVER";

/// How long the server waits on a request that makes no progress, in this test.
const STALL: Duration = Duration::from_secs(10);

/// The frames the hostile streams announce: the largest message the server accepts.
const ANNOUNCED: usize = rpcnet_runtime::DEFAULT_MAX_MESSAGE_SIZE;

/// The server half of the test below, run in a process of its own: serves `Echo.echo` with
/// the default limits (but a short stall timeout), prints its address, and exits when its
/// standard input closes.
#[test]
#[ignore = "the server process of `hostile_streams_hold_little_of_the_servers_memory`, which starts it"]
fn hostile_server_process() {
    if std::env::var_os(SERVER_ROLE).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut server = RpcServer::new(config("127.0.0.1:0").with_stall_timeout(STALL));
        server.register(
            "Echo.echo",
            |_ctx, request: Bytes| async move { Ok(request) },
        );
        let bound = server.bind().expect("binds");
        #[allow(clippy::print_stdout)] // how the parent process learns the address
        {
            println!("LISTENING {}", bound.local_addr());
        }
        tokio::spawn(bound.serve());
        // The parent closes our standard input when it is done (or dies).
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .expect("stdin watcher");
    });
}

/// The child process serving, and where.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "hostile::hostile_server_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER_ROLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .expect("readable");
            // The test harness may have begun the line with the test's name.
            if let Some((_, addr)) = line.split_once("LISTENING ") {
                break addr.trim().parse().expect("an address");
            }
        };
        ServerProcess { child, addr }
    }

    /// A field of `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing its standard input ends it; kill it in case it is stuck.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One hostile stream: a call whose data frame announces [`ANNOUNCED`] bytes and sends all
/// but the last. Returns the status the server ends it with.
async fn hostile_stream(
    mut handle: s2n_quic::connection::Handle,
    body: Bytes,
) -> Result<(Code, String), String> {
    let mut stream = handle
        .open_bidirectional_stream()
        .await
        .map_err(|e| format!("open: {e}"))?;
    let mut start = header("Echo.echo", 0);
    start.put_u8(FrameType::Data.as_u8());
    let mut len = ANNOUNCED;
    while len >= 0x80 {
        start.put_u8((len as u8) | 0x80);
        len >>= 7;
    }
    start.put_u8(len as u8);
    stream
        .send(start.freeze())
        .await
        .map_err(|e| format!("send: {e}"))?;
    // The server may refuse the stream part way (STOP_SENDING): the send then fails, and
    // the status tells why.
    let _ = stream.send(body).await;
    let (code, message, _) = read_status(&mut stream).await;
    Ok((code, message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // shown with --nocapture: the figure the README quotes
async fn hostile_streams_hold_little_of_the_servers_memory() {
    const CONNECTIONS: usize = 20;
    const STREAMS: usize = 1024;
    let server = ServerProcess::start();
    let honest = client(server.addr).await;
    let hello = Bytes::from_static(b"hello");
    // Warm up: the server's memory before the attack includes a served call.
    let echoed = honest
        .call_raw("Echo.echo", hello.clone(), CallOptions::default())
        .await
        .expect("a first call");
    assert_eq!(echoed, hello);
    let before = server.status_kib("VmRSS:");

    let body = Bytes::from(vec![0x5a; ANNOUNCED - 1]);
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(raw_connection(server.addr).await);
    }
    let mut hostile = JoinSet::new();
    for i in 0..STREAMS {
        let handle = connections[i % CONNECTIONS].handle();
        hostile.spawn(tokio::time::timeout(
            PATIENCE + STALL,
            hostile_stream(handle, body.clone()),
        ));
    }

    // The well-behaved client's calls go on while the hostile streams are served.
    let mut honest_calls = 0;
    while honest_calls < 200 {
        let echoed = honest
            .call_raw("Echo.echo", hello.clone(), CallOptions::default())
            .await
            .expect("a well-behaved call succeeds during the attack");
        assert_eq!(echoed, hello);
        honest_calls += 1;
        tokio::task::yield_now().await;
    }

    // Every hostile stream is ended by the server: refused for want of budget, or failed
    // by the stall timeout once all but its last byte had arrived.
    let (mut refused, mut stalled) = (0, 0);
    while let Some(joined) = hostile.join_next().await {
        let outcome = joined
            .expect("the stream's task")
            .expect("the server ended the hostile stream in time");
        match outcome {
            Ok((Code::ResourceExhausted, message)) => {
                assert!(message.contains("receive budget"), "{message}");
                refused += 1;
            }
            Ok((Code::DeadlineExceeded, message)) => {
                assert!(message.contains("stalled"), "{message}");
                stalled += 1;
            }
            Ok((code, message)) => panic!("a hostile stream ended with {code:?}: {message}"),
            Err(error) => panic!("a hostile stream broke: {error}"),
        }
    }
    assert_eq!(refused + stalled, STREAMS);
    assert!(refused > 0, "the budget refused no stream");

    let peak = server.status_kib("VmHWM:");
    let grown_mib = peak.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "server RSS {:.1} MiB before, peak {:.1} MiB: +{grown_mib:.1} MiB; {refused} streams \
         refused, {stalled} stalled; {honest_calls} honest calls",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    assert!(
        grown_mib < 64.0,
        "the server's resident memory grew by {grown_mib:.1} MiB"
    );

    // And the server still serves.
    let echoed = honest
        .call_raw("Echo.echo", hello.clone(), CallOptions::default())
        .await
        .expect("a last call");
    assert_eq!(echoed, hello);
}
