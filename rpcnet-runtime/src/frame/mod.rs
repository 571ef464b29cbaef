//! The `rpcnet/1` framing: a kind byte opens each stream, then length-prefixed frames.
//!
//! ```text
//! frame = type:u8  length:varint  payload:[u8; length]
//! ```
//!
//! The length is an unsigned LEB128 varint of one to five bytes (seven bits per byte, low
//! bits first, the top bit set on every byte but the last) whose value fits in 32 bits: a
//! small message pays one byte for its length. A writer that reserves the header before it
//! knows the length may pad the varint to five bytes. The varint is written here rather than
//! taken from a crate: none offers the padded form or a parse that refuses a length above the
//! limit before the rest of the frame has arrived.
//!
//! [`FrameDecoder`] is sans-io: bytes go in with [`FrameDecoder::push_bytes`], whole frames come out
//! of [`FrameDecoder::next_frame`]. It refuses a length above its limit as soon as the header
//! is in, before it buffers or allocates anything for the payload.
//! `PROTOCOL.md` at the repository root documents every byte.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::budget::ConnBudget;
use crate::buffers;
use crate::error::ProtocolError;

/// The first byte of a (bidirectional) stream that carries an RPC call.
pub(crate) const STREAM_KIND_RPC: u8 = 0x01;
/// The first byte of a unidirectional stream that cancels a call.
pub(crate) const STREAM_KIND_CANCEL: u8 = 0x03;

/// The most bytes a frame header takes: the type byte and a five-byte length.
pub(crate) const MAX_FRAME_HEADER_LEN: usize = 1 + MAX_VARINT_LEN;

/// The most bytes a frame length takes.
const MAX_VARINT_LEN: usize = 5;

/// The type of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameType {
    /// The request header: method, deadline, metadata. First frame of every request.
    Header,
    /// One message, MessagePack-encoded.
    Data,
    /// The end of the request's messages (the client has no more to send).
    End,
    /// The final frame of a response: status code, message, details.
    Status,
}

impl FrameType {
    /// The type byte on the wire.
    pub(crate) fn as_u8(self) -> u8 {
        match self {
            FrameType::Header => 0x01,
            FrameType::Data => 0x02,
            FrameType::End => 0x03,
            FrameType::Status => 0x04,
        }
    }

    pub(crate) fn from_u8(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            0x01 => Ok(FrameType::Header),
            0x02 => Ok(FrameType::Data),
            0x03 => Ok(FrameType::End),
            0x04 => Ok(FrameType::Status),
            other => Err(ProtocolError::UnknownFrameType(other)),
        }
    }

    /// A name for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FrameType::Header => "header",
            FrameType::Data => "data",
            FrameType::End => "end",
            FrameType::Status => "status",
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The frame's type.
    pub(crate) kind: FrameType,
    /// The frame's payload.
    pub(crate) payload: Bytes,
}

/// The header of a frame of `kind` whose payload is `len` bytes, and how many of its bytes
/// are used (the type byte and the shortest varint for `len`).
///
/// The caller checks `len` against the message limit; a length that does not fit in 32 bits
/// is a bug in the caller, so it is clamped rather than silently wrapped.
#[inline]
pub(crate) fn frame_header(kind: FrameType, len: usize) -> ([u8; MAX_FRAME_HEADER_LEN], usize) {
    let mut value = u32::try_from(len).unwrap_or(u32::MAX);
    let mut header = [kind.as_u8(), 0, 0, 0, 0, 0];
    let mut at = 1;
    while value >= 0x80 {
        header[at] = (value as u8) | 0x80;
        value >>= 7;
        at += 1;
    }
    header[at] = value as u8;
    (header, at + 1)
}

/// Appends a frame header for a payload of `len` bytes to `out`.
#[inline]
pub(crate) fn put_frame_header(out: &mut impl BufMut, kind: FrameType, len: usize) {
    let (header, used) = frame_header(kind, len);
    // One append of the whole header: a frame per streamed item makes this hot.
    out.put_slice(&header[..used]);
}

