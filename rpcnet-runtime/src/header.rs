//! The payloads of the header frame (method, deadline, metadata) and of the status frame.
//!
//! Both are fixed binary layouts rather than MessagePack so a server can route a call
//! without running the codec, and so `PROTOCOL.md` can give them byte by byte.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Code, ProtocolError, RpcError, Status};
use crate::frame::{put_frame_header, FrameType, STREAM_KIND_RPC};

/// Key/value metadata sent with a call's header (like HTTP headers). Keys are UTF-8 strings,
/// values are bytes. Order is kept; a key may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Bytes)>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Metadata::default()
    }

    /// Appends an entry.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.entries.push((key.into(), value.into()));
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The first value for `key`, if it is valid UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The decoded header frame of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    /// The method name's bytes: looked up as they are, so only a name that matches no
    /// method is ever read as text (see [`RequestHeader::method`]).
    pub(crate) method: Bytes,
    pub(crate) deadline: Option<Duration>,
    pub(crate) metadata: Metadata,
}

impl RequestHeader {
    /// The method name, for messages (invalid UTF-8 replaced).
    pub(crate) fn method(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.method)
    }
}

/// Appends the header payload: `method_len:u16 method deadline_us:u64 count:u16
/// (key_len:u16 key value_len:u32 value)*`. A deadline of 0 means none. Fails, leaving `out`
/// as it was, when the method, a key, a value or the number of entries does not fit its
/// length field.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn put_request_header(
    out: &mut BytesMut,
    method: &str,
    deadline: Option<Duration>,
    metadata: &Metadata,
) -> Result<(), RpcError> {
    check_header(method, metadata)?;
    write_request_header(out, method, deadline, metadata);
    Ok(())
}

/// Appends a header payload whose lengths [`check_header`] has accepted.
fn write_request_header(
    out: &mut BytesMut,
    method: &str,
    deadline: Option<Duration>,
    metadata: &Metadata,
) {
    out.put_u16(method.len() as u16);
    out.put_slice(method.as_bytes());
    let micros = deadline.map_or(0, |d| {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
    });
    out.put_u64(micros);
    out.put_u16(metadata.entries.len() as u16);
    for (key, value) in &metadata.entries {
        out.put_u16(key.len() as u16);
        out.put_slice(key.as_bytes());
        out.put_u32(value.len() as u32);
        out.put_slice(value);
    }
}

/// Checks every length of a request header against its field's width.
fn check_header(method: &str, metadata: &Metadata) -> Result<(), RpcError> {
    const U16: usize = u16::MAX as usize;
    const U32: usize = u32::MAX as usize;
    let too_large = |field: &'static str, len: usize, limit: usize| {
        Err(RpcError::HeaderTooLarge { field, len, limit })
    };
    if method.len() > U16 {
        return too_large("method name", method.len(), U16);
    }
    if metadata.entries.len() > U16 {
        return too_large("number of metadata entries", metadata.entries.len(), U16);
    }
    for (key, value) in &metadata.entries {
        if key.len() > U16 {
            return too_large("metadata key", key.len(), U16);
        }
        if value.len() > U32 {
            return too_large("metadata value", value.len(), U32);
        }
    }
    Ok(())
}

/// The encoded size of a request header payload.
pub(crate) fn request_header_len(method: &str, metadata: &Metadata) -> usize {
    2 + method.len()
        + 8
        + 2
        + metadata
            .entries
            .iter()
            .map(|(k, v)| 2 + k.len() + 4 + v.len())
            .sum::<usize>()
}

/// Writes the kind byte and the header frame of a request into `out`. The header carries
/// the time left to the deadline as it was when the call started, so that building the
/// request reads no clock again. The request goes out right after, except when the
/// connection has to be made again first: the server's deadline is then later than the
/// client's by that long, and the client still ends the call at its own.
pub(crate) fn put_request_start(
    out: &mut BytesMut,
    method: &str,
    remaining: Option<Duration>,
    metadata: &Metadata,
) -> Result<(), RpcError> {
    check_header(method, metadata)?;
    out.put_u8(STREAM_KIND_RPC);
    put_frame_header(out, FrameType::Header, request_header_len(method, metadata));
    write_request_header(out, method, remaining, metadata);
    Ok(())
}

