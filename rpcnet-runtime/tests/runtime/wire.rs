//! Hand-written `rpcnet/1` bytes sent over a bare s2n-quic connection: the server must
//! enforce deadlines on its own, refuse oversized and malformed frames with a clear status
//! on that stream only, and keep serving everything else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{config, start, wait_for, DropCounter, PATIENCE};
use bytes::{BufMut, Bytes, BytesMut};
use rpcnet_runtime::{Code, RpcServer};
use s2n_quic::client::Connect;
use s2n_quic::provider::tls;

// The bytes of `rpcnet/1` as PROTOCOL.md gives them, written here by hand so that these
// tests pin the format rather than the runtime's own encoder.

/// The kind byte of a call's stream.
const STREAM_KIND_RPC: u8 = 0x01;
/// The kind byte of a cancel stream.
const STREAM_KIND_CANCEL: u8 = 0x03;

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameType {
    Header = 0x01,
    Data = 0x02,
    End = 0x03,
    Status = 0x04,
}

impl FrameType {
    pub(crate) fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Appends a frame: its type, its length as a LEB128 varint, its payload.
fn put_frame(out: &mut BytesMut, kind: FrameType, payload: &[u8]) {
    out.put_u8(kind.as_u8());
    let mut len = payload.len();
    while len >= 0x80 {
        out.put_u8((len as u8) | 0x80);
        len >>= 7;
    }
    out.put_u8(len as u8);
    out.put_slice(payload);
}

/// Takes the first whole frame off `buf`: its type byte and payload.
fn take_frame(buf: &mut BytesMut) -> Option<(u8, Bytes)> {
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let byte = *buf.get(at)?;
        len |= usize::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        assert!(shift < 35, "a varint of at most five bytes");
    }
    if buf.len() < at + len {
        return None;
    }
    let mut frame = buf.split_to(at + len);
    let kind = frame[0];
    Some((kind, frame.split_off(at).freeze()))
}

pub(crate) async fn raw_connection(addr: std::net::SocketAddr) -> s2n_quic::Connection {
    let cert = std::fs::read_to_string(crate::support::cert_path()).expect("certificate");
    let tls = tls::default::Client::builder()
        .with_certificate(cert.as_str())
        .and_then(|b| b.with_application_protocols([rpcnet_runtime::ALPN]))
        .and_then(|b| b.build())
        .expect("tls");
    let client = s2n_quic::Client::builder()
        .with_tls(tls)
        .expect("tls provider")
        .with_io("0.0.0.0:0")
        .expect("io")
        .start()
        .expect("client endpoint");
    let connection = client
        .connect(Connect::new(addr).with_server_name("localhost"))
        .await
        .expect("handshake");
    // The endpoint must outlive the connection in these tests.
    std::mem::forget(client);
    connection
}

pub(crate) fn header(method: &str, deadline_us: u64) -> BytesMut {
    let mut payload = BytesMut::new();
    payload.put_u16(method.len() as u16);
    payload.put_slice(method.as_bytes());
    payload.put_u64(deadline_us);
    payload.put_u16(0);
    let mut out = BytesMut::new();
    out.put_u8(STREAM_KIND_RPC);
    put_frame(&mut out, FrameType::Header, &payload);
    out
}

/// Reads frames until the status frame and returns its code and message.
pub(crate) async fn read_status(
    stream: &mut s2n_quic::stream::BidirectionalStream,
) -> (Code, String, Vec<Bytes>) {
    let mut received = BytesMut::new();
    let mut data = Vec::new();
    loop {
        while let Some((kind, payload)) = take_frame(&mut received) {
            match kind {
                kind if kind == FrameType::Data.as_u8() => data.push(payload),
                kind if kind == FrameType::Status.as_u8() => {
                    // code:u16 message_len:u32 message details
                    let code = Code::from_u16(u16::from_be_bytes([payload[0], payload[1]]));
                    let len = u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]])
                        as usize;
                    let message = String::from_utf8_lossy(&payload[6..6 + len]).into_owned();
                    return (code, message, data);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let chunk = tokio::time::timeout(PATIENCE, stream.receive())
            .await
            .expect("response in time")
            .expect("stream readable")
            .expect("status before end of stream");
        received.put_slice(&chunk);
    }
}