/// The header of a frame of `kind` whose payload is `len` bytes, with the length padded to
/// all five bytes: for a header reserved before its payload was written (a writer may pad;
/// every reader accepts it).
pub(crate) fn padded_frame_header(kind: FrameType, len: usize) -> [u8; MAX_FRAME_HEADER_LEN] {
    let value = u32::try_from(len).unwrap_or(u32::MAX);
    let mut header = [kind.as_u8(); MAX_FRAME_HEADER_LEN];
    for (i, byte) in header[1..].iter_mut().enumerate() {
        let bits = (value >> (7 * i)) as u8 & 0x7f;
        *byte = if i + 1 < MAX_VARINT_LEN {
            bits | 0x80
        } else {
            bits
        };
    }
    header
}

/// Reads a frame header from the start of `bytes`: the type, the header's length and the
/// payload's length. `Ok(None)` if the header is not all there yet. A type this version does
/// not know is refused from its first byte, a length longer than five bytes or above 32
/// bits as soon as that is clear.
#[inline]
pub(crate) fn parse_frame_header(
    bytes: &[u8],
) -> Result<Option<(FrameType, usize, usize)>, ProtocolError> {
    let Some((&kind, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let kind = FrameType::from_u8(kind)?;
    // The usual frame, shorter than 128 bytes: a one-byte length.
    if let Some(&len) = rest.first() {
        if len < 0x80 {
            return Ok(Some((kind, 2, usize::from(len))));
        }
    }
    let mut value: u64 = 0;
    for (i, &byte) in rest.iter().take(MAX_VARINT_LEN).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            if value > u64::from(u32::MAX) {
                return Err(ProtocolError::MalformedLength);
            }
            return Ok(Some((kind, i + 2, value as usize)));
        }
    }
    if rest.len() >= MAX_VARINT_LEN {
        return Err(ProtocolError::MalformedLength);
    }
    Ok(None)
}

/// Appends a whole frame to `out`.
pub(crate) fn put_frame(out: &mut impl BufMut, kind: FrameType, payload: &[u8]) {
    put_frame_header(out, kind, payload.len());
    out.put_slice(payload);
}

/// A sans-io decoder that turns a byte stream into [`Frame`]s.
///
/// Frames that arrive whole inside one received chunk are returned as slices of that chunk
/// (no copy); only a frame split across chunks is assembled in a buffer of its own. On a
/// server, that buffer counts against the connection's receive budget (see
/// [`crate::budget`]) for as long as the decoder holds it.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    /// The unread rest of the latest chunk, while no frame is being assembled.
    current: Bytes,
    /// A frame spanning chunks being put together: boxed, so that the decoder every call's
    /// reader holds stays small, and kept once made, so that its buffer is reused.
    assembly: Option<Box<Assembly>>,
    /// What assembled frames count against, if anything.
    budget: Option<Arc<ConnBudget>>,
    max_frame_len: usize,
}

/// The capacity a large frame's buffer grows to for `take` more bytes: by doubling, as a
/// `Vec` does, but never past the frame's length.
fn grown_capacity(large: &[u8], capacity: usize, take: usize, frame_len: usize) -> usize {
    let needed = large.len() + take;
    if needed > capacity {
        (capacity * 2).clamp(needed, frame_len.max(needed))
    } else {
        capacity
    }
}

/// A frame (or frame header) that spans chunks, being put together.
#[derive(Debug, Default)]
struct Assembly {
    /// Bytes of the frame (or frame header) so far.
    partial: BytesMut,
    /// A large frame, assembled in a pooled buffer instead of `partial`.
    large: Option<Vec<u8>>,
    /// Whether `large` came from the pool (its memory was there before this frame) rather
    /// than being allocated for this frame.
    large_pooled: bool,
    /// The header of the frame being assembled, once it is all in.
    pending: Option<(FrameType, usize)>,
    /// Bytes counted against the receive budget for these buffers.
    charged: usize,
}

