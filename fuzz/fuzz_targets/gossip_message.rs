//! The gossip message a node decodes from every envelope it receives.
//!
//! Checked: whatever decodes re-encodes to bytes that decode to the same message and
//! re-encode identically; decoding holds at most a small multiple of the input's bytes
//! (as `Message::decode` documents).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnet_cluster::Message;
use rpcnet_fuzz::{peak_of, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = peak_of(|| Message::decode(data));
    assert!(
        peak <= 64 * data.len() + 4096,
        "decoding {} bytes held {peak}",
        data.len()
    );
    let Ok(message) = decoded else { return };
    let encoded = message.encode();
    let again = Message::decode(&encoded).expect("a re-encoded message decodes");
    assert_eq!(again, message);
    assert_eq!(again.encode(), encoded, "a second round trip differs");
});
