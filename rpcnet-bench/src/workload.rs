//! The benchmark's scenarios, independent of the implementation under test.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Bytes of a unary payload in the `unary_*` scenarios.
pub(crate) const SMALL: usize = 64;
/// Bytes of a `bulk_1mib` payload.
pub(crate) const BULK: usize = 1024 * 1024;
/// Items per `stream_100k` call, and their size.
pub(crate) const STREAM_ITEMS: u32 = 100_000;
pub(crate) const STREAM_ITEM_SIZE: u32 = 64;
/// Every call's deadline.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// What an implementation under test offers the workload. Each call is bounded by
/// [`DEADLINE`] in the implementation's own way (rpcnet's call timeout, which also reaches
/// the server; a Tokio timeout around the baseline's call), so no call pays for two timers.
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// Sends `payload` and returns the echo.
    fn echo(
        &self,
        payload: bytes::Bytes,
    ) -> impl Future<Output = Result<bytes::Bytes, String>> + Send;
    /// Asks for `count` items of `size` bytes and returns how many arrived intact.
    fn stream(&self, count: u32, size: u32) -> impl Future<Output = Result<u64, String>> + Send;
    /// The name printed as `impl=`.
    fn name(&self) -> &'static str;
}

/// The prepared payload: byte `i` is `i % 251`.
pub(crate) fn payload(len: usize) -> Arc<Vec<u8>> {
    Arc::new((0..len).map(|i| (i % 251) as u8).collect())
}

fn echo_is_intact(sent: &[u8], got: &[u8]) -> bool {
    got.len() == sent.len() && got.first() == sent.first() && got.last() == sent.last()
}

struct TaskResult {
    histogram: Histogram<u64>,
    calls: u64,
    errors: u64,
}

/// A closed loop of `tasks` tasks echoing `len`-byte payloads: 1 s warm-up, 5 s measured.
pub(crate) async fn echo_scenario<T: Target>(target: T, scenario: &str, len: usize, tasks: usize) {
    let warmup = Duration::from_secs(1);
    let measured = Duration::from_secs(5);
    let data = payload(len);
    let start = Instant::now() + Duration::from_millis(10);
    let window = (start + warmup, start + warmup + measured);
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let target = target.clone();
        let data = Arc::clone(&data);
        handles.push(tokio::spawn(async move {
            let mut result = TaskResult {
                histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                calls: 0,
                errors: 0,
            };
            loop {
                // A fresh copy for every call, as a real caller would build its request.
                let request = bytes::Bytes::copy_from_slice(&data);
                let began = Instant::now();
                let outcome = target.echo(request).await;
                let ended = Instant::now();
                let ok = matches!(&outcome, Ok(echo) if echo_is_intact(&data, echo));
                if !ok {
                    // BENCH_DEBUG=1 names each failure on stderr.
                    if std::env::var_os("BENCH_DEBUG").is_some() {
                        eprintln!("call failed: {outcome:?}");
                    }
                    result.errors += 1;
                }
                if ok && ended > window.0 && ended <= window.1 {
                    result.calls += 1;
                    let micros = (ended - began).as_micros() as u64;
                    let _ = result.histogram.record(micros.max(1));
                }
                if ended > window.1 {
                    return result;
                }
            }
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut calls, mut errors) = (0, 0);
    for handle in handles {
        match handle.await {
            Ok(task) => {
                let _ = histogram.add(&task.histogram);
                calls += task.calls;
                errors += task.errors;
            }
            Err(_) => errors += 1,
        }
    }
    let secs = measured.as_secs_f64();
    let rps = calls as f64 / secs;
    let p50 = histogram.value_at_quantile(0.50);
    let p99 = histogram.value_at_quantile(0.99);
    let name = target.name();
    if len >= BULK {
        let mib_s = rps * (len as f64) / (1024.0 * 1024.0);
        println!("impl={name} scenario={scenario} mib_s={mib_s:.1} rps={rps:.1} p50_us={p50} p99_us={p99} calls={calls} errors={errors}");
    } else {
        println!("impl={name} scenario={scenario} rps={rps:.0} p50_us={p50} p99_us={p99} calls={calls} errors={errors}");
    }
}

/// Server-streaming calls of 100,000 × 64 B: at least 1 s of warm-up, then calls until at
/// least 5 s have passed.
pub(crate) async fn stream_scenario<T: Target>(target: T) {
    let mut errors = 0u64;
    let mut warmup_calls = 0u64;
    let warmup_end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warmup_end {
        warmup_calls += 1;
        match target.stream(STREAM_ITEMS, STREAM_ITEM_SIZE).await {
            Ok(n) if n == u64::from(STREAM_ITEMS) => {}
            _ => errors += 1,
        }
    }
    let began = Instant::now();
    let (mut calls, mut items) = (0u64, 0u64);
    while began.elapsed() < Duration::from_secs(5) {
        match target.stream(STREAM_ITEMS, STREAM_ITEM_SIZE).await {
            Ok(n) if n == u64::from(STREAM_ITEMS) => {
                calls += 1;
                items += n;
            }
            _ => errors += 1,
        }
    }
    let items_s = items as f64 / began.elapsed().as_secs_f64();
    // BENCH_DEBUG=1 also reports the warm-up calls (to turn profiles into costs per item).
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!("warmup_calls={warmup_calls}");
    }
    println!(
        "impl={} scenario=stream_100k items_s={items_s:.0} calls={calls} errors={errors}",
        target.name()
    );
}

/// Runs one named scenario, or all of them in order, each on a connection of its own.
pub(crate) async fn run<T, C, F>(connect: C, scenario: &str) -> Result<(), String>
where
    T: Target,
    C: Fn() -> F,
    F: std::future::Future<Output = Result<T, String>>,
{
    let all = scenario == "all";
    let mut ran = false;
    if all || scenario == "unary_c1" {
        echo_scenario(connect().await?, "unary_c1", SMALL, 1).await;
        ran = true;
    }
    if all || scenario == "unary_c64" {
        echo_scenario(connect().await?, "unary_c64", SMALL, 64).await;
        ran = true;
    }
    if all || scenario == "bulk_1mib" {
        echo_scenario(connect().await?, "bulk_1mib", BULK, 4).await;
        ran = true;
    }
    if all || scenario == "stream_100k" {
        stream_scenario(connect().await?).await;
        ran = true;
    }
    if ran {
        Ok(())
    } else {
        Err(format!("unknown scenario `{scenario}`"))
    }
}
