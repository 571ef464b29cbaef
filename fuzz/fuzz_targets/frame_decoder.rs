//! The runtime's incremental frame decoder, fed the fuzzer's bytes in chunks the fuzzer
//! chooses, checked against a whole-buffer reading of the same bytes.
//!
//! Input: a byte choosing the frame limit, then operations (the low three bits of a byte
//! say which, the high five are its parameter): push the next `param + 1` bytes; push
//! `u16 >> param` copies of a byte (large frames from small inputs); read every frame out;
//! take the last pair (of the types in the next byte) or decode a data frame in place; read
//! one frame. Before a push every frame is read out, as the runtime's reader does, except
//! for some pushes of copies. Checked after each operation:
//! every frame returned is the next frame of the bytes pushed, with the same type and
//! payload, and re-encodes to a frame that reads back the same; a refusal comes exactly
//! where the bytes break the framing; the bytes of a frame being assembled never exceed the
//! limit; and the memory the decoder holds stays within a small multiple of the bytes that
//! arrived, however long the frames it was announced.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpcnet_fuzz::{live, Counting, Input};
use rpcnet_runtime::fuzzing::{
    encode_frame, padded_frame_header, parse_frame_header, pooled_bytes, FrameDecoder,
    MAX_FRAME_HEADER_LEN,
};
use rpcnet_runtime::Payload;

#[global_allocator]
static ALLOC: Counting = Counting;

const LIMITS: [usize; 12] = [
    0,
    1,
    5,
    127,
    128,
    300,
    16 * 1024,
    64 * 1024 - 1,
    64 * 1024,
    200_000,
    4 * 1024 * 1024,
    u32::MAX as usize,
];

/// The most bytes pushed in one run.
const MAX_PUSHED: usize = 320 * 1024;

/// Memory a decoder may hold beyond a small multiple of the bytes pushed: the buffer
/// reserved for a frame under the pooled size (at most 64 KiB, doubled by `BytesMut`), the
/// first piece of a large one, and bookkeeping.
const SLACK: usize = 512 * 1024;

struct Check {
    limit: usize,
    /// Every byte pushed, in order.
    stream: Vec<u8>,
    /// How far into `stream` the frames returned so far reach.
    pos: usize,
}

/// What a whole-buffer reading says comes next: a frame (type, header and payload
/// lengths), not enough bytes (`Ok(None)`), or a refusal.
type Next = Result<Option<(u8, usize, usize)>, ()>;

impl Check {
    fn next(&self) -> Next {
        match parse_frame_header(&self.stream[self.pos..]) {
            Err(_) => Err(()),
            Ok(Some((_, _, len))) if len > self.limit => Err(()),
            Ok(header) => Ok(header),
        }
    }

    /// `kind` and `payload` are the next frame of the stream; moves past it.
    fn frame(&mut self, kind: u8, payload: &[u8]) {
        let Ok(Some((expected, head, len))) = self.next() else {
            panic!("a frame where the bytes hold none");
        };
        assert_eq!(kind, expected, "frame type");
        assert_eq!(len, payload.len(), "payload length");
        let original = &self.stream[self.pos..self.pos + head + len];
        assert_eq!(&original[head..], payload, "payload bytes");
        let encoded = encode_frame(kind, payload).expect("a known type");
        let (_, used, _) = parse_frame_header(&encoded)
            .expect("an encoded header reads back")
            .expect("whole");
        assert_eq!(&encoded[used..], payload);
        let padded = padded_frame_header(kind, len).expect("a known type");
        if head == used {
            assert_eq!(&original[..head], &encoded[..used], "the shortest header");
        } else if head != MAX_FRAME_HEADER_LEN || original[..head] != padded {
            // A non-shortest length the reader accepts: it must at least be longer.
            assert!(head > used);
        }
        self.pos += head + len;
    }

    /// The decoder has no whole frame to give.
    fn incomplete(&self) {
        match self.next() {
            Ok(None) => {}
            Ok(Some((_, head, len))) => assert!(
                self.stream.len() - self.pos < head + len,
                "a whole frame was not returned"
            ),
            Err(()) => panic!("broken framing was not refused"),
        }
    }

    fn refused(&self) {
        assert_eq!(self.next(), Err(()), "a refusal of valid framing");
    }
}

/// Reads every whole frame; `false` once the decoder refused the bytes.
fn drain(decoder: &mut FrameDecoder, check: &mut Check) -> bool {
    loop {
        match read_one(decoder, check) {
            Some(true) => {}
            Some(false) => return true,
            None => return false,
        }
    }
}

