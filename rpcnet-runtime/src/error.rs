//! Errors: status codes on the wire, [`RpcError`] for everything the framework reports and
//! [`CallError`] which adds the service's own typed application error.

use std::fmt;

/// A boxed error from a lower layer (QUIC, TLS, I/O), kept as the `source` of an [`RpcError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The status code carried by every response's final status frame.
///
/// The numbering follows gRPC's where the meaning is the same, so dashboards and people
/// who know one recognise the other. `Application` is rpcnet's own: the call failed with
/// the service's typed error, carried in the status frame's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The call completed successfully.
    Ok,
    /// The call was cancelled, usually by the caller.
    Cancelled,
    /// An error that fits no other category.
    Unknown,
    /// The request could not be decoded or is not valid for the method.
    InvalidArgument,
    /// The call's deadline passed before it completed.
    DeadlineExceeded,
    /// A limit was exceeded: message size, concurrent calls, memory.
    ResourceExhausted,
    /// The server has no such method.
    Unimplemented,
    /// An invariant of the framework or the handler broke on the server.
    Internal,
    /// The server or the connection is not available (shutting down, unreachable).
    Unavailable,
    /// The handler returned the service's typed application error.
    Application,
}

impl Code {
    /// Every code, in the order of their numbers.
    pub(crate) const ALL: [Code; 10] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::ResourceExhausted,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::Application,
    ];

    /// The code's number on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Code::Ok => 0,
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::ResourceExhausted => 8,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Application => 100,
        }
    }

    /// The code for a number read from the wire; numbers this version does not know map to
    /// [`Code::Unknown`] so a newer peer cannot confuse an older one.
    pub fn from_u16(value: u16) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            8 => Code::ResourceExhausted,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            100 => Code::Application,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Code::Ok => "ok",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid argument",
            Code::DeadlineExceeded => "deadline exceeded",
            Code::ResourceExhausted => "resource exhausted",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::Application => "application error",
        };
        f.write_str(name)
    }
}

/// The details of a status the server sends for a call it refused before running any
/// handler (an unknown method, a draining server): the single byte `0x01`. Handlers cannot
/// set a status's details, so only the framework sends it.
const NOT_HANDLED: &[u8] = &[0x01];

/// A status a server handler returns (or the framework produces) to end a call unsuccessfully.
///
/// Low-level handlers registered with `RpcServer::register` return it directly; typed
/// handlers return their application error instead and the framework builds the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: bytes::Bytes,
}