impl Assembly {
    /// Moves up to `want` bytes from the front of `current` into the frame, which is
    /// `frame_len` bytes long in all.
    fn take_from(&mut self, current: &mut Bytes, want: usize, frame_len: usize) {
        let take = want.min(current.len());
        match &mut self.large {
            Some(large) => {
                let grown = grown_capacity(large, large.capacity(), take, frame_len);
                if grown > large.capacity() {
                    large.reserve_exact(grown - large.len());
                }
                large.extend_from_slice(&current[..take]);
            }
            None => self.partial.extend_from_slice(&current[..take]),
        }
        current.advance(take);
    }

    /// What the buffers hold on the peer's behalf: their capacity, except a pooled buffer's,
    /// which counts only the bytes that arrived (its memory was not allocated for the peer,
    /// and announcing a length must not cost the budget anything).
    fn footprint(&self) -> usize {
        self.partial.capacity()
            + self.large.as_ref().map_or(0, |large| {
                if self.large_pooled {
                    large.len()
                } else {
                    large.capacity()
                }
            })
    }

    /// The footprint once `take` more bytes of a `frame_len`-byte frame are in: counted
    /// before a large buffer grows, so that the growth is paid for before it is allocated.
    fn footprint_after(&self, take: usize, frame_len: usize) -> usize {
        match &self.large {
            Some(large) if !self.large_pooled => {
                self.partial.capacity() + grown_capacity(large, large.capacity(), take, frame_len)
            }
            Some(large) => self.partial.capacity() + large.len() + take,
            None => self.partial.capacity().max(self.partial.len() + take),
        }
    }

    /// Makes what is counted against `budget` equal `footprint`.
    fn settle(
        &mut self,
        budget: Option<&ConnBudget>,
        footprint: usize,
    ) -> Result<(), ProtocolError> {
        let Some(budget) = budget else {
            return Ok(());
        };
        if footprint > self.charged {
            budget
                .try_charge(footprint - self.charged)
                .map_err(|exhausted| ProtocolError::ReceiveBudgetExhausted {
                    scope: exhausted.scope,
                    limit: exhausted.limit as u64,
                })?;
        } else {
            budget.release(self.charged - footprint);
        }
        self.charged = footprint;
        Ok(())
    }

    /// Bytes of the frame assembled so far.
    fn len(&self) -> usize {
        self.large.as_ref().map_or(self.partial.len(), Vec::len)
    }

    /// Whether a frame or a header is under way.
    fn active(&self) -> bool {
        self.pending.is_some() || !self.partial.is_empty()
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames whose payload exceeds `max_frame_len` bytes.
    pub(crate) fn new(max_frame_len: usize) -> Self {
        FrameDecoder::with_budget(max_frame_len, None)
    }

    /// A decoder whose assembled frames count against `budget`: a frame that would take it
    /// past its limit fails with [`ProtocolError::ReceiveBudgetExhausted`].
    pub(crate) fn with_budget(max_frame_len: usize, budget: Option<Arc<ConnBudget>>) -> Self {
        FrameDecoder {
            current: Bytes::new(),
            assembly: None,
            budget,
            max_frame_len,
        }
    }

    /// Makes assembled frames count against `budget` from now on, unless they count against
    /// one already; a frame under way is counted in full at its next step.
    pub(crate) fn attach_budget(&mut self, budget: &Arc<ConnBudget>) {
        if self.budget.is_none() {
            self.budget = Some(Arc::clone(budget));
        }
    }

    /// Whether a whole frame lies in the current chunk.
    pub(crate) fn has_whole_frame(&self) -> bool {
        self.whole_frame_at(0).is_some()
    }

    /// What assembled frames count against, if anything.
    pub(crate) fn budget(&self) -> Option<&Arc<ConnBudget>> {
        self.budget.as_ref()
    }

    /// Feeds bytes received from the stream.
    #[cfg(test)]
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.push_bytes(Bytes::copy_from_slice(chunk));
    }

