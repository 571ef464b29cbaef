//! Thin entry points to the runtime's decoders of network bytes (and the encoders that
//! check them), for the coverage-guided fuzz targets in `fuzz/` at the repository root.
//!
//! Built only with the `fuzzing` feature; not part of the API. Frame types are their wire
//! bytes here, so that a target can name any of them.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CodecError, ProtocolError, RpcError, Status};
use crate::frame::{self, FrameType};
use crate::header::{self, Metadata};

/// The first byte of a stream that carries a call.
pub const STREAM_KIND_RPC: u8 = frame::STREAM_KIND_RPC;
/// The first byte of a stream that cancels a call.
pub const STREAM_KIND_CANCEL: u8 = frame::STREAM_KIND_CANCEL;
/// The most bytes a frame header takes.
pub const MAX_FRAME_HEADER_LEN: usize = frame::MAX_FRAME_HEADER_LEN;
/// Frames at least this long are assembled in pooled buffers.
pub const POOLED_FROM: usize = crate::buffers::POOLED_FROM;

fn frame_type(byte: u8) -> Result<FrameType, ProtocolError> {
    FrameType::from_u8(byte)
}

/// The runtime's incremental frame decoder, with frame types as bytes.
#[derive(Debug)]
pub struct FrameDecoder(frame::FrameDecoder);

impl FrameDecoder {
    /// A decoder that refuses payloads over `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        FrameDecoder(frame::FrameDecoder::new(max_frame_len))
    }

    /// Feeds a received chunk.
    pub fn push(&mut self, chunk: Bytes) {
        self.0.push_bytes(chunk);
    }

    /// The next whole frame: its type byte and payload.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Bytes)>, ProtocolError> {
        Ok(self
            .0
            .next_frame()?
            .map(|frame| (frame.kind.as_u8(), frame.payload)))
    }

    /// The last two frames, if they are all that is left and of these types.
    pub fn take_last_pair(&mut self, first: u8, second: u8) -> Option<(Bytes, Bytes)> {
        let first = frame_type(first).ok()?;
        let second = frame_type(second).ok()?;
        self.0.take_last_pair(first, second)
    }

    /// Decodes the next frame in place as a `T` if it is a data frame lying whole in the
    /// current chunk and decodes, as a response stream does for its items.
    pub fn decode_data_in_place<T: DeserializeOwned + 'static>(&mut self) -> Option<T> {
        self.0
            .decode_data_in_place(|chunk, range| crate::codec::decode_in::<T>(chunk, range).ok())
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.0.buffered()
    }

    /// Bytes of a frame spanning chunks assembled so far, and the capacity holding them.
    pub fn assembly(&self) -> (usize, usize) {
        self.0.assembly()
    }

    /// Whether the decoder is between frames.
    pub fn is_idle(&self) -> bool {
        self.0.is_idle()
    }
}

/// Reads a frame header: type byte, header length, payload length.
pub fn parse_frame_header(bytes: &[u8]) -> Result<Option<(u8, usize, usize)>, ProtocolError> {
    Ok(frame::parse_frame_header(bytes)?.map(|(kind, head, len)| (kind.as_u8(), head, len)))
}

/// A whole frame with the shortest header, or `None` for an unknown type byte.
pub fn encode_frame(kind: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let kind = frame_type(kind).ok()?;
    let mut out = Vec::with_capacity(MAX_FRAME_HEADER_LEN + payload.len());
    frame::put_frame(&mut out, kind, payload);
    Some(out)
}

/// The header of a frame with the length padded to five bytes, or `None` for an unknown
/// type byte.
pub fn padded_frame_header(kind: u8, len: usize) -> Option<[u8; MAX_FRAME_HEADER_LEN]> {
    Some(frame::padded_frame_header(frame_type(kind).ok()?, len))
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The method name's bytes.
    pub method: Bytes,
    /// The deadline, if any.
    pub deadline: Option<Duration>,
    /// The metadata.
    pub metadata: Metadata,
}

/// Parses a request header frame's payload.
pub fn parse_request_header(payload: Bytes) -> Result<RequestHeader, ProtocolError> {
    let header = header::parse_request_header(payload)?;
    Ok(RequestHeader {
        method: header.method,
        deadline: header.deadline,
        metadata: header.metadata,
    })
}

/// A request header frame's payload.
pub fn encode_request_header(
    method: &str,
    deadline: Option<Duration>,
    metadata: &Metadata,
) -> Result<Vec<u8>, RpcError> {
    let mut out = BytesMut::new();
    header::put_request_header(&mut out, method, deadline, metadata)?;
    Ok(out.to_vec())
}

/// Parses a status frame's payload.
pub fn parse_status(payload: Bytes) -> Result<Status, ProtocolError> {
    header::parse_status(payload)
}

/// A status frame's payload: `code`, `message` and `details`.
pub fn encode_status(code: u16, message: &str, details: Bytes) -> Vec<u8> {
    let status = Status::new(crate::error::Code::from_u16(code), message).with_details(details);
    let mut out = Vec::with_capacity(header::status_len(&status));
    header::put_status(&mut out, &status);
    out
}

/// Decodes a received message as the runtime does.
pub fn decode<T: DeserializeOwned + 'static>(bytes: &Bytes) -> Result<T, RpcError> {
    crate::codec::decode(bytes)
}

/// Decodes the message at `range` of a received chunk, in place.
pub fn decode_in<T: DeserializeOwned + 'static>(
    chunk: &Bytes,
    range: std::ops::Range<usize>,
) -> Result<T, CodecError> {
    crate::codec::decode_in(chunk, range)
}

/// `value` as one data frame of at most `limit` payload bytes, as a call writes it.
pub fn encode_message<T: Serialize + 'static>(
    value: &T,
    limit: usize,
) -> Result<Vec<u8>, RpcError> {
    let mut out = BytesMut::new();
    crate::codec::put_item(&mut out, FrameType::Data, value, limit)?;
    Ok(out.to_vec())
}

/// Parses a cancel stream's bytes.
pub fn parse_cancel(bytes: &[u8]) -> Option<u64> {
    crate::cancel::parse_cancel(bytes)
}

/// The bytes of a cancel stream for the call on stream `id`.
pub fn cancel_message(id: u64) -> Bytes {
    crate::cancel::cancel_message(id)
}

/// The bytes of idle buffers in the process-wide pool that large frames are assembled in.
pub fn pooled_bytes() -> usize {
    crate::buffers::idle_bytes()
}
