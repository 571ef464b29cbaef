//! The example's configuration: environment variables with their defaults, the bundled
//! certificates, and the cluster timings the three binaries share.
//!
//! Every variable a binary reads is named in [`vars`], and the lists [`DIRECTOR_VARS`],
//! [`WORKER_VARS`] and [`CLIENT_VARS`] say which binary reads which: the test of the
//! Kubernetes manifests (`tests/manifests.rs`) checks the manifests against these lists.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rpcnet::cluster::ClusterConfig;
use rpcnet::RpcConfig;

/// The names of the environment variables the binaries read.
pub mod vars {
    /// The director's address: where it serves (unless [`DIRECTOR_BIND_ADDR`] is set) for
    /// the director, where to find it (`ip:port` or `host:port`) for workers and clients.
    pub const DIRECTOR_ADDR: &str = "DIRECTOR_ADDR";
    /// The address the director binds (`ip:port`; [`DIRECTOR_ADDR`] by default).
    pub const DIRECTOR_BIND_ADDR: &str = "DIRECTOR_BIND_ADDR";
    /// The address the director advertises to the cluster (`ip:port`; the bound address
    /// by default).
    pub const DIRECTOR_ADVERTISE_ADDR: &str = "DIRECTOR_ADVERTISE_ADDR";
    /// Other members the director joins through when it starts (comma-separated
    /// `host:port`; none by default).
    pub const DIRECTOR_SEEDS: &str = "DIRECTOR_SEEDS";
    /// Where the director serves its metrics in Prometheus text format (`ip:port`; unset:
    /// no metrics).
    pub const DIRECTOR_METRICS_ADDR: &str = "DIRECTOR_METRICS_ADDR";
    /// A worker's node id and `label` tag.
    pub const WORKER_LABEL: &str = "WORKER_LABEL";
    /// A worker's address: where it serves and what it advertises, unless
    /// [`WORKER_BIND_ADDR`] or [`WORKER_ADVERTISE_ADDR`] say otherwise.
    pub const WORKER_ADDR: &str = "WORKER_ADDR";
    /// The address a worker binds (`ip:port`; [`WORKER_ADDR`] by default).
    pub const WORKER_BIND_ADDR: &str = "WORKER_BIND_ADDR";
    /// The address a worker advertises: where other nodes, and the clients the director
    /// sends to it, reach it (`ip:port`; the bound address by default).
    pub const WORKER_ADVERTISE_ADDR: &str = "WORKER_ADVERTISE_ADDR";
    /// The failure simulation on or off.
    pub const WORKER_FAILURE_ENABLED: &str = "WORKER_FAILURE_ENABLED";
    /// The serving time of a failure cycle, in seconds.
    pub const WORKER_FAILURE_SERVE_SECS: &str = "WORKER_FAILURE_SERVE_SECS";
    /// The warning time before a simulated failure, in seconds.
    pub const WORKER_FAILURE_WARNING_SECS: &str = "WORKER_FAILURE_WARNING_SECS";
    /// How long a simulated failure lasts, in seconds.
    pub const WORKER_FAILURE_DOWN_SECS: &str = "WORKER_FAILURE_DOWN_SECS";
    /// A file where the worker's `record` method appends request ids.
    pub const WORKER_REQUEST_LOG: &str = "WORKER_REQUEST_LOG";
    /// A file where a node writes its membership view.
    pub const MEMBERSHIP_LOG: &str = "MEMBERSHIP_LOG";
    /// How long the client waits for a token before it gives up on its worker, in seconds.
    pub const CLIENT_STALL_SECS: &str = "CLIENT_STALL_SECS";
    /// The certificate (PEM) a node serves with and a client trusts without a CA.
    pub const TLS_CERT_PATH: &str = "TLS_CERT_PATH";
    /// The private key (PEM) of [`TLS_CERT_PATH`].
    pub const TLS_KEY_PATH: &str = "TLS_KEY_PATH";
    /// The certificate authority (PEM) that signs the deployment's certificates.
    pub const TLS_CA_PATH: &str = "TLS_CA_PATH";
    /// The name a client expects in the certificate of the node it connects to.
    pub const TLS_SERVER_NAME: &str = "TLS_SERVER_NAME";
    /// The tracing filter (`tracing_subscriber`'s `EnvFilter` syntax).
    pub const RUST_LOG: &str = "RUST_LOG";
}

