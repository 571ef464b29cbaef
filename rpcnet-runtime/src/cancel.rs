//! Cancelling calls whose request side is already finished.
//!
//! A client finishes its side of a call's stream as soon as it has sent the request (so
//! the request and its end travel together), which leaves it no way to reset that side
//! later. To cancel such a call it opens a unidirectional stream of kind `0x03` carrying
//! the call's stream id. Each server connection keeps a [`CancelRegistry`] of its calls in
//! progress to find the call by id.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};

use crate::context::CallContext;
use crate::frame::STREAM_KIND_CANCEL;
use rustc_hash::FxBuildHasher;

/// Cancels that match no registered call are kept, in case their call registers later, up
/// to this many per connection (the oldest go first).
const MAX_UNMATCHED_CANCELS: usize = 1024;

/// The calls in progress on one connection that may wait, by QUIC stream id.
///
/// A call registers only once it has to wait (for its handler, its requests or its
/// deadline): one answered at once cannot be cancelled in any useful way, and registering
/// every call would cost each a lock and a table entry. A cancel that matches no registered
/// call is therefore kept, in a bounded set, for a call that has yet to register; one for a
/// call that finished is forgotten as newer cancels push it out. QUIC never reuses a stream
/// id, so a stale entry never matches a later call.
#[derive(Debug, Default)]
pub(crate) struct CancelRegistry {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by stream ids QUIC assigns in sequence: a fast hasher without a key is enough.
    active: HashMap<u64, CallContext, FxBuildHasher>,
    /// Cancels that matched no registered call, and their arrival order for eviction. The
    /// ids are whatever the peer sends, so the hasher is keyed (a peer cannot aim its ids at
    /// one bucket).
    unmatched: HashSet<u64, RandomState>,
    order: VecDeque<u64>,
}

/// A call's entry in the registry; removing it on drop keeps the registry exact on every
/// path out of a call.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    registry: &'a CancelRegistry,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.registry.state.lock() {
            state.active.remove(&self.id);
        }
    }
}

impl CancelRegistry {
    /// Registers the call on stream `id`, cancelling it at once if its cancel came first.
    pub(crate) fn register(&self, id: u64, call: &CallContext) -> Registration<'_> {
        if let Ok(mut state) = self.state.lock() {
            if state.unmatched.remove(&id) {
                call.signal().cancel();
            }
            state.active.insert(id, call.clone());
        }
        Registration { registry: self, id }
    }

    /// Cancels the call on stream `id`, now or when it registers.
    pub(crate) fn cancel(&self, id: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(call) = state.active.get(&id) {
            call.signal().cancel();
            return;
        }
        if state.unmatched.insert(id) {
            state.order.push_back(id);
            while state.order.len() > MAX_UNMATCHED_CANCELS {
                if let Some(oldest) = state.order.pop_front() {
                    state.unmatched.remove(&oldest);
                }
            }
        }
    }

    /// Cancels every registered call.
    pub(crate) fn cancel_all(&self) {
        if let Ok(state) = self.state.lock() {
            for call in state.active.values() {
                call.signal().cancel();
            }
        }
    }

    #[cfg(test)]
    fn active(&self) -> usize {
        self.state.lock().map(|s| s.active.len()).unwrap_or(0)
    }

    #[cfg(test)]
    fn unmatched(&self) -> usize {
        self.state.lock().map(|s| s.unmatched.len()).unwrap_or(0)
    }
}

/// The bytes of a cancel stream for the call on stream `id`.
pub(crate) fn cancel_message(id: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(9);
    out.put_u8(STREAM_KIND_CANCEL);
    out.put_u64(id);
    out.freeze()
}

/// Parses a cancel stream's bytes (after which the stream must end).
pub(crate) fn parse_cancel(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [STREAM_KIND_CANCEL, id @ ..] if id.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(id);
            Some(u64::from_be_bytes(raw))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallContext {
        CallContext::new(
            std::sync::Arc::from("S.m"),
            None,
            None,
            crate::Metadata::new(),
        )
    }

    #[test]
    fn a_cancel_reaches_a_registered_call() {
        let registry = CancelRegistry::default();
        let ctx = call();
        let _registered = registry.register(4, &ctx);
        registry.cancel(4);
        assert!(ctx.is_cancelled());
    }

    #[test]
    fn a_cancel_that_comes_first_applies_when_its_call_registers() {
        let registry = CancelRegistry::default();
        let (first, later) = (call(), call());
        let _first = registry.register(0, &first);
        registry.cancel(8);
        assert!(!later.is_cancelled());
        let _later = registry.register(8, &later);
        assert!(later.is_cancelled());
        assert!(!first.is_cancelled());
        assert_eq!(registry.unmatched(), 0, "the kept cancel was used up");
    }

    #[test]
    fn registrations_remove_themselves() {
        let registry = CancelRegistry::default();
        let ctx = call();
        drop(registry.register(0, &ctx));
        drop(registry.register(4, &ctx));
        assert_eq!(registry.active(), 0);
        // A cancel for a call that finished matches nothing and waits among the unmatched.
        registry.cancel(0);
        assert_eq!(registry.unmatched(), 1);
    }

    #[test]
    fn unmatched_cancels_are_bounded_and_the_oldest_go_first() {
        let registry = CancelRegistry::default();
        for id in 0..(MAX_UNMATCHED_CANCELS as u64 * 2) {
            registry.cancel(id * 4);
            registry.cancel(id * 4); // a repeat takes no second place
        }
        assert_eq!(registry.unmatched(), MAX_UNMATCHED_CANCELS);
        let (old, recent) = (call(), call());
        let _old = registry.register(0, &old);
        let _recent = registry.register((MAX_UNMATCHED_CANCELS as u64 * 2 - 1) * 4, &recent);
        assert!(!old.is_cancelled(), "evicted");
        assert!(recent.is_cancelled(), "kept");
    }

    #[test]
    fn cancel_messages_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_cancel(&cancel_message(1 << 40)), Some(1 << 40));
        assert_eq!(parse_cancel(&[STREAM_KIND_CANCEL, 1, 2]), None);
        assert_eq!(parse_cancel(&[0x01; 9]), None);
    }

    proptest::proptest! {
        #[test]
        fn any_cancel_round_trips_and_other_bytes_are_refused(
            id in proptest::prelude::any::<u64>(),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        ) {
            proptest::prop_assert_eq!(parse_cancel(&cancel_message(id)), Some(id));
            if let Some(parsed) = parse_cancel(&bytes) {
                proptest::prop_assert_eq!(&cancel_message(parsed)[..], &bytes[..]);
            }
        }
    }
}
