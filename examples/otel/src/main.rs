//! Serves `Greeter` and `Directory` on loopback, greets a few users with one trace each, and
//! exports every span over OTLP/HTTP (see README.md beside Cargo.toml).
//!
//! ```text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --manifest-path examples/otel/Cargo.toml
//! ```

// An example binary talks to its user on the console.
#![allow(clippy::print_stdout)]

use rpcnet_otel_example::{greet_once, install, start_servers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let telemetry = install("rpcnet-otel-example").map_err(|e| e.to_string())?;
    let greeter = start_servers().await.map_err(|e| e.to_string())?;
    let mut users: Vec<String> = std::env::args().skip(1).collect();
    if users.is_empty() {
        users.push("ada".to_owned());
    }
    for user in users {
        let (greeting, trace_id) = greet_once(greeter, &user)
            .await
            .map_err(|e| e.to_string())?;
        println!("{greeting} (trace {trace_id})");
    }
    // The batch exporter sends what is queued; its requests run on this runtime, so the
    // blocking shutdown waits on a thread of its own.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await??;
    Ok(())
}
