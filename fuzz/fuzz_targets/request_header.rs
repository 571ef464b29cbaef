//! The request header a server parses from every call's first frame.
//!
//! Checked: a header that parses and names its method in UTF-8 re-encodes to exactly the
//! bytes it came from (every field has one encoding); any header that parses reads back the
//! same after re-encoding; parsing holds at most a small multiple of the input's bytes.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpcnet_fuzz::{peak_of, Counting};
use rpcnet_runtime::fuzzing::{encode_request_header, parse_request_header};

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let (parsed, peak) = peak_of(|| parse_request_header(bytes.clone()));
    // The metadata list grows by doubling: 56 bytes an entry, each at least 6 input bytes.
    assert!(
        peak <= 32 * data.len() + 1024,
        "parsing {} bytes held {peak}",
        data.len()
    );
    let Ok(header) = parsed else { return };
    let Ok(method) = std::str::from_utf8(&header.method) else {
        return;
    };
    let encoded = encode_request_header(method, header.deadline, &header.metadata)
        .expect("a parsed header fits its fields");
    assert_eq!(encoded, data, "re-encoding differs");
    let again = parse_request_header(Bytes::from(encoded)).expect("re-encoded parses");
    assert_eq!(again, header);
});