use vars::*;

/// The variables the `director` binary reads.
pub const DIRECTOR_VARS: &[&str] = &[
    DIRECTOR_ADDR,
    DIRECTOR_BIND_ADDR,
    DIRECTOR_ADVERTISE_ADDR,
    DIRECTOR_SEEDS,
    DIRECTOR_METRICS_ADDR,
    MEMBERSHIP_LOG,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    TLS_CA_PATH,
    TLS_SERVER_NAME,
    RUST_LOG,
];

/// The variables the `worker` binary reads.
pub const WORKER_VARS: &[&str] = &[
    WORKER_LABEL,
    WORKER_ADDR,
    WORKER_BIND_ADDR,
    WORKER_ADVERTISE_ADDR,
    DIRECTOR_ADDR,
    WORKER_FAILURE_ENABLED,
    WORKER_FAILURE_SERVE_SECS,
    WORKER_FAILURE_WARNING_SECS,
    WORKER_FAILURE_DOWN_SECS,
    WORKER_REQUEST_LOG,
    MEMBERSHIP_LOG,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    TLS_CA_PATH,
    TLS_SERVER_NAME,
    RUST_LOG,
];

/// The variables the `client` binary reads.
pub const CLIENT_VARS: &[&str] = &[
    DIRECTOR_ADDR,
    CLIENT_STALL_SECS,
    TLS_CERT_PATH,
    TLS_KEY_PATH,
    TLS_CA_PATH,
    TLS_SERVER_NAME,
    RUST_LOG,
];

/// The director's default address (`DIRECTOR_ADDR`).
pub const DEFAULT_DIRECTOR_ADDR: &str = "127.0.0.1:61000";
/// A worker's default address (`WORKER_ADDR`).
pub const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:62001";
/// A worker's default label (`WORKER_LABEL`).
pub const DEFAULT_WORKER_LABEL: &str = "worker-1";
/// The default name clients expect in a node's certificate (`TLS_SERVER_NAME`): the one
/// the bundled development certificates carry.
pub const DEFAULT_SERVER_NAME: &str = "localhost";

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

/// The RPC configuration for a server bound at `bind` (or a client: `127.0.0.1:0`) with
/// the bundled development certificate (see [`Tls::rpc_config`]).
pub fn rpc_config(bind: SocketAddr) -> RpcConfig {
    Tls::bundled().rpc_config(bind)
}

/// The TLS files and server name of a node or client (`TLS_CERT_PATH`, `TLS_KEY_PATH`,
/// `TLS_CA_PATH`, `TLS_SERVER_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate a server presents, and the one a client trusts when there is no CA.
    pub cert: PathBuf,
    /// The certificate's private key.
    pub key: PathBuf,
    /// The certificate authority clients verify servers against, if any.
    pub ca: Option<PathBuf>,
    /// The name a client expects in the server's certificate.
    pub server_name: String,
}

impl Tls {
    /// The repository's development certificate and key, no CA, server name `localhost`.
    pub fn bundled() -> Self {
        Tls {
            cert: PathBuf::from(CERT),
            key: PathBuf::from(KEY),
            ca: None,
            server_name: DEFAULT_SERVER_NAME.to_owned(),
        }
    }

    /// The TLS settings from the environment, each defaulting to [`Tls::bundled`]'s. A
    /// file that is named but not readable is a [`BadSetting`].
    pub fn from_env() -> Result<Self, BadSetting> {
        let bundled = Tls::bundled();
        Ok(Tls {
            cert: file_var(TLS_CERT_PATH)?.unwrap_or(bundled.cert),
            key: file_var(TLS_KEY_PATH)?.unwrap_or(bundled.key),
            ca: file_var(TLS_CA_PATH)?,
            server_name: var_or(TLS_SERVER_NAME, DEFAULT_SERVER_NAME),
        })
    }

