//! rpcnet's call spans exported to an OpenTelemetry collector over OTLP/HTTP, through
//! `tracing-opentelemetry`.
//!
//! rpcnet emits a `tracing` span per call on both sides (`call`, with `otel.name`,
//! `otel.kind` and the RPC semantic attributes) and carries a W3C `traceparent` in call
//! metadata. This crate shows the three pieces an application adds to see one trace per
//! request in a collector:
//!
//! - [`install`]: a `tracing_subscriber` registry with a `tracing-opentelemetry` layer whose
//!   spans go to an OTLP/HTTP exporter (protobuf bodies, sent by hyper).
//! - [`current_trace`], every client's trace source ([`rpcnet::RpcConfig::with_trace_source`]):
//!   a call sends its client span's context as its `traceparent`.
//! - [`continue_remote_trace`]: at the start of a handler, makes the server's `call` span a
//!   child of the `traceparent` the caller sent.
//!
//! The services: `Greeter.greet` (the front) looks the user up in `Directory.lookup` (a
//! second server) while serving, so one request makes a nested call:
//! client → `Greeter.greet` → `Directory.lookup`.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use rpcnet::{CallContext, Metadata, RpcConfig, RpcServer, TraceContext, TRACEPARENT};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The back service: where user names are kept.
#[rpcnet::service]
pub trait Directory {
    /// The display name of a user id.
    async fn lookup(&self, user: String) -> String;
}

/// The front service: greets a user by the name the directory has for them.
#[rpcnet::service]
pub trait Greeter {
    /// Greets a user id; fails with the reason if the directory could not be asked.
    async fn greet(&self, user: String) -> Result<String, String>;
}

struct InMemoryDirectory;

impl Directory for InMemoryDirectory {
    async fn lookup(&self, user: String) -> String {
        continue_remote_trace();
        match user.as_str() {
            "ada" => "Ada Lovelace".to_owned(),
            "grace" => "Grace Hopper".to_owned(),
            other => other.to_owned(),
        }
    }
}

struct DirectoryGreeter {
    directory: DirectoryClient,
}

impl Greeter for DirectoryGreeter {
    async fn greet(&self, user: String) -> Result<String, String> {
        continue_remote_trace();
        let name = self
            .directory
            .lookup(user)
            .await
            .map_err(|e| format!("the directory did not answer: {e}"))?;
        Ok(format!("Hello, {name}!"))
    }
}

/// The settings of both servers and their clients: the repository's development
/// certificate, on loopback, and [`current_trace`] as the clients' trace source.
pub fn config(bind: &str) -> RpcConfig {
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs");
    RpcConfig::new(format!("{certs}/test_cert.pem"), bind)
        .with_key_path(format!("{certs}/test_key.pem"))
        .with_server_name("localhost")
        .with_trace_source(current_trace)
}

/// Starts the directory server and the greeter server (whose handler calls the directory)
/// on loopback ports of their own, and returns the greeter's address. Both serve until the
/// runtime stops.
pub async fn start_servers() -> Result<SocketAddr, Box<dyn Error>> {
    let mut directory = RpcServer::new(config("127.0.0.1:0"));
    directory.add_service(DirectoryServer::new(InMemoryDirectory));
    let directory = directory.bind()?;
    let directory_addr = directory.local_addr();
    tokio::spawn(directory.serve());

    let client = DirectoryClient::connect(directory_addr, config("127.0.0.1:0")).await?;
    let mut greeter = RpcServer::new(config("127.0.0.1:0"));
    greeter.add_service(GreeterServer::new(DirectoryGreeter { directory: client }));
    let greeter = greeter.bind()?;
    let greeter_addr = greeter.local_addr();
    tokio::spawn(greeter.serve());
    Ok(greeter_addr)
}

