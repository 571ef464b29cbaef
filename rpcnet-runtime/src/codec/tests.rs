//! Tests of encoding and decoding across the codec's parts.

use bytes::{Bytes, BytesMut};

use super::encode::MOVE_UP_TO;
use super::*;
use crate::error::RpcError;
use crate::frame::{parse_frame_header, FrameDecoder, FrameType, MAX_FRAME_HEADER_LEN};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct V1 {
    a: i64,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct V2 {
    a: i64,
    #[serde(default)]
    b: Option<String>,
}

#[test]
fn a_bare_payload_item_is_written_as_serde_would() {
    for len in [0usize, 1, 64, 125, 126, 255, 256, 65_535, 65_536, 70_000] {
        let payload = crate::Payload::from(vec![7u8; len]);
        let mut fast = BytesMut::new();
        put_item(&mut fast, FrameType::Data, &payload, 1 << 20).expect("fits");
        let mut serde = BytesMut::new();
        put_message(&mut serde, FrameType::Data, &payload, 1 << 20).expect("fits");
        if len + 3 <= MOVE_UP_TO {
            assert_eq!(fast, serde, "{len} bytes");
        } else {
            // Serde's larger frames keep a padded length; the frames carry the same bytes.
            assert_eq!(fast[0], serde[0]);
            let (_, fast_head, fast_len) =
                parse_frame_header(&fast).expect("valid").expect("whole");
            let (_, serde_head, serde_len) =
                parse_frame_header(&serde).expect("valid").expect("whole");
            assert_eq!(serde_head, MAX_FRAME_HEADER_LEN);
            assert_eq!(fast_len, serde_len);
            assert_eq!(&fast[fast_head..], &serde[serde_head..], "{len} bytes");
        }
    }
    let mut out = BytesMut::new();
    let payload = crate::Payload::from(vec![0u8; 100]);
    assert!(matches!(
        put_item(&mut out, FrameType::Data, &payload, 50),
        Err(RpcError::MessageTooLarge { .. })
    ));
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn a_message_round_trips_through_a_frame() {
    let mut out = BytesMut::new();
    put_message(&mut out, FrameType::Data, &V1 { a: 7 }, 1024).expect("fits");
    let mut decoder = FrameDecoder::new(1024);
    decoder.push(&out);
    let frame = decoder.next_frame().expect("ok").expect("complete");
    assert_eq!(decode::<V1>(&frame.payload).expect("decodes"), V1 { a: 7 });
}

#[test]
fn structs_are_maps_so_old_and_new_peers_interoperate() {
    let new = encode(&V2 {
        a: 1,
        b: Some("x".into()),
    })
    .expect("encodes");
    assert_eq!(decode::<V1>(&new).expect("old reads new"), V1 { a: 1 });
    let old = encode(&V1 { a: 2 }).expect("encodes");
    assert_eq!(
        decode::<V2>(&old).expect("new reads old"),
        V2 { a: 2, b: None }
    );
}

#[test]
fn an_oversized_message_is_refused_and_leaves_the_buffer_untouched() {
    let mut out = BytesMut::from(&b"prefix"[..]);
    let error = put_message(&mut out, FrameType::Data, &vec![0u8; 100], 10).expect_err("too large");
    assert!(matches!(error, RpcError::MessageTooLarge { limit: 10, .. }));
    assert_eq!(&out[..], b"prefix");
}

#[test]
fn garbage_is_a_decode_error() {
    let garbage = Bytes::from_static(&[0xc1, 0xff]);
    assert!(matches!(decode::<V1>(&garbage), Err(RpcError::Decode(_))));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_decode_to_a_value_or_an_error_not_a_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
    ) {
        let bytes = Bytes::from(bytes);
        let _ = decode::<V2>(&bytes);
        let _ = decode::<crate::Payload>(&bytes);
        let _ = decode::<(u8, Vec<String>, Option<crate::Payload>)>(&bytes);
    }

    #[test]
    fn any_message_round_trips_through_a_frame(
        a in proptest::prelude::any::<i64>(),
        b in proptest::option::of(".{0,20}"),
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let message = (V2 { a, b }, crate::Payload::from(payload));
        let mut out = BytesMut::new();
        put_message(&mut out, FrameType::Data, &message, 1 << 20).expect("fits");
        let (_, head, len) = parse_frame_header(&out).expect("valid").expect("whole");
        proptest::prop_assert_eq!(head + len, out.len());
        let back: (V2, crate::Payload) = decode(&out.freeze().slice(head..)).expect("decodes");
        proptest::prop_assert_eq!(back, message);
    }
}
