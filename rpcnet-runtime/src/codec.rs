//! MessagePack encoding of messages (rmp-serde, structs as maps so that adding an optional
//! field does not break older peers), written straight into a frame buffer.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

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
const MOVE_UP_TO: usize = 16 * 1024;

/// Fills in the header of `frame`, a frame written as [`MAX_FRAME_HEADER_LEN`] reserved
/// bytes and then its `len` payload bytes. Returns the frame's final length.
fn close_frame(frame: &mut [u8], kind: FrameType, len: usize) -> usize {
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
fn put_bin(
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
/// a stream's next write (see [`crate::pool`]). Appending is `BufMut::put_slice`.
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
fn check_len(len: usize, limit: usize) -> Result<(), RpcError> {
    if len > limit {
        return Err(RpcError::MessageTooLarge {
            size: len as u64,
            limit: limit as u64,
        });
    }
    Ok(())
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
    /// Empty segments whose first buffer has room for `capacity` bytes (see
    /// [`message_buffer`]).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Segments {
            done: Vec::new(),
            current: message_buffer(capacity),
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

/// Bytes of the per-thread arenas that small outgoing messages are carved from.
const ARENA_SIZE: usize = 64 * 1024;

thread_local! {
    /// The rest of this thread's current arena.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// An empty buffer with room for `capacity` bytes, for one outgoing message.
///
/// A small one is carved from a per-thread arena: it then costs neither an allocation of its
/// own nor the second one `BytesMut::freeze` makes for a buffer it does not fill, only a
/// reference count. An arena is freed once its last message has been sent and dropped. A
/// message that outgrows its buffer simply moves to an allocation of its own.
pub(crate) fn message_buffer(capacity: usize) -> BytesMut {
    if capacity > ARENA_SIZE / 16 {
        return BytesMut::with_capacity(capacity);
    }
    ARENA
        .try_with(|arena| {
            let mut arena = arena.try_borrow_mut().ok()?;
            if arena.capacity() < capacity {
                *arena = BytesMut::with_capacity(ARENA_SIZE);
            }
            let rest = arena.split_off(capacity);
            Some(std::mem::replace(&mut *arena, rest))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(capacity))
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

/// Encodes a value on its own (used for application errors in status details).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<bytes::Bytes, RpcError> {
    let mut out = BytesMut::new().writer();
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| RpcError::Encode(CodecError::new(e)))?;
    Ok(out.into_inner().freeze())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{parse_frame_header, FrameDecoder};

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
    fn message_buffers_share_an_arena_and_outgrow_it_safely() {
        let mut a = message_buffer(64);
        let mut b = message_buffer(64);
        a.extend_from_slice(&[1; 64]);
        b.extend_from_slice(&[2; 64]);
        assert_eq!(
            b.as_ptr() as usize - a.as_ptr() as usize,
            64,
            "adjacent in one arena"
        );
        // Writing past its room moves a buffer elsewhere without touching its neighbour.
        a.extend_from_slice(&[3; 100]);
        let (a, b) = (a.freeze(), b.freeze());
        assert_eq!(&a[..64], &[1; 64][..]);
        assert_eq!(&a[64..], &[3; 100][..]);
        assert_eq!(&b[..], &[2; 64][..]);
        let big = message_buffer(ARENA_SIZE);
        assert!(big.capacity() >= ARENA_SIZE);
    }

    #[test]
    fn a_bare_payload_item_is_written_as_serde_would() {
        for len in [0usize, 1, 64, 125, 126, 255, 256, 65_535, 65_536, 70_000] {
            let payload = crate::Payload::from(vec![7u8; len]);
            let mut fast = BytesMut::new();
            put_item(&mut fast, FrameType::Data, &payload, 1 << 20).expect("fits");
            let mut serde = BytesMut::new();
            put_message(&mut serde, FrameType::Data, &payload, 1 << 20).expect("fits");
            if len + 3 <= MOVE_UP_TO {
                assert_eq!(fast, serde, "{len} bytes");
            } else {
                // Serde's larger frames keep a padded length; the frames carry the same bytes.
                assert_eq!(fast[0], serde[0]);
                let (_, fast_head, fast_len) =
                    parse_frame_header(&fast).expect("valid").expect("whole");
                let (_, serde_head, serde_len) =
                    parse_frame_header(&serde).expect("valid").expect("whole");
                assert_eq!(serde_head, MAX_FRAME_HEADER_LEN);
                assert_eq!(fast_len, serde_len);
                assert_eq!(&fast[fast_head..], &serde[serde_head..], "{len} bytes");
            }
        }
        let mut out = BytesMut::new();
        let payload = crate::Payload::from(vec![0u8; 100]);
        assert!(matches!(
            put_item(&mut out, FrameType::Data, &payload, 50),
            Err(RpcError::MessageTooLarge { .. })
        ));
        assert!(out.is_empty(), "nothing written on error");
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