/// Calls `Greeter.greet(user)` on `greeter` inside a new root span, `client_request`, and
/// returns the greeting and the trace id (32 hex digits) every span of the request has.
pub async fn greet_once(
    greeter: SocketAddr,
    user: &str,
) -> Result<(String, String), Box<dyn Error>> {
    let root = tracing::info_span!("client_request", user);
    let trace_id = root.context().span().span_context().trace_id().to_string();
    let greeting = async {
        let client = GreeterClient::connect(greeter, config("127.0.0.1:0")).await?;
        let greeting = client.greet(user.to_owned()).await?;
        Ok::<_, Box<dyn Error>>(greeting)
    }
    .instrument(root)
    .await?;
    Ok((greeting, trace_id))
}

/// The current span's OpenTelemetry context as a W3C trace context, or `None` when there
/// is no valid one (without the OpenTelemetry layer, for one).
///
/// As a client's trace source, rpcnet calls it inside each unary call's client span, so the
/// server's span becomes the child of the client's. Without a source, a call made outside a
/// served call starts no trace, and a call made while serving carries rpcnet's own
/// continuation of the served call's trace, whose parent id names no span the exporter
/// knows.
pub fn current_trace() -> Option<TraceContext> {
    let mut carrier = MetadataCarrier::default();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier
        .0
        .get(TRACEPARENT)
        .and_then(|value| TraceContext::parse(value))
}

/// Makes the current span (rpcnet's server `call` span, inside a handler) a child of the
/// `traceparent` the client sent, if it sent one. Call it first thing in a handler, before
/// any call or span is made inside it: a span's parent is fixed once it has a child or its
/// context was read.
///
/// It needs the layer [`install`] makes, whose context activation is off: with it on, a
/// span's OpenTelemetry counterpart starts when the span is first entered, which rpcnet
/// does before the handler runs, and its parent can no longer be set.
pub fn continue_remote_trace() {
    let Some(call) = CallContext::current() else {
        return;
    };
    if call.trace().is_none() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&MetadataExtractor(call.metadata()));
    if let Err(error) = tracing::Span::current().set_parent(parent) {
        tracing::warn!(%error, "the call's span could not join the caller's trace");
    }
}

/// Reads W3C trace context out of a call's metadata.
struct MetadataExtractor<'a>(&'a Metadata);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(key, _)| key).collect()
    }
}

/// Collects the entries a propagator writes.
#[derive(Default)]
struct MetadataCarrier(HashMap<String, String>);

impl Injector for MetadataCarrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// The exporter's side of the application: flushes and stops it.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter. It blocks until the last
    /// export is answered or fails; call it outside the async runtime's worker threads
    /// (for example through `tokio::task::spawn_blocking`), as the export runs on that runtime.
    pub fn shutdown(self) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.provider.shutdown()?;
        Ok(())
    }
}

/// Installs the global `tracing` subscriber: a `tracing-opentelemetry` layer that exports
/// rpcnet's `call` spans and this crate's spans over OTLP/HTTP, and a console layer on
/// stderr filtered by `RUST_LOG` (levels and `target=level` directives, as
/// `warn,rpcnet_runtime=debug`; `warn` if unset or unreadable). Must be called inside a Tokio runtime, on which the
/// exporter sends its requests.
///
/// The endpoint is the OpenTelemetry default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is,
/// else `OTEL_EXPORTER_OTLP_ENDPOINT` followed by `/v1/traces`, else
/// `http://localhost:4318/v1/traces`.
pub fn install(service_name: &'static str) -> Result<Telemetry, Box<dyn Error>> {
    let http = OnRuntime {
        client: HyperClient::with_default_connector(Duration::from_secs(10), None),
        runtime: tokio::runtime::Handle::try_current()?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(http)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("rpcnet-otel-example"))
        .with_context_activation(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span()
                && ((meta.target().starts_with("rpcnet_runtime") && meta.name() == "call")
                    || meta.target().starts_with(env!("CARGO_CRATE_NAME")))
        }));
    let console_filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::WARN));
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(console_filter);
    tracing_subscriber::registry()
        .with(otel)
        .with(console)
        .try_init()?;
    Ok(Telemetry { provider })
}

/// Hyper's client on the application's Tokio runtime. The SDK's batch span processor
/// exports from a thread of its own, outside any runtime, where hyper cannot run; each
/// request is spawned onto the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}
