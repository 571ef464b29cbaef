//! Thin entry points to the cluster's decoders of network bytes, for the coverage-guided
//! fuzz targets in `fuzz/` at the repository root. ([`Message::decode`] is public already.)
//!
//! Built only with the `fuzzing` feature; not part of the API.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::node::envelope::{self, EnvelopeError};
use crate::swim::message::DecodeError;
use crate::Message;

/// Why a gossip envelope did not open.
#[derive(Debug)]
pub enum OpenError {
    /// Too short, wrong version, or an address that does not parse.
    Malformed,
    /// The message inside did not decode.
    Message(DecodeError),
}

/// Opens a gossip envelope as a node does with each one-way message of the gossip kind.
pub fn open_envelope(bytes: &[u8]) -> Result<(SocketAddr, Message), OpenError> {
    envelope::open(bytes).map_err(|error| match error {
        EnvelopeError::Malformed => OpenError::Malformed,
        EnvelopeError::Message(error) => OpenError::Message(error),
    })
}

/// Seals `message` in an envelope from `from`, as a node sends it.
pub fn seal_envelope(from: SocketAddr, message: &Message) -> Bytes {
    envelope::seal(from, message)
}
