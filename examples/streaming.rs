//! All four call kinds through one generated service: unary (a ping), server streaming (a
//! countdown), client streaming (an average of uploaded readings) and bidirectional
//! streaming (a chat that answers each line as it arrives). Also shows an application
//! error in the middle of a stream and cancelling a stream by dropping it.
//!
//! ```text
//! cargo run --example streaming
//! ```

// An example binary talks to its user on the console.
#![allow(clippy::print_stdout)]

use std::pin::Pin;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use rpcnet::{CallError, RpcConfig, RpcServer, Streaming};
use serde::{Deserialize, Serialize};

/// Why a stream failed.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum StreamError {
    /// The countdown was asked to pass a number the server refuses to say.
    Unlucky(u32),
    /// No readings were uploaded.
    Empty,
}

/// Streaming, in all three directions.
#[rpcnet::service]
pub trait Streams {
    /// Unary, for comparison: one request, one response.
    async fn ping(&self, message: String) -> String;

    /// Server streaming: counts down from `from` to 1, refusing to say 13.
    async fn countdown(
        &self,
        from: u32,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<u32, StreamError>> + Send>>, StreamError>;

    /// Client streaming: the average of all readings.
    async fn average(
        &self,
        readings: Pin<Box<dyn Stream<Item = f64> + Send>>,
    ) -> Result<f64, StreamError>;

    /// Bidirectional streaming, with the shorter names for a boxed stream: answers every
    /// line.
    async fn chat(
        &self,
        lines: Streaming<String>,
    ) -> Result<BoxStream<'static, Result<String, StreamError>>, StreamError>;
}

struct MyStreams;

impl Streams for MyStreams {
    async fn ping(&self, message: String) -> String {
        format!("pong: {message}")
    }

    async fn countdown(
        &self,
        from: u32,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<u32, StreamError>> + Send>>, StreamError> {
        let numbers = futures::stream::iter((1..=from).rev()).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if n == 13 {
                Err(StreamError::Unlucky(n))
            } else {
                Ok(n)
            }
        });
        Ok(Box::pin(numbers))
    }

    async fn average(
        &self,
        mut readings: Pin<Box<dyn Stream<Item = f64> + Send>>,
    ) -> Result<f64, StreamError> {
        let (mut sum, mut count) = (0.0, 0u32);
        while let Some(reading) = readings.next().await {
            sum += reading;
            count += 1;
        }
        if count == 0 {
            return Err(StreamError::Empty);
        }
        Ok(sum / f64::from(count))
    }

    async fn chat(
        &self,
        lines: Streaming<String>,
    ) -> Result<BoxStream<'static, Result<String, StreamError>>, StreamError> {
        Ok(lines
            .map(|line| {
                Ok(format!(
                    "you said {line:?} ({} characters)",
                    line.chars().count()
                ))
            })
            .boxed())
    }
}

fn config() -> RpcConfig {
    RpcConfig::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/certs/test_cert.pem"),
        "127.0.0.1:0",
    )
    .with_key_path(concat!(env!("CARGO_MANIFEST_DIR"), "/certs/test_key.pem"))
    .with_server_name("localhost")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = RpcServer::new(config());
    server.add_service(StreamsServer::new(MyStreams));
    let bound = server.bind()?;
    let addr = bound.local_addr();
    println!("server: listening on {addr}");
    tokio::spawn(bound.serve());
    let client = StreamsClient::connect(addr, config()).await?;

    println!("-- unary: ping");
    println!("   {}", client.ping("hello".to_owned()).await?);

    println!("-- server streaming: countdown(5)");
    let mut countdown = client.countdown(5).await?;
    while let Some(n) = countdown.next().await {
        println!("   {}", n?);
    }

    println!("-- server streaming: countdown(15) fails in the middle");
    let mut countdown = client.countdown(15).await?;
    while let Some(item) = countdown.next().await {
        match item {
            Ok(n) => println!("   {n}"),
            Err(CallError::Application(error)) => println!("   stream ended with {error:?}"),
            Err(other) => return Err(other.into()),
        }
    }

    println!("-- server streaming: countdown(1000), dropped after three numbers");
    let first: Vec<u32> = client
        .countdown(1000)
        .await?
        .take(3)
        .map(|n| n.unwrap_or_default())
        .collect()
        .await;
    println!("   got {first:?}; dropping the stream cancels the call on the server");

    println!("-- client streaming: average of five readings");
    let readings = futures::stream::iter([20.5, 21.0, 19.5, 22.0, 21.5]);
    println!("   average = {}", client.average(readings).await?);

    println!("-- bidirectional streaming: chat");
    let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
    let mut answers = client.chat(rx).await?;
    for line in ["hello", "how are streams?", "bye"] {
        tx.unbounded_send(line.to_owned())?;
        if let Some(answer) = answers.next().await {
            println!("   {line:?} -> {}", answer?);
        }
    }
    drop(tx);
    while let Some(answer) = answers.next().await {
        println!("   late answer {}", answer?);
    }
    println!("   chat closed");
    Ok(())
}
