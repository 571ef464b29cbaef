//! [`Segments`]: an encoded output whose large payloads are sent from their own memory
//! instead of being copied into the frame.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::encode::{check_len, close_frame, put_bin};
use crate::buffers;
use crate::error::{CodecError, RpcError};
use crate::frame::{padded_frame_header, FrameType, MAX_FRAME_HEADER_LEN};

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
    /// Empty segments whose first buffer has room for `capacity` bytes (see
    /// [`buffers::message_buffer`]).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Segments {
            done: Vec::new(),
            current: buffers::message_buffer(capacity),
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
    pub(crate) fn freeze(self) -> Frozen {
        if self.done.is_empty() {
            // The usual case, a message written whole into one buffer: no list to allocate.
            return Frozen::One([self.current.freeze()]);
        }
        Frozen::Many(
            self.done
                .into_iter()
                .map(|part| match part {
                    Part::Owned(buf) => buf.freeze(),
                    Part::Shared(bytes) => bytes,
                })
                .chain(std::iter::once(self.current.freeze()))
                .filter(|bytes| !bytes.is_empty())
                .collect(),
        )
    }
}

/// Frozen [`Segments`], for a vectored send.
#[derive(Debug)]
pub(crate) enum Frozen {
    /// A single buffer.
    One([Bytes; 1]),
    /// Several buffers and lent payloads, in order.
    Many(Vec<Bytes>),
}

impl Frozen {
    /// The buffers, as `send_vectored` takes them.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Bytes] {
        match self {
            Frozen::One(one) => one,
            Frozen::Many(many) => many,
        }
    }

    /// The buffers, in order.
    #[cfg(test)]
    pub(crate) fn into_vec(self) -> Vec<Bytes> {
        match self {
            Frozen::One([one]) => vec![one],
            Frozen::Many(many) => many,
        }
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
        // Only a write as long as a lent payload can be that payload.
        match (data.len() >= LEND_FROM).then(|| lent(data)).flatten() {
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
/// segment of its own instead of being copied. A message that is a bare small `Payload`
/// takes the shortcut of [`put_item`].
pub(crate) fn put_message_segments<T: Serialize + 'static>(
    out: &mut Segments,
    kind: FrameType,
    value: &T,
    limit: usize,
) -> Result<(), RpcError> {
    if let Some(payload) = (value as &dyn std::any::Any).downcast_ref::<crate::Payload>() {
        if payload.len() < LEND_FROM {
            return put_bin(out.buf(), kind, payload, limit);
        }
    }
    let start = out.position();
    out.buf().put_slice(&[0; MAX_FRAME_HEADER_LEN]);
    let before = out.len();
    if let Err(error) = rmp_serde::encode::write_named(&mut *out, value) {
        out.truncate(start);
        return Err(RpcError::Encode(CodecError::new(error)));
    }
    let len = out.len() - before;
    if let Err(error) = check_len(len, limit) {
        out.truncate(start);
        return Err(error);
    }
    if start.part == out.done.len() {
        // All in the buffer being written: the usual message.
        let end = start.offset + close_frame(&mut out.current[start.offset..], kind, len);
        out.current.truncate(end);
    } else {
        // A lent payload follows the header: it stays where it is, so the length is padded.
        out.patch(start, &padded_frame_header(kind, len));
    }
    Ok(())
}
