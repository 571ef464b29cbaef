//! Unary methods through generated code over real QUIC: typed values, several arguments,
//! plain (infallible) returns, typed application errors, per-call deadlines and the call
//! context seen by handlers.

use std::time::Duration;

use crate::loopback::{connect, serve, within};
use rpcnet::{CallContext, CallError, RpcError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct AddRequest {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct AddResponse {
    result: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum CalculatorError {
    Overflow,
    InvalidInput(String),
}

/// What a handler saw of its call context.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct SeenContext {
    method: String,
    tenant: Option<String>,
    remaining_ms: Option<u64>,
    has_peer: bool,
}

#[rpcnet::service]
trait Calculator {
    /// Adds two numbers, failing on overflow.
    async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError>;

    /// Divides `a` by `b`: several arguments travel as a tuple.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalculatorError>;

    /// Cannot fail: a plain return value.
    async fn negate(&self, value: i64) -> i64;

    /// No arguments at all.
    async fn zero(&self) -> i64;

    /// Concatenates three values of different types.
    async fn describe(&self, name: String, count: u32, tags: Vec<String>) -> String;

    /// Sleeps before answering, for deadline tests.
    async fn slow(&self, millis: u64) -> Result<(), CalculatorError>;

    /// Reports what the handler sees through `CallContext::current()`.
    async fn context(&self) -> SeenContext;
}

struct MyCalculator;

impl Calculator for MyCalculator {
    async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError> {
        let result = request
            .a
            .checked_add(request.b)
            .ok_or(CalculatorError::Overflow)?;
        Ok(AddResponse { result })
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalculatorError> {
        if b == 0 {
            return Err(CalculatorError::InvalidInput("division by zero".into()));
        }
        Ok(a / b)
    }

    async fn negate(&self, value: i64) -> i64 {
        -value
    }

    async fn zero(&self) -> i64 {
        0
    }

    async fn describe(&self, name: String, count: u32, tags: Vec<String>) -> String {
        format!("{name}:{count}:{}", tags.join(","))
    }

    async fn slow(&self, millis: u64) -> Result<(), CalculatorError> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(())
    }

    async fn context(&self) -> SeenContext {
        let ctx = CallContext::current().expect("handlers run inside a call context");
        SeenContext {
            method: ctx.method().to_owned(),
            tenant: ctx.metadata().get_str("tenant").map(str::to_owned),
            remaining_ms: ctx.remaining().map(|d| d.as_millis() as u64),
            has_peer: ctx.peer().is_some(),
        }
    }
}

async fn calculator() -> CalculatorClient {
    let addr = serve(|server| {
        server.add_service(CalculatorServer::new(MyCalculator));
    });
    CalculatorClient::from_client(connect(addr).await)
}

#[tokio::test]
async fn unary_call_returns_the_typed_response() {
    let client = calculator().await;
    let response = within(client.add(AddRequest { a: 2, b: 40 })).await;
    assert_eq!(response.expect("add succeeds"), AddResponse { result: 42 });
}

#[tokio::test]
async fn connect_builds_a_client_from_an_address() {
    let addr = serve(|server| {
        server.add_service(CalculatorServer::new(MyCalculator));
    });
    let client = within(CalculatorClient::connect(addr, crate::loopback::config()))
        .await
        .expect("connects");
    assert_eq!(client.client().server_addr(), addr);
    assert_eq!(within(client.negate(5)).await.expect("negate"), -5);
}

#[tokio::test]
async fn application_error_arrives_typed() {
    let client = calculator().await;
    let result = within(client.add(AddRequest { a: i64::MAX, b: 1 })).await;
    assert!(
        matches!(
            result,
            Err(CallError::Application(CalculatorError::Overflow))
        ),
        "{result:?}"
    );
    let result = within(client.divide(1, 0)).await;
    match result {
        Err(CallError::Application(CalculatorError::InvalidInput(message))) => {
            assert_eq!(message, "division by zero")
        }
        other => panic!("expected the typed InvalidInput error, got {other:?}"),
    }
}

#[tokio::test]
async fn several_arguments_travel_in_order() {
    let client = calculator().await;
    assert_eq!(within(client.divide(42, 6)).await.expect("divide"), 7);
    let text = within(client.describe("x".into(), 3, vec!["a".into(), "b".into()])).await;
    assert_eq!(text.expect("describe"), "x:3:a,b");
}

#[tokio::test]
async fn plain_return_values_and_no_arguments_work() {
    let client = calculator().await;
    let negated: Result<i64, CallError<rpcnet::Never>> = within(client.negate(7)).await;
    assert_eq!(negated.expect("negate"), -7);
    assert_eq!(within(client.zero()).await.expect("zero"), 0);
}

#[tokio::test]
async fn per_call_timeout_overrides_the_deadline() {
    let client = calculator().await;
    let result = within(client.slow(2_000).timeout(Duration::from_millis(50))).await;
    assert!(
        matches!(result, Err(CallError::Rpc(RpcError::DeadlineExceeded))),
        "{result:?}"
    );
    // Without the override the same call completes, and the connection is still usable.
    within(client.slow(10))
        .await
        .expect("a short sleep completes");
}

#[tokio::test]
async fn handler_sees_metadata_and_deadline_through_call_context() {
    let client = calculator().await;
    let seen = within(
        client
            .context()
            .metadata("tenant", "acme")
            .timeout(Duration::from_secs(30)),
    )
    .await
    .expect("context call succeeds");
    assert_eq!(seen.method, "Calculator.context");
    assert_eq!(seen.tenant.as_deref(), Some("acme"));
    assert!(seen.has_peer);
    let remaining = seen.remaining_ms.expect("the handler sees the deadline");
    assert!(
        remaining > 0 && remaining <= 30_000,
        "remaining {remaining} ms"
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_client() {
    let client = calculator().await;
    let calls = (0..20).map(|i| {
        let client = client.clone();
        async move { client.add(AddRequest { a: i, b: i }).await }
    });
    let results = within(futures::future::join_all(calls)).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("add").result, 2 * i as i64);
    }
}
