//! The frame format and its decoder: every boundary, any chunking, the limits.

use super::*;
use proptest::prelude::*;

fn encode(frames: &[(FrameType, &[u8])]) -> BytesMut {
    let mut out = BytesMut::new();
    for (kind, payload) in frames {
        put_frame(&mut out, *kind, payload);
    }
    out
}

#[test]
fn a_large_frame_in_pieces_is_assembled_in_a_buffer_that_is_reused() {
    // A size no other test uses, so that none takes this buffer from the shared pool.
    let big = vec![7u8; 777_777];
    let wire = encode(&[(FrameType::Data, &big)]).freeze();
    let assemble = || {
        let mut decoder = FrameDecoder::new(1 << 20);
        for piece in wire.chunks(1500) {
            decoder.push_bytes(Bytes::copy_from_slice(piece));
            if let Some(frame) = decoder.next_frame().expect("valid") {
                assert!(decoder.is_idle());
                return frame.payload;
            }
        }
        panic!("the frame never completed");
    };
    let first = assemble();
    assert_eq!(&first[..], &big[..]);
    let at = first.as_ptr();
    drop(first);
    assert!(buffers::idle_bytes() >= 777_777);
    let second = assemble();
    assert_eq!(&second[..], &big[..]);
    assert_eq!(
        second.as_ptr(),
        at,
        "the same memory served the second frame"
    );
}

#[test]
fn decodes_frames_split_at_every_byte_boundary() {
    // The last frame's length takes two bytes, so some splits fall inside it.
    let long = [9u8; 300];
    let wire = encode(&[
        (FrameType::Header, b"abc"),
        (FrameType::Data, b""),
        (FrameType::Status, b"xyz123"),
        (FrameType::Data, &long),
    ]);
    for split in 0..=wire.len() {
        let mut decoder = FrameDecoder::new(1024);
        let mut frames = Vec::new();
        decoder.push(&wire[..split]);
        while let Some(frame) = decoder.next_frame().expect("valid frames") {
            frames.push(frame);
        }
        decoder.push(&wire[split..]);
        while let Some(frame) = decoder.next_frame().expect("valid frames") {
            frames.push(frame);
        }
        assert_eq!(frames.len(), 4, "split at {split}");
        assert_eq!(&frames[3].payload[..], &long[..]);
        assert_eq!(frames[0].payload, Bytes::from_static(b"abc"));
        assert_eq!(frames[1].kind, FrameType::Data);
        assert!(frames[1].payload.is_empty());
        assert_eq!(frames[2].payload, Bytes::from_static(b"xyz123"));
        assert!(decoder.is_idle());
    }
}

