//! Runs the example binary against an OTLP/HTTP receiver on loopback and checks what a
//! collector would get: the spans of the client, the front server and the nested call, in
//! one trace, each server span the child of its caller's client span.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A request body larger than this fails the test rather than being read.
const MAX_BODY: usize = 16 << 20;

/// A span as exported, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    span: Span,
}

/// Accepts OTLP/HTTP exports on a loopback port: each `POST /v1/traces` with a protobuf body
/// is answered `200` and its spans are sent on the channel; anything else fails the test
/// through a panic on the receiver's thread, which closes the channel.
fn start_receiver() -> (SocketAddr, mpsc::Receiver<Exported>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let addr = listener.local_addr().expect("the receiver's address");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, &tx));
        }
    });
    (addr, rx)
}

/// Serves one HTTP/1.1 connection (the exporter keeps it alive across exports).
fn serve_connection(stream: TcpStream, tx: &mpsc::Sender<Exported>) {
    let mut writer = stream.try_clone().expect("clone the connection");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        assert!(
            request_line.starts_with("POST /v1/traces "),
            "the exporter posts to the OTLP traces path: {request_line:?}"
        );
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header");
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/x-protobuf"),
            "OTLP/HTTP with protobuf bodies"
        );
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .expect("a content length");
        assert!(length <= MAX_BODY, "a body of {length} bytes");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("the body");
        let export = ExportTraceServiceRequest::decode(&body[..]).expect("an OTLP trace export");
        for resource_spans in export.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    let _ = tx.send(Exported {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .expect("answer the export");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The one exported span with this name and kind.
fn find<'a>(spans: &'a [Exported], name: &str, kind: SpanKind) -> &'a Span {
    let found: Vec<_> = spans
        .iter()
        .filter(|e| e.span.name == name && e.span.kind == kind as i32)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span {name:?} in {spans:#?}");
    &found[0].span
}

#[test]
fn client_server_and_nested_call_spans_arrive_as_one_trace_with_remote_parents() {
    let (receiver, exported) = start_receiver();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpcnet-otel-example"))
        .arg("ada")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{receiver}"))
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the example");
    // Generous: the example makes one request and flushes; it should take well under a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the example's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("the example's output");
    assert!(status.success(), "the example failed: {status}, {stdout}");
    assert!(stdout.contains("Hello, Ada Lovelace!"), "{stdout}");
    let printed_trace = stdout
        .split("(trace ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the example prints the trace id")
        .to_owned();

    // The example exits only after its last export was answered, and the receiver answers
    // an export after it has sent its spans on the channel: every span is there by now.
    let spans: Vec<Exported> = exported.try_iter().collect();

    let root = find(&spans, "client_request", SpanKind::Internal);
    let greet_client = find(&spans, "Greeter.greet", SpanKind::Client);
    let greet_server = find(&spans, "Greeter.greet", SpanKind::Server);
    let lookup_client = find(&spans, "Directory.lookup", SpanKind::Client);
    let lookup_server = find(&spans, "Directory.lookup", SpanKind::Server);
    assert_eq!(spans.len(), 5, "no other spans: {spans:#?}");

    for exported in &spans {
        assert_eq!(
            hex(&exported.span.trace_id),
            printed_trace,
            "one trace: {exported:#?}"
        );
        assert_eq!(exported.service, "rpcnet-otel-example");
    }
    assert!(
        root.parent_span_id.is_empty(),
        "the request's span is the root"
    );
    assert_eq!(greet_client.parent_span_id, root.span_id);
    assert_eq!(
        greet_server.parent_span_id, greet_client.span_id,
        "the front server's span is the child of the client's call span"
    );
    assert_eq!(
        lookup_client.parent_span_id, greet_server.span_id,
        "the handler's call is made inside the front server's span"
    );
    assert_eq!(
        lookup_server.parent_span_id, lookup_client.span_id,
        "the nested call's server span is the child of the handler's call span"
    );

    for (span, service, method) in [
        (greet_server, "Greeter", "greet"),
        (greet_client, "Greeter", "greet"),
        (lookup_server, "Directory", "lookup"),
        (lookup_client, "Directory", "lookup"),
    ] {
        assert_eq!(
            string_attribute(span, "rpc.system").as_deref(),
            Some("rpcnet")
        );
        assert_eq!(
            string_attribute(span, "rpc.service").as_deref(),
            Some(service)
        );
        assert_eq!(
            string_attribute(span, "rpc.method").as_deref(),
            Some(method)
        );
        assert_eq!(
            string_attribute(span, "rpc.response.status_code").as_deref(),
            Some("0"),
            "{span:#?}"
        );
    }
    assert_eq!(
        string_attribute(greet_server, "network.peer.address").as_deref(),
        Some("127.0.0.1")
    );
}
