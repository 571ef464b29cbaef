//! rpcnet's side of the benchmark: a service defined with `#[rpcnet::service]`, exactly as a
//! user would write it.

use std::net::SocketAddr;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use rpcnet::Payload;
use serde::{Deserialize, Serialize};

use crate::transport::{Limits, CERT, KEY};
use crate::workload::{payload, Target};

/// An error with its chain of causes, for the bench's report.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a streaming call asks for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub(crate) struct StreamRequest {
    /// Number of items.
    pub(crate) count: u32,
    /// Bytes per item.
    pub(crate) size: u32,
}

/// The benchmark service's error (never produced; the bench counts any error).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) enum BenchError {
    /// The request asked for something unreasonable.
    Invalid,
}

/// The stream of items a streaming call returns.
pub(crate) type Items = Pin<Box<dyn Stream<Item = Result<Payload, BenchError>> + Send>>;

/// The benchmark's service: a unary echo and a server stream.
#[rpcnet::service(name = "bench.Bench")]
pub(crate) trait Bench {
    /// Returns the payload unchanged.
    async fn echo(&self, payload: Payload) -> Payload;
    /// Streams `count` items of `size` bytes.
    async fn stream(
        &self,
        request: StreamRequest,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<Payload, BenchError>> + Send>>, BenchError>;
}

struct BenchImpl;

impl Bench for BenchImpl {
    async fn echo(&self, payload: Payload) -> Payload {
        payload
    }

    async fn stream(&self, request: StreamRequest) -> Result<Items, BenchError> {
        if request.size > 1024 * 1024 {
            return Err(BenchError::Invalid);
        }
        // One prepared item: serialising it copies its bytes straight into the response
        // buffer, as the baseline copies its prepared item.
        let item = prepared_item(request.size as usize);
        let items = futures::stream::iter(0..request.count).map(move |_| Ok(Payload::from(item)));
        Ok(Box::pin(items))
    }
}

/// The prepared streaming item, made once per size and kept for the process's life, so
/// handing it out is a static borrow (no reference counting).
fn prepared_item(size: usize) -> &'static [u8] {
    static ITEMS: std::sync::Mutex<Vec<&'static [u8]>> = std::sync::Mutex::new(Vec::new());
    let mut items = ITEMS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let item = match items.iter().find(|item| item.len() == size) {
        Some(item) => *item,
        None => {
            let item: &'static [u8] = payload(size).as_slice().to_vec().leak();
            items.push(item);
            item
        }
    };
    item
}

fn config(bind: &str, limits: &Limits) -> rpcnet::RpcConfig {
    let config = rpcnet::RpcConfig::new(CERT, bind)
        .with_key_path(KEY)
        .with_server_name("localhost")
        .with_max_message_size(8 * 1024 * 1024);
    limits.apply_to(config)
}

/// Serves the bench service until the process is killed.
pub(crate) async fn serve(addr: SocketAddr, limits: &Limits) -> Result<(), String> {
    let mut server = rpcnet::RpcServer::new(config(&addr.to_string(), limits));
    server.add_service(BenchServer::new(BenchImpl));
    let bound = server.bind().map_err(|e| chain(&e))?;
    println!("READY {}", bound.local_addr());
    bound.serve().await.map_err(|e| chain(&e))
}

/// The rpcnet client under test.
#[derive(Clone)]
pub(crate) struct RpcTarget {
    client: BenchClient,
}

impl RpcTarget {
    pub(crate) async fn connect(addr: SocketAddr, limits: &Limits) -> Result<Self, String> {
        let client = BenchClient::connect(addr, config("127.0.0.1:0", limits))
            .await
            .map_err(|e| chain(&e))?;
        Ok(RpcTarget { client })
    }
}

impl Target for RpcTarget {
    async fn echo(&self, payload: bytes::Bytes) -> Result<bytes::Bytes, String> {
        let echo = self
            .client
            .echo(Payload::from(payload))
            .timeout(crate::workload::DEADLINE)
            .await
            .map_err(|e| chain(&e))?;
        Ok(echo.into_bytes())
    }

    async fn stream(&self, count: u32, size: u32) -> Result<u64, String> {
        let mut items = self
            .client
            .stream(StreamRequest { count, size })
            .timeout(crate::workload::DEADLINE)
            .await
            .map_err(|e| chain(&e))?;
        let mut n = 0u64;
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| chain(&e))?;
            // As the baseline checks its items: length, first and last byte.
            if item.len() != size as usize
                || item.first() != Some(&0)
                || item.last() != Some(&((size.saturating_sub(1) % 251) as u8))
            {
                return Err("corrupt item".into());
            }
            n += 1;
        }
        Ok(n)
    }

    fn name(&self) -> &'static str {
        "rpcnet"
    }
}
