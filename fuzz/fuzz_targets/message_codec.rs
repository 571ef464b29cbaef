//! The message codec: received MessagePack decoded as the runtime does (byte fields
//! sliced from the received chunk, a bare payload without serde), as several message types.
//!
//! Input: a byte choosing the type, then the message. Checked: decoding a message in place
//! in a larger chunk agrees with decoding it alone; a bare payload decodes as serde would;
//! whatever decodes re-encodes (as a call writes it) to a frame that decodes to the same
//! bytes again.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpcnet_fuzz::messages::Sample;
use rpcnet_fuzz::{Counting, Input};
use rpcnet_runtime::fuzzing::{decode, decode_in, encode_message, parse_frame_header};
use rpcnet_runtime::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[global_allocator]
static ALLOC: Counting = Counting;

fn check<T>(chunk: &Bytes, range: std::ops::Range<usize>)
where
    T: Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    let alone = Bytes::copy_from_slice(&chunk[range.clone()]);
    let decoded = decode::<T>(&alone);
    let in_place = decode_in::<T>(chunk, range);
    let (Ok(value), Ok(in_place)) = (decoded, in_place) else {
        return;
    };
    let frame = encode_message(&value, u32::MAX as usize).expect("a decoded value encodes");
    assert_eq!(
        encode_message(&in_place, u32::MAX as usize).expect("encodes"),
        frame,
        "in place and alone differ"
    );
    let (_, head, len) = parse_frame_header(&frame)
        .expect("a valid header")
        .expect("whole");
    assert_eq!(head + len, frame.len());
    let payload = Bytes::copy_from_slice(&frame[head..]);
    let again = decode::<T>(&payload).expect("a re-encoded value decodes");
    let frame_again = encode_message(&again, u32::MAX as usize).expect("encodes");
    assert_eq!(frame_again, frame, "a second round trip differs");
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let mut input = Input::new(data);
    let choice = input.byte().unwrap_or(0);
    // The message is decoded from the middle of the whole input, as from a received chunk.
    let range = 1..data.len().max(1);
    let chunk = Bytes::copy_from_slice(data);
    match choice % 6 {
        0 => check::<Sample>(&chunk, range),
        1 => {
            check::<Payload>(&chunk, range.clone());
            let ours = decode::<Payload>(&Bytes::copy_from_slice(&chunk[range.clone()]));
            let serde = rmp_serde::from_slice::<serde_bytes::ByteBuf>(&chunk[range]);
            if let (Ok(ours), Ok(serde)) = (ours, serde) {
                assert_eq!(&ours[..], &serde[..], "a bare payload decodes as serde's");
            }
        }
        2 => check::<String>(&chunk, range),
        3 => check::<Vec<u64>>(&chunk, range),
        4 => check::<(u8, Option<Payload>, Vec<Sample>)>(&chunk, range),
        _ => check::<rpcnet_fuzz::messages::Kind>(&chunk, range),
    }
    let _ = input.rest();
});
