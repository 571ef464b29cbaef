//! Writes the seed corpus, `fuzz/corpus/<target>/`: a handful of small valid inputs per
//! target, made with the runtime's and the cluster's own encoders.
//!
//! `cargo +nightly run --manifest-path fuzz/Cargo.toml --example write_corpus`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rpcnet_cluster::{MemberState, Message, NodeId, Tags};
use rpcnet_fuzz::messages::{Kind, Part, Sample};
use rpcnet_runtime::fuzzing::{
    cancel_message, encode_frame, encode_message, encode_request_header, encode_status,
    padded_frame_header, STREAM_KIND_RPC,
};
use rpcnet_runtime::{Metadata, Payload};
use serde::Serialize;

const HEADER: u8 = 1;
const DATA: u8 = 2;
const END: u8 = 3;
const STATUS: u8 = 4;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("a corpus file");
}

/// A frame decoder program: the limit's index, `bytes` pushed in chunks of `chunk`
/// (at most 32), then `last` operations.
fn program(limit: u8, bytes: &[u8], chunk: usize, last: &[u8]) -> Vec<u8> {
    let mut out = vec![limit];
    for piece in bytes.chunks(chunk) {
        out.push(((piece.len() - 1) as u8) << 3);
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(last);
    out
}

fn header(method: &str, deadline: Option<Duration>, metadata: &Metadata) -> Vec<u8> {
    encode_request_header(method, deadline, metadata).expect("a small header")
}

fn frames() {
    let mut metadata = Metadata::new();
    metadata.insert("trace-id", Bytes::from_static(b"abc"));
    let request = [
        vec![STREAM_KIND_RPC],
        encode_frame(
            HEADER,
            &header("Calculator.add", Some(Duration::from_secs(5)), &metadata),
        )
        .expect("a frame"),
        encode_message(&(1i64, 2i64), 1024).expect("fits"),
        encode_frame(END, &[]).expect("a frame"),
    ]
    .concat();
    let response = [
        encode_message(&Payload::from(vec![7u8; 10]), 1024).expect("fits"),
        encode_frame(STATUS, &encode_status(0, "", Bytes::new())).expect("a frame"),
    ]
    .concat();
    let mut padded = padded_frame_header(DATA, 3).expect("a type").to_vec();
    padded.extend_from_slice(&[0xc4, 1, 9]);
    // Read every frame (5); take the last pair, data and status (6 with parameter 0, then
    // the types); decode in place as a payload (6 with parameter 1) or a u64 (parameter 2).
    let drain = 5;
    let pair_data_status = [6, ((STATUS - 1) << 2) | (DATA - 1)];
    let in_place_payload = 6 | (1 << 3);
    let in_place_u64 = 6 | (2 << 3);
    let seven = encode_message(&7u64, 64).expect("fits");
    // The request after its kind byte, in pieces of 32 and of 3 bytes, under a roomy and a
    // tight limit; the response (22 bytes) in one piece.
    write(
        "frame_decoder",
        "request-in-32-byte-pieces",
        &program(5, &request[1..], 32, &[drain]),
    );
    write(
        "frame_decoder",
        "request-in-3-byte-pieces",
        &program(5, &request[1..], 3, &[drain]),
    );
    write(
        "frame_decoder",
        "request-too-large",
        &program(2, &request[1..], 32, &[drain]),
    );
    write(
        "frame_decoder",
        "response-pair",
        &program(3, &response, 32, &pair_data_status),
    );
    write(
        "frame_decoder",
        "payload-in-place",
        &program(3, &response, 32, &[in_place_payload, drain]),
    );
    write(
        "frame_decoder",
        "u64-in-place",
        &program(3, &seven, 32, &[in_place_u64, drain]),
    );
    write(
        "frame_decoder",
        "padded-length",
        &program(3, &padded, 32, &[drain]),
    );
    // A data frame of 70,000 bytes (past the pooled size) from two runs of filler.
    let mut large = program(
        9,
        &padded_frame_header(DATA, 70_000).expect("a type"),
        32,
        &[],
    );
    large.extend_from_slice(&[4, 0x88, 0xb8, 0xaa, 4, 0x88, 0xb8, 0xbb, drain]);
    write("frame_decoder", "large-frame", &large);

    write(
        "request_header",
        "no-metadata",
        &header("S.m", None, &Metadata::new()),
    );
    write(
        "request_header",
        "deadline-and-metadata",
        &header(
            "Calculator.add",
            Some(Duration::from_millis(1500)),
            &metadata,
        ),
    );
    let mut two = Metadata::new();
    two.insert("k", Bytes::new());
    two.insert("k", Bytes::from_static(b"\x00\xff"));
    write(
        "request_header",
        "repeated-key",
        &header("", Some(Duration::from_micros(1)), &two),
    );

    write("status", "ok", &encode_status(0, "", Bytes::new()));
    write(
        "status",
        "internal",
        &encode_status(13, "handler panicked", Bytes::new()),
    );
    write(
        "status",
        "application-details",
        &encode_status(100, "boom", Bytes::from_static(b"\x81\xa1e\x01")),
    );
    write(
        "status",
        "unknown-code",
        &encode_status(2, "caf\u{e9}", Bytes::new()),
    );

    write("cancel", "stream-0", &cancel_message(0));
    write("cancel", "stream-large", &cancel_message(1 << 40));
}

fn codec() {
    let sample = Sample {
        id: 42,
        name: "sample".into(),
        data: Payload::from(vec![1u8, 2, 3]),
        values: vec![-1, 0, 1],
        labels: BTreeMap::from([("a".to_string(), 1)]),
        kind: Kind::Blob {
            at: -5,
            raw: vec![9, 9],
        },
        note: Some("n".into()),
        ratio: 0.5,
        parts: vec![Part {
            chunk: Payload::from(vec![4u8]),
            seq: 1,
        }],
    };
    let message = |choice: u8, value: &dyn erased::Encode| {
        let mut out = vec![choice];
        out.extend_from_slice(&value.encode());
        out
    };
    write("message_codec", "sample", &message(0, &sample));
    write(
        "message_codec",
        "payload",
        &message(1, &Payload::from(vec![5u8; 20])),
    );
    write("message_codec", "string", &message(2, &"hello".to_string()));
    write("message_codec", "list", &message(3, &vec![1u64, 1 << 40]));
    write(
        "message_codec",
        "tuple",
        &message(
            4,
            &(7u8, Some(Payload::from(vec![1u8])), vec![sample.clone()]),
        ),
    );
    write(
        "message_codec",
        "enum",
        &message(5, &Kind::Pair(3, "x".into())),
    );
}

/// Encoding a message as a call would, type-erased for the list above.
mod erased {
    pub trait Encode {
        fn encode(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            rmp_serde::to_vec_named(self).expect("encodes")
        }
    }
}

/// The gossip message's shape on the wire (its fields are the cluster crate's own).
#[derive(Serialize)]
struct WireMessage {
    from: NodeId,
    body: WireBody,
    updates: Vec<WireUpdate>,
}

#[derive(Serialize)]
enum WireBody {
    Ping {
        seq: u32,
        target: NodeId,
    },
    Ack {
        seq: u32,
    },
    PingReq {
        seq: u32,
        target: NodeId,
        target_addr: SocketAddr,
    },
    Gossip,
    PushPull {
        reply: bool,
        state: Vec<WireUpdate>,
    },
}

#[derive(Serialize, Clone)]
struct WireUpdate {
    id: NodeId,
    addr: SocketAddr,
    incarnation: u64,
    state: MemberState,
    tags: Tags,
    suspecter: Option<NodeId>,
}

fn gossip() {
    let id = |name: &str| NodeId::new(name).expect("a valid id");
    let addr: SocketAddr = "10.0.0.1:7946".parse().expect("an address");
    let update = WireUpdate {
        id: id("c"),
        addr,
        incarnation: 2,
        state: MemberState::Suspect,
        tags: Tags::new().with("role", "worker").expect("small"),
        suspecter: Some(id("a")),
    };
    let messages = [
        (
            "ping",
            WireBody::Ping {
                seq: 5,
                target: id("b"),
            },
            vec![update.clone()],
        ),
        ("ack", WireBody::Ack { seq: u32::MAX }, vec![]),
        (
            "ping-req",
            WireBody::PingReq {
                seq: 1,
                target: id("b"),
                target_addr: "[::1]:9000".parse().expect("an address"),
            },
            vec![],
        ),
        (
            "gossip",
            WireBody::Gossip,
            vec![update.clone(), update.clone()],
        ),
        (
            "push-pull",
            WireBody::PushPull {
                reply: true,
                state: vec![update],
            },
            vec![],
        ),
    ];
    for (name, body, updates) in messages {
        let mut bytes = vec![rpcnet_cluster::PROTOCOL_VERSION];
        rmp_serde::encode::write(
            &mut bytes,
            &WireMessage {
                from: id("a"),
                body,
                updates,
            },
        )
        .expect("encodes");
        let message = Message::decode(&bytes).expect("the mirror matches the wire format");
        write("gossip_message", name, &bytes);
        let sealed = rpcnet_cluster::fuzzing::seal_envelope(addr, &message);
        write("gossip_envelope", name, &sealed);
    }
}

fn main() {
    frames();
    codec();
    gossip();
}
