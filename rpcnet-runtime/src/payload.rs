//! [`Payload`]: opaque bytes in a message, carried without copies where the wire allows.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use crate::codec::share_from_source;

/// Opaque bytes inside a message: file chunks, tensors, already-encoded blobs.
///
/// On the wire it is MessagePack `bin`, like `serde_bytes`. Decoding does not copy it: a
/// received `Payload` is a reference-counted slice of the buffer it arrived in, and one of
/// 64 KiB or more is sent from its own memory. Cloning is cheap (a reference count). Use it
/// in place of `Vec<u8>` for large or many byte fields.
///
/// Because it shares the receive buffer, a small received `Payload` kept for a long time
/// also keeps that buffer (at most one QUIC receive chunk) alive; to store many small
/// payloads for long, copy them out (`Payload::from(payload.to_vec())`).
///
/// ```
/// let payload = rpcnet_runtime::Payload::from(vec![1u8, 2, 3]);
/// assert_eq!(&payload[..], &[1, 2, 3]);
/// let bytes: bytes::Bytes = payload.into_bytes();
/// assert_eq!(bytes.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Payload(Bytes);

impl Payload {
    /// An empty payload.
    pub const fn new() -> Self {
        Payload(Bytes::new())
    }

    /// The bytes, as a `bytes::Bytes`.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// A reference to the bytes, as a `bytes::Bytes`.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Payload(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(bytes: &'static [u8]) -> Self {
        Payload(Bytes::from_static(bytes))
    }
}

impl From<Payload> for Bytes {
    fn from(payload: Payload) -> Self {
        payload.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A large payload is offered to rpcnet's frame writer, which sends it from its own
        // memory; any other serializer simply copies it.
        crate::codec::lend(&self.0, || serializer.serialize_bytes(&self.0))
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Payload, E> {
        // Inside a frame being decoded: share it instead of copying.
        Ok(Payload(
            share_from_source(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
        ))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Payload(Bytes::from(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Chunk {
        id: u32,
        data: Payload,
    }

    #[test]
    fn a_decoded_payload_shares_the_frame() {
        let frame = encode(&Chunk {
            id: 7,
            data: Payload::from(vec![9u8; 4000]),
        })
        .expect("encodes");
        let chunk: Chunk = decode(&frame).expect("decodes");
        assert_eq!(chunk.id, 7);
        assert_eq!(chunk.data.len(), 4000);
        let start = frame.as_ptr() as usize;
        let at = chunk.data.as_ptr() as usize;
        assert!(at > start && at < start + frame.len(), "no copy was made");
    }

    #[test]
    fn a_large_payload_is_sent_from_its_own_memory() {
        use crate::codec::{put_message_segments, Segments};
        use crate::frame::{FrameDecoder, FrameType};

        let big = Payload::from(vec![5u8; 200_000]);
        let mut out = Segments::with_capacity(64);
        let chunk = Chunk {
            id: 1,
            data: big.clone(),
        };
        put_message_segments(&mut out, FrameType::Data, &chunk, 1 << 20).expect("fits");
        let segments = out.freeze().into_vec();
        assert!(
            segments.iter().any(|s| s.as_ptr() == big.as_ptr()),
            "the payload is a segment of its own"
        );
        let mut decoder = FrameDecoder::new(1 << 20);
        for segment in segments {
            decoder.push_bytes(segment);
        }
        let frame = decoder.next_frame().expect("valid").expect("whole");
        let back: Chunk = decode(&frame.payload).expect("decodes");
        assert_eq!(back.id, 1);
        assert_eq!(back.data, big);
    }

    #[test]
    fn payload_is_msgpack_bin_like_serde_bytes() {
        let ours = encode(&Payload::from(vec![1u8, 2, 3])).expect("encodes");
        let theirs = encode(&serde_bytes::ByteBuf::from(vec![1u8, 2, 3])).expect("encodes");
        assert_eq!(ours, theirs);
    }
}
