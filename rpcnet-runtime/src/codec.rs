//! MessagePack encoding of messages (rmp-serde, structs as maps so that adding an optional
//! field does not break older peers), written straight into a frame buffer.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{CodecError, RpcError};
use crate::frame::{put_frame_header, FrameType, FRAME_HEADER_LEN};

/// Appends `value` as one frame of `kind`, encoding in place (no intermediate buffer).
/// Fails, leaving `out` as it was, if the encoded message exceeds `limit` bytes.
pub(crate) fn put_message<T: Serialize + ?Sized>(
    out: &mut BytesMut,
    kind: FrameType,
    value: &T,
    limit: usize,
) -> Result<(), RpcError> {
    let start = out.len();
    put_frame_header(out, kind, 0);
    let mut writer = out.writer();
    let encoded = rmp_serde::encode::write_named(&mut writer, value);
    let out = writer.into_inner();
    if let Err(error) = encoded {
        out.truncate(start);
        return Err(RpcError::Encode(CodecError::new(error)));
    }
    let len_bytes = match frame_len(out.len() - start - FRAME_HEADER_LEN, limit) {
        Ok(len_bytes) => len_bytes,
        Err(error) => {
            out.truncate(start);
            return Err(error);
        }
    };
    out[start + 1..start + FRAME_HEADER_LEN].copy_from_slice(&len_bytes);
    Ok(())
}

/// The length field of a frame whose payload is `len` bytes, or the error for a message
/// over `limit`.
fn frame_len(len: usize, limit: usize) -> Result<[u8; 4], RpcError> {
    if len > limit {
        return Err(RpcError::MessageTooLarge {
            size: len as u64,
            limit: limit as u64,
        });
    }
    Ok(u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes())
}

/// Payloads at least this long are sent from their own buffer rather than copied into the
/// frame ([`Segments`]).
const LEND_FROM: usize = 64 * 1024;

thread_local! {
    /// The large payload being serialised on this thread, offered to a [`Segments`] writer.
    static LENDING: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Serialises `bytes` through `serialize`, offering them to a [`Segments`] writer so that a
/// large payload travels as its own segment instead of being copied. Used by `Payload`.
pub(crate) fn lend<R>(bytes: &Bytes, serialize: impl FnOnce() -> R) -> R {
    if bytes.len() < LEND_FROM {
        return serialize();
    }
    let previous = LENDING.with(|lending| lending.replace(Some(bytes.clone())));
    let result = serialize();
    LENDING.with(|lending| lending.replace(previous));
    result
}

/// The lent payload, if `data` is exactly it.
fn lent(data: &[u8]) -> Option<Bytes> {
    LENDING.with(|lending| {
        let lending = lending.borrow();
        let bytes = lending.as_ref()?;
        (bytes.as_ptr() == data.as_ptr() && bytes.len() == data.len()).then(|| bytes.clone())
    })
}

/// An encoded output made of segments: buffers written in place, and large payloads that
/// are sent from their own memory (see [`lend`]). Frozen into `Bytes` for a vectored send.
#[derive(Debug)]
pub(crate) struct Segments {
    /// Finished parts, in order.
    done: Vec<Part>,
    /// The buffer being written, after them.
    current: BytesMut,
}

#[derive(Debug)]
enum Part {
    Owned(BytesMut),
    Shared(Bytes),
}

/// A position in a [`Segments`]: a part (`done.len()` for the current buffer) and an
/// offset in it.
#[derive(Debug, Clone, Copy)]
struct Position {
    part: usize,
    offset: usize,
}

impl Segments {
    /// Empty segments whose first buffer has room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Segments {
            done: Vec::new(),
            current: BytesMut::with_capacity(capacity),
        }
    }

    /// The buffer being written.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    /// The total length in bytes.
    pub(crate) fn len(&self) -> usize {
        let done: usize = self
            .done
            .iter()
            .map(|part| match part {
                Part::Owned(buf) => buf.len(),
                Part::Shared(bytes) => bytes.len(),
            })
            .sum();
        done + self.current.len()
    }

    fn position(&self) -> Position {
        Position {
            part: self.done.len(),
            offset: self.current.len(),
        }
    }

    fn lend(&mut self, bytes: Bytes) {
        let written = std::mem::take(&mut self.current);
        self.done.push(Part::Owned(written));
        self.done.push(Part::Shared(bytes));
    }

    fn truncate(&mut self, at: Position) {
        if at.part < self.done.len() {
            let mut parts = self.done.drain(at.part..);
            if let Some(Part::Owned(buf)) = parts.next() {
                self.current = buf;
            }
        }
        self.current.truncate(at.offset);
    }

    fn patch(&mut self, at: Position, bytes: &[u8]) {
        let buf = match self.done.get_mut(at.part) {
            Some(Part::Owned(buf)) => buf,
            Some(Part::Shared(_)) => return,
            None => &mut self.current,
        };
        if let Some(target) = buf.get_mut(at.offset..at.offset + bytes.len()) {
            target.copy_from_slice(bytes);
        }
    }

    /// The segments, ready for a vectored send.
    pub(crate) fn freeze(self) -> Vec<Bytes> {
        self.done
            .into_iter()
            .map(|part| match part {
                Part::Owned(buf) => buf.freeze(),
                Part::Shared(bytes) => bytes,
            })
            .chain(std::iter::once(self.current.freeze()))
            .filter(|bytes| !bytes.is_empty())
            .collect()
    }
}

