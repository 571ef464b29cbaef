//! What the binaries share about their console: `RUST_LOG`-driven tracing below the human
//! lines, and one clean line for a fatal error.

use std::error::Error;

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` (default: warnings only), so
/// the binaries' own lines on stdout stay readable.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// An error with its chain of causes on one line: `could not …: because …: because …`.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Resolves on Ctrl+C, or on SIGTERM on Unix (what `kill` and Kubernetes send to stop a
/// process), so either stops a binary cleanly.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