impl Status {
    /// A status with a code and a human-readable message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
            details: bytes::Bytes::new(),
        }
    }

    /// The `Application` status that carries an encoded application error.
    pub(crate) fn application(details: bytes::Bytes) -> Self {
        Status {
            code: Code::Application,
            message: String::new(),
            details,
        }
    }

    /// A status the server itself sends for a call it refuses before any handler runs (no
    /// such method, shutting down). Its details are [`NOT_HANDLED`], which lets the client
    /// tell it from the same code returned by a handler that may have done work.
    pub(crate) fn refused(code: Code, message: impl Into<String>) -> Self {
        Status::new(code, message).with_details(bytes::Bytes::from_static(NOT_HANDLED))
    }

    /// Whether the server sent this status without running a handler (see
    /// [`NOT_HANDLED`]).
    pub(crate) fn is_refusal(&self) -> bool {
        self.code != Code::Application && self.details.as_ref() == NOT_HANDLED
    }

    pub(crate) fn with_details(mut self, details: bytes::Bytes) -> Self {
        self.details = details;
        self
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Opaque details: for [`Code::Application`], the MessagePack-encoded application error.
    pub fn details(&self) -> &[u8] {
        &self.details
    }

    pub(crate) fn details_bytes(&self) -> &bytes::Bytes {
        &self.details
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// A MessagePack encoding or decoding failure. The codec's own error type stays private;
/// its text is kept for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    message: String,
}

impl CodecError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        CodecError {
            message: message.to_string(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

/// A violation of the `rpcnet/1` wire format by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame announced a length above the configured maximum message size.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The length the frame announced.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A frame length that is not a varint of at most five bytes fitting in 32 bits.
    #[error("malformed frame length")]
    MalformedLength,
    /// A frame type this version does not know.
    #[error("unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    /// A stream started with a kind byte this endpoint does not serve.
    #[error("unknown stream kind {0:#04x}")]
    UnknownStreamKind(u8),
    /// A frame arrived where the protocol does not allow it.
    #[error("unexpected {found} frame, expected {expected}")]
    UnexpectedFrame {
        /// What the protocol expected at this point.
        expected: &'static str,
        /// The frame type that arrived.
        found: &'static str,
    },
    /// A header or status frame's fields could not be parsed.
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    /// The stream ended in the middle of a frame or before the call completed.
    #[error("stream ended before the call completed")]
    Truncated,
    /// Holding more of the request would take the server past its receive budget (see
    /// [`RpcConfig::with_receive_budget`](crate::RpcConfig::with_receive_budget)): the call
    /// is refused, and may be retried once the server holds less.
    #[error("the {scope}'s receive budget of {limit} bytes is in use by requests being received")]
    ReceiveBudgetExhausted {
        /// `"connection"` or `"server"`: which budget is used up.
        scope: &'static str,
        /// That budget, in bytes.
        limit: u64,
    },
}

/// Everything rpcnet itself can report about a call: transport, protocol, limits, deadlines,
/// and statuses sent by the server. The service's own typed error is not here: see
/// [`CallError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The configuration could not be turned into a QUIC endpoint (certificate, key, address).
    #[error("invalid configuration: {message}")]
    Config {
        /// What was wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Binding the UDP socket or starting the endpoint failed.
    #[error("could not start the QUIC endpoint on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// No connection could be made to the server (handshake failed, unreachable, refused).
    #[error("could not connect to {addr}")]
    Connect {
        /// The server address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The connection failed while the call was in progress, or the client is waiting out a
    /// reconnect backoff.
    #[error("connection unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The call's stream was reset or failed at the QUIC layer.
    #[error("stream failed")]
    Stream(#[source] BoxError),
    /// The call's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The call was cancelled.
    #[error("call cancelled")]
    Cancelled,
    /// The server has no handler for the method: its own answer, sent before any handler
    /// ran. (A handler that returns an `Unimplemented` status itself is reported as
    /// [`RpcError::Status`], since it may have done work first.)
    #[error("method `{method}` is not implemented by the server")]
    Unimplemented {
        /// The method that was called.
        method: String,
    },
    /// A message was larger than the configured maximum; it was not sent (or not accepted).
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The message's encoded size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A call's header could not be written: a method name, metadata key or value, or the
    /// number of metadata entries is too large for its length field. Nothing was sent.
    #[error("the call's {field} is {len} bytes, over the header's limit of {limit}")]
    HeaderTooLarge {
        /// Which part of the header.
        field: &'static str,
        /// Its length (bytes, or entries for the number of entries).
        len: usize,
        /// The most its length field can say.
        limit: usize,
    },
    /// A value could not be encoded to MessagePack.
    #[error("could not encode the message")]
    Encode(#[source] CodecError),
    /// A value from the peer could not be decoded.
    #[error("could not decode the message")]
    Decode(#[source] CodecError),
    /// The peer broke the wire protocol.
    #[error("protocol error")]
    Protocol(#[from] ProtocolError),
    /// The server ended the call with a status (other than the ones above).
    #[error("server returned {0}")]
    Status(Status),
}

impl RpcError {
    /// The status category of this error.
    pub fn code(&self) -> Code {
        match self {
            RpcError::Config { .. } | RpcError::Bind { .. } => Code::Internal,
            RpcError::Connect { .. } | RpcError::Unavailable { .. } => Code::Unavailable,
            RpcError::Stream(_) => Code::Unavailable,
            RpcError::DeadlineExceeded => Code::DeadlineExceeded,
            RpcError::Cancelled => Code::Cancelled,
            RpcError::Unimplemented { .. } => Code::Unimplemented,
            RpcError::MessageTooLarge { .. } => Code::ResourceExhausted,
            RpcError::HeaderTooLarge { .. } => Code::InvalidArgument,
            RpcError::Encode(_) => Code::Internal,
            RpcError::Decode(_) => Code::InvalidArgument,
            RpcError::Protocol(
                ProtocolError::FrameTooLarge { .. } | ProtocolError::ReceiveBudgetExhausted { .. },
            ) => Code::ResourceExhausted,
            RpcError::Protocol(_) => Code::Internal,
            RpcError::Status(status) => status.code(),
        }
    }

    /// Whether the call certainly did not reach a handler, so sending it again cannot run it
    /// twice: a caller that can reach the same service elsewhere may retry the call there.
    ///
    /// True for a failed connect, a client waiting out its reconnect backoff, and a call
    /// the server itself refused before running a handler: its own answer that it has no
    /// such method ([`RpcError::Unimplemented`]) or that it is shutting down. A status a
    /// handler returned, whatever its code, is not safe: the handler may have done work.
    pub fn is_safe_to_retry(&self) -> bool {
        match self {
            RpcError::Connect { .. } | RpcError::Unimplemented { .. } => true,
            RpcError::Unavailable { source: None, .. } => true,
            RpcError::Status(status) => status.is_refusal(),
            _ => false,
        }
    }

    pub(crate) fn config(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        RpcError::Config {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>, source: Option<BoxError>) -> Self {
        RpcError::Unavailable {
            message: message.into(),
            source,
        }
    }

    /// The error a client reports for a final status frame that is not OK or Application.
    pub(crate) fn from_status(status: Status, method: &str) -> Self {
        match status.code() {
            Code::DeadlineExceeded => RpcError::DeadlineExceeded,
            Code::Cancelled => RpcError::Cancelled,
            Code::Unimplemented if status.is_refusal() => RpcError::Unimplemented {
                method: method.to_owned(),
            },
            _ => RpcError::Status(status),
        }
    }

    /// The status a server sends for this error.
    pub(crate) fn to_status(&self) -> Status {
        match self {
            RpcError::Status(status) => status.clone(),
            other => Status::new(other.code(), error_chain(other)),
        }
    }
}

/// Formats an error and all of its sources on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// The application error type of methods that cannot fail: a method whose trait signature
/// returns a plain value instead of a `Result` has `CallError<Never>` as its client error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Never {}

/// The result of a typed call: either the service's own application error `E`, delivered
/// typed, or an [`RpcError`] from the framework.
#[derive(Debug)]
pub enum CallError<E> {
    /// The handler returned its typed application error.
    Application(E),
    /// The framework failed the call (transport, deadline, cancellation, limits, …).
    Rpc(RpcError),
}

impl<E> CallError<E> {
    /// The status category: [`Code::Application`] for an application error.
    pub fn code(&self) -> Code {
        match self {
            CallError::Application(_) => Code::Application,
            CallError::Rpc(error) => error.code(),
        }
    }

    /// The application error, if that is what this is.
    pub fn application(&self) -> Option<&E> {
        match self {
            CallError::Application(error) => Some(error),
            CallError::Rpc(_) => None,
        }
    }

    /// The application error, if that is what this is.
    pub fn into_application(self) -> Option<E> {
        match self {
            CallError::Application(error) => Some(error),
            CallError::Rpc(_) => None,
        }
    }

    /// The framework error, if that is what this is.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            CallError::Application(_) => None,
            CallError::Rpc(error) => Some(error),
        }
    }
}

impl<E> From<RpcError> for CallError<E> {
    fn from(error: RpcError) -> Self {
        CallError::Rpc(error)
    }
}

impl<E: fmt::Debug> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Application(error) => write!(f, "application error: {error:?}"),
            CallError::Rpc(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Application(_) => None,
            CallError::Rpc(error) => Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CODES: [Code; 10] = Code::ALL;

    #[test]
    fn every_code_survives_the_wire_number() {
        for code in ALL_CODES {
            assert_eq!(Code::from_u16(code.as_u16()), code);
        }
    }

    /// The status code table of PROTOCOL.md: `| number | Name | meaning |` rows.
    fn documented_codes() -> Vec<(u16, String)> {
        let document = include_str!("../../PROTOCOL.md");
        let table = document
            .split("| code | name | meaning |")
            .nth(1)
            .expect("PROTOCOL.md has the status code table");
        table
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let number = cells[1].parse().expect("a code number");
                (number, cells[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn each_code_has_the_number_the_protocol_document_gives_it() {
        let documented = documented_codes();
        assert_eq!(documented.len(), ALL_CODES.len(), "one row per code");
        for code in ALL_CODES {
            let name = format!("{code:?}");
            let row = documented.iter().find(|(_, n)| *n == name);
            assert_eq!(
                row.map(|(number, _)| *number),
                Some(code.as_u16()),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_wire_numbers_read_as_unknown() {
        assert_eq!(Code::from_u16(999), Code::Unknown);
    }

    #[test]
    fn server_statuses_map_to_typed_client_errors() {
        let error = RpcError::from_status(Status::refused(Code::Unimplemented, "x"), "A.b");
        assert!(matches!(error, RpcError::Unimplemented { ref method } if method == "A.b"));
        let error = RpcError::from_status(Status::new(Code::DeadlineExceeded, ""), "A.b");
        assert!(matches!(error, RpcError::DeadlineExceeded));
    }

    #[test]
    fn only_the_servers_own_refusals_are_safe_to_retry() {
        let refused = RpcError::from_status(Status::refused(Code::Unimplemented, "x"), "A.b");
        assert!(refused.is_safe_to_retry());
        let draining = RpcError::from_status(Status::refused(Code::Unavailable, "x"), "A.b");
        assert!(draining.is_safe_to_retry());
        // A handler's own Unimplemented (or any status it returns) may follow work it did.
        let handler = RpcError::from_status(Status::new(Code::Unimplemented, "x"), "A.b");
        assert!(matches!(handler, RpcError::Status(_)));
        assert!(!handler.is_safe_to_retry());
        let handler = RpcError::from_status(Status::new(Code::Unavailable, "x"), "A.b");
        assert!(!handler.is_safe_to_retry());
        assert!(!RpcError::DeadlineExceeded.is_safe_to_retry());
    }
}
