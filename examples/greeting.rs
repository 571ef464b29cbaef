//! The smallest rpcnet program: a unary greeting service, served and called in one process
//! over QUIC on loopback.
//!
//! ```text
//! cargo run --example greeting
//! ```

// An example binary talks to its user on the console.
#![allow(clippy::print_stdout)]

use rpcnet::{RpcConfig, RpcServer};

/// The trait is the schema: the macro generates `GreeterServer` and `GreeterClient`.
#[rpcnet::service]
pub trait Greeter {
    /// Greets someone by name.
    async fn greet(&self, name: String) -> String;
}

struct FriendlyGreeter;

impl Greeter for FriendlyGreeter {
    async fn greet(&self, name: String) -> String {
        format!("Hello, {name}!")
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
    server.add_service(GreeterServer::new(FriendlyGreeter));
    let bound = server.bind()?;
    let addr = bound.local_addr();
    println!("server: listening on {addr}");
    tokio::spawn(bound.serve());

    let client = GreeterClient::connect(addr, config()).await?;
    println!("client: connected to {addr}");
    for name in ["Ada", "Grace", "Barbara"] {
        let greeting = client.greet(name.to_owned()).await?;
        println!("client: greet({name:?}) -> {greeting:?}");
    }
    Ok(())
}
