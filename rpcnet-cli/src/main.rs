//! `rpcnet`: ask a running rpcnet node about its cluster and its health, or make a raw call
//! with JSON in and out.
//!
//! ```text
//! rpcnet members --seed 127.0.0.1:61000
//! rpcnet watch --seed 127.0.0.1:61000
//! rpcnet health 127.0.0.1:61000 [--service NAME]
//! rpcnet call 127.0.0.1:62001 Service.method '{"a": 1}'
//! ```
//!
//! It connects over QUIC with TLS like a node does (`--cert`, `--key`, `--ca`,
//! `--server-name`; the bundled development certificate by default) and asks the node's
//! built-in services (`rpcnet.Membership`, `rpcnet.Health`) rather than joining the
//! cluster. Any failure is one line on stderr and a non-zero exit, within `--timeout`.

// A command-line tool's output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use futures::StreamExt;
use rpcnet::cluster::membership::{MemberInfo, MembershipClient, MembershipEvent};
use rpcnet::health::{HealthClient, ServingStatus};
use rpcnet::{CallOptions, RpcClient, RpcConfig};

/// The bundled development certificate: what the examples and the demo serve with.
const DEV_CERT: &str = include_str!("../../certs/test_cert.pem");

#[derive(Debug, Parser)]
#[command(name = "rpcnet", version, about = "Inspect and call rpcnet nodes")]
struct Cli {
    #[command(flatten)]
    tls: TlsArgs,
    /// How long to wait for the node (connecting and each answer), in seconds.
    #[arg(long, global = true, default_value_t = 5.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// The certificate (PEM) to trust, or to present with `--key`; the bundled
    /// development certificate by default.
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// The private key (PEM) for `--cert`, for nodes that require mutual TLS.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// The CA certificate (PEM) that signed the node's certificate.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// The name the node's certificate must carry.
    #[arg(long, global = true, default_value = "localhost")]
    server_name: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The cluster as the node at SEED sees it, as a table.
    Members {
        /// A node of the cluster (`host:port`).
        #[arg(long)]
        seed: String,
    },
    /// Membership events as the node at SEED sees them, one line each, until it stops.
    Watch {
        /// A node of the cluster (`host:port`).
        #[arg(long)]
        seed: String,
    },
    /// The health of the node at ADDR (exit status 0 when serving).
    Health {
        /// The node (`host:port`).
        addr: String,
        /// The service to ask about (the whole server by default).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// A unary call with a JSON request, sent as MessagePack; prints the JSON response.
    Call {
        /// The node (`host:port`).
        addr: String,
        /// The method's wire name (`Service.method`).
        method: String,
        /// The request as JSON (several arguments as an array).
        #[arg(default_value = "null")]
        request: String,
    },
}

/// A failure, reported as one line.
type Failure = String;

fn config(cli: &Cli, timeout: Duration) -> RpcConfig {
    let tls = &cli.tls;
    let mut config = match &tls.cert {
        Some(path) => RpcConfig::new(path.clone(), "127.0.0.1:0"),
        None => RpcConfig::from_pem(DEV_CERT, "127.0.0.1:0"),
    };
    if let Some(key) = &tls.key {
        config = config.with_key_path(key.clone()).with_mutual_tls(true);
    }
    if let Some(ca) = &tls.ca {
        config = config.with_ca_path(ca.clone());
    }
    config
        .with_server_name(tls.server_name.clone())
        .with_connect_timeout(timeout)
        .with_default_deadline(timeout)
}

/// Waits for `future` up to `timeout`, turning either failure into one line.
async fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    future: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, future.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{what}: {}", one_line(&error))),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// An error with its sources, on one line.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}

async fn connect(cli: &Cli, addr: &str, timeout: Duration) -> Result<RpcClient, Failure> {
    let config = config(cli, timeout);
    within(
        timeout,
        &format!("cannot connect to {addr}"),
        RpcClient::connect(addr.to_owned(), config),
    )
    .await
}

fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let secs = now.saturating_sub(ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m{}s ago", secs / 60, secs % 60),
        _ => format!("{}h{}m ago", secs / 3600, secs / 60 % 60),
    }
}

fn tags(member: &MemberInfo) -> String {
    let tags: Vec<String> = member
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tags.join(",")
}

fn members_table(members: &[MemberInfo]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "NODE",
        "ADDRESS",
        "STATE",
        "INCARNATION",
        "TAGS",
        "LAST CHANGE",
    ]);
    for m in members {
        let node = if m.local {
            format!("{} (answering)", m.node)
        } else {
            m.node.clone()
        };
        table.add_row([
            node,
            m.addr.clone(),
            m.state.clone(),
            m.incarnation.to_string(),
            tags(m),
            ago(m.last_change_ms),
        ]);
    }
    table
}

fn event_line(event: &MembershipEvent) -> String {
    let m = &event.member;
    format!(
        "{:?} {} {} state={} incarnation={} tags={}",
        event.kind,
        m.node,
        m.addr,
        m.state,
        m.incarnation,
        tags(m)
    )
}

/// JSON text to the MessagePack a typed handler decodes.
fn to_msgpack(json: &str) -> Result<Bytes, Failure> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the request is not JSON: {e}"))?;
    rmp_serde::to_vec_named(&value)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode the request: {e}"))
}

