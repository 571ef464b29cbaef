//! Streaming methods through generated code over real QUIC: server, client and
//! bidirectional streaming, application errors before and in the middle of a stream, and
//! cancellation by dropping the response stream.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::loopback::{connect, serve, within, PATIENCE};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use rpcnet::{CallError, Streaming};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum FeedError {
    /// The request was refused before any item was produced.
    Refused,
    /// Produced in the middle of a stream.
    Broken(u32),
    /// A client-streamed number was negative.
    Negative(i64),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct CountRequest {
    up_to: u32,
    fail_at: Option<u32>,
}

#[rpcnet::service]
trait Feed {
    /// Server streaming, boxed as existing users write it.
    async fn count(
        &self,
        request: CountRequest,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<u32, FeedError>> + Send>>, FeedError>;

    /// Client streaming.
    async fn sum(
        &self,
        numbers: Pin<Box<dyn Stream<Item = i64> + Send + 'static>>,
    ) -> Result<i64, FeedError>;

    /// Bidirectional streaming with the shorter names for a boxed stream.
    async fn shout(
        &self,
        words: Streaming<String>,
    ) -> Result<BoxStream<'static, Result<String, FeedError>>, FeedError>;

    /// An endless stream of ticks; its items are not `Result`s and it is not wrapped in one.
    async fn ticks(&self, period_ms: u64) -> Pin<Box<dyn Stream<Item = u64> + Send>>;
}

/// Counts what the `ticks` streams produce and records when one is dropped on the server.
#[derive(Default)]
struct Probe {
    produced: AtomicU64,
    dropped: AtomicBool,
}

struct DropFlag(Arc<Probe>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

struct MyFeed {
    probe: Arc<Probe>,
}

impl Feed for MyFeed {
    async fn count(
        &self,
        request: CountRequest,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<u32, FeedError>> + Send>>, FeedError> {
        if request.up_to == 0 {
            return Err(FeedError::Refused);
        }
        let items = (0..request.up_to).map(move |n| match request.fail_at {
            Some(at) if at == n => Err(FeedError::Broken(n)),
            _ => Ok(n),
        });
        Ok(Box::pin(futures::stream::iter(items)))
    }

    async fn sum(
        &self,
        mut numbers: Pin<Box<dyn Stream<Item = i64> + Send + 'static>>,
    ) -> Result<i64, FeedError> {
        let mut total = 0;
        while let Some(n) = numbers.next().await {
            if n < 0 {
                return Err(FeedError::Negative(n));
            }
            total += n;
        }
        Ok(total)
    }

    async fn shout(
        &self,
        words: Streaming<String>,
    ) -> Result<BoxStream<'static, Result<String, FeedError>>, FeedError> {
        Ok(words.map(|word| Ok(word.to_uppercase())).boxed())
    }

    async fn ticks(&self, period_ms: u64) -> Pin<Box<dyn Stream<Item = u64> + Send>> {
        let flag = DropFlag(Arc::clone(&self.probe));
        Box::pin(futures::stream::unfold(flag, move |flag| async move {
            tokio::time::sleep(Duration::from_millis(period_ms)).await;
            let n = flag.0.produced.fetch_add(1, Ordering::SeqCst);
            Some((n, flag))
        }))
    }
}

async fn feed() -> (FeedClient, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let service = MyFeed {
        probe: Arc::clone(&probe),
    };
    let addr = serve(|server| {
        server.add_service(FeedServer::new(service));
    });
    (FeedClient::from_client(connect(addr).await), probe)
}

#[tokio::test]
async fn server_streaming_delivers_every_item_in_order() {
    let (client, _) = feed().await;
    let stream = within(client.count(CountRequest {
        up_to: 100,
        fail_at: None,
    }))
    .await
    .expect("the call starts");
    let items: Vec<u32> = within(stream.map(|item| item.expect("no error")).collect()).await;
    assert_eq!(items, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn mid_stream_application_error_is_that_items_error_then_the_stream_ends() {
    let (client, _) = feed().await;
    let mut stream = within(client.count(CountRequest {
        up_to: 10,
        fail_at: Some(3),
    }))
    .await
    .expect("the call starts");
    for expected in 0..3 {
        let item = within(stream.next()).await.expect("an item");
        assert_eq!(item.expect("items before the failure are Ok"), expected);
    }
    match within(stream.next()).await {
        Some(Err(CallError::Application(FeedError::Broken(3)))) => {}
        other => panic!("expected the typed mid-stream error, got {other:?}"),
    }
    assert!(
        within(stream.next()).await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn refusing_a_stream_gives_the_application_error() {
    let (client, _) = feed().await;
    let outcome = within(async {
        let mut stream = client
            .count(CountRequest {
                up_to: 0,
                fail_at: None,
            })
            .await?;
        match stream.next().await {
            Some(result) => result.map(|_| ()),
            None => Ok(()),
        }
    })
    .await;
    assert!(
        matches!(outcome, Err(CallError::Application(FeedError::Refused))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn client_streaming_consumes_the_whole_request_stream() {
    let (client, _) = feed().await;
    let total = within(client.sum(futures::stream::iter(1..=1000))).await;
    assert_eq!(total.expect("sum succeeds"), 500_500);
    let empty = within(client.sum(futures::stream::empty())).await;
    assert_eq!(empty.expect("an empty stream sums to zero"), 0);
}

#[tokio::test]
async fn client_streaming_application_error_arrives_typed() {
    let (client, _) = feed().await;
    let result = within(client.sum(futures::stream::iter(vec![1, 2, -5, 4]))).await;
    assert!(
        matches!(result, Err(CallError::Application(FeedError::Negative(-5)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn bidirectional_streaming_answers_each_request_while_the_next_is_unsent() {
    let (client, _) = feed().await;
    let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
    let mut responses = within(client.shout(rx)).await.expect("the call starts");
    for word in ["hello", "quic", "world"] {
        tx.unbounded_send(word.to_owned())
            .expect("the request stream is open");
        let answer = within(responses.next()).await.expect("an answer");
        assert_eq!(answer.expect("no error"), word.to_uppercase());
    }
    drop(tx);
    assert!(
        within(responses.next()).await.is_none(),
        "ends after the requests end"
    );
}

#[tokio::test]
async fn dropping_the_response_stream_drops_the_handlers_stream_on_the_server() {
    let (client, probe) = feed().await;
    let mut ticks = within(client.ticks(10)).await.expect("the call starts");
    for expected in 0..3 {
        let tick = within(ticks.next()).await.expect("a tick");
        assert_eq!(tick.expect("ticks are infallible"), expected);
    }
    assert!(!probe.dropped.load(Ordering::SeqCst));
    drop(ticks);

    // The server drops the handler's stream (which owns the flag) once it sees the reset:
    // from then on nothing can produce ticks.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !probe.dropped.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server kept the dropped call's stream alive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