/// The longest status message sent; a longer one is cut at a character boundary.
const MAX_STATUS_MESSAGE: usize = 64 * 1024;

/// `message` cut to at most [`MAX_STATUS_MESSAGE`] bytes, at a character boundary.
fn status_message(message: &str) -> &str {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message;
    }
    let mut end = MAX_STATUS_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

const HEADER: &str = "header";
const STATUS: &str = "status";

fn take(buf: &mut Bytes, len: usize, frame: &'static str) -> Result<Bytes, ProtocolError> {
    if buf.remaining() < len {
        return Err(ProtocolError::Malformed(frame));
    }
    Ok(buf.split_to(len))
}

fn take_string(buf: &mut Bytes, len: usize, frame: &'static str) -> Result<String, ProtocolError> {
    let bytes = take(buf, len, frame)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::Malformed(frame))
}

/// Parses a header payload. Every length is checked against the bytes actually present, so
/// a lying length cannot make it allocate more than the frame it came in.
pub(crate) fn parse_request_header(mut buf: Bytes) -> Result<RequestHeader, ProtocolError> {
    let method_len = usize::from(
        buf.try_get_u16()
            .map_err(|_| ProtocolError::Malformed(HEADER))?,
    );
    let method = take(&mut buf, method_len, HEADER)?;
    let micros = buf
        .try_get_u64()
        .map_err(|_| ProtocolError::Malformed(HEADER))?;
    let deadline = (micros != 0).then(|| Duration::from_micros(micros));
    let count = buf
        .try_get_u16()
        .map_err(|_| ProtocolError::Malformed(HEADER))?;
    let mut metadata = Metadata::new();
    for _ in 0..count {
        let key_len = usize::from(
            buf.try_get_u16()
                .map_err(|_| ProtocolError::Malformed(HEADER))?,
        );
        let key = take_string(&mut buf, key_len, HEADER)?;
        let value_len = buf
            .try_get_u32()
            .map_err(|_| ProtocolError::Malformed(HEADER))? as usize;
        let value = take(&mut buf, value_len, HEADER)?;
        metadata.entries.push((key, value));
    }
    if buf.has_remaining() {
        return Err(ProtocolError::Malformed(HEADER));
    }
    Ok(RequestHeader {
        method,
        deadline,
        metadata,
    })
}

/// Appends a status payload: `code:u16 message_len:u32 message details`.
pub(crate) fn put_status(out: &mut impl BufMut, status: &Status) {
    out.put_u16(status.code().as_u16());
    let message = status_message(status.message());
    out.put_u32(message.len() as u32);
    out.put_slice(message.as_bytes());
    out.put_slice(status.details());
}

/// The encoded size of a status payload.
pub(crate) fn status_len(status: &Status) -> usize {
    2 + 4 + status_message(status.message()).len() + status.details().len()
}

