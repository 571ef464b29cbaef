//! The traits of API.md, exactly as written there, implemented with plain `async fn`, served
//! and called with the types the contract promises.

use futures::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AddRequest {
    pub a: i64,
    pub b: i64,
}
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AddResponse {
    pub result: i64,
}
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum CalculatorError {
    Overflow,
    InvalidInput(String),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InferenceRequest {
    pub prompt: String,
}
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InferenceResponse {
    pub token: String,
}
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum InferenceError {
    Overloaded,
}

#[rpcnet::service]
pub trait Calculator {
    async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError>;
}

// Streaming, in the form existing users already write (boxed streams):
#[rpcnet::service]
pub trait Inference {
    async fn generate(
        &self,
        request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    >;
}

// Server streaming (plain request in, stream out) and client streaming (stream in, single
// response out) are written the same way.
#[rpcnet::service]
pub trait Streams {
    async fn server_stream(
        &self,
        request: InferenceRequest,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    >;

    async fn client_stream(
        &self,
        request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<InferenceResponse, InferenceError>;
}

struct Impl;

impl Calculator for Impl {
    async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError> {
        let result = request
            .a
            .checked_add(request.b)
            .ok_or(CalculatorError::Overflow)?;
        Ok(AddResponse { result })
    }
}

impl Inference for Impl {
    async fn generate(
        &self,
        request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    > {
        use futures::StreamExt;
        Ok(Box::pin(
            request.map(|r| Ok(InferenceResponse { token: r.prompt })),
        ))
    }
}

impl Streams for Impl {
    async fn server_stream(
        &self,
        request: InferenceRequest,
    ) -> Result<
        Pin<Box<dyn Stream<Item = Result<InferenceResponse, InferenceError>> + Send>>,
        InferenceError,
    > {
        Ok(Box::pin(futures::stream::once(async move {
            Ok(InferenceResponse {
                token: request.prompt,
            })
        })))
    }

    async fn client_stream(
        &self,
        mut request: Pin<Box<dyn Stream<Item = InferenceRequest> + Send>>,
    ) -> Result<InferenceResponse, InferenceError> {
        use futures::StreamExt;
        let mut token = String::new();
        while let Some(r) = request.next().await {
            token.push_str(&r.prompt);
        }
        Ok(InferenceResponse { token })
    }
}

#[allow(dead_code)]
async fn contract(
    calculator: CalculatorClient,
    inference: InferenceClient,
    streams: StreamsClient,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"));
    server
        .add_service(CalculatorServer::new(Impl))
        .add_service(InferenceServer::new(Impl))
        .add_service(StreamsServer::from_arc(std::sync::Arc::new(Impl)));

    let sum: Result<AddResponse, rpcnet::CallError<CalculatorError>> = calculator
        .add(AddRequest { a: 1, b: 2 })
        .timeout(std::time::Duration::from_millis(50))
        .await;
    let _ = sum;

    let requests = futures::stream::iter(vec![InferenceRequest {
        prompt: "hi".into(),
    }]);
    let responses: rpcnet::ResponseStream<InferenceResponse, InferenceError> =
        inference.generate(requests).metadata("k", "v").await?;
    let _: &dyn Stream<Item = Result<InferenceResponse, rpcnet::CallError<InferenceError>>> =
        &responses;

    let one = streams
        .server_stream(InferenceRequest { prompt: "x".into() })
        .await?;
    let _: rpcnet::ResponseStream<InferenceResponse, InferenceError> = one;
    let (tx, rx) = futures::channel::mpsc::unbounded::<InferenceRequest>();
    drop(tx);
    let _: InferenceResponse = streams.client_stream(rx).await?;

    let shared = calculator.client().clone();
    let _again = CalculatorClient::from_client(shared);
    let _connect = CalculatorClient::connect(
        "127.0.0.1:1",
        rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"),
    );
    Ok(())
}

#[test]
fn api_md_traits_compile_as_written() {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::new("cert.pem", "127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Impl));
    let names: Vec<&str> = server.method_names().collect();
    assert_eq!(names, ["Calculator.add"]);
}
