//! The gossip envelope: what a node sends as a one-way message of stream kind
//! [`GOSSIP_STREAM_KIND`] on the rpcnet endpoint of the node it gossips with.
//!
//! ```text
//! version:u8 (= 1)  addr_len:u8  addr:[u8; addr_len] (UTF-8 "ip:port")  message (SWIM encoding)
//! ```
//!
//! QUIC connections come from a node's client endpoint (an ephemeral port), so the source
//! address of a stream is not where the sender listens. The envelope carries the sender's
//! listening address, which the SWIM core answers to.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::swim::message::{DecodeError, Message};

const ENVELOPE_VERSION: u8 = 1;

/// The stream kind of gossip: the runtime hands one-way messages of this kind to the
/// node's inbox (`BoundServer::one_way_inbox`).
pub const GOSSIP_STREAM_KIND: u8 = 0x10;

/// Why an envelope could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// Too short, wrong version, or an address that does not parse.
    #[error("malformed gossip envelope")]
    Malformed,
    /// The message inside could not be decoded.
    #[error("undecodable gossip message")]
    Message(#[from] DecodeError),
}

/// Wraps an encoded message with the sender's listening address.
pub(crate) fn seal(from: SocketAddr, message: &Message) -> Bytes {
    let addr = from.to_string();
    let encoded = message.encode();
    let mut out = BytesMut::with_capacity(2 + addr.len() + encoded.len());
    out.put_u8(ENVELOPE_VERSION);
    out.put_u8(addr.len() as u8);
    out.put_slice(addr.as_bytes());
    out.put_slice(&encoded);
    out.freeze()
}

/// Opens an envelope received from the network. Never panics on arbitrary bytes.
pub(crate) fn open(bytes: &[u8]) -> Result<(SocketAddr, Message), EnvelopeError> {
    let [version, len, rest @ ..] = bytes else {
        return Err(EnvelopeError::Malformed);
    };
    if *version != ENVELOPE_VERSION || rest.len() < usize::from(*len) {
        return Err(EnvelopeError::Malformed);
    }
    let (addr, message) = rest.split_at(usize::from(*len));
    let addr = std::str::from_utf8(addr)
        .ok()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or(EnvelopeError::Malformed)?;
    Ok((addr, Message::decode(message)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_reader() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let len = rng.gen_range(0..300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = open(&bytes);
        }
        assert!(matches!(
            open(&[1, 200, b'x']),
            Err(EnvelopeError::Malformed)
        ));
        assert!(matches!(open(&[9, 0]), Err(EnvelopeError::Malformed)));
    }

    proptest::proptest! {
        #[test]
        fn any_sender_address_and_message_round_trip(
            ip in proptest::prelude::any::<std::net::IpAddr>(),
            port in proptest::prelude::any::<u16>(),
            seq in proptest::prelude::any::<u32>(),
            from in "[a-z0-9.-]{1,20}",
        ) {
            let addr = SocketAddr::new(ip, port);
            let message = Message {
                from: crate::NodeId::new(&from).expect("a valid id"),
                body: crate::swim::message::Body::Ack { seq },
                updates: Vec::new(),
            };
            let (opened_from, opened) = open(&seal(addr, &message)).expect("opens");
            proptest::prop_assert_eq!(opened_from, addr);
            proptest::prop_assert_eq!(opened, message);
        }
    }
}