    /// Feeds an owned chunk. Whole frames inside it will be returned without copying.
    pub(crate) fn push_bytes(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.current.is_empty() {
            // Frames are handed out as slices of the chunk (a chunk made from a `Vec` turns
            // shared, in place, on its first slice).
            self.current = chunk;
        } else {
            // Callers normally read every frame out before pushing more; if not, keep the
            // unread bytes in order.
            let mut joined = BytesMut::with_capacity(self.current.len() + chunk.len());
            joined.extend_from_slice(&self.current);
            joined.extend_from_slice(&chunk);
            self.current = joined.freeze();
        }
    }

    /// The number of bytes buffered but not yet returned as frames.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffered(&self) -> usize {
        self.current.len() + self.assembly.as_deref().map_or(0, Assembly::len)
    }

    /// The bytes of a frame spanning chunks assembled so far, and the capacity of the
    /// buffers that hold them.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn assembly(&self) -> (usize, usize) {
        self.assembly.as_deref().map_or((0, 0), |assembly| {
            let capacity =
                assembly.partial.capacity() + assembly.large.as_ref().map_or(0, Vec::capacity);
            (assembly.len(), capacity)
        })
    }

    /// Whether the decoder is between frames (no partial frame buffered).
    pub(crate) fn is_idle(&self) -> bool {
        self.current.is_empty() && !self.assembling()
    }

    /// Whether a frame (or its header) that spans chunks is being put together.
    fn assembling(&self) -> bool {
        self.assembly.as_deref().is_some_and(Assembly::active)
    }

    /// Decodes the next frame in place if it is a data frame lying whole inside the current
    /// chunk: `decode` gets the chunk and the payload's range in it, and the frame is
    /// consumed if it returns a value. Otherwise returns `None` and consumes nothing;
    /// [`next_frame`] then takes the frame (and reports a broken header or message). This
    /// spares each message a frame of its own and the error plumbing of the general path.
    ///
    /// [`next_frame`]: Self::next_frame
    #[inline]
    pub(crate) fn decode_data_in_place<R>(
        &mut self,
        decode: impl FnOnce(&Bytes, std::ops::Range<usize>) -> Option<R>,
    ) -> Option<R> {
        let (kind, head, len) = self.whole_frame_at(0)?;
        if kind != FrameType::Data {
            return None;
        }
        let decoded = decode(&self.current, head..head + len)?;
        self.current.advance(head + len);
        Some(decoded)
    }

    /// Takes the last two frames of a stream in one step: if the rest of the current chunk
    /// is exactly a frame of type `first` and one of type `second`, consumes both and returns
    /// their payloads. Otherwise returns `None` and consumes nothing; [`next_frame`] then
    /// reads the frames one by one (and reports what is wrong with them). A unary call's
    /// request (data, end) and its reply (data, status) nearly always arrive so.
    ///
    /// [`next_frame`]: Self::next_frame
    pub(crate) fn take_last_pair(
        &mut self,
        first: FrameType,
        second: FrameType,
    ) -> Option<(Bytes, Bytes)> {
        let (kind, head, len) = self.whole_frame_at(0)?;
        let at = head + len;
        let (next_kind, next_head, next_len) = self.whole_frame_at(at)?;
        if kind != first || next_kind != second || self.current.len() != at + next_head + next_len {
            return None;
        }
        // The chunk itself becomes the first payload, so that only a non-empty second one
        // costs a reference count.
        let mut message = std::mem::take(&mut self.current);
        let second = if next_len == 0 {
            Bytes::new()
        } else {
            message.split_off(at + next_head)
        };
        message.truncate(at);
        message.advance(head);
        Some((message, second))
    }

    /// The type, header length and payload length of the frame `at` bytes into the current
    /// chunk, if that frame lies there whole and its header is valid. `None` while a frame
    /// spanning chunks is being assembled (the current chunk then continues it).
    #[inline]
    fn whole_frame_at(&self, at: usize) -> Option<(FrameType, usize, usize)> {
        if self.assembling() {
            return None;
        }
        let rest = self.current.get(at..)?;
        let (kind, head, len) = checked_header(rest, self.max_frame_len).ok()??;
        (rest.len() - head >= len).then_some((kind, head, len))
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or an error if the bytes
    /// break the framing (unknown type, length over the limit). After an error the decoder
    /// must not be used again: the stream is out of sync.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if !self.assembling() {
            // Fast path: a whole frame inside the current chunk is a slice of it.
            if let Some((kind, head, len)) = checked_header(&self.current, self.max_frame_len)? {
                if self.current.len() >= head + len {
                    let payload = self.current.slice(head..head + len);
                    self.current.advance(head + len);
                    return Ok(Some(Frame { kind, payload }));
                }
            }
            if self.current.is_empty() {
                return Ok(None);
            }
        }
        // Slow path: a frame that spans chunks is assembled from as many bytes of the
        // current chunk as it needs; the frames after it are again read in place.
        let budget = self.budget.as_deref();
        let assembly = self.assembly.get_or_insert_with(Box::default);
        let (kind, len) = match assembly.pending {
            Some(pending) => pending,
            None => {
                // The header is moved over a byte at a time (it is at most six, and split
                // across chunks only now and then), so that no payload byte lands with it.
                let (kind, _, len) = loop {
                    if let Some(header) = checked_header(&assembly.partial, self.max_frame_len)? {
                        break header;
                    }
                    if self.current.is_empty() {
                        let footprint = assembly.footprint();
                        assembly.settle(budget, footprint)?;
                        return Ok(None);
                    }
                    assembly.take_from(&mut self.current, 1, MAX_FRAME_HEADER_LEN);
                };
                assembly.partial.clear();
                // A large frame goes to a reused buffer (see `crate::buffers`) if one is
                // idle; otherwise its buffer grows as its bytes arrive, not to the length
                // the peer announced, so a peer that announces large frames and sends
                // little of them holds little memory. A small one gets room for what has
                // arrived and grows from there.
                if len >= buffers::POOLED_FROM {
                    let pooled = buffers::take_idle(len);
                    assembly.large_pooled = pooled.is_some();
                    let fresh = buffers::POOLED_FROM.min(self.current.len().max(1));
                    let footprint =
                        assembly.partial.capacity() + if pooled.is_some() { 0 } else { fresh };
                    if let Err(error) = assembly.settle(budget, footprint) {
                        if let Some(buf) = pooled {
                            buffers::give_back(buf);
                        }
                        return Err(error);
                    }
                    assembly.large = Some(pooled.unwrap_or_else(|| Vec::with_capacity(fresh)));
                } else {
                    let room = len.min(self.current.len());
                    assembly.settle(budget, assembly.partial.capacity().max(room))?;
                    assembly.partial.reserve(room);
                }
                assembly.pending = Some((kind, len));
                (kind, len)
            }
        };
        let want = len - assembly.len();
        let footprint = assembly.footprint_after(want.min(self.current.len()), len);
        assembly.settle(budget, footprint)?;
        assembly.take_from(&mut self.current, want, len);
        let footprint = assembly.footprint();
        assembly.settle(budget, footprint)?;
        if assembly.len() < len {
            return Ok(None);
        }
        assembly.pending = None;
        let payload = match assembly.large.take() {
            Some(large) => buffers::share(large),
            None => assembly.partial.split().freeze(),
        };
        // The frame leaves the decoder, and with it what it held.
        let footprint = assembly.footprint();
        assembly.settle(budget, footprint)?;
        Ok(Some(Frame { kind, payload }))
    }
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        if let (Some(budget), Some(assembly)) = (&self.budget, &self.assembly) {
            budget.release(assembly.charged);
        }
    }
}

/// Reads a frame header from the start of `bytes` and checks its length against
/// `max_frame_len`: the type, the header's length and the payload's length, or `Ok(None)` if
/// the header is not all there yet.
#[inline]
fn checked_header(
    bytes: &[u8],
    max_frame_len: usize,
) -> Result<Option<(FrameType, usize, usize)>, ProtocolError> {
    let header = parse_frame_header(bytes)?;
    if let Some((_, _, len)) = header {
        if len > max_frame_len {
            return Err(ProtocolError::FrameTooLarge {
                len: len as u64,
                limit: max_frame_len as u64,
            });
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests;
