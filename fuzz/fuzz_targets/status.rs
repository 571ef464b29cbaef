//! The status trailer a client parses at the end of every call.
//!
//! Checked: a status that parses re-encodes to one that parses the same; where its code is
//! known, its message valid UTF-8 and not over the cut-off, the re-encoding is exactly the
//! input.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpcnet_fuzz::{peak_of, Counting};
use rpcnet_runtime::fuzzing::{encode_status, parse_status};

#[global_allocator]
static ALLOC: Counting = Counting;

/// The longest status message a writer sends.
const MAX_STATUS_MESSAGE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let (parsed, peak) = peak_of(|| parse_status(bytes.clone()));
    // The message is copied out (at most three bytes a replaced invalid byte).
    assert!(
        peak <= 4 * data.len() + 256,
        "parsing {} bytes held {peak}",
        data.len()
    );
    let Ok(status) = parsed else { return };
    let encoded = encode_status(
        status.code().as_u16(),
        status.message(),
        Bytes::copy_from_slice(status.details()),
    );
    let again = parse_status(Bytes::from(encoded.clone())).expect("re-encoded parses");
    assert_eq!(again, status);
    let code = u16::from_be_bytes([data[0], data[1]]);
    let len = u32::from_be_bytes([data[2], data[3], data[4], data[5]]) as usize;
    if status.code().as_u16() == code
        && len == status.message().len()
        && data[6..6 + len] == *status.message().as_bytes()
        && len <= MAX_STATUS_MESSAGE
    {
        assert_eq!(encoded, data, "re-encoding differs");
    }
});