    /// The RPC configuration for a server bound at `bind` (or a client: `127.0.0.1:0`),
    /// with these files, short connect and idle timeouts (a dead peer is noticed within
    /// seconds) and keep-alive pings.
    pub fn rpc_config(&self, bind: SocketAddr) -> RpcConfig {
        let config = RpcConfig::new(self.cert.clone(), bind.to_string())
            .with_key_path(self.key.clone())
            .with_server_name(self.server_name.clone())
            .with_connect_timeout(Duration::from_secs(2))
            .with_idle_timeout(Duration::from_secs(3))
            .with_keep_alive(true);
        match &self.ca {
            Some(ca) => config.with_ca_path(ca.clone()),
            None => config,
        }
    }
}

/// A readable file named by the variable `name`, if it is set.
fn file_var(name: &str) -> Result<Option<PathBuf>, BadSetting> {
    let value = var_or(name, "");
    if value.is_empty() {
        return Ok(None);
    }
    std::fs::File::open(&value)
        .map_err(|e| BadSetting(format!("{name}={value:?} cannot be read: {e}")))?;
    Ok(Some(PathBuf::from(value)))
}

/// Where a node binds and what it advertises to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The address its server binds.
    pub bind: SocketAddr,
    /// The address other nodes (and clients handed it by the director) reach it at, when
    /// it is not `bind`.
    pub advertise: Option<SocketAddr>,
}

impl Addresses {
    /// The addresses from `<addr>` (both, the old single variable), `<bind>` and
    /// `<advertise>`: `bind` is `<bind>`, else `<addr>`, else `default`; `advertise` is
    /// `<advertise>` if set. Binding an unspecified address (`0.0.0.0`) needs an advertised
    /// one: other nodes cannot reach "every interface".
    pub fn from_env(
        addr: &str,
        bind: &str,
        advertise: &str,
        default: &str,
    ) -> Result<Self, BadSetting> {
        let bind_addr = if var_or(bind, "").is_empty() {
            addr_var(addr, default)?
        } else {
            addr_var(bind, default)?
        };
        let advertise_addr = match var_or(advertise, "").as_str() {
            "" => None,
            _ => Some(addr_var(advertise, default)?),
        };
        if let Some(a) = advertise_addr {
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(BadSetting(format!(
                    "{advertise}={a} cannot be reached by other nodes: write the node's own \
                     ip:port, for example {default}"
                )));
            }
        }
        if advertise_addr.is_none() && bind_addr.ip().is_unspecified() {
            return Err(BadSetting(format!(
                "{bind}={bind_addr} binds every interface: set {advertise} to the ip:port \
                 other nodes reach this one at"
            )));
        }
        Ok(Addresses {
            bind: bind_addr,
            advertise: advertise_addr,
        })
    }

    /// The address the node is known by: the advertised one, else the bound one.
    pub fn public(&self) -> SocketAddr {
        self.advertise.unwrap_or(self.bind)
    }
}

/// A `host:port` (or `ip:port`) from the variable `name` (default `default`), checked for
/// its form only: host names are resolved where they are used, again on every retry, so a
/// name that does not resolve yet (a Kubernetes Service whose pod has not started) is
/// not an error.
pub fn host_port_var(name: &str, default: &str) -> Result<String, BadSetting> {
    let value = var_or(name, default);
    check_host_port(name, &value, default)?;
    Ok(value)
}

/// A comma-separated list of `host:port` from the variable `name` (empty when unset).
pub fn host_ports_var(name: &str, example: &str) -> Result<Vec<String>, BadSetting> {
    var_or(name, "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| check_host_port(name, s, example).map(|()| s.to_owned()))
        .collect()
}

fn check_host_port(name: &str, value: &str, example: &str) -> Result<(), BadSetting> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let well_formed = value.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && port.parse::<u16>().is_ok_and(|p| p != 0)
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    });
    if well_formed {
        Ok(())
    } else {
        Err(BadSetting(format!(
            "{name}={value:?} is not an address: write it as host:port or ip:port, for \
             example {example}"
        )))
    }
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
            serve: secs_var(WORKER_FAILURE_SERVE_SECS, 10.0)?,
            warning: secs_var(WORKER_FAILURE_WARNING_SECS, 3.0)?,
            down: secs_var(WORKER_FAILURE_DOWN_SECS, 5.0)?,
        })
    }

    /// One whole cycle.
    pub fn period(&self) -> Duration {
        self.serve + self.warning + self.down
    }
}