/// A MessagePack response as JSON text.
fn to_json(msgpack: &[u8]) -> Result<String, Failure> {
    let mut rest = msgpack;
    let value = rmpv::decode::read_value(&mut rest)
        .map_err(|e| format!("the response is not MessagePack: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "the response is not MessagePack: {} bytes after its value",
            rest.len()
        ));
    }
    serde_json::to_string_pretty(&json_value(value))
        .map_err(|e| format!("cannot print the response: {e}"))
}

/// A MessagePack value as JSON. What JSON has no form for is written as a value that
/// decodes back the same way where it can: bytes (and strings that are not UTF-8) as an
/// array of numbers, which a `serde_bytes` field accepts; a map key that is not a string
/// as its JSON text; a float that is not finite as a string; an extension value as
/// `{"ext": type, "data": [bytes]}`.
fn json_value(value: rmpv::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    let bytes = |data: Vec<u8>| Json::Array(data.into_iter().map(Json::from).collect());
    let float = |f: f64| {
        serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
    };
    match value {
        rmpv::Value::Nil => Json::Null,
        rmpv::Value::Boolean(b) => Json::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(i)) => Json::from(i),
            (None, None) => Json::Null,
        },
        rmpv::Value::F32(f) => float(f64::from(f)),
        rmpv::Value::F64(f) => float(f),
        rmpv::Value::String(s) if s.is_str() => s.into_str().map_or(Json::Null, Json::String),
        rmpv::Value::String(s) => bytes(s.into_bytes()),
        rmpv::Value::Binary(data) => bytes(data),
        rmpv::Value::Array(items) => Json::Array(items.into_iter().map(json_value).collect()),
        rmpv::Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = match json_value(key) {
                        Json::String(key) => key,
                        other => other.to_string(),
                    };
                    (key, json_value(value))
                })
                .collect(),
        ),
        rmpv::Value::Ext(kind, data) => {
            serde_json::json!({ "ext": kind, "data": bytes(data) })
        }
    }
}

async fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".to_owned());
    }
    let timeout = Duration::from_secs_f64(cli.timeout);
    match &cli.command {
        Command::Members { seed } => {
            let client = MembershipClient::from_client(connect(cli, seed, timeout).await?);
            let members = within(timeout, "members", client.members()).await?;
            println!("{}", members_table(&members));
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch { seed } => {
            let client = MembershipClient::from_client(connect(cli, seed, timeout).await?);
            // The watch runs until the node ends it: no deadline on the call itself.
            let mut events = within(
                timeout,
                "watch",
                client.watch().timeout(Duration::from_secs(365 * 24 * 3600)),
            )
            .await?;
            println!("watching the membership as {seed} sees it");
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => println!("{}", event_line(&event)),
                    Err(error) => return Err(format!("watch: {}", one_line(&error))),
                }
            }
            Err(format!("{seed} ended the watch"))
        }
        Command::Health { addr, service } => {
            let client = HealthClient::from_client(connect(cli, addr, timeout).await?);
            let status = within(timeout, "health", client.check(service.clone())).await?;
            println!("{status}");
            Ok(if status == ServingStatus::Serving {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Call {
            addr,
            method,
            request,
        } => {
            let request = to_msgpack(request)?;
            let client = connect(cli, addr, timeout).await?;
            let response = within(
                timeout,
                method,
                client.call_raw(method, request, CallOptions::default()),
            )
            .await?;
            println!("{}", to_json(&response)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("rpcnet: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(value: &impl serde::Serialize) -> serde_json::Value {
        let msgpack = rmp_serde::to_vec_named(value).expect("encodes");
        serde_json::from_str(&to_json(&msgpack).expect("shown")).expect("JSON")
    }

    #[test]
    fn bytes_are_shown_as_an_array_of_numbers_that_decodes_back() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Blob {
            #[serde(with = "serde_bytes")]
            data: Vec<u8>,
        }
        let blob = Blob {
            data: vec![0, 7, 255],
        };
        let json = shown(&blob);
        assert_eq!(json, serde_json::json!({ "data": [0, 7, 255] }));
        let again: Blob =
            rmp_serde::from_slice(&to_msgpack(&json.to_string()).expect("encodes")).expect("back");
        assert_eq!(again, blob);
    }

    #[test]
    fn map_keys_that_are_not_strings_are_shown_as_their_json_text() {
        let map: std::collections::BTreeMap<u32, &str> = [(1, "one"), (20, "twenty")].into();
        assert_eq!(
            shown(&map),
            serde_json::json!({ "1": "one", "20": "twenty" })
        );
    }

    #[test]
    fn numbers_nil_and_nesting_keep_their_json_form() {
        let value = (
            u64::MAX,
            -5i64,
            1.5f64,
            Option::<u8>::None,
            vec![true, false],
        );
        assert_eq!(
            shown(&value),
            serde_json::json!([u64::MAX, -5, 1.5, null, [true, false]])
        );
        assert_eq!(shown(&f64::NAN), serde_json::json!("NaN"));
    }

    #[test]
    fn a_response_that_is_not_messagepack_is_a_clear_error() {
        for garbage in [&[][..], &[0x92, 0x01], &[0x01, 0x02]] {
            let error = to_json(garbage).expect_err("not one MessagePack value");
            assert!(
                error.starts_with("the response is not MessagePack"),
                "{error}"
            );
        }
    }
}