/// Reads one frame: `Some(true)` for a frame, `Some(false)` for none yet, `None` once the
/// decoder refused the bytes.
fn read_one(decoder: &mut FrameDecoder, check: &mut Check) -> Option<bool> {
    match decoder.next_frame() {
        Ok(Some((kind, payload))) => {
            check.frame(kind, &payload);
            Some(true)
        }
        Ok(None) => {
            check.incomplete();
            Some(false)
        }
        Err(_) => {
            check.refused();
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limit = LIMITS[usize::from(input.byte().unwrap_or(0)) % LIMITS.len()];
    let live_before = live();
    let pool_before = pooled_bytes();
    let mut decoder = FrameDecoder::new(limit);
    let mut check = Check {
        limit,
        stream: Vec::new(),
        pos: 0,
    };
    let mut ok = true;
    while let (true, Some(op)) = (ok, input.byte()) {
        let param = op >> 3;
        match op & 7 {
            0..=4 => {
                let chunk = if op & 7 < 4 {
                    input.take(usize::from(param) + 1).to_vec()
                } else {
                    // Mostly short runs, now and then one longer than a pooled frame.
                    let len = usize::from(input.u16()) >> (param & 15);
                    vec![input.byte().unwrap_or(0); len]
                };
                if chunk.is_empty() || check.stream.len() + chunk.len() > MAX_PUSHED {
                    continue;
                }
                // A reader takes every frame out before it pushes more; now and then push
                // on top of unread bytes anyway.
                if op & 7 < 4 || param & 16 == 0 {
                    ok = drain(&mut decoder, &mut check);
                    if !ok {
                        break;
                    }
                }
                check.stream.extend_from_slice(&chunk);
                decoder.push(Bytes::from(chunk));
            }
            5 => ok = drain(&mut decoder, &mut check),
            6 => match param & 3 {
                0 => {
                    let kinds = input.byte().unwrap_or(0);
                    let (first, second) = ((kinds & 3) + 1, ((kinds >> 2) & 3) + 1);
                    if let Some((a, b)) = decoder.take_last_pair(first, second) {
                        check.frame(first, &a);
                        check.frame(second, &b);
                        assert_eq!(check.pos, check.stream.len(), "the pair was not the last");
                    }
                }
                1 => {
                    if let Some(item) = decoder.decode_data_in_place::<Payload>() {
                        let payload = item_frame(&check);
                        let expected: Payload =
                            rmp_serde::from_slice::<serde_bytes::ByteBuf>(&payload)
                                .map(|b| Payload::from(b.into_vec()))
                                .expect("decoded in place, so it decodes");
                        assert_eq!(item, expected);
                        check.frame(2, &payload);
                    }
                }
                _ => {
                    if let Some(item) = decoder.decode_data_in_place::<u64>() {
                        let payload = item_frame(&check);
                        assert_eq!(rmp_serde::from_slice::<u64>(&payload).ok(), Some(item));
                        check.frame(2, &payload);
                    }
                }
            },
            _ => ok = read_one(&mut decoder, &mut check).is_some(),
        }
        let (assembled, _) = decoder.assembly();
        assert!(
            assembled <= limit.max(MAX_FRAME_HEADER_LEN),
            "assembled past the limit"
        );
        let unread = check.stream.len() - check.pos;
        let buffered = decoder.buffered();
        assert!(buffered <= unread && unread - buffered <= MAX_FRAME_HEADER_LEN);
        let into_pool = pooled_bytes().saturating_sub(pool_before);
        let held = live()
            .saturating_sub(live_before)
            .saturating_sub(into_pool)
            .saturating_sub(check.stream.capacity());
        assert!(
            held <= 3 * check.stream.len() + SLACK,
            "the decoder holds {held} bytes after {} arrived",
            check.stream.len()
        );
    }
    if ok {
        while let Some(true) = read_one(&mut decoder, &mut check) {}
        if check.next().is_ok() {
            assert_eq!(decoder.is_idle(), check.pos == check.stream.len());
        }
    }
});

/// The payload of the next frame, which the decoder just took as a data frame in place.
fn item_frame(check: &Check) -> Vec<u8> {
    let Ok(Some((kind, head, len))) = check.next() else {
        panic!("decoded in place where the bytes hold no frame");
    };
    assert_eq!(kind, 2, "decoded a frame other than data in place");
    check.stream[check.pos + head..check.pos + head + len].to_vec()
}
