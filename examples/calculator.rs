//! A calculator with typed application errors: each failure reaches the client as
//! `CallError::Application(CalculatorError::..)`, next to framework errors such as a
//! deadline set on one call.
//!
//! ```text
//! cargo run --example calculator
//! ```

// An example binary talks to its user on the console.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use rpcnet::{CallError, RpcConfig, RpcError, RpcServer};
use serde::{Deserialize, Serialize};

/// Two operands.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AddRequest {
    /// The left operand.
    pub a: i64,
    /// The right operand.
    pub b: i64,
}

/// The result of an operation.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AddResponse {
    /// The value computed.
    pub result: i64,
}

/// Why the calculator refused.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum CalculatorError {
    /// The result does not fit in an `i64`.
    Overflow,
    /// An operand is not acceptable.
    InvalidInput(String),
}

/// A calculator service.
#[rpcnet::service]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError>;

    /// Divides `a` by `b` (several arguments travel as a tuple).
    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalculatorError>;

    /// Computes slowly, to show a per-call deadline.
    async fn slow_square(&self, x: i64) -> i64;
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
        a.checked_div(b).ok_or(CalculatorError::Overflow)
    }

    async fn slow_square(&self, x: i64) -> i64 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        x * x
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
    server.add_service(CalculatorServer::new(MyCalculator));
    let bound = server.bind()?;
    let addr = bound.local_addr();
    println!("server: listening on {addr}");
    tokio::spawn(bound.serve());

    let client = CalculatorClient::connect(addr, config()).await?;

    let sum = client.add(AddRequest { a: 40, b: 2 }).await?;
    println!("add(40, 2) = {}", sum.result);

    match client.add(AddRequest { a: i64::MAX, b: 1 }).await {
        Err(CallError::Application(CalculatorError::Overflow)) => {
            println!("add(i64::MAX, 1) -> the server reported Overflow")
        }
        other => println!("add(i64::MAX, 1) -> unexpected {other:?}"),
    }

    println!("divide(84, 2) = {}", client.divide(84, 2).await?);
    match client.divide(1, 0).await {
        Err(CallError::Application(CalculatorError::InvalidInput(why))) => {
            println!("divide(1, 0) -> invalid input: {why}")
        }
        other => println!("divide(1, 0) -> unexpected {other:?}"),
    }

    let deadline = Duration::from_millis(100);
    match client.slow_square(7).timeout(deadline).await {
        Err(CallError::Rpc(RpcError::DeadlineExceeded)) => {
            println!("slow_square(7) with a {deadline:?} deadline -> deadline exceeded")
        }
        other => println!("slow_square(7) -> unexpected {other:?}"),
    }
    Ok(())
}