/// Parses a status payload.
pub(crate) fn parse_status(mut buf: Bytes) -> Result<Status, ProtocolError> {
    let code = Code::from_u16(
        buf.try_get_u16()
            .map_err(|_| ProtocolError::Malformed(STATUS))?,
    );
    let message_len = buf
        .try_get_u32()
        .map_err(|_| ProtocolError::Malformed(STATUS))? as usize;
    let message = take(&mut buf, message_len, STATUS)?;
    let message = String::from_utf8_lossy(&message).into_owned();
    Ok(Status::new(code, message).with_details(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trips_with_deadline_and_metadata() {
        let mut metadata = Metadata::new();
        metadata.insert("trace-id", Bytes::from_static(b"abc"));
        metadata.insert("empty", Bytes::new());
        let mut out = BytesMut::new();
        let deadline = Some(Duration::from_millis(1500));
        put_request_header(&mut out, "Calculator.add", deadline, &metadata).expect("fits");
        assert_eq!(out.len(), request_header_len("Calculator.add", &metadata));
        let header = parse_request_header(out.freeze()).expect("valid");
        assert_eq!(header.method(), "Calculator.add");
        assert_eq!(header.deadline, deadline);
        assert_eq!(header.metadata.get_str("trace-id"), Some("abc"));
        assert_eq!(header.metadata.len(), 2);
    }

    #[test]
    fn a_tiny_deadline_is_not_sent_as_no_deadline() {
        let mut out = BytesMut::new();
        put_request_header(
            &mut out,
            "a",
            Some(Duration::from_nanos(1)),
            &Metadata::new(),
        )
        .expect("fits");
        let header = parse_request_header(out.freeze()).expect("valid");
        assert_eq!(header.deadline, Some(Duration::from_micros(1)));
    }

    fn refused_field(method: &str, metadata: &Metadata) -> Option<&'static str> {
        let mut out = BytesMut::from(&b"kept"[..]);
        let result = put_request_start(&mut out, method, None, metadata);
        match result {
            Err(RpcError::HeaderTooLarge { field, .. }) => {
                assert!(&out[..] == b"kept", "a refused header writes nothing");
                Some(field)
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn a_header_whose_lengths_do_not_fit_their_fields_is_refused_before_writing() {
        let long = "x".repeat(usize::from(u16::MAX) + 1);
        assert_eq!(refused_field(&long, &Metadata::new()), Some("method name"));
        let mut metadata = Metadata::new();
        metadata.insert(long.clone(), Bytes::new());
        assert_eq!(refused_field("S.m", &metadata), Some("metadata key"));
        let mut metadata = Metadata::new();
        for _ in 0..=u16::MAX {
            metadata.insert("k", Bytes::new());
        }
        assert_eq!(
            refused_field("S.m", &metadata),
            Some("number of metadata entries")
        );
        // The largest that fits is written, and its length is what the frame announced.
        let longest = "x".repeat(usize::from(u16::MAX));
        let mut metadata = Metadata::new();
        metadata.insert(longest.clone(), Bytes::from_static(b"v"));
        assert_eq!(refused_field(&longest, &metadata), None);
        let mut out = BytesMut::new();
        put_request_header(&mut out, &longest, None, &metadata).expect("fits");
        assert_eq!(out.len(), request_header_len(&longest, &metadata));
        let header = parse_request_header(out.freeze()).expect("valid");
        assert_eq!(header.method(), longest);
    }

    #[test]
    fn a_long_status_message_is_cut_at_a_character_boundary() {
        // 'é' is two bytes: the limit falls in the middle of one.
        let message = format!("a{}", "é".repeat(MAX_STATUS_MESSAGE));
        let status = Status::new(Code::Internal, message.clone());
        let mut out = BytesMut::new();
        put_status(&mut out, &status);
        assert_eq!(out.len(), status_len(&status));
        let parsed = parse_status(out.freeze()).expect("valid");
        assert_eq!(parsed.message().len(), MAX_STATUS_MESSAGE - 1);
        assert!(message.starts_with(parsed.message()));
    }

    #[test]
    fn status_round_trips_with_details() {
        let status =
            Status::new(Code::Application, "boom").with_details(Bytes::from_static(b"\x01\x02"));
        let mut out = BytesMut::new();
        put_status(&mut out, &status);
        assert_eq!(out.len(), status_len(&status));
        assert_eq!(parse_status(out.freeze()).expect("valid"), status);
    }

    #[test]
    fn a_lying_metadata_length_is_malformed_not_a_panic() {
        let mut out = BytesMut::new();
        out.put_u16(1);
        out.put_slice(b"m");
        out.put_u64(0);
        out.put_u16(1);
        out.put_u16(1);
        out.put_slice(b"k");
        out.put_u32(u32::MAX);
        assert_eq!(
            parse_request_header(out.freeze()),
            Err(ProtocolError::Malformed("header"))
        );
    }

    /// The example in PROTOCOL.md, byte for byte.
    #[test]
    fn the_protocol_document_example_is_exact() {
        use crate::codec::put_message;
        use crate::frame::{put_frame, put_frame_header, FrameType};

        #[derive(serde::Serialize)]
        struct AddRequest {
            a: i64,
            b: i64,
        }
        #[derive(serde::Serialize)]
        struct AddResponse {
            result: i64,
        }

        let metadata = Metadata::new();
        let mut request = BytesMut::new();
        request.put_u8(crate::frame::STREAM_KIND_RPC);
        put_frame_header(
            &mut request,
            FrameType::Header,
            request_header_len("Calculator.add", &metadata),
        );
        put_request_header(
            &mut request,
            "Calculator.add",
            Some(Duration::from_secs(5)),
            &metadata,
        )
        .expect("fits");
        put_message(
            &mut request,
            FrameType::Data,
            &AddRequest { a: 1, b: 2 },
            1024,
        )
        .expect("fits");
        put_frame(&mut request, FrameType::End, &[]);
        let expected = [
            "01",
            "011a",
            "000e43616c63756c61746f722e616464",
            "00000000004c4b40",
            "0000",
            "0207",
            "82a16101a16202",
            "0300",
        ];
        assert_eq!(hex(&request), expected.concat());

        let mut response = BytesMut::new();
        put_message(
            &mut response,
            FrameType::Data,
            &AddResponse { result: 3 },
            1024,
        )
        .expect("fits");
        let ok = Status::new(Code::Ok, "");
        put_frame_header(&mut response, FrameType::Status, status_len(&ok));
        put_status(&mut response, &ok);
        let expected = ["0209", "81a6726573756c7403", "0406", "0000", "00000000"];
        assert_eq!(hex(&response), expected.concat());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    proptest! {
        #[test]
        fn arbitrary_header_and_status_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_request_header(Bytes::from(bytes.clone()));
            let _ = parse_status(Bytes::from(bytes));
        }

        #[test]
        fn any_request_header_round_trips(
            method in ".{0,40}",
            micros in proptest::option::of(1u64..),
            entries in proptest::collection::vec((".{0,12}", proptest::collection::vec(any::<u8>(), 0..24)), 0..6),
        ) {
            let deadline = micros.map(Duration::from_micros);
            let mut metadata = Metadata::new();
            for (key, value) in &entries {
                metadata.insert(key.clone(), Bytes::from(value.clone()));
            }
            let mut out = BytesMut::new();
            put_request_header(&mut out, &method, deadline, &metadata).expect("fits");
            prop_assert_eq!(out.len(), request_header_len(&method, &metadata));
            let header = parse_request_header(out.freeze()).expect("valid");
            prop_assert_eq!(header.method(), method);
            prop_assert_eq!(header.deadline, deadline);
            prop_assert_eq!(header.metadata, metadata);
        }

        #[test]
        fn any_status_round_trips(
            code in prop::sample::select(vec![
                Code::Ok, Code::Cancelled, Code::Unknown, Code::InvalidArgument,
                Code::DeadlineExceeded, Code::ResourceExhausted, Code::Unimplemented,
                Code::Internal, Code::Unavailable, Code::Application,
            ]),
            message in ".{0,40}",
            details in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let status = Status::new(code, message).with_details(Bytes::from(details));
            let mut out = BytesMut::new();
            put_status(&mut out, &status);
            prop_assert_eq!(out.len(), status_len(&status));
            prop_assert_eq!(parse_status(out.freeze()).expect("valid"), status);
        }
    }
}
