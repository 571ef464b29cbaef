//! Decoding received messages, with byte fields sliced from the received bytes rather than
//! copied.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{CodecError, RpcError};

scoped_tls::scoped_thread_local! {
    /// The received bytes being decoded on this thread, so byte fields can share them (see
    /// [`share_from_source`]). Set only for the duration of one decode, by reference: no
    /// reference count is touched unless a field actually takes a slice.
    static SOURCE: Bytes
}

/// Decodes a message received from the peer. Byte fields of type [`Payload`] are returned
/// as slices of `bytes` rather than copies.
///
/// [`Payload`]: crate::Payload
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &Bytes) -> Result<T, RpcError> {
    decode_in(bytes, 0..bytes.len()).map_err(RpcError::Decode)
}

/// Decodes the message at `range` of a received chunk, in place: `Payload` fields become
/// slices of `chunk`, and nothing else is copied or counted. A message that is a bare
/// `Payload` (the usual item of a byte stream) is sliced out without going through serde.
///
/// The error is the bare [`CodecError`]: on the per-item path a smaller result is cheaper to
/// hand back.
#[inline]
pub(crate) fn decode_in<T: DeserializeOwned + 'static>(
    chunk: &Bytes,
    range: std::ops::Range<usize>,
) -> Result<T, CodecError> {
    let mut decoded: Option<T> = None;
    if let Some(slot) =
        (&mut decoded as &mut dyn std::any::Any).downcast_mut::<Option<crate::Payload>>()
    {
        *slot = bin_slice(chunk, range.clone()).map(crate::Payload::from);
    }
    if let Some(value) = decoded {
        return Ok(value);
    }
    SOURCE
        .set(chunk, || rmp_serde::from_slice(&chunk[range]))
        .map_err(CodecError::new)
}

/// The bytes of a MessagePack `bin` value filling exactly `range` of `chunk`, or `None` if
/// it holds anything else (which serde then decodes, or reports).
#[inline]
fn bin_slice(chunk: &Bytes, range: std::ops::Range<usize>) -> Option<Bytes> {
    let message = chunk.get(range.clone())?;
    let (head, len) = match *message {
        [0xc4, len, ..] => (2, usize::from(len)),
        [0xc5, a, b, ..] => (3, usize::from(u16::from_be_bytes([a, b]))),
        [0xc6, a, b, c, d, ..] => (5, u32::from_be_bytes([a, b, c, d]) as usize),
        _ => return None,
    };
    (message.len().checked_sub(head)? == len).then(|| chunk.slice(range.start + head..range.end))
}

/// A shared slice of the bytes being decoded, if `slice` lies inside them.
pub(crate) fn share_from_source(slice: &[u8]) -> Option<Bytes> {
    if !SOURCE.is_set() {
        return None;
    }
    SOURCE.with(|source| {
        let start = source.as_ptr() as usize;
        let at = slice.as_ptr() as usize;
        let inside = at >= start && at + slice.len() <= start + source.len();
        inside.then(|| source.slice_ref(slice))
    })
}
