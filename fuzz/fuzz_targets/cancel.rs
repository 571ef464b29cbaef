//! The cancel stream a server reads to cancel a call: its kind byte and a stream id.
//!
//! Checked: bytes parse as the id `n` exactly when they are the cancel message for `n`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnet_runtime::fuzzing::{cancel_message, parse_cancel, STREAM_KIND_CANCEL};

fuzz_target!(|data: &[u8]| {
    match parse_cancel(data) {
        Some(id) => assert_eq!(&cancel_message(id)[..], data),
        None => assert!(data.len() != 9 || data[0] != STREAM_KIND_CANCEL),
    }
});