impl From<BytesMut> for Segments {
    fn from(current: BytesMut) -> Self {
        Segments {
            done: Vec::new(),
            current,
        }
    }
}

impl std::io::Write for Segments {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match lent(data) {
            Some(bytes) => self.lend(bytes),
            None => self.current.extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Like [`put_message`], into [`Segments`], where a large `Payload` inside `value` becomes a
/// segment of its own instead of being copied.
pub(crate) fn put_message_segments<T: Serialize + ?Sized>(
    out: &mut Segments,
    kind: FrameType,
    value: &T,
    limit: usize,
) -> Result<(), RpcError> {
    let start = out.position();
    put_frame_header(out.buf(), kind, 0);
    let before = out.len();
    if let Err(error) = rmp_serde::encode::write_named(out, value) {
        out.truncate(start);
        return Err(RpcError::Encode(CodecError::new(error)));
    }
    let len_bytes = match frame_len(out.len() - before, limit) {
        Ok(len_bytes) => len_bytes,
        Err(error) => {
            out.truncate(start);
            return Err(error);
        }
    };
    out.patch(
        Position {
            part: start.part,
            offset: start.offset + 1,
        },
        &len_bytes,
    );
    Ok(())
}

/// Encodes a value on its own (used for application errors in status details).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<bytes::Bytes, RpcError> {
    let mut out = BytesMut::new().writer();
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| RpcError::Encode(CodecError::new(e)))?;
    Ok(out.into_inner().freeze())
}

thread_local! {
    /// The frame being decoded on this thread, so byte fields can share it (see
    /// [`share_from_source`]).
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Decodes a message received from the peer. Byte fields of type [`Payload`] are returned
/// as slices of `bytes` rather than copies.
///
/// [`Payload`]: crate::Payload
pub(crate) fn decode<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, RpcError> {
    let decoded = if bytes.len() < SHARE_FROM {
        // Copying a few bytes is cheaper than sharing them (reference counts, and a
        // received buffer kept alive by a small slice of it).
        rmp_serde::from_slice(bytes)
    } else {
        let previous = SOURCE.with(|source| source.replace(Some(bytes.clone())));
        let decoded = rmp_serde::from_slice(bytes);
        SOURCE.with(|source| source.replace(previous));
        decoded
    };
    decoded.map_err(|e| RpcError::Decode(CodecError::new(e)))
}

/// Frames at least this long lend their bytes to [`Payload`](crate::Payload) fields.
const SHARE_FROM: usize = 1024;

/// Decodes a small message from a borrowed slice (its byte fields are copied).
pub(crate) fn decode_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    rmp_serde::from_slice(bytes).map_err(|e| RpcError::Decode(CodecError::new(e)))
}

/// Messages shorter than this are decoded in place ([`decode_slice`]); longer ones lend
/// their bytes to `Payload` fields ([`decode`]).
pub(crate) const SMALL_MESSAGE: usize = SHARE_FROM - 1;

/// A shared slice of the frame being decoded, if `slice` lies inside it.
pub(crate) fn share_from_source(slice: &[u8]) -> Option<Bytes> {
    SOURCE.with(|source| {
        let source = source.borrow();
        let frame = source.as_ref()?;
        let start = frame.as_ptr() as usize;
        let at = slice.as_ptr() as usize;
        let inside = at >= start && at + slice.len() <= start + frame.len();
        inside.then(|| frame.slice_ref(slice))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct V1 {
        a: i64,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct V2 {
        a: i64,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn a_message_round_trips_through_a_frame() {
        let mut out = BytesMut::new();
        put_message(&mut out, FrameType::Data, &V1 { a: 7 }, 1024).expect("fits");
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&out);
        let frame = decoder.next_frame().expect("ok").expect("complete");
        assert_eq!(decode::<V1>(&frame.payload).expect("decodes"), V1 { a: 7 });
    }

    #[test]
    fn structs_are_maps_so_old_and_new_peers_interoperate() {
        let new = encode(&V2 {
            a: 1,
            b: Some("x".into()),
        })
        .expect("encodes");
        assert_eq!(decode::<V1>(&new).expect("old reads new"), V1 { a: 1 });
        let old = encode(&V1 { a: 2 }).expect("encodes");
        assert_eq!(
            decode::<V2>(&old).expect("new reads old"),
            V2 { a: 2, b: None }
        );
    }

    #[test]
    fn an_oversized_message_is_refused_and_leaves_the_buffer_untouched() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let error =
            put_message(&mut out, FrameType::Data, &vec![0u8; 100], 10).expect_err("too large");
        assert!(matches!(error, RpcError::MessageTooLarge { limit: 10, .. }));
        assert_eq!(&out[..], b"prefix");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let garbage = Bytes::from_static(&[0xc1, 0xff]);
        assert!(matches!(decode::<V1>(&garbage), Err(RpcError::Decode(_))));
    }
}