#[test]
fn refuses_an_oversized_length_before_buffering_the_payload() {
    let mut decoder = FrameDecoder::new(16);
    decoder.push(&[0x02, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    let error = decoder.next_frame().expect_err("length over the limit");
    assert_eq!(
        error,
        ProtocolError::FrameTooLarge {
            len: u64::from(u32::MAX),
            limit: 16
        }
    );
    let reserved = |decoder: &FrameDecoder| {
        decoder.assembly.as_ref().map_or(0, |a| {
            a.partial.capacity() + a.large.as_ref().map_or(0, Vec::capacity)
        })
    };
    assert!(reserved(&decoder) < 1024, "nothing was reserved");
    // The same with the header split across chunks, which is read through the assembly.
    let mut decoder = FrameDecoder::new(16);
    decoder.push(&[0x02, 0xff, 0xff]);
    assert_eq!(decoder.next_frame(), Ok(None));
    decoder.push(&[0xff, 0xff, 0x0f]);
    assert!(matches!(
        decoder.next_frame(),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    assert!(reserved(&decoder) < 1024, "nothing was reserved");
}

#[test]
fn lengths_take_the_fewest_bytes_and_read_back_at_every_boundary() {
    for (len, bytes) in [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (268_435_455, 4),
        (268_435_456, 5),
        (u32::MAX as usize, 5),
    ] {
        let (header, used) = frame_header(FrameType::Status, len);
        assert_eq!(used, 1 + bytes, "{len}");
        assert_eq!(
            parse_frame_header(&header[..used]),
            Ok(Some((FrameType::Status, used, len)))
        );
        // Any prefix is incomplete, not an error.
        for cut in 0..used {
            assert_eq!(
                parse_frame_header(&header[..cut]),
                Ok(None),
                "{len} cut at {cut}"
            );
        }
        assert_eq!(
            parse_frame_header(&padded_frame_header(FrameType::Data, len)),
            Ok(Some((FrameType::Data, MAX_FRAME_HEADER_LEN, len))),
            "{len}, padded"
        );
    }
}

#[test]
fn refuses_a_length_of_more_than_five_bytes_or_32_bits() {
    for bytes in [
        &[0x02, 0x80, 0x80, 0x80, 0x80, 0x80][..],
        &[0x02, 0xff, 0xff, 0xff, 0xff, 0x10],
        &[0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
    ] {
        assert_eq!(
            parse_frame_header(bytes),
            Err(ProtocolError::MalformedLength),
            "{bytes:?}"
        );
        let mut decoder = FrameDecoder::new(usize::MAX);
        decoder.push(bytes);
        assert_eq!(decoder.next_frame(), Err(ProtocolError::MalformedLength));
    }
}

#[test]
fn refuses_unknown_frame_types() {
    let mut decoder = FrameDecoder::new(16);
    decoder.push(&[0x7f]);
    assert_eq!(
        decoder.next_frame(),
        Err(ProtocolError::UnknownFrameType(0x7f))
    );
}

#[test]
fn a_frame_at_exactly_the_limit_is_accepted() {
    let mut decoder = FrameDecoder::new(4);
    decoder.push(&encode(&[(FrameType::Data, b"1234")]));
    let frame = decoder.next_frame().expect("ok").expect("complete");
    assert_eq!(frame.payload.len(), 4);
}

#[test]
fn after_a_frame_split_across_chunks_the_next_ones_are_read_in_place() {
    let wire = encode(&[
        (FrameType::Data, b"abcdef"),
        (FrameType::Data, b"ghij"),
        (FrameType::Data, b"kl"),
    ])
    .freeze();
    let mut decoder = FrameDecoder::new(64);
    // The first frame's header and half its payload.
    decoder.push_bytes(wire.slice(..5));
    assert_eq!(decoder.next_frame().expect("ok"), None);
    let rest = wire.slice(5..);
    decoder.push_bytes(rest.clone());
    let first = decoder.next_frame().expect("ok").expect("frame");
    assert_eq!(&first.payload[..], b"abcdef");
    let second = decoder.next_frame().expect("ok").expect("frame");
    assert_eq!(
        second.payload.as_ptr(),
        rest[5..].as_ptr(),
        "a slice of the chunk"
    );
    assert_eq!(
        &decoder.next_frame().expect("ok").expect("frame").payload[..],
        b"kl"
    );
    assert!(decoder.is_idle());
}

#[test]
fn the_last_pair_is_taken_in_one_step_only_when_it_is_all_there_is() {
    let (data, end) = (FrameType::Data, FrameType::End);
    let whole = encode(&[(data, b"msg"), (FrameType::Status, b"st")]).freeze();
    let mut decoder = FrameDecoder::new(64);
    decoder.push_bytes(whole.clone());
    let (message, status) = decoder
        .take_last_pair(data, FrameType::Status)
        .expect("data then status");
    assert_eq!((&message[..], &status[..]), (&b"msg"[..], &b"st"[..]));
    assert_eq!(message.as_ptr(), whole[2..].as_ptr(), "read in place");
    assert!(decoder.is_idle());

    // Anything else is left, untouched, for frame-by-frame reading.
    for frames in [
        &[(data, &b"a"[..]), (data, b"b"), (end, b"")][..],
        &[(data, b"a"), (end, b""), (end, b"")],
        &[(data, b"a")],
        &[(FrameType::Status, b"a"), (end, b"")],
        &[(data, b"a"), (FrameType::Status, b"")],
    ] {
        let wire = encode(frames).freeze();
        let mut decoder = FrameDecoder::new(64);
        decoder.push_bytes(wire.clone());
        assert_eq!(decoder.take_last_pair(data, end), None, "{frames:?}");
        assert_eq!(decoder.buffered(), wire.len(), "{frames:?}");
        assert_eq!(
            decoder.next_frame().expect("ok").expect("frame").kind,
            frames[0].0
        );
    }
    // One byte short of the second frame: not all there.
    let wire = encode(&[(data, b"a"), (end, b"xy")]).freeze();
    let mut decoder = FrameDecoder::new(64);
    decoder.push_bytes(wire.slice(..wire.len() - 1));
    assert_eq!(decoder.take_last_pair(data, end), None);
    // A frame over the limit is refused by the frame-by-frame path, not here.
    let big = encode(&[(data, &[0; 65]), (end, b"")]).freeze();
    let mut decoder = FrameDecoder::new(64);
    decoder.push_bytes(big);
    assert_eq!(decoder.take_last_pair(data, end), None);
    assert!(decoder.next_frame().is_err());
}

#[test]
fn data_frames_decode_in_place_and_others_are_left_for_next_frame() {
    let wire = encode(&[
        (FrameType::Data, b"ab"),
        (FrameType::Status, b"s"),
        (FrameType::Data, b"split across chunks"),
    ])
    .freeze();
    let mut decoder = FrameDecoder::new(64);
    // The last frame's final byte arrives in a second chunk.
    decoder.push_bytes(wire.slice(..wire.len() - 1));
    // A frame the decode function turns down stays where it is.
    assert_eq!(decoder.decode_data_in_place(|_, _| None::<()>), None);
    let in_place = decoder
        .decode_data_in_place(|chunk, range| Some(chunk.slice(range)))
        .expect("a data frame");
    assert_eq!(&in_place[..], b"ab");
    assert_eq!(in_place.as_ptr(), wire[2..].as_ptr(), "read in place");
    assert_eq!(
        decoder.decode_data_in_place(|_, range| Some(range.len())),
        None,
        "not data"
    );

    assert_eq!(
        decoder.next_frame().expect("ok").expect("frame").kind,
        FrameType::Status
    );
    assert_eq!(
        decoder.decode_data_in_place(|_, range| Some(range.len())),
        None,
        "not whole in this chunk"
    );
    decoder.push_bytes(wire.slice(wire.len() - 1..));
    assert_eq!(
        &decoder.next_frame().expect("ok").expect("frame").payload[..],
        b"split across chunks"
    );
    assert!(decoder.is_idle());
}

#[test]
fn frames_inside_one_chunk_are_not_copied() {
    let wire = encode(&[(FrameType::Data, b"abc"), (FrameType::Data, b"defg")]).freeze();
    let mut decoder = FrameDecoder::new(64);
    decoder.push_bytes(wire.clone());
    let first = decoder.next_frame().expect("ok").expect("frame");
    let second = decoder.next_frame().expect("ok").expect("frame");
    assert_eq!(
        first.payload.as_ptr(),
        wire[2..].as_ptr(),
        "a slice of the chunk"
    );
    assert_eq!(&second.payload[..], b"defg");
    assert!(decoder.is_idle());
}

proptest! {
    #[test]
    fn any_chunking_yields_the_same_frames(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        cuts in proptest::collection::vec(1usize..30, 0..20),
    ) {
        let frames: Vec<(FrameType, &[u8])> = payloads.iter().map(|p| (FrameType::Data, p.as_slice())).collect();
        let wire = encode(&frames).freeze();
        let mut decoder = FrameDecoder::new(64);
        let mut got = Vec::new();
        let mut at: usize = 0;
        for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let end = at.saturating_add(*cut).min(wire.len());
            decoder.push_bytes(wire.slice(at..end));
            at = end;
            while let Some(frame) = decoder.next_frame().expect("valid") {
                got.push(frame.payload.to_vec());
            }
            if at == wire.len() {
                break;
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(decoder.is_idle());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_exceed_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        limit in 0usize..64,
    ) {
        let mut decoder = FrameDecoder::new(limit);
        decoder.push(&bytes);
        while let Ok(Some(frame)) = decoder.next_frame() {
            prop_assert!(frame.payload.len() <= limit);
        }
    }

    #[test]
    fn the_last_pair_agrees_with_frame_by_frame_reading(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        first in 0u8..6,
        second in 0u8..6,
    ) {
        let (Ok(first), Ok(second)) = (FrameType::from_u8(first), FrameType::from_u8(second)) else {
            return Ok(());
        };
        let mut one_step = FrameDecoder::new(16);
        one_step.push(&bytes);
        let Some((a, b)) = one_step.take_last_pair(first, second) else {
            prop_assert_eq!(one_step.buffered(), bytes.len());
            return Ok(());
        };
        let mut by_frame = FrameDecoder::new(16);
        by_frame.push(&bytes);
        let x = by_frame.next_frame().expect("valid").expect("frame");
        let y = by_frame.next_frame().expect("valid").expect("frame");
        prop_assert_eq!((x.kind, y.kind), (first, second));
        prop_assert_eq!((x.payload, y.payload), (a, b));
        prop_assert!(by_frame.is_idle() && one_step.is_idle());
    }
}

#[test]
fn a_large_frame_holds_memory_for_the_bytes_that_arrived_not_for_its_announced_length() {
    // A length no other test uses, so that no idle pooled buffer fits it.
    const ANNOUNCED: usize = 3_333_333;
    let mut decoder = FrameDecoder::new(4 * 1024 * 1024);
    let mut wire = BytesMut::new();
    put_frame_header(&mut wire, FrameType::Data, ANNOUNCED);
    wire.extend_from_slice(&[5u8; 1000]);
    decoder.push(&wire);
    assert_eq!(decoder.next_frame(), Ok(None), "the frame is not all there");
    let held = decoder
        .assembly
        .as_ref()
        .and_then(|a| a.large.as_ref())
        .map_or(0, Vec::capacity);
    assert!(
        held < 256 * 1024,
        "{held} bytes held for 1,000 received of {ANNOUNCED} announced"
    );
    // The rest arrives in pieces; the frame comes out whole, in a buffer no larger than it.
    let rest = vec![5u8; ANNOUNCED - 1000];
    for piece in rest.chunks(100_000) {
        decoder.push(piece);
    }
    let frame = decoder.next_frame().expect("valid").expect("complete");
    assert_eq!(frame.payload.len(), ANNOUNCED);
    assert!(frame.payload.iter().all(|&b| b == 5));
}

mod budget {
    use super::*;
    use crate::budget::{ConnBudget, ServerBudget};

    fn budgeted(limit: usize) -> (Arc<ServerBudget>, FrameDecoder) {
        let server = ServerBudget::new(limit);
        let conn = ConnBudget::new(limit, &server);
        (
            server,
            FrameDecoder::with_budget(4 * 1024 * 1024, Some(conn)),
        )
    }

    #[test]
    fn frames_whole_in_their_chunk_cost_no_budget() {
        let (server, mut decoder) = budgeted(1);
        decoder.push(&encode(&[
            (FrameType::Data, &[1; 500]),
            (FrameType::End, &[]),
        ]));
        assert!(decoder.next_frame().expect("valid").is_some());
        assert_eq!(server.used(), 0);
        assert!(decoder.next_frame().expect("valid").is_some());
    }

    #[test]
    fn an_assembled_frame_costs_what_arrived_and_gives_it_back_when_complete() {
        // A length no other test uses, so that no idle pooled buffer fits it.
        const ANNOUNCED: usize = 2_222_223;
        let (server, mut decoder) = budgeted(8 * 1024 * 1024);
        let mut wire = BytesMut::new();
        put_frame_header(&mut wire, FrameType::Data, ANNOUNCED);
        decoder.push(&wire);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert!(
            server.used() < 1024,
            "{} bytes counted for a header alone",
            server.used()
        );
        decoder.push(&[9; 100_000]);
        assert_eq!(decoder.next_frame(), Ok(None));
        let used = server.used();
        assert!(
            (100_000..=200_000).contains(&used),
            "{used} bytes counted for 100,000 received"
        );
        decoder.push(&vec![9; ANNOUNCED - 100_000]);
        let frame = decoder.next_frame().expect("valid").expect("complete");
        assert_eq!(frame.payload.len(), ANNOUNCED);
        // The frame took its buffer with it; only the few bytes the header was put together
        // in stay, kept for the stream's next frame.
        assert!(server.used() <= 64, "{} bytes still counted", server.used());
        drop(decoder);
        assert_eq!(server.used(), 0);
    }

    #[test]
    fn a_frame_that_outgrows_the_budget_fails_and_the_decoder_gives_back_what_it_held() {
        let (server, mut decoder) = budgeted(1024 * 1024);
        let mut wire = BytesMut::new();
        put_frame_header(&mut wire, FrameType::Data, 3 * 1024 * 1024 + 17);
        decoder.push(&wire);
        let mut outcome = Ok(None);
        for _ in 0..64 {
            decoder.push(&[3; 64 * 1024]);
            outcome = decoder.next_frame();
            if outcome.is_err() {
                break;
            }
            assert!(server.used() <= 1024 * 1024);
        }
        assert_eq!(
            outcome,
            Err(ProtocolError::ReceiveBudgetExhausted {
                scope: "connection",
                limit: 1024 * 1024
            })
        );
        assert!(server.used() > 0);
        drop(decoder);
        assert_eq!(server.used(), 0);
    }

    #[test]
    fn a_small_frame_split_across_chunks_costs_its_buffer_until_it_is_complete() {
        let (server, mut decoder) = budgeted(1 << 20);
        let wire = encode(&[(FrameType::Data, &[4; 3000])]);
        decoder.push(&wire[..1000]);
        assert_eq!(decoder.next_frame(), Ok(None));
        let used = server.used();
        assert!(
            (997..=4096).contains(&used),
            "{used} bytes counted for 997 received"
        );
        decoder.push(&wire[1000..]);
        assert_eq!(
            decoder
                .next_frame()
                .expect("valid")
                .expect("complete")
                .payload
                .len(),
            3000
        );
        // The buffer kept for the next frame of the stream still counts, and only it.
        assert!(server.used() <= used.max(4096));
        drop(decoder);
        assert_eq!(server.used(), 0);
    }
}
