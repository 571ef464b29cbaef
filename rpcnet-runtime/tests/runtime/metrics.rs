//! Call metrics through the `metrics` facade, read back with a debugging recorder: the
//! counters move on real calls, by method and status, on the server and the client.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use rpcnet_runtime::{CallContext, CallOptions, Code, RpcClient, RpcServer, Status};

use crate::support::{config, start, wait_for};

/// A recorder that keeps every value (the debugging recorder's snapshots reset them).
struct Keeping(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for Keeping {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .get_or_create_counter(key, |c| Counter::from_arc(Arc::clone(c)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .get_or_create_gauge(key, |g| Gauge::from_arc(Arc::clone(g)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .get_or_create_histogram(key, |h| Histogram::from_arc(Arc::clone(h)))
    }
}

/// The process's recorder, installed once for every test of this binary that reads
/// metrics (each uses method names of its own).
fn registry() -> &'static Registry<Key, AtomicStorage> {
    static REGISTRY: OnceLock<Arc<Registry<Key, AtomicStorage>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Arc::new(Registry::atomic());
        metrics::set_global_recorder(Keeping(Arc::clone(&registry)))
            .expect("the only recorder of this test binary");
        registry
    })
}

/// Held by each test of this file while it runs: the server connection gauge and the byte
/// counters have no labels a test could call its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether `key` is named `name` and has all of `labels`.
fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    registry()
        .get_counter_handles()
        .into_iter()
        .filter(|(key, _)| matches(key, name, labels))
        .map(|(_, c)| c.load(Ordering::Acquire))
        .sum()
}

fn gauge(name: &str, labels: &[(&str, &str)]) -> f64 {
    registry()
        .get_gauge_handles()
        .into_iter()
        .find(|(key, _)| matches(key, name, labels))
        .map_or(f64::NAN, |(_, g)| f64::from_bits(g.load(Ordering::Acquire)))
}

fn samples(name: &str, labels: &[(&str, &str)]) -> usize {
    registry()
        .get_histogram_handles()
        .into_iter()
        .filter(|(key, _)| matches(key, name, labels))
        .map(|(_, h)| h.data().len())
        .sum()
}

#[tokio::test]
async fn calls_are_counted_by_method_and_status_on_the_server_and_the_client() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let _ = registry();
    let mut server = RpcServer::new(config("127.0.0.1:0").with_metrics(true));
    server.register(
        "Metered.echo",
        |_ctx: CallContext, request: Bytes| async move { Ok(request) },
    );
    server.register(
        "Metered.refuse",
        |_ctx: CallContext, _request: Bytes| async move {
            Err::<Bytes, _>(Status::new(Code::InvalidArgument, "no"))
        },
    );
    let server = start(server);
    let client = RpcClient::connect(server.addr, config("127.0.0.1:0").with_metrics(true))
        .await
        .expect("connects");

    for _ in 0..3 {
        client
            .call_raw(
                "Metered.echo",
                Bytes::from_static(b"12345"),
                CallOptions::default(),
            )
            .await
            .expect("echoed");
    }
    let refused = client
        .call_raw("Metered.refuse", Bytes::new(), CallOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);

    let echo = [("method", "Metered.echo")];
    let refuse = [("method", "Metered.refuse")];
    // The server counts a call finished once its reply is written, which may be after the
    // client has it.
    wait_for(
        || {
            counter(
                "rpcnet_server_calls_finished_total",
                &[("method", "Metered.refuse"), ("code", "invalid_argument")],
            ) == 1
                && counter(
                    "rpcnet_server_calls_finished_total",
                    &[("method", "Metered.echo"), ("code", "ok")],
                ) == 3
        },
        "the server's finished counts",
    )
    .await;
    assert_eq!(counter("rpcnet_server_calls_started_total", &echo), 3);
    assert_eq!(counter("rpcnet_server_calls_started_total", &refuse), 1);
    assert_eq!(
        counter(
            "rpcnet_server_calls_finished_total",
            &[("method", "Metered.echo"), ("code", "internal")]
        ),
        0
    );
    assert_eq!(gauge("rpcnet_server_calls_in_flight", &echo), 0.0);
    assert_eq!(samples("rpcnet_server_call_duration_seconds", &echo), 3);
    assert_eq!(gauge("rpcnet_server_connections", &[]), 1.0);

    assert_eq!(
        counter(
            "rpcnet_client_calls_finished_total",
            &[("method", "Metered.echo"), ("code", "ok")]
        ),
        3
    );
    assert_eq!(
        counter(
            "rpcnet_client_calls_finished_total",
            &[("method", "Metered.refuse"), ("code", "invalid_argument")]
        ),
        1
    );
    assert_eq!(samples("rpcnet_client_call_duration_seconds", &refuse), 1);

    client.close();
    wait_for(
        || gauge("rpcnet_server_connections", &[]) == 0.0,
        "the connection to be counted out",
    )
    .await;
}

#[tokio::test]
async fn the_bytes_of_a_call_are_counted_in_both_directions_on_both_sides() {
    const PAYLOAD: u64 = 256 * 1024;
    let _alone = ONE_AT_A_TIME.lock().await;
    let _ = registry();
    let mut server = RpcServer::new(config("127.0.0.1:0").with_metrics(true));
    server.register(
        "Traffic.echo",
        |_ctx: CallContext, request: Bytes| async move { Ok(request) },
    );
    let server = start(server);
    let client = RpcClient::connect(server.addr, config("127.0.0.1:0").with_metrics(true))
        .await
        .expect("connects");
    let names = [
        "rpcnet_client_sent_bytes_total",
        "rpcnet_server_received_bytes_total",
        "rpcnet_server_sent_bytes_total",
        "rpcnet_client_received_bytes_total",
    ];
    let before = names.map(|name| counter(name, &[]));

    let echoed = client
        .call_raw(
            "Traffic.echo",
            Bytes::from(vec![7u8; PAYLOAD as usize]),
            CallOptions::default(),
        )
        .await
        .expect("echoed");
    assert_eq!(echoed.len() as u64, PAYLOAD);

    // Each side has counted the payload it sent and received, with QUIC's overhead but
    // not half as much again.
    wait_for(
        || {
            names
                .iter()
                .zip(before)
                .all(|(name, before)| counter(name, &[]) - before >= PAYLOAD)
        },
        "every byte counter to have moved by the payload",
    )
    .await;
    for (name, before) in names.iter().zip(before) {
        let moved = counter(name, &[]) - before;
        assert!(
            moved < PAYLOAD * 3 / 2,
            "{name} moved by {moved} bytes for a {PAYLOAD}-byte payload"
        );
    }

    client.close();
    wait_for(
        || gauge("rpcnet_server_connections", &[]) == 0.0,
        "the connection to be counted out",
    )
    .await;
}
