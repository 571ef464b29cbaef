//! Trace context in W3C Trace Context form, carried in a call's metadata under
//! [`TRACEPARENT`], so that a call made while serving another continues the caller's trace.
//!
//! ```text
//! traceparent: 00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>
//! ```
//!
//! The runtime does not start traces: a client that wants one sends a `traceparent` (for
//! example made with [`TraceContext::new_root`], or by a tracing exporter's propagator).
//! A server reads it into its call's span (`trace_id`) and [`CallContext::trace`]; each
//! call the handler then makes carries the same trace id with a parent id of its own,
//! unless the caller set a `traceparent` itself or the client has a trace source
//! ([`RpcConfig::with_trace_source`]), which gives the `traceparent` of calls that carry none.
//!
//! [`RpcConfig::with_trace_source`]: crate::RpcConfig::with_trace_source
//!
//! [`CallContext::trace`]: crate::CallContext::trace

use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// The metadata key of the trace context: `traceparent`, as W3C Trace Context names it.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace context: which trace a call belongs to and which span is its parent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// A context for a new trace, sampled, with fresh random ids.
    pub fn new_root() -> Self {
        let high = random_u64().to_be_bytes();
        let low = random_u64().to_be_bytes();
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&high);
        trace_id[8..].copy_from_slice(&low);
        TraceContext {
            trace_id,
            parent_id: random_u64().to_be_bytes(),
            flags: 0x01,
        }
    }

    /// Reads a `traceparent` value (version `00`, or a later version's first four fields).
    /// `None` if it is malformed or has the all-zero ids the format forbids.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let version = fields.next()?;
        let trace_id = fields.next()?;
        let parent_id = fields.next()?;
        let flags = fields.next()?;
        if version.len() != 2 || version == "ff" || (version == "00" && fields.next().is_some()) {
            return None;
        }
        let _ = hex::<1>(version)?;
        let context = TraceContext {
            trace_id: hex::<16>(trace_id)?,
            parent_id: hex::<8>(parent_id)?,
            flags: hex::<1>(flags)?[0],
        };
        (context.trace_id != [0; 16] && context.parent_id != [0; 8]).then_some(context)
    }

    /// The context of a child span: the same trace and flags, a new parent id.
    pub fn child(&self) -> Self {
        TraceContext {
            parent_id: random_u64().to_be_bytes(),
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The parent span's id as 16 lowercase hex digits.
    pub fn parent_id(&self) -> String {
        to_hex(&self.parent_id)
    }

    /// Whether the trace is sampled (flag `01`).
    pub fn is_sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// The `traceparent` value for this context.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// 64 random bits for span and trace ids (std's per-process random hash keys, moved on
/// for each use; ids need to be unique, not secret).
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_reads_and_writes_back_the_same() {
        let context = TraceContext::parse(EXAMPLE).expect("valid");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert_eq!(context.to_traceparent(), EXAMPLE);
    }

    #[test]
    fn malformed_or_all_zero_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may add fields after the four it shares with version 00.
        assert!(TraceContext::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"
        )
        .is_some());
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_and_gets_a_new_parent_id() {
        let context = TraceContext::parse(EXAMPLE).expect("valid");
        let child = context.child();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_eq!(child.is_sampled(), context.is_sampled());
        assert_ne!(child.parent_id(), context.parent_id());
        let root = TraceContext::new_root();
        assert_ne!(root.trace_id(), TraceContext::new_root().trace_id());
        assert_eq!(TraceContext::parse(&root.to_traceparent()), Some(root));
    }
}
