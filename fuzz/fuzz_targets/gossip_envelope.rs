//! The gossip envelope a node opens for every one-way message of the gossip kind: the
//! sender's listening address and a gossip message.
//!
//! Checked: an envelope that opens reseals to one that opens to the same address and
//! message; its message part decodes alone exactly when the envelope's does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnet_cluster::fuzzing::{open_envelope, seal_envelope, OpenError};
use rpcnet_cluster::Message;

fuzz_target!(|data: &[u8]| {
    match open_envelope(data) {
        Ok((from, message)) => {
            let sealed = seal_envelope(from, &message);
            let (from_again, again) = open_envelope(&sealed).expect("a resealed envelope opens");
            assert_eq!((from_again, &again), (from, &message));
        }
        Err(OpenError::Message(_)) => {
            let rest = &data[2 + usize::from(data[1])..];
            assert!(Message::decode(rest).is_err());
        }
        Err(OpenError::Malformed) => {}
    }
});