fn echo_server(limit: usize) -> RpcServer {
    echo_server_with(limit, &Probe::default())
}

/// What became of the `Echo.slow` handlers of a test.
#[derive(Debug, Default, Clone)]
struct Probe {
    /// Handlers that started.
    started: Arc<AtomicUsize>,
    /// Handler futures dropped before they finished (cancelled or past their deadline).
    dropped: Arc<AtomicUsize>,
}

/// An echo server whose `Echo.slow` handler waits a minute unless it is dropped first.
fn echo_server_with(limit: usize, probe: &Probe) -> RpcServer {
    let mut server = RpcServer::new(config("127.0.0.1:0").with_max_message_size(limit));
    server.register(
        "Echo.echo",
        |_ctx, request: Bytes| async move { Ok(request) },
    );
    let probe = probe.clone();
    server.register("Echo.slow", move |_ctx, _request: Bytes| {
        let probe = probe.clone();
        async move {
            probe.started.fetch_add(1, Ordering::SeqCst);
            let _dropped = DropCounter(Arc::clone(&probe.dropped));
            tokio::time::sleep(Duration::from_secs(60)).await;
            std::mem::forget(_dropped);
            Ok(Bytes::new())
        }
    });
    server
}

#[tokio::test]
async fn the_server_answers_deadline_exceeded_on_its_own() {
    let probe = Probe::default();
    let server = start(echo_server_with(1024, &probe));
    let connection = raw_connection(server.addr).await;
    let mut stream = connection
        .handle()
        .open_bidirectional_stream()
        .await
        .expect("stream");
    let mut request = header("Echo.slow", 100_000); // 100 ms
    put_frame(&mut request, FrameType::Data, b"");
    put_frame(&mut request, FrameType::End, b"");
    stream.send(request.freeze()).await.expect("sent");
    stream.finish().expect("finished");
    // This client has no timer of its own: the status can only come from the server.
    let (code, message, _) = read_status(&mut stream).await;
    assert_eq!(
        (code, message.as_str()),
        (Code::DeadlineExceeded, "deadline exceeded on the server")
    );
    wait_for(
        || probe.dropped.load(Ordering::SeqCst) == 1,
        "the handler to be dropped",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_frame_fails_its_call_while_a_concurrent_call_succeeds() {
    let server = start(echo_server(1024));
    let connection = raw_connection(server.addr).await;
    let mut handle = connection.handle();

    // A slow honest call is in flight on the same connection.
    let mut honest = handle.open_bidirectional_stream().await.expect("stream");
    let mut request = header("Echo.echo", 0);
    put_frame(&mut request, FrameType::Data, b"hello");
    honest.send(request.freeze()).await.expect("sent");

    // A frame announcing 4 GiB: refused from its five header bytes.
    let mut bad = handle.open_bidirectional_stream().await.expect("stream");
    let mut request = header("Echo.echo", 0);
    request.put_u8(FrameType::Data.as_u8());
    request.put_u32(u32::MAX);
    request.put_slice(&[0u8; 32]);
    bad.send(request.freeze()).await.expect("sent");
    let (code, message, _) = read_status(&mut bad).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert!(
        message.contains("exceeds the limit of 1024 bytes"),
        "{message}"
    );

    // The honest call completes after the bad one failed.
    let mut end = BytesMut::new();
    put_frame(&mut end, FrameType::End, b"");
    honest.send(end.freeze()).await.expect("sent");
    honest.finish().expect("finished");
    let (code, _, data) = read_status(&mut honest).await;
    assert_eq!(code, Code::Ok);
    assert_eq!(&data[0][..], b"hello");
}

#[tokio::test]
async fn malformed_streams_get_a_status_and_do_not_disturb_the_connection() {
    let server = start(echo_server(1024));
    let connection = raw_connection(server.addr).await;
    let mut handle = connection.handle();

    // Each malformed start, and the exact status it gets (codes as in PROTOCOL.md).
    let cases: Vec<(Bytes, Code, &str)> = vec![
        (
            Bytes::from_static(&[0x7f, 1, 2, 3]),
            Code::Internal,
            "protocol error: unknown stream kind 0x7f",
        ),
        (
            Bytes::from_static(&[STREAM_KIND_RPC, 0x66, 0, 0, 0, 0]),
            Code::Internal,
            "protocol error: unknown frame type 0x66",
        ),
        (
            Bytes::from_static(&[STREAM_KIND_RPC, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            Code::Internal,
            "protocol error: malformed frame length",
        ),
        (
            {
                let mut out = BytesMut::new();
                out.put_u8(STREAM_KIND_RPC);
                put_frame(&mut out, FrameType::Data, b"x");
                out.freeze()
            },
            Code::Internal,
            "protocol error: unexpected data frame, expected header",
        ),
        (
            {
                let mut out = BytesMut::new();
                out.put_u8(STREAM_KIND_RPC);
                put_frame(&mut out, FrameType::Header, &[0xff, 0xff, 1]);
                out.freeze()
            },
            Code::Internal,
            "protocol error: malformed header frame",
        ),
        (
            {
                let mut out = header("Echo.nothing", 0);
                put_frame(&mut out, FrameType::Data, b"");
                put_frame(&mut out, FrameType::End, b"");
                out.freeze()
            },
            Code::Unimplemented,
            "method `Echo.nothing` is not implemented",
        ),
    ];
    for (bytes, code, message) in cases {
        let mut stream = handle.open_bidirectional_stream().await.expect("stream");
        stream.send(bytes).await.expect("sent");
        let got = read_status(&mut stream).await;
        assert_eq!((got.0, got.1.as_str()), (code, message));
    }

    let mut stream = handle.open_bidirectional_stream().await.expect("stream");
    let mut request = header("Echo.echo", 0);
    put_frame(&mut request, FrameType::Data, b"still fine");
    put_frame(&mut request, FrameType::End, b"");
    stream.send(request.freeze()).await.expect("sent");
    stream.finish().expect("finished");
    let (code, _, data) = read_status(&mut stream).await;
    assert_eq!(code, Code::Ok);
    assert_eq!(&data[0][..], b"still fine");
}

#[tokio::test]
async fn a_cancel_stream_stops_a_call_whose_request_side_is_finished() {
    let probe = Probe::default();
    let server = start(echo_server_with(1024, &probe));
    let connection = raw_connection(server.addr).await;
    let mut handle = connection.handle();

    // Two calls whose request sides are finished; the first is cancelled on a stream of
    // kind 0x03 once both handlers run.
    let mut ids = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = handle.open_bidirectional_stream().await.expect("stream");
        let mut request = header("Echo.slow", 0);
        put_frame(&mut request, FrameType::Data, b"x");
        put_frame(&mut request, FrameType::End, b"");
        stream.send(request.freeze()).await.expect("sent");
        stream.finish().expect("finished");
        ids.push(stream.id());
        streams.push(stream);
    }
    wait_for(
        || probe.started.load(Ordering::SeqCst) == 2,
        "both handlers to start",
    )
    .await;
    let mut cancel = handle.open_send_stream().await.expect("uni stream");
    let mut message = BytesMut::new();
    message.put_u8(STREAM_KIND_CANCEL);
    message.put_u64(ids[0]);
    cancel.send(message.freeze()).await.expect("sent");
    cancel.finish().expect("finished");

    // The cancelled call's handler is dropped and its stream reset; the other runs on.
    let mut cancelled = streams.remove(0);
    let outcome = tokio::time::timeout(PATIENCE, cancelled.receive())
        .await
        .expect("answered");
    assert!(
        outcome.is_err(),
        "the cancelled call's stream is reset: {outcome:?}"
    );
    wait_for(
        || probe.dropped.load(Ordering::SeqCst) == 1,
        "the cancelled handler to be dropped",
    )
    .await;
    let survivor = streams.remove(0);

    // Garbage on a unidirectional stream is ignored.
    let mut junk = handle.open_send_stream().await.expect("uni stream");
    junk.send(Bytes::from_static(&[0x03, 1, 2]))
        .await
        .expect("sent");
    junk.finish().expect("finished");
    let mut stream = handle.open_bidirectional_stream().await.expect("stream");
    let mut request = header("Echo.echo", 0);
    put_frame(&mut request, FrameType::Data, b"ok");
    put_frame(&mut request, FrameType::End, b"");
    stream.send(request.freeze()).await.expect("sent");
    stream.finish().expect("finished");
    assert_eq!(read_status(&mut stream).await.0, Code::Ok);
    assert_eq!(
        probe.dropped.load(Ordering::SeqCst),
        1,
        "neither the cancel nor the garbage stopped the other call"
    );
    drop(survivor);
}

#[tokio::test]
async fn a_one_way_stream_is_its_kind_byte_one_data_frame_and_fin() {
    let bound = echo_server(1024).bind().expect("binds");
    let mut inbox = bound.one_way_inbox(0x10, 16, 1 << 20).expect("inbox");
    let addr = bound.local_addr();
    tokio::spawn(bound.serve());
    let connection = raw_connection(addr).await;
    let mut handle = connection.handle();

    // The example in PROTOCOL.md, byte for byte.
    let mut stream = handle.open_send_stream().await.expect("uni stream");
    stream
        .send(Bytes::from_static(&[
            0x10, 0x02, 0x05, b'h', b'e', b'l', b'l', b'o',
        ]))
        .await
        .expect("sent");
    stream.finish().expect("finished");
    let message = tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("delivered in time")
        .expect("inbox open");
    assert_eq!(message.payload, Bytes::from_static(b"hello"));

    // A one-way stream that is not a DATA frame delivers nothing, and the connection keeps
    // serving: the next well-formed message is the next one the inbox sees.
    for bad in [&[0x10, 0x03, 0x00][..], &[0x10, 0x02, 0x05, b'h']] {
        let mut stream = handle.open_send_stream().await.expect("uni stream");
        stream
            .send(Bytes::copy_from_slice(bad))
            .await
            .expect("sent");
        stream.finish().expect("finished");
    }
    let mut stream = handle.open_send_stream().await.expect("uni stream");
    stream
        .send(Bytes::from_static(&[0x10, 0x02, 0x02, b'o', b'k']))
        .await
        .expect("sent");
    stream.finish().expect("finished");
    let message = tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("delivered in time")
        .expect("inbox open");
    assert_eq!(message.payload, Bytes::from_static(b"ok"));
}

#[tokio::test]
async fn a_request_that_stalls_fails_its_call_after_the_stall_timeout() {
    let mut server =
        RpcServer::new(config("127.0.0.1:0").with_stall_timeout(Duration::from_millis(300)));
    server.register(
        "Echo.echo",
        |_ctx, request: Bytes| async move { Ok(request) },
    );
    let server = start(server);
    let connection = raw_connection(server.addr).await;
    let mut stream = connection
        .handle()
        .open_bidirectional_stream()
        .await
        .expect("stream");
    // The header and the start of a data frame, and then nothing: no deadline either.
    let mut request = header("Echo.echo", 0);
    request.put_slice(&[FrameType::Data.as_u8(), 10, b'h', b'e']);
    stream.send(request.freeze()).await.expect("sent");
    let (code, message, _) = read_status(&mut stream).await;
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
    assert!(message.contains("the request stalled"), "{message}");
}
