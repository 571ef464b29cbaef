//! Client-side calls: the four call kinds as builders that implement `IntoFuture`, and the
//! machinery under them.
//!
//! - `spec`: the client, method and options every call carries ([`CallOptions`]).
//! - `stream`: a call's QUIC stream, its cancel guards, a single-message reply.
//! - `unary`, `streaming`: the builders; `pump`: the request writer of streaming requests;
//!   `response`: [`ResponseStream`].

mod pump;
mod response;
mod spec;
mod stream;
mod streaming;
mod unary;

pub use self::response::ResponseStream;
pub use self::spec::CallOptions;
pub use self::streaming::{BidiStreamingCall, ClientStreamingCall, ServerStreamingCall};
pub use self::unary::UnaryCall;
