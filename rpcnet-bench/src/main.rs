//! `rpcnet-bench`: the benchmark workload for rpcnet and for a bare s2n-quic baseline
//! (`PERFORMANCE.md` at the repository root describes the workload and the figures).
//!
//! ```text
//! rpcnet-bench server <addr> [--baseline] [--stock-limits] [--mtu N]
//! rpcnet-bench client <addr> <scenario|all> [--baseline] [--stock-limits] [--mtu N]
//! rpcnet-bench memory [connections] [calls]
//! rpcnet-bench cluster <pick_1000|route_c64|slow_worker|all>
//! ```
//!
//! `rpcnet-bench/run.sh` runs both implementations alternately and prints the comparison.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark binary reports on stdout

mod cluster;
mod memory;
mod raw;
mod rpc;
mod transport;
mod workload;

use std::net::SocketAddr;

use transport::Limits;

fn usage() -> ! {
    eprintln!("usage: rpcnet-bench server <addr> [--baseline] [--stock-limits] [--mtu N]");
    eprintln!("       rpcnet-bench client <addr> <unary_c1|unary_c64|bulk_1mib|stream_100k|all> [--baseline] [--stock-limits] [--mtu N]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("memory") {
        let connections = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200);
        let calls = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
        if let Err(error) = memory::run(connections, calls).await {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("cluster") {
        let scenario = args.get(1).map(String::as_str).unwrap_or("all");
        if let Err(error) = cluster::run(scenario).await {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
        return;
    }
    let baseline = args.iter().any(|a| a == "--baseline");
    let mut limits = Limits::rpcnet_defaults();
    limits.stock = args.iter().any(|a| a == "--stock-limits");
    if let Some(i) = args.iter().position(|a| a == "--mtu") {
        limits.max_mtu = args
            .get(i + 1)
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| usage());
    }
    let positional: Vec<&String> = {
        let mut skip = false;
        args.iter()
            .filter(|a| {
                if skip {
                    skip = false;
                    return false;
                }
                if *a == "--mtu" {
                    skip = true;
                }
                !a.starts_with("--")
            })
            .collect()
    };
    let addr: SocketAddr = positional
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let result = match positional.first().map(|s| s.as_str()) {
        Some("server") if baseline => raw::serve(addr, &limits).await,
        Some("server") => rpc::serve(addr, &limits).await,
        Some("client") => {
            let scenario = positional
                .get(2)
                .map(|s| s.as_str())
                .unwrap_or_else(|| usage());
            if baseline {
                workload::run(|| raw::RawTarget::connect(addr, &limits), scenario).await
            } else {
                workload::run(|| rpc::RpcTarget::connect(addr, &limits), scenario).await
            }
        }
        _ => usage(),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
