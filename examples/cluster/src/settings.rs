//! The example's configuration: environment variables with their defaults, the bundled
//! certificates, and the cluster timings the three binaries share.

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet::cluster::ClusterConfig;
use rpcnet::RpcConfig;

/// The director's default address (`DIRECTOR_ADDR`).
pub const DEFAULT_DIRECTOR_ADDR: &str = "127.0.0.1:61000";
/// A worker's default address (`WORKER_ADDR`).
pub const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:62001";
/// A worker's default label (`WORKER_LABEL`).
pub const DEFAULT_WORKER_LABEL: &str = "worker-1";

/// The bundled development certificate, found from this crate's directory so the binaries
/// work from any working directory.
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/test_cert.pem");
/// Its private key.
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/test_key.pem");

/// A configuration that is not usable, said in one line.
#[derive(Debug)]
pub struct BadSetting(pub String);

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadSetting {}

/// The variable's value, or `default` when it is unset or empty.
pub fn var_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// An `ip:port` address from the variable `name` (default `default`).
pub fn addr_var(name: &str, default: &str) -> Result<SocketAddr, BadSetting> {
    let value = var_or(name, default);
    value.parse().map_err(|_| {
        BadSetting(format!(
            "{name}={value:?} is not an address: write it as ip:port, for example {default}"
        ))
    })
}

/// A boolean from the variable `name` (`true`/`false`, `1`/`0`, `yes`/`no`).
pub fn bool_var(name: &str, default: bool) -> Result<bool, BadSetting> {
    let value = var_or(name, if default { "true" } else { "false" });
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(BadSetting(format!(
            "{name}={value:?} is not a boolean: write true or false"
        ))),
    }
}

/// A duration in seconds (fractions allowed) from the variable `name`.
pub fn secs_var(name: &str, default: f64) -> Result<Duration, BadSetting> {
    let value = var_or(name, &default.to_string());
    value
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            BadSetting(format!(
                "{name}={value:?} is not a duration: write seconds, for example {default}"
            ))
        })
}

/// The RPC configuration for a server bound at `bind` (or a client: `127.0.0.1:0`), with
/// the bundled certificate, short connect and idle timeouts (a dead peer is noticed within
/// seconds) and keep-alive pings.
pub fn rpc_config(bind: SocketAddr) -> RpcConfig {
    RpcConfig::new(CERT, bind.to_string())
        .with_key_path(KEY)
        .with_server_name("localhost")
        .with_connect_timeout(Duration::from_secs(2))
        .with_idle_timeout(Duration::from_secs(3))
        .with_keep_alive(true)
}

/// The membership timings of the example: a half-second probe period and short suspicion
/// so the director drops a killed worker within a few seconds, and join retries at most
/// two seconds apart so a worker started before the director joins soon after it is up.
pub fn cluster_config() -> ClusterConfig {
    ClusterConfig::lan()
        .with_health_check_interval(Duration::from_millis(500))
        .with_gossip_interval(Duration::from_millis(100))
        .with_suspicion_mult(3)
        .with_suspicion_max_mult(2)
        .with_push_pull_interval(Duration::from_secs(5))
        .with_join_backoff(Duration::from_millis(500))
        .with_join_backoff_max(Duration::from_secs(2))
}

/// The failure simulation's cycle: serving, then a warning, then failed, then recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureCycle {
    /// How long the worker serves before the warning (`WORKER_FAILURE_SERVE_SECS`, 10).
    pub serve: Duration,
    /// How long the warning lasts before the failure (`WORKER_FAILURE_WARNING_SECS`, 3).
    pub warning: Duration,
    /// How long the worker stays failed (`WORKER_FAILURE_DOWN_SECS`, 5).
    pub down: Duration,
}

impl FailureCycle {
    /// The cycle from the environment, with the defaults of the scenario (10 s + 3 s + 5 s).
    pub fn from_env() -> Result<Self, BadSetting> {
        Ok(FailureCycle {
            serve: secs_var("WORKER_FAILURE_SERVE_SECS", 10.0)?,
            warning: secs_var("WORKER_FAILURE_WARNING_SECS", 3.0)?,
            down: secs_var("WORKER_FAILURE_DOWN_SECS", 5.0)?,
        })
    }

    /// One whole cycle.
    pub fn period(&self) -> Duration {
        self.serve + self.warning + self.down
    }
}
