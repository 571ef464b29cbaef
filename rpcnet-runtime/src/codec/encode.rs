//! Encoding messages as MessagePack (rmp-serde, structs as maps) straight into the frame
//! that carries them.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::{CodecError, RpcError};
use crate::frame::{frame_header, padded_frame_header, FrameType, MAX_FRAME_HEADER_LEN};

/// Appends `value` as one frame of `kind`, encoding in place (no intermediate buffer).
/// Fails, leaving `out` as it was, if the encoded message exceeds `limit` bytes.
pub(crate) fn put_message<T: Serialize + ?Sized>(
    out: &mut impl FrameBuf,
    kind: FrameType,
    value: &T,
    limit: usize,
) -> Result<(), RpcError> {
    let start = out.len();
    out.put_slice(&[0; MAX_FRAME_HEADER_LEN]);
    let encoded = rmp_serde::encode::write_named(&mut Appender(&mut *out), value);
    if let Err(error) = encoded {
        out.cut(start);
        return Err(RpcError::Encode(CodecError::new(error)));
    }
    let len = out.len() - start - MAX_FRAME_HEADER_LEN;
    if let Err(error) = check_len(len, limit) {
        out.cut(start);
        return Err(error);
    }
    let end = start + close_frame(&mut out[start..], kind, len);
    out.cut(end);
    Ok(())
}

/// Frames up to this long are moved up to meet their shortest header once written; longer
/// ones keep a padded length rather than be moved (three bytes more on at least 16 KiB).
pub(super) const MOVE_UP_TO: usize = 16 * 1024;

/// Fills in the header of `frame`, a frame written as [`MAX_FRAME_HEADER_LEN`] reserved
/// bytes and then its `len` payload bytes. Returns the frame's final length.
pub(super) fn close_frame(frame: &mut [u8], kind: FrameType, len: usize) -> usize {
    if len <= MOVE_UP_TO {
        let (header, used) = frame_header(kind, len);
        frame.copy_within(MAX_FRAME_HEADER_LEN.., used);
        frame[..used].copy_from_slice(&header[..used]);
        return used + len;
    }
    frame[..MAX_FRAME_HEADER_LEN].copy_from_slice(&padded_frame_header(kind, len));
    frame.len()
}

/// Like [`put_message`], with a shortcut for a message that is a bare [`Payload`] (the usual
/// item of a byte stream): its MessagePack `bin` header and bytes are appended directly, the
/// same bytes serde would write, without serde's per-call overhead.
///
/// [`Payload`]: crate::Payload
pub(crate) fn put_item<T: Serialize + 'static>(
    out: &mut impl FrameBuf,
    kind: FrameType,
    value: &T,
    limit: usize,
) -> Result<(), RpcError> {
    match (value as &dyn std::any::Any).downcast_ref::<crate::Payload>() {
        Some(payload) => put_bin(out, kind, payload, limit),
        None => put_message(out, kind, value, limit),
    }
}

/// Appends a frame holding `bytes` as MessagePack `bin` (8, 16 or 32, as rmp would choose).
pub(super) fn put_bin(
    out: &mut impl FrameBuf,
    kind: FrameType,
    bytes: &[u8],
    limit: usize,
) -> Result<(), RpcError> {
    let len = bytes.len();
    // The usual small item, a frame under 128 bytes: its type, its one-byte length, and the
    // `bin 8` marker and length go as one four-byte store.
    if let Ok(frame @ 0..=0x7f) = u8::try_from(len + 2) {
        check_len(len + 2, limit)?;
        out.reserve(4 + len);
        out.put_u32(u32::from_be_bytes([kind.as_u8(), frame, 0xc4, frame - 2]));
        out.put_slice(bytes);
        return Ok(());
    }
    // Otherwise the `bin` header is a marker and the length in one, two or four bytes.
    let (bin, bin_len) = match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) => ([0xc4, short, 0, 0, 0], 2),
        (_, Ok(medium)) => {
            let [a, b] = medium.to_be_bytes();
            ([0xc5, a, b, 0, 0], 3)
        }
        _ => {
            let [a, b, c, d] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
            ([0xc6, a, b, c, d], 5)
        }
    };
    check_len(bin_len + len, limit)?;
    let (header, used) = frame_header(kind, bin_len + len);
    out.reserve(used + bin_len + len);
    out.put_slice(&header[..used]);
    out.put_slice(&bin[..bin_len]);
    out.put_slice(bytes);
    Ok(())
}

/// A buffer frames are written into: the `BytesMut` of one message, or the pooled `Vec` of
/// a stream's next write (see [`crate::buffers`]). Appending is `BufMut::put_slice`.
pub(crate) trait FrameBuf: BufMut + std::ops::DerefMut<Target = [u8]> {
    /// Makes room for `additional` more bytes.
    fn reserve(&mut self, additional: usize);
    /// Drops everything from `len` on.
    fn cut(&mut self, len: usize);
}

impl FrameBuf for BytesMut {
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }

    fn cut(&mut self, len: usize) {
        self.truncate(len);
    }
}

impl FrameBuf for Vec<u8> {
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }

    fn cut(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// An `io::Write` that appends to a [`FrameBuf`]. `bytes`' own writer goes through the
/// generic `BufMut::put`, which costs more than the copy for the few bytes serde writes at
/// a time.
struct Appender<'a, B>(&'a mut B);

impl<B: FrameBuf> std::io::Write for Appender<'_, B> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.put_slice(data);
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.put_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error for a message of `len` bytes over `limit`.
pub(super) fn check_len(len: usize, limit: usize) -> Result<(), RpcError> {
    if len > limit {
        return Err(RpcError::MessageTooLarge {
            size: len as u64,
            limit: limit as u64,
        });
    }
    Ok(())
}

/// Encodes a value on its own (used for application errors in status details).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<bytes::Bytes, RpcError> {
    let mut out = BytesMut::new().writer();
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| RpcError::Encode(CodecError::new(e)))?;
    Ok(out.into_inner().freeze())
}
